"""hdrcnn: single-exposure HDR reconstruction (Eilertsen et al., SIGGRAPH Asia 2017), sized for a 2-core CPU.

The input is an 8-bit photo as the linearize stage gives it (linear Rec.709/sRGB primaries, 1 = the file's
white). The model re-encodes it to the display values D the file stored, and an encoder-decoder with skip
connections predicts log radiance. Only where the input is near saturation does the prediction count:

    a = max(0, max_c(D) - tau) / (1 - tau)                  (the paper's mask, tau = 0.95)
    H = (1 - a) * f^-1(D) + a * exp(y)                       f^-1: the sRGB decoding
    y = max(g * log f^-1(D^(1/g)) + g * r(D^(1/g)), log f^-1(D))   r: the network's residual

The network predicts a residual r over log f^-1(D), and its last layer starts at zero, so an untrained network
returns the naive reconstruction (inverse curve, nothing filled in). A clipped pixel was at least as bright as
recorded, so the prediction never goes below log f^-1(D): these weights put some clipped pixels below the
input's white. `gamma` (g) is the paper's control trick, y = f(x^(1/g))^g in the log domain: the network sees
the photo through another camera curve, and g > 1 brightens reconstructed highlights, g = 1 changes nothing
(1.1-1.3 is the paper's range). Far outside it the network sees photos unlike its training data; with the
shipped weights, from about g = 2 it predicts nothing above the input and the floor holds the output there.

The recipe's loss is L1 in the log domain weighted by the mask (the paper's L2 is the `saturated_loss` option:
on held-out scenes it over-brightened large clipped skies), plus a small unweighted L1 term that keeps the
prediction sane where it is not used, and optionally
the single-frame temporal regularisation of Eilertsen et al. CVPR 2019: the prediction for a slightly moved,
rotated or zoomed input must equal the moved prediction, which stops video frames flickering.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.tonecurve import srgb_decode, srgb_encode

EPS = 1e-3  # log(x + EPS): black stays finite
MAX_LOG = math.log(60000.0)  # exp(y) stays below the largest half float (65504)
RECEPTIVE_FIELD = 240  # px each side an output pixel depends on (measured in tests/test_hdr.py: 236)

DEFAULTS: dict[str, Any] = {
    "widths": [16, 24, 32, 48, 64],  # channels per level, full resolution first; each level halves the size
    "tau": 0.95,
    "gamma": 1.0,
}
TRAINING_DEFAULTS: dict[str, Any] = {  # read by the recipe and the HDR trainer only; profiles may set them
    "saturated_loss": "l1",  # l1, or l2 as the paper (which over-brightened large flat clipped skies here)
    "unsaturated_weight": 0.1,
    "temporal_weight": 0.0,
    "jpeg_probability": 0.0,
    "photo_share": 0.25,
}


def saturation_mask(display: torch.Tensor, tau: float) -> torch.Tensor:
    """(B, 3, H, W) display values in [0, 1] -> (B, 1, H, W) blend weight a in [0, 1]; 0 below tau."""
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"tau must be in [0, 1), got {tau}")
    peak = display.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    return ((peak - tau) / (1.0 - tau)).clamp(0.0, 1.0)


def blend(linear: torch.Tensor, log_prediction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """H = (1 - a) * linear + a * exp(y): (B, 3, H, W) linear input, log prediction, and (B, 1, H, W) mask."""
    predicted = torch.exp(log_prediction.clamp(max=MAX_LOG)) - EPS
    return (1.0 - mask) * linear + mask * predicted.clamp(min=0.0)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
    )  # fmt: skip


class HDRCNN(nn.Module):
    """(B, 3, H, W) linear sRGB-primaries LDR input (1 = white) -> (B, 3, H, W) linear HDR, same primaries.

    The network runs at half resolution (a highlight's radiance varies slowly; the mask keeps full-resolution
    edges), so it costs a quarter of a full-resolution one. H and W must be multiples of 2 ** len(widths); the
    runner pads (`multiple_of`)."""

    def __init__(self, widths: Sequence[int], tau: float = 0.95, gamma: float = 1.0):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"hdrcnn needs at least two levels, got widths {list(widths)}")
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        self.tau, self.gamma, self.levels = float(tau), float(gamma), len(widths)
        self.encoder = nn.ModuleList(
            _block(3 if i == 0 else widths[i - 1], widths[i]) for i in range(len(widths))
        )
        self.decoder = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )
        self.out = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.out.weight)  # residual starts at zero: the naive reconstruction
        nn.init.zeros_(self.out.bias)

    def residual(self, display: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) display values -> (B, 3, H, W) log-radiance correction over log f^-1(D)."""
        multiple = 2**self.levels
        if display.ndim != 4 or display.shape[1] != 3 or any(s % multiple for s in display.shape[-2:]):
            shape = tuple(display.shape)
            raise ValueError(f"hdrcnn expects (B, 3, H, W) with H, W multiples of {multiple}, got {shape}")
        skips, y = [], display * 2.0 - 1.0
        for block in self.encoder:
            y = block(F.avg_pool2d(y, 2))  # (B, w_level, H / 2**(level + 1), W / 2**(level + 1))
            skips.append(y)
        y = skips.pop()
        for block in self.decoder:
            skip = skips.pop()
            y = block(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="bilinear"), skip], dim=1))
        return F.interpolate(self.out(y), size=display.shape[-2:], mode="bilinear")  # (B, 3, H, W)

    def predict_log(self, display: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) display values in [0, 1] -> predicted log(radiance + EPS), 1 = sensor saturation."""
        return torch.log(srgb_decode(display) + EPS) + self.residual(display)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One NaN would spread through every convolution and pooling level over most of the image; the
        # input's white is 1, so an infinite value is clipped white and a NaN black.
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0).clamp(0.0, 1.0)  # (B, 3, H, W)
        display = srgb_encode(x)  # the values the file stored (B, 3, H, W)
        mask = saturation_mask(display, self.tau)  # (B, 1, H, W)
        recorded = torch.log(srgb_decode(display) + EPS)
        if self.gamma == 1.0:
            log_prediction = self.predict_log(display)
        else:  # y = f(x^(1/g))^g, in the log domain
            log_prediction = self.gamma * self.predict_log(display ** (1.0 / self.gamma))
        # a clipped pixel was at least as bright as recorded
        return blend(x, torch.maximum(log_prediction, recorded), mask)


def build(settings: Mapping[str, Any]) -> HDRCNN:
    merged = {**DEFAULTS, **dict(settings)}
    return HDRCNN(merged["widths"], merged["tau"], merged["gamma"])


def random_warp(shape: torch.Size, generator: torch.Generator | None = None, *, shift: float = 2.0,
                degrees: float = 1.0, zoom: float = 0.03) -> torch.Tensor:
    """(B, H, W, 2) sampling grid of a small random similarity transform per image: translation up to `shift`
    px, rotation up to `degrees`, zoom up to `zoom` (CVPR 2019's T)."""
    b, _, h, w = shape
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # (B, 4) in [-1, 1]
    angle, scale = u[:, 0] * math.radians(degrees), 1.0 + u[:, 1] * zoom
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin * h / w, u[:, 2] * 2 * shift / w], dim=1),
        torch.stack([sin * w / h, cos, u[:, 3] * 2 * shift / h], dim=1),
    ], dim=1)  # (B, 2, 3) in normalised coordinates  # fmt: skip
    return F.affine_grid(theta, list(shape), align_corners=False)


