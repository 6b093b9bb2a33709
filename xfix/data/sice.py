"""Training references for the `sice` profile (Cai, Gu and Zhang, TIP 2018): fused exposure stacks.

SICE learns from references that are the best fusion of a scene's exposure sequence, not a single frame. Here
each training photo (display sRGB, read as a scene rendered through a camera curve) is taken back to linear
light, exposed at STACK_EVS stops, clipped as a sensor clips and rendered through the same curve; the frames
are fused by `xfix fuse`'s algorithm (Mertens exposure fusion over Laplacian pyramids). That fused image is
the target; the input is one degraded frame of the same scene from `render_exposure` (noise, clipping, JPEG).
"""

from __future__ import annotations

import numpy as np

from xfix.data.curves import ToneCurve, draw_curve
from xfix.data.synthesis import clip_highlights, draw_ev, render_exposure

STACK_EVS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # the synthetic exposure sequence of every reference
STACK_WHITE_AT = 2.0  # clip_highlights: a channel at twice saturation is white


def exposure_stack(
    photo: np.ndarray, curve: ToneCurve, evs: tuple[float, ...] = STACK_EVS
) -> np.ndarray:
    """(H, W, 3) display [0, 1] -> (K, H, W, 3) float32: the scene exposed at each of `evs` stops through
    `curve`, highlights clipped; clean (no noise, no quantization). EV 0 returns the photo within 1e-4."""
    linear = curve.inverse(photo)
    frames = [curve.forward(clip_highlights(linear * np.float32(2.0**ev), STACK_WHITE_AT)) for ev in evs]
    return np.stack(frames).astype(np.float32)


def fuse_stack(stack: np.ndarray) -> np.ndarray:
    """(K, H, W, 3) display frames in [0, 1] -> (H, W, 3) float32 Mertens fusion, clipped to [0, 1]."""
    import torch

    from xfix.fusion import mertens_fusion
    from xfix.pyramid import max_levels

    images = torch.from_numpy(np.ascontiguousarray(stack)).permute(0, 3, 1, 2)  # (K, 3, H, W)
    fused = mertens_fusion(images, max_levels(*images.shape[-2:]))  # (1, 3, H, W)
    return fused[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy().astype(np.float32)


def fused_reference(photo: np.ndarray, curve: ToneCurve, evs: tuple[float, ...] = STACK_EVS) -> np.ndarray:
    """The SICE target of a photo: the fusion of its synthetic exposure stack, (H, W, 3) float32 [0, 1]."""
    return fuse_stack(exposure_stack(photo, curve, evs))


def sice_pair(
    photo: np.ndarray, rng: np.random.Generator, encoding: str, ev_range: tuple[float, float] = (-3.0, 3.0)
) -> tuple[np.ndarray, np.ndarray]:
    """A training pair (degraded frame, fused reference), both (H, W, 3) float32 display sRGB [0, 1].

    The `pairs` hook of the sice architecture (train.py calls it with a random crop); one camera curve per
    pair, shared by the input and the reference stack, so they differ only by exposure and fusion."""
    if encoding != "srgb":
        raise ValueError(f"sice pairs are display-referred; got encoding {encoding!r}, valid: srgb")
    photo = np.asarray(photo, dtype=np.float32)
    curve = draw_curve(rng)
    target = fused_reference(photo, curve)
    inp = render_exposure(photo, draw_ev(rng, ev_range), rng, curve=curve)
    return inp, target
