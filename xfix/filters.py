"""Differentiable photo-editing operations on linear RGB, for the `whitebox` profile (Hu et al. 2018).

Every operation is an ordinary editing control with a few readable values (EV, gains, a curve) and has three
forms: `torch` (differentiable, batched: parameters are (B, k) tensors, images (B, 3, H, W)), `numpy` (a
separate plain reference on (3, H, W) that the tests compare against) and `from_raw` (unbounded network
outputs -> bounded values whose all-zero input is the identity). Images are RGB in [0, 1] of the encoding's
primaries, in the operation's `domain`: "linear" light (white balance, exposure, gamma, saturation) or
"display" values (sRGB-encoded: contrast, black/white points, curves), as the sliders of a raw converter.

Per-channel operations (every one but saturation) map each channel through the same kind of 1-D function, so a
run of them folds into one lookup table per channel (`xfix.edit`); that is what makes a 24 MP image cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from xfix.tonecurve import filmic, filmic_inverse, srgb_decode, srgb_encode

CURVE_SEGMENTS = 8
EXPOSURE_KNEE, EXPOSURE_WHITE = 0.6, 3.0  # the highlight shoulder of `exposure` (xfix.tonecurve.filmic)
_TINY = 1e-6


def _display(x: torch.Tensor) -> torch.Tensor:
    return srgb_encode(x.clamp(0.0, 1.0))


def np_to_display(x: np.ndarray) -> np.ndarray:
    """Reference sRGB encoding (clipped to [0, 1] first)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def np_to_linear(u: np.ndarray) -> np.ndarray:
    """Reference sRGB decoding."""
    return np.where(u <= 0.04045, u / 12.92, np.power((np.clip(u, 0, None) + 0.055) / 1.055, 2.4))


def _col(p: torch.Tensor) -> torch.Tensor:
    """(B,) or (B, 1) -> (B, 1, 1, 1) for broadcasting over (B, C, H, W)."""
    return p.reshape(p.shape[0], -1, 1, 1)


# ---------------------------------------------------------------- white balance


