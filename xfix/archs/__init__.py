"""Explicit registry of model architectures.

A profile file names an architecture; this table maps that name to the module that defines it. Modules are
imported only when asked for, so `xfix --help` never imports torch. Adding an architecture means adding one
module that defines `ARCHITECTURE` and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from xfix.errors import ProfileError

_MODULES: dict[str, str] = {
    "classic": "xfix.archs.classic",
    "msec": "xfix.archs.msec",
    "whitebox": "xfix.archs.whitebox",
    "whitebox-raw": "xfix.archs.whitebox_raw",
    "highlights": "xfix.archs.highlights",
    "hdrcnn": "xfix.archs.hdrcnn",
    "sice": "xfix.archs.sice",
    "bgrid": "xfix.archs.bgrid",
}


@dataclass(frozen=True)
class Architecture:
    """What the runner and the training loop need to know about a network.

    build(settings) -> torch.nn.Module whose forward takes (B, 3, H, W) float32 in `encoding` (display-referred
    encodings in [0, 1]) and returns the corrected image, same shape and encoding.
    recipe(model, settings) -> an object with `loss(model, inp, target, step) -> (loss, logs)` and optionally
    `after_step(model, inp, target, step) -> logs` and `extra_modules() -> dict[str, nn.Module]`; None when the
    architecture does not learn.
    With `takes_context`, the model defines `global_context(image) -> tensor | None` (what it must know about
    the whole photo) and accepts it as forward's second argument: the runner computes it once per image and
    hands it to every tile.
    """

    name: str
    description: str
    build: Callable[[Mapping[str, Any]], Any]
    encoding: str = "srgb"
    learned: bool = True
    receptive_field: int = 0  # pixels each side an output pixel depends on; 0 when global (not tileable)
    multiple_of: int = 1  # H and W are padded up to a multiple of this
    tile_align: int = 1  # tiles start at multiples of this (position-dependent models, e.g. periodic noise)
    supports_half: bool = False
    recipe: Callable[..., Any] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    pairs: Callable[..., Any] | None = None  # training pairs (photo, rng, encoding, ev_range); None: make_pair
    pair_settings: tuple[str, ...] = ()  # settings passed to `pairs` as keyword arguments
    # adapt_weights(state, model) -> state: lets --init-from-weights start from weights of an earlier variant
    adapt_weights: Callable[..., Any] | None = None
    takes_context: bool = False  # model.global_context(image) and forward(x, context), see above
    # colour_map(model, shrink) -> fn: for a model that maps a colour the same way anywhere in a photo, the
    # function of (1, 3, H, W) tensors it applies to the photo; shrink(h, w) gives the photo (1, 3, h, w) as
    # F.interpolate(mode="area") would. Lets the 8-bit route apply the model as a 3D table.
    colour_map: Callable[..., Any] | None = None


def architecture_names() -> tuple[str, ...]:
    return tuple(_MODULES)


def get_architecture(name: str) -> Architecture:
    """The architecture called `name`; an unknown name lists the valid ones."""
    if name not in _MODULES:
        raise ProfileError(f"unknown architecture {name!r}; valid: {', '.join(_MODULES)}")
    module = importlib.import_module(_MODULES[name])
    arch = module.ARCHITECTURE
    if arch.name != name:
        raise ProfileError(f"module {_MODULES[name]} defines architecture {arch.name!r}, expected {name!r}")
    return arch
