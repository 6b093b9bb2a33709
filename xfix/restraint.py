"""Leaving well-exposed photos alone (a profile's `leave_alone`, `xfix correct --leave-alone`).

From one frame a model cannot tell a bright scene from an over-exposed one, and its judgement of the intended
brightness is off by a fraction of a stop even on a photo that needs nothing (models/msec.md measures it). On
a good photo that error is all the model adds. So a correction is weighed by how far it moves the photo's mean
brightness: weight 1 - exp(-(change / stops)^4) keeps a correction of twice `stops` whole (0.99999) and
fades one of half `stops` to 6%; between the two it rises smoothly, so no threshold splits a shoot into
corrected and untouched frames.

A profile may also limit brightening to the photo's highlight headroom (`brighten_limit`): a well-exposed
photo's brightest pixels are already near white, so it has no room to brighten without clipping, while an
under-exposed one has as many stops of room as it lacks. A correction that would brighten the mean by more
than that room (plus `brighten_limit` stops) keeps only the share that fits. A model that misjudges a good
photo as dark is so held back; one that brightens a dark photo too far is too (models/whitebox.md measures
both).

A profile may also ask a second model for its opinion (`second_opinion`, another profile's name). The fade
then weighs only the part of the correction both models agree on: the smaller of their two brightness
changes when they move the same way, none when one brightens and the other darkens. Two independently
trained models rarely misjudge the same good photo the same way, while a badly exposed one is plain to both
(models/whitebox.md measures it).

Both routes of a profile measure the change on the same pixels, the model's input and output at the size
the model ran at (a strided sample of large images), so they weigh a photo alike.
"""

from __future__ import annotations

import math

import numpy as np

from xfix.colour import RGB_SPACES, decode_transfer, luminance

_SAMPLE_SIDE = 512  # brightness is measured on at most about this many pixels along the long side
_DARKEST = 1e-4  # linear mean below which a photo counts as black (no meaningful ratio)
HIGHLIGHT_QUANTILE = 0.99  # the brightest 1% of pixels (of their largest channel) ...
HIGHLIGHT_TARGET = 0.9  # ... may reach this linear value when brightening (classic's highlight_target)


def sample_step(shape: tuple[int, ...]) -> int:
    """Stride of the sample that `brightness_change` takes of an image of this (H, W, ...) shape."""
    return max(1, math.ceil(max(shape[:2]) / _SAMPLE_SIDE))


def _linear_sample(image: np.ndarray, encoding: str) -> np.ndarray:
    """The `sample_step` sample of (H, W, 3) pixels in `encoding`, as linear light (display encodings clipped
    to [0, 1] first)."""
    step = sample_step(image.shape)
    sample = np.asarray(image[::step, ::step], np.float32)
    if RGB_SPACES[encoding].transfer != "linear":
        sample = np.clip(sample, 0.0, 1.0)
    return decode_transfer(sample, encoding)


def mean_luminance(image: np.ndarray, encoding: str) -> float:
    """Mean relative luminance of (H, W, 3) pixels encoded in `encoding` (display encodings clipped to [0, 1])."""
    return float(np.mean(luminance(_linear_sample(image, encoding), encoding)))


def brightness_change(before: np.ndarray, after: np.ndarray, encoding: str) -> float:
    """Stops by which `after` is brighter than `before` (negative: darker), both (H, W, 3) in `encoding`."""
    ratio = max(mean_luminance(after, encoding), _DARKEST) / max(mean_luminance(before, encoding), _DARKEST)
    return math.log2(ratio)


def highlight_headroom(image: np.ndarray, encoding: str) -> float:
    """Stops by which (H, W, 3) pixels in `encoding` can brighten before the 99th percentile of their largest
    channel, in linear light, reaches HIGHLIGHT_TARGET (negative: it is already beyond)."""
    peak = _linear_sample(image, encoding).max(axis=-1)
    return math.log2(HIGHLIGHT_TARGET / max(float(np.quantile(peak, HIGHLIGHT_QUANTILE)), _DARKEST))


def headroom_weight(change: float, headroom: float, limit: float | None) -> float:
    """The share of a correction that brightens the mean by `change` stops that fits within `headroom` +
    `limit` stops; 1 for darkening, when it fits, when `limit` is None (off) or the change is not a number."""
    if limit is None or not math.isfinite(change) or change <= 0:
        return 1.0
    room = max(0.0, headroom + limit)
    return min(1.0, room / change)


def agreed_change(change: float, second: float) -> float:
    """The part of a `change` (stops) that a second model's `second` (stops) agrees with: the smaller of the
    two when both move the same way, 0 when they move opposite ways; `change` when either is not a number."""
    if not (math.isfinite(change) and math.isfinite(second)):
        return change
    if change * second <= 0:
        return 0.0
    return math.copysign(min(abs(change), abs(second)), change)


def restraint_weight(change: float, stops: float) -> float:
    """The share of a correction that moves the mean brightness by `change` stops to keep; 1 when `stops`
    is 0 (off) or the change is not a number (a broken output is passed on whole, for the encoder to report)."""
    if stops <= 0 or not math.isfinite(change):
        return 1.0
    return 1.0 - math.exp(-((change / stops) ** 4))


def describe(
    weight: float, change: float, limited: bool = False, second: tuple[str, float] | None = None
) -> str | None:
    """A note for the per-file report when the weight faded a correction noticeably, else None; `limited`:
    the highlight headroom (`brighten_limit`) set the weight rather than the fade; `second`: the second
    opinion's profile name and brightness change."""
    if weight >= 0.995:
        return None
    if limited:
        return (f"limited to the highlights' headroom: kept {weight:.0%} of a {change:+.2f}-stop brightening"
                " (brighten_limit)")
    opinion = f"; {second[0]} judged {second[1]:+.2f}" if second else ""
    return (f"judged well exposed: kept {weight:.0%} of a {change:+.2f}-stop correction"
            f" (--leave-alone{opinion})")