def warp(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


class HDRRecipe:
    """Mask-weighted L1 or L2 in the log domain (+ `unsaturated_weight` x plain L1); with `temporal_weight` > 0
    the CVPR 2019 stability term |y(T(D)) - T(y(D))| weighted by the mask of T(D)."""

    margin = 8  # px at the border ignored by the temporal term (the warp repeats edge pixels there)

    def __init__(self, model: HDRCNN, settings: Mapping[str, Any]):
        settings = {**TRAINING_DEFAULTS, **dict(settings)}
        self.unsaturated_weight = float(settings["unsaturated_weight"])
        if settings["saturated_loss"] not in ("l1", "l2"):
            raise ValueError(f"saturated_loss must be l1 or l2, got {settings['saturated_loss']!r}")
        self.power = 2 if settings["saturated_loss"] == "l2" else 1
        self.temporal_weight = float(settings["temporal_weight"])

    @staticmethod
    def _weighted(error: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (mask * error).sum() / (mask.sum() * error.shape[1]).clamp(min=1.0)

    def loss(self, model: HDRCNN, inp: torch.Tensor, target: torch.Tensor, step: int):
        """inp (B, 3, P, P) linear LDR in [0, 1]; target (B, 3, P, P) linear HDR on the same scale."""
        display = srgb_encode(inp.clamp(0.0, 1.0))
        mask = saturation_mask(display, model.tau)
        prediction = model.predict_log(display)
        error = (prediction - torch.log(target.clamp(min=0.0) + EPS)).abs()
        saturated = self._weighted(error**self.power, mask)
        total = saturated + self.unsaturated_weight * error.mean()
        logs = {"saturated": float(saturated.detach()), "all": float(error.mean().detach())}
        if self.temporal_weight > 0:
            grid = random_warp(display.shape).to(display.device)
            moved = warp(display, grid)
            m = self.margin
            crop = (slice(None), slice(None), slice(m, -m), slice(m, -m))
            drift = (model.predict_log(moved) - warp(prediction, grid)).abs()[crop]
            temporal = self._weighted(drift, saturation_mask(moved, model.tau)[crop])
            total = total + self.temporal_weight * temporal
            logs["temporal"] = float(temporal.detach())
        return total, logs


ARCHITECTURE = Architecture(
    name="hdrcnn",
    description="Single-exposure HDR reconstruction of clipped highlights (Eilertsen et al., 2017/2019)",
    build=build,
    encoding="linear-srgb",
    learned=True,
    receptive_field=RECEPTIVE_FIELD,
    multiple_of=32,
    tile_align=32,  # pooling grid: tiles on multiples of 32 see the same pooling as the whole image
    supports_half=False,
    recipe=HDRRecipe,
    defaults={**DEFAULTS, **TRAINING_DEFAULTS},
)
