"""Leaving well-exposed photos alone (a profile's `leave_alone`, `xfix correct --leave-alone`).

From one frame a model cannot tell a bright scene from an over-exposed one, and its judgement of the intended
brightness is off by a fraction of a stop even on a photo that needs nothing (models/msec.md measures it). On
a good photo that error is all the model adds. So a correction is weighed by how far it moves the photo's mean
brightness: weight 1 - exp(-(change / stops)^4) keeps a correction of twice `stops` whole (0.99999) and
fades one of half `stops` to 6%; between the two it rises smoothly, so no threshold splits a shoot into
corrected and untouched frames.

Both routes of a profile measure the change on the same pixels, the model's input and output at the size
the model ran at (a strided sample of large images), so they weigh a photo alike.
"""

from __future__ import annotations

import math

import numpy as np

from xfix.colour import RGB_SPACES, decode_transfer, luminance

_SAMPLE_SIDE = 512  # brightness is measured on at most about this many pixels along the long side
_DARKEST = 1e-4  # linear mean below which a photo counts as black (no meaningful ratio)


def sample_step(shape: tuple[int, ...]) -> int:
    """Stride of the sample that `brightness_change` takes of an image of this (H, W, ...) shape."""
    return max(1, math.ceil(max(shape[:2]) / _SAMPLE_SIDE))


def mean_luminance(image: np.ndarray, encoding: str) -> float:
    """Mean relative luminance of (H, W, 3) pixels encoded in `encoding` (display encodings clipped to [0, 1])."""
    step = sample_step(image.shape)
    sample = np.asarray(image[::step, ::step], np.float32)
    if RGB_SPACES[encoding].transfer != "linear":
        sample = np.clip(sample, 0.0, 1.0)
    return float(np.mean(luminance(decode_transfer(sample, encoding), encoding)))


def brightness_change(before: np.ndarray, after: np.ndarray, encoding: str) -> float:
    """Stops by which `after` is brighter than `before` (negative: darker), both (H, W, 3) in `encoding`."""
    ratio = max(mean_luminance(after, encoding), _DARKEST) / max(mean_luminance(before, encoding), _DARKEST)
    return math.log2(ratio)


def restraint_weight(change: float, stops: float) -> float:
    """The share of a correction that moves the mean brightness by `change` stops to keep; 1 when `stops`
    is 0 (off) or the change is not a number (a broken output is passed on whole, for the encoder to report)."""
    if stops <= 0 or not math.isfinite(change):
        return 1.0
    return 1.0 - math.exp(-((change / stops) ** 4))


def describe(weight: float, change: float) -> str | None:
    """A note for the per-file report when the weight faded a correction noticeably, else None."""
    if weight >= 0.995:
        return None
    return f"judged well exposed: kept {weight:.0%} of a {change:+.2f}-stop correction (--leave-alone)"
