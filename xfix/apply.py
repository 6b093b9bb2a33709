"""`xfix apply`: a saved edit (`<name>.xfix.json`) applied to other photos through the normal pipeline.

The edit runs inside a `profile.Corrector` built around it, so decoding, colour conversion, strength,
encoding, metadata and the atomic write are exactly those of `xfix correct`: applying the edit `xfix correct
--edits` wrote to the same photo gives the same pixels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xfix.edit import Edit


class EditModel(nn.Module):
    """A fixed edit as a model: (B, 3, H, W) in the edit's encoding -> edited. `last_edits` as whitebox's."""

    def __init__(self, edit: Edit):
        super().__init__()
        self.edit = edit
        self.last_edits = [edit]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.edit.apply(x)


def edit_corrector(edit: Edit, path: Path, device: str = "cpu") -> Any:
    """A Corrector that applies `edit` (read from `path`) to whole images on `device`."""
    from xfix.archs import get_architecture
    from xfix.devices import select_device
    from xfix.profile import Corrector, Inference, Profile

    # No colour_map: the 8-bit route would tabulate the edit, and `correct --edits` applies it exactly (the
    # float route), so a saved edit must too to give the same pixels.
    arch = dataclasses.replace(get_architecture("whitebox"), encoding=edit.encoding, learned=False,
                               colour_map=None)
    profile = Profile(name=edit.profile, description=f"saved edit {Path(path).name}", architecture=arch.name,
                      encoding=edit.encoding, path=Path(path).resolve())
    torch_device = select_device(device)
    return Corrector(profile, arch, EditModel(edit).eval().to(torch_device), torch_device, {},
                     Inference(mode="whole"))
