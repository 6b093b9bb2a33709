"""The one device policy: `auto` picks CUDA, then Apple MPS, then the CPU; an explicit device must exist.

torch is imported inside the functions so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from xfix.errors import UsageError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """Device names usable here, best first, e.g. ["cuda", "cuda:0", "cpu"]; "cpu" is always last."""
    import torch

    names: list[str] = []
    if torch.cuda.is_available():
        names.append("cuda")
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names + ["cpu"]


def select_device(name: str = "auto") -> "torch.device":
    """torch.device for "auto", "cpu", "cuda", "cuda:N" or "mps".

    auto -> the first of cuda, mps, cpu that is available. An unknown name, or a device this machine does not
    have, raises UsageError naming the devices that are available.
    """
    import torch

    name = name.strip().lower()
    available = available_devices()
    if name == "auto":
        chosen = available[0]
    else:
        kind = name.split(":", 1)[0]
        if kind not in DEVICE_CHOICES[1:]:
            raise UsageError(f"unknown device {name!r}; valid: {', '.join(DEVICE_CHOICES)} (or cuda:N)")
        if name not in available:
            raise UsageError(f"device {name!r} is not available here; available: {', '.join(available)}")
        chosen = name
    log.debug("device %s selected (asked for %s)", chosen, name)
    return torch.device(chosen)
