"""Over-exposure for the `highlights` profile: the seed's simple clipping, its trivial inverse, and the mix of
training pairs (Le Jeune 2019, "Exposure correction with adversarial networks").

All functions take and return display sRGB (H, W, 3) float32 in [0, 1]; random choices come from the numpy
Generator passed in.
"""

from __future__ import annotations

import numpy as np

GAMMA, THRESHOLD = 1 / 2.2, 0.5  # the seed's simple simulation
SHARES = {"well": 0.2, "under": 0.1, "simple": 0.2}  # of training pairs; the rest: realistic over-exposure
OVER_EV = (0.5, 3.0)  # realistic over-exposure, stops
SIMPLE_THRESHOLDS = (0.5, 0.9)  # drawn uniformly; the seed's 0.5 is the hardest


def simple_overexpose(photo: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """The seed's simulation: clip at `threshold` in gamma space.

    Display values are gamma-space light (linear ** GAMMA); scaling them by 1 / threshold and clipping at 1 is
    an over-exposure of threshold ** (-1 / GAMMA) in linear light (x4.6, +2.2 EV for the seed's 0.5).
    Known value: 0.25 -> 0.5, and everything at or above 0.5 -> 1."""
    return np.minimum(np.asarray(photo, dtype=np.float32) / np.float32(threshold), np.float32(1.0))


def trivial_inverse(image: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """The seed's baseline: undo `simple_overexpose` where it is invertible (below 1); a clipped value maps to
    the threshold, the least the true value can have been. Known value: 0.5 -> 0.25, 1 -> 0.5."""
    return np.asarray(image, dtype=np.float32) * np.float32(threshold)


def highlight_pair(
    photo: np.ndarray, rng: np.random.Generator, encoding: str, ev_range: tuple[float, float] = OVER_EV,
    well_share: float = SHARES["well"],
) -> tuple[np.ndarray, np.ndarray]:
    """A training pair (input, target), display sRGB (H, W, 3) float32, one of (shares in SHARES, the "well"
    share replaced by `well_share` and the realistic over-exposures taking what is left):
    - well: a nearly well-exposed rendering (+-0.15 EV) of the photo -> the photo;
    - under: an under-exposed rendering (-2 to -0.5 EV) -> itself: this profile is for bright shoots and
      must leave dark ones alone;
    - simple: the seed's clipping at a threshold in SIMPLE_THRESHOLDS -> the photo;
    - otherwise realistic over-exposure (xfix.data.synthesis: EV in OVER_EV, random camera curve, sensor
      noise, desaturating clip, JPEG) -> the photo.
    `ev_range` (the training loop's) is ignored: the ranges above are this profile's."""
    from xfix.data.curves import draw_curve
    from xfix.data.synthesis import render_exposure

    if encoding != "srgb":
        raise ValueError(f"highlights pairs are display sRGB, not {encoding!r}")
    photo = np.asarray(photo, dtype=np.float32)
    kind = rng.random()
    if kind < well_share:
        return render_exposure(photo, float(rng.uniform(-0.15, 0.15)), rng, curve=draw_curve(rng)), photo
    kind -= well_share
    if kind < SHARES["under"]:
        dark = render_exposure(photo, float(rng.uniform(-2.0, -0.5)), rng, curve=draw_curve(rng))
        return dark, dark
    kind -= SHARES["under"]
    if kind < SHARES["simple"]:
        return simple_overexpose(photo, float(rng.uniform(*SIMPLE_THRESHOLDS))), photo
    return render_exposure(photo, float(rng.uniform(*OVER_EV)), rng, curve=draw_curve(rng)), photo
