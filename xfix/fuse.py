"""Exposure fusion of a bracket (the pixels of `xfix fuse`): order, align, deghost, blend.

Frames are display sRGB float32 (H, W, 3) in [0, 1], all of one size. Steps:
- order: darkest to brightest, by EXIF exposure (time x ISO / f-number**2) when every frame records it, else
  by mean brightness; the middle of that order is the reference frame (and the EXIF source).
- align (optional): translation of each frame onto the reference by median threshold bitmaps (Ward 2003,
  OpenCV's AlignMTB), which do not depend on exposure; small hand-held shifts (up to 2**alignment_bits
  pixels).
- deghost (optional): where a frame disagrees with the reference after mapping the reference's tones onto that
  frame's (histogram matching), something moved; that frame's weight goes to zero there, so the fusion keeps
  the reference's content.
- blend: Mertens et al. (2007) weights (contrast, saturation, well-exposedness) times the ghost weights,
  blended over Laplacian pyramids (`xfix.fusion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

GHOST_SIGMA = 0.08  # grey disagreement (after tone mapping) at which a frame keeps exp(-1/2) of its weight
GHOST_BLUR = 2.0  # Gaussian sigma (px) on the greys before comparing: misregistration at edges is not motion
GHOST_GROW = 7  # the ghost mask is grown by a min filter of this size, so a moving object's rim goes too
CLIPPED = (0.02, 0.98)  # a reference grey outside this range cannot predict the other frames: no ghost test


@dataclass(frozen=True)
class FusionResult:
    """The fused image (H, W, 3) float32 [0, 1] display sRGB, the exposure order (indices of the input frames,
    darkest first), the reference frame (an input index), each frame's (dx, dy) shift, and the share of each
    frame's pixels that deghosting removed."""

    image: np.ndarray
    order: tuple[int, ...]
    reference: int
    shifts: tuple[tuple[int, int], ...] = ()
    ghosted: tuple[float, ...] = field(default_factory=tuple)


def exposure_order(
    frames: Sequence[np.ndarray], exposures: Sequence[float | None] | None = None
) -> list[int]:
    """Frame indices darkest first: by `exposures` (relative exposure, e.g. time x ISO / N**2) when every
    frame has one, else by mean value. Ties keep input order. Known value: means (0.5, 0.2, 0.8) ->
    [1, 0, 2]."""
    if exposures is not None and len(exposures) == len(frames) and all(e is not None for e in exposures):
        keys = [float(e) for e in exposures]
    else:
        keys = [float(np.mean(f)) for f in frames]
    return sorted(range(len(frames)), key=lambda i: keys[i])


def _grey8(frame: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frame.mean(axis=2), 0.0, 1.0) * 255.0).astype(np.uint8)


def alignment_bits(height: int, width: int) -> int:
    """Pyramid depth of the bitmap alignment: the coarsest level keeps >= 64 px on the short side (a smaller
    one, mostly clipped in a bright frame, can lock onto a false shift), at most 6. Known value: 720 -> 3."""
    return int(np.clip(np.floor(np.log2(max(min(height, width), 1) / 64)), 1, 6))


def estimate_shift(reference: np.ndarray, frame: np.ndarray, max_bits: int | None = None) -> tuple[int, int]:
    """(dx, dy) in pixels that moves `frame` onto `reference` (both (H, W, 3) display), by median threshold
    bitmaps, which are the same for any exposure of a scene; |dx|, |dy| < 2**max_bits (default
    `alignment_bits` of the size: 8 px at 720 px, 32 px at 4000 px)."""
    import cv2

    max_bits = alignment_bits(*reference.shape[:2]) if max_bits is None else max_bits
    mtb = cv2.createAlignMTB(max_bits, 4, True)  # max_bits, exclude_range, cut
    dx, dy = mtb.calculateShift(_grey8(reference), _grey8(frame))
    return int(dx), int(dy)


