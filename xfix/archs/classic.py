"""The `classic` profile: exposure correction without learning.

Works on display-referred sRGB (encoding "srgb"): a photo that needs fixing is almost always a rendering
already (a JPEG, or a RAW after the runner's neutral base rendering), and both the exposure model and Mertens'
fusion weights are defined on rendered values. The input is read as a filmic rendering of a scene, as the
evaluation data are synthesized: invert the curve to get scene light, scale it by 2**ev, render it again.
With ev = 0 that is the identity, so a photo that needs no change is returned untouched.

1. Estimate ev from the histogram (`estimate_ev`): brighten by the highlight headroom of the 99th percentile
   (so it never blows), capped by a mid-grey key; darken by the clipped fraction (an over-exposed photo has
   lost its top); a dead zone turns small estimates into no change at all.
2. Apply ev in linear light through the filmic curve of `xfix.tonecurve`.
3. Local contrast: Mertens exposure fusion of renderings at ev - 1, ev, ev + 1 EV over a Laplacian pyramid,
   blended in by the size of the correction (none inside the dead zone).

The registry imports this module only when a profile asks for it, so torch is imported at the top.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from xfix.archs import Architecture
from xfix.fusion import mertens_fusion
from xfix.pyramid import max_levels
from xfix.tonecurve import filmic, filmic_inverse, srgb_decode, srgb_encode

DEFAULTS: dict[str, Any] = {
    "highlight_target": 0.9,  # display-linear value the 99th percentile of max(R, G, B) may be raised to
    "key": 0.13,  # geometric-mean luminance of a typical well-exposed photo (display-linear)
    "key_slack_ev": 0.5,  # brightening may exceed what the key asks for by this much
    "clip_level": 0.999,  # display-linear max(R, G, B) counted as clipped (255 in 8 bit)
    "clip_reference": 0.03,  # clipped fraction a well-exposed photo may have
    "clip_slope_ev": 0.45,  # EV of darkening per doubling of the clipped fraction beyond the reference
    "dead_zone_ev": 0.35,  # |ev| below this: no change
    "full_effect_ev": 0.8,  # |ev| above this: the whole estimate (smooth in between)
    "max_up_ev": 3.0,
    "max_down_ev": 2.0,
    "knee": 0.8,  # filmic curve, see xfix.tonecurve.filmic
    "white": 1.5,
    "fusion": 0.3,  # share of the Mertens fusion in the result at full effect
    "fusion_step_ev": 1.0,  # the virtual exposures are ev - step, ev, ev + step
    "fusion_detail_levels": 3,  # fuse only the finest bands (0: all); coarser ones from the ev rendering
}
_LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 / sRGB luminance weights
_MAX_STAT_PIXELS = 1 << 18  # statistics from a strided subsample: fast, and torch.quantile has a size limit


def _smoothstep(x: float, lo: float, hi: float) -> float:
    """0 below lo, 1 above hi, C1-smooth in between."""
    if hi <= lo:
        return float(x >= lo)
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def estimate_ev(linear, settings: Mapping[str, Any]) -> float:
    """Exposure change in EV for one display-linear image (3, H, W) in [0, 1]; 0.0 when it looks right.

    Positive brightens. Bounded by max_up_ev / max_down_ev; |ev| < dead_zone_ev gives exactly 0.
    """
    step = max(1, int(math.sqrt(linear.shape[1] * linear.shape[2] / _MAX_STAT_PIXELS)))
    sample = linear[:, ::step, ::step].reshape(3, -1)  # (3, N)
    peak = sample.amax(dim=0)  # (N,) max channel: a saturated colour clips before its luminance does
    luma = torch.tensor(_LUMA, dtype=sample.dtype, device=sample.device) @ sample  # (N,)
    s = settings
    headroom = math.log2(s["highlight_target"] / max(torch.quantile(peak, 0.99).item(), 1e-4))
    if headroom > 0:
        geo_mean = torch.exp(torch.log(luma + 1 / 256).mean()).item()
        ev = max(0.0, min(headroom, math.log2(s["key"] / geo_mean) + s["key_slack_ev"]))
    else:
        clipped = (peak >= s["clip_level"]).float().mean().item()
        ev = -max(0.0, s["clip_slope_ev"] * math.log2((clipped + 0.01) / s["clip_reference"]))
    ev *= _smoothstep(abs(ev), s["dead_zone_ev"], s["full_effect_ev"])
    return min(max(ev, -s["max_down_ev"]), s["max_up_ev"])


class ClassicExposure(nn.Module):
    """(B, 3, H, W) sRGB-encoded [0, 1] -> same shape, corrected; no parameters."""

    def __init__(self, settings: Mapping[str, Any]):
        super().__init__()
        self.settings = dict(settings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"classic expects (B, 3, H, W), got {tuple(x.shape)}")
        return torch.cat([self._correct(img) for img in x])

    def _render(self, linear: torch.Tensor, ev: float) -> torch.Tensor:
        """Display-linear (3, H, W) -> sRGB-encoded rendering of the same scene `ev` EV brighter."""
        s = self.settings
        scene = filmic_inverse(linear, knee=s["knee"], white=s["white"])
        return srgb_encode(filmic(scene * 2.0**ev, knee=s["knee"], white=s["white"])).clamp(0, 1)

    def _correct(self, img: torch.Tensor) -> torch.Tensor:
        s = self.settings
        x = img.clamp(0, 1)  # (3, H, W)
        linear = srgb_decode(x)
        ev = estimate_ev(linear, s)
        if ev == 0.0:
            return x[None]
        base = self._render(linear, ev)[None]  # (1, 3, H, W)
        amount = s["fusion"] * _smoothstep(abs(ev), s["dead_zone_ev"], s["full_effect_ev"])
        if amount <= 0:
            return base
        step = s["fusion_step_ev"]
        stack = torch.cat(
            [self._render(linear, ev - step)[None], base, self._render(linear, ev + step)[None]]
        )
        levels = max_levels(*x.shape[-2:])
        detail = s["fusion_detail_levels"] or levels
        fused = mertens_fusion(stack, levels, detail, base=1)  # (1, 3, H, W)
        return (base + amount * (fused - base)).clamp(0, 1)


def build(settings: Mapping[str, Any]):
    """The classic module for `settings` (DEFAULTS overridden by the profile's [settings])."""
    return ClassicExposure({**DEFAULTS, **settings})


ARCHITECTURE = Architecture(
    name="classic",
    description="Histogram exposure estimate, filmic curve and Mertens fusion; no learning",
    build=build,
    encoding="srgb",
    learned=False,
    receptive_field=0,  # the exposure estimate is global: run whole or at a work size + guided upsampling
    multiple_of=1,
    supports_half=False,
    recipe=None,
    defaults=DEFAULTS,
)