def white_balance(x: torch.Tensor, gains: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) linear, gains (B, 3) -> gains scaled so a grey keeps its luminance (luma . g = 1)."""
    g = gains / (gains @ luma)[:, None]  # (B, 3)
    return x * g[:, :, None, None]


def np_white_balance(x: np.ndarray, gains, luma) -> np.ndarray:
    g = np.asarray(gains, np.float64)
    return x * (g / np.dot(g, luma))[:, None, None]


def raw_white_balance(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"gains": torch.exp(0.5 * torch.tanh(raw))}  # each gain within e**+-0.5 before normalising


# ---------------------------------------------------------------- exposure


def exposure(x: torch.Tensor, ev: torch.Tensor) -> torch.Tensor:
    """Scale scene light by 2**ev under a highlight shoulder: filmic(filmic^-1(x) * 2**ev).

    Values in [0, 1] stay in [0, 1]; ev = 0 is the identity. The shoulder is why brightening by 2 EV does not
    clip everything above a quarter of white (Camera Raw's Exposure2012 rolls highlights off likewise)."""
    scene = filmic_inverse(x.clamp(0.0, 1.0), knee=EXPOSURE_KNEE, white=EXPOSURE_WHITE)
    return filmic(scene * torch.exp2(_col(ev)), knee=EXPOSURE_KNEE, white=EXPOSURE_WHITE)


def _np_filmic(x: np.ndarray) -> np.ndarray:
    k, w = EXPOSURE_KNEE, EXPOSURE_WHITE
    p = (w - k) / (1 - k)
    t = np.clip((x - k) / (w - k), 0, 1)
    return np.where(x <= k, x, k + (1 - k) * (1 - (1 - t) ** p))


def _np_filmic_inverse(y: np.ndarray) -> np.ndarray:
    k, w = EXPOSURE_KNEE, EXPOSURE_WHITE
    p = (w - k) / (1 - k)
    u = np.clip((y - k) / (1 - k), 0, 1)
    return np.where(y <= k, y, k + (w - k) * (1 - (1 - u) ** (1 / p)))


def np_exposure(x: np.ndarray, ev: float) -> np.ndarray:
    return _np_filmic(_np_filmic_inverse(np.clip(x, 0, 1)) * 2.0**ev)


def raw_exposure(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"ev": 3.5 * torch.tanh(raw[:, 0] / 3.5)}  # about linear near 0, within +-3.5 EV


# ---------------------------------------------------------------- gamma


def gamma(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """x ** gamma on linear light (gamma > 1 darkens mid-tones, < 1 lifts them); black and white stay put."""
    return x.clamp(_TINY, None) ** _col(gamma)


def np_gamma(x: np.ndarray, gamma: float) -> np.ndarray:
    return np.power(np.maximum(x, _TINY), gamma)


def raw_gamma(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"gamma": torch.exp2(0.6 * torch.tanh(raw[:, 0]))}


# ---------------------------------------------------------------- contrast


def contrast(u: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """S-curve on display values: u + amount * ((1 - cos(pi u)) / 2 - u); amount in (-1, 1), monotone."""
    u = u.clamp(0.0, 1.0)
    s = 0.5 - 0.5 * torch.cos(math.pi * u)
    return u + _col(amount) * (s - u)


def np_contrast(u: np.ndarray, amount: float) -> np.ndarray:
    u = np.clip(u, 0, 1)
    return u + amount * ((1 - np.cos(np.pi * u)) / 2 - u)


def raw_contrast(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"amount": torch.tanh(raw[:, 0])}


# ---------------------------------------------------------------- black and white points


def black_white(u: torch.Tensor, black: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """Display value `black` becomes 0 and `white` becomes 1 (levels); the result is clipped to [0, 1]."""
    b, w = _col(black), _col(white)
    return ((u - b) / (w - b)).clamp(0.0, 1.0)


def np_black_white(u: np.ndarray, black: float, white: float) -> np.ndarray:
    return np.clip((u - black) / (white - black), 0, 1)


def raw_black_white(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"black": 0.15 * torch.tanh(raw[:, 0]), "white": 1.0 + 0.25 * torch.tanh(raw[:, 1])}


# ---------------------------------------------------------------- curves


def _curve(u: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    """u (B, C, H, W) in [0, 1], slopes (B, C, n) > 0 -> monotone piecewise-linear curve through 0 and 1."""
    n = slopes.shape[-1]
    knots = torch.arange(n, device=u.device, dtype=u.dtype)  # (n,)
    ramps = (u[..., None] * n - knots).clamp(0.0, 1.0)  # (B, C, H, W, n)
    weights = slopes / slopes.sum(dim=-1, keepdim=True)  # (B, C, n)
    return (ramps * weights[:, :, None, None, :]).sum(dim=-1)


def _np_curve(u: np.ndarray, slopes) -> np.ndarray:
    """Reference: interpolate the knot values cumsum(slopes) / sum(slopes) at u."""
    slopes = np.asarray(slopes, np.float64)
    knots_y = np.concatenate([[0.0], np.cumsum(slopes) / slopes.sum()])
    return np.interp(np.clip(u, 0, 1), np.linspace(0, 1, len(slopes) + 1), knots_y)


def tone_curve(u: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    """One monotone curve of CURVE_SEGMENTS equal segments on display values, the same for R, G and B."""
    return _curve(u.clamp(0.0, 1.0), slopes[:, None, :].expand(-1, u.shape[1], -1))


def np_tone_curve(u: np.ndarray, slopes) -> np.ndarray:
    return _np_curve(u, slopes)


def raw_tone_curve(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"slopes": torch.exp(1.5 * torch.tanh(raw))}  # each segment's slope within e**+-1.5 of the others


def colour_curves(u: torch.Tensor, red: torch.Tensor, green: torch.Tensor, blue: torch.Tensor):
    """A monotone curve per channel on display values (slopes (B, n) each)."""
    return _curve(u.clamp(0.0, 1.0), torch.stack([red, green, blue], dim=1))


def np_colour_curves(u: np.ndarray, red, green, blue) -> np.ndarray:
    return np.stack([_np_curve(u[c], s) for c, s in enumerate((red, green, blue))])


def raw_colour_curves(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    slopes = torch.exp(0.7 * torch.tanh(raw)).reshape(raw.shape[0], 3, -1)
    return {"red": slopes[:, 0], "green": slopes[:, 1], "blue": slopes[:, 2]}


# ---------------------------------------------------------------- saturation


def saturation(x: torch.Tensor, amount: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
    """Move each pixel away from (amount > 1) or towards (< 1) its grey of equal luminance; >= 0."""
    y = torch.einsum("bchw,c->bhw", x, luma)[:, None]  # (B, 1, H, W)
    return (y + _col(amount) * (x - y)).clamp(0.0, None)


def np_saturation(x: np.ndarray, amount: float, luma) -> np.ndarray:
    y = np.tensordot(np.asarray(luma, np.float64), x, axes=(0, 0))[None]
    return np.maximum(y + amount * (x - y), 0.0)


def raw_saturation(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"amount": 1.0 + torch.tanh(raw[:, 0])}


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Operation:
    """One editing operation: its parameters (name -> count), the torch and numpy forms, the map from raw
    network outputs, and the parameter values that leave an image unchanged."""

    name: str
    params: tuple[tuple[str, int], ...]
    torch: Callable[..., torch.Tensor]
    numpy: Callable[..., np.ndarray]
    from_raw: Callable[[torch.Tensor], dict[str, torch.Tensor]]
    identity: dict[str, Any]
    per_channel: bool = True
    needs_luma: bool = False
    domain: str = "linear"  # what the forms take and return: "linear" light or "display" (sRGB-encoded)

    @property
    def raw_size(self) -> int:
        return sum(n for _, n in self.params)


_FLAT = [1.0] * CURVE_SEGMENTS
OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("white_balance", (("gains", 3),), white_balance, np_white_balance, raw_white_balance,
                  {"gains": [1.0, 1.0, 1.0]}, per_channel=True, needs_luma=True),
        Operation("exposure", (("ev", 1),), exposure, np_exposure, raw_exposure, {"ev": 0.0}),
        Operation("gamma", (("gamma", 1),), gamma, np_gamma, raw_gamma, {"gamma": 1.0}),
        Operation("contrast", (("amount", 1),), contrast, np_contrast, raw_contrast, {"amount": 0.0},
                  domain="display"),
        Operation("black_white", (("black", 1), ("white", 1)), black_white, np_black_white, raw_black_white,
                  {"black": 0.0, "white": 1.0}, domain="display"),
        Operation("tone_curve", (("slopes", CURVE_SEGMENTS),), tone_curve, np_tone_curve, raw_tone_curve,
                  {"slopes": _FLAT}, domain="display"),
        Operation("colour_curves", tuple((c, CURVE_SEGMENTS) for c in ("red", "green", "blue")),
                  colour_curves, np_colour_curves, raw_colour_curves,
                  {"red": _FLAT, "green": _FLAT, "blue": _FLAT}, domain="display"),
        Operation("saturation", (("amount", 1),), saturation, np_saturation, raw_saturation, {"amount": 1.0},
                  per_channel=False, needs_luma=True),
    )
}  # fmt: skip


def get_operation(name: str) -> Operation:
    """The operation called `name`; an unknown name lists the valid ones."""
    if name not in OPERATIONS:
        raise ValueError(f"unknown operation {name!r}; valid: {', '.join(OPERATIONS)}")
    return OPERATIONS[name]


def luma_tensor(encoding: str, device: Any = None) -> torch.Tensor:
    """Luminance weights (3,) of the linear RGB the encoding uses (sRGB primaries for "srgb")."""
    from xfix.colour import luminance_weights

    return torch.as_tensor(luminance_weights(encoding), dtype=torch.float32, device=device)


def to_domain(x: torch.Tensor, domain: str, wanted: str) -> torch.Tensor:
    """Convert between linear light and display (sRGB-encoded) values; clipped to [0, 1] when converting."""
    if domain == wanted:
        return x
    return _display(x) if wanted == "display" else srgb_decode(x.clamp(0.0, 1.0))


def run_operation(op: Operation, x: torch.Tensor, values: dict[str, torch.Tensor], luma: torch.Tensor,
                  domain: str = "linear") -> tuple[torch.Tensor, str]:
    """Apply `op` with batched `values` to (B, 3, H, W) x given in `domain`; returns (result, its domain).

    Consecutive display operations share one conversion, which is why the domain travels with the image."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"operations expect (B, 3, H, W), got {tuple(x.shape)}")
    x = to_domain(x, domain, op.domain)
    return (op.torch(x, **values, luma=luma) if op.needs_luma else op.torch(x, **values)), op.domain


def run_linear(op: Operation, x: torch.Tensor, values: dict[str, torch.Tensor], luma: torch.Tensor):
    """Linear in, linear out: one operation on its own."""
    y, domain = run_operation(op, x, values, luma)
    return to_domain(y, domain, "linear")