def shift_image(frame: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """(H, W, C) float32 translated by (dx, dy) pixels (content moves right and down for positive values);
    the uncovered border repeats the nearest pixels."""
    if dx == 0 and dy == 0:
        return frame
    import cv2

    h, w = frame.shape[:2]
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def tone_mapping(source: np.ndarray, target: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Monotone map from `source` values to `target` values of the same scene at the same pixels: (xs, ys) for
    np.interp, the median target value of each source bin (a moving object is a minority in most bins, so it
    does not bend the map as it would a histogram match), made non-decreasing. Known value: target =
    source**2 gives ys ~= xs**2."""
    source, target = np.ravel(source), np.ravel(target)
    index = np.clip((source * bins).astype(np.int64), 0, bins - 1)
    xs, ys = [], []
    for b in range(bins):
        chosen = index == b
        if chosen.sum() >= 4:
            xs.append(float(np.median(source[chosen])))
            ys.append(float(np.median(target[chosen])))
    if not xs:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    return np.asarray(xs), np.maximum.accumulate(np.asarray(ys))


def ghost_weights(frames: Sequence[np.ndarray], reference: int, sigma: float = GHOST_SIGMA) -> np.ndarray:
    """(K, H, W) float32 in [0, 1]: 1 where a frame agrees with the reference (after mapping the reference's
    tones onto it), towards 0 where it does not (a moving object); the reference itself is 1 everywhere, as
    is every pixel where the reference is clipped or black and so cannot tell."""
    import cv2

    def grey(f: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(f.mean(axis=2).astype(np.float32), (0, 0), GHOST_BLUR)

    ref = grey(frames[reference])
    usable = (ref > CLIPPED[0]) & (ref < CLIPPED[1])
    kernel = np.ones((GHOST_GROW, GHOST_GROW), np.uint8)
    weights = np.ones((len(frames), *ref.shape), np.float32)
    for k, frame in enumerate(frames):
        if k == reference:
            continue
        g = grey(frame)
        xs, ys = tone_mapping(ref[usable], g[usable])
        predicted = np.interp(ref, xs, ys).astype(np.float32)
        agree = np.exp(-0.5 * ((g - predicted) / sigma) ** 2).astype(np.float32)
        agree[~usable] = 1.0
        weights[k] = cv2.erode(agree, kernel)  # min filter: the ghost region grows by GHOST_GROW // 2
    return weights


def fuse(
    frames: Sequence[np.ndarray],
    *,
    exposures: Sequence[float | None] | None = None,
    align: bool = True,
    deghost: bool = True,
    max_bits: int | None = None,
) -> FusionResult:
    """Fuse a bracket of K >= 2 display frames (H, W, 3) float32 [0, 1] into one (see the module doc)."""
    import torch

    from xfix.fusion import mertens_weights, pyramid_blend
    from xfix.pyramid import max_levels

    if len(frames) < 2:
        raise ValueError(f"a bracket needs at least 2 frames, got {len(frames)}")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1 or frames[0].ndim != 3 or frames[0].shape[2] != 3:
        raise ValueError(f"bracket frames must be (H, W, 3) of one size, got {sorted(shapes)}")
    order = exposure_order(frames, exposures)
    reference = order[len(order) // 2]
    frames = [np.clip(np.asarray(f, dtype=np.float32), 0.0, 1.0) for f in frames]
    shifts = [(0, 0)] * len(frames)
    if align:
        shifts = [(0, 0) if k == reference else estimate_shift(frames[reference], f, max_bits)
                  for k, f in enumerate(frames)]
        frames = [shift_image(f, dx, dy) for f, (dx, dy) in zip(frames, shifts, strict=True)]
    images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # (K, 3, H, W)
    weights = mertens_weights(images)  # (K, 1, H, W)
    ghosted = [0.0] * len(frames)
    if deghost:
        ghost = ghost_weights(frames, reference)  # (K, H, W)
        ghosted = [float((g < 0.5).mean()) for g in ghost]
        # the floor keeps a pixel that no frame exposes well on the reference rather than on the ghosts
        weights = (weights + 1e-8) * torch.from_numpy(ghost)[:, None]
    fused = pyramid_blend(images, weights, max_levels(*images.shape[-2:]))  # (1, 3, H, W)
    image = fused[0].permute(1, 2, 0).clamp(0.0, 1.0).contiguous().numpy()
    return FusionResult(image, tuple(order), reference, tuple(shifts), tuple(ghosted))
