"""Measuring HDR reconstruction: log-domain PSNR over saturated pixels, PU21 PSNR, and temporal instability.

Protocol (issue 6): a held-out HDR scene is exposed so that a given fraction of its pixels saturates, rendered
to 8 bits through the sRGB curve (no noise, no JPEG), and reconstructed; the naive baseline is the inverse
curve alone (what an untrained hdrcnn returns). Before comparing, each output is matched in exposure to the
target by the median log ratio over the unsaturated pixels (a no-op when the scale is right, as it is here).

- log PSNR (saturated): 10 log10(R^2 / MSE) of log10(max(x, 1e-4)) over the pixels where the input has a
  channel at 255; R is the target's log10 range over the whole image (same R for every method, so the
  difference between methods does not depend on it).
- PU21 PSNR: linear 1 (the camera's white) is placed at 100 cd/m^2, each channel PU21-encoded
  (Mantiuk & Azimi 2021, banding+glare), peak PU21(10000 cd/m^2), over the whole image.
- Best gain (a reference, not a method): the naive output with its saturated pixels multiplied by the one
  gain that scores best, chosen knowing the target. It bounds what a method that only brightens the clipped
  areas as a whole could reach, and shows how much of a scene's error is in the shape of its highlights.
- Temporal instability of a pan: mean |log O_{t+1}(p + v) - log O_t(p)| over frames, the shift v undone
  exactly (frames are rendered at sub-pixel offsets, then the next frame is moved back by bilinear
  interpolation), over the pixels saturated in frame t, for the ground truth and for each method.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from xfix.data.curves import tone_curve
from xfix.data.hdr import exposure_for, model_input, virtual_camera

FLOOR = 1e-4
PU21_BANDING_GLARE = (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627, 0.09150303166, 0.9099517204,
                      596.3148142)  # fmt: skip
WHITE_NITS = 100.0


def pu21(nits: np.ndarray) -> np.ndarray:
    """Absolute luminance (cd/m^2, clipped to [0.005, 10000]) -> PU21 units. Known value: 100 -> about 256."""
    p = PU21_BANDING_GLARE
    y = np.clip(nits, 0.005, 10000.0) ** p[3]
    return p[6] * (((p[0] + p[1] * y) / (1.0 + p[2] * y)) ** p[4] - p[5])


def match_exposure(output: np.ndarray, target: np.ndarray, unsaturated: np.ndarray) -> np.ndarray:
    """`output` scaled by the median of target / output (in logs) over `unsaturated` (H, W) pixels."""
    o, t = output[unsaturated], target[unsaturated]
    valid = (o > FLOOR) & (t > FLOOR)
    if not valid.any():
        return output
    return output * np.float32(np.exp(np.median(np.log(t[valid]) - np.log(o[valid]))))


def log_psnr(output: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of log10 values over `mask` (H, W); peak = the target's log10 range over the image."""
    lt, lo = np.log10(np.maximum(target, FLOOR)), np.log10(np.maximum(output, FLOOR))
    if not mask.any():
        return float("nan")
    mse = float(np.mean((lt[mask] - lo[mask]) ** 2))
    peak = float(lt.max() - lt.min())
    return 10.0 * np.log10(peak**2 / max(mse, 1e-12))


def pu_psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) of PU21-encoded values over the whole image, linear 1 at WHITE_NITS."""
    a, b = pu21(output * WHITE_NITS), pu21(target * WHITE_NITS)
    mse = float(np.mean((a - b) ** 2))
    return 10.0 * np.log10(float(pu21(np.array(10000.0))) ** 2 / max(mse, 1e-12))


Method = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) linear LDR -> (H, W, 3) linear HDR
BEST_GAIN = "best-gain"
GAINS = np.exp(np.linspace(0.0, np.log(20.0), 61)).astype(np.float32)  # 1 to 20, 5% apart


def naive(linear: np.ndarray) -> np.ndarray:
    """The baseline: the inverse camera curve, nothing reconstructed."""
    return linear


def best_gain(linear: np.ndarray, target: np.ndarray, saturated: np.ndarray) -> tuple[float, np.ndarray]:
    """(gain, output): `linear` with its `saturated` (H, W) pixels multiplied by the gain of GAINS that gives
    the best log PSNR against `target` there."""
    scores = [log_psnr(linear * gain, target, saturated) for gain in GAINS]
    gain = float(GAINS[int(np.nanargmax(scores))])
    return gain, np.where(saturated[..., None], linear * np.float32(gain), linear)


def evaluate_scene(scene: np.ndarray, methods: dict[str, Method],
                   fractions: Sequence[float] = (0.02, 0.05, 0.10)) -> list[dict]:
    """One row per (fraction, method): log PSNR over saturated pixels and PU21 PSNR of the whole image; one
    more row per fraction for the BEST_GAIN reference."""
    rows = []
    curve = tone_curve("srgb")
    for fraction in fractions:
        capture = virtual_camera(scene, np.random.default_rng(0), fraction=fraction, curve=curve, noise=False)
        saturated = capture.display.max(axis=2) >= 255
        linear = model_input(capture.display)
        outputs = {name: match_exposure(method(linear), capture.target, ~saturated)
                   for name, method in methods.items()}
        outputs[BEST_GAIN] = best_gain(linear, capture.target, saturated)[1]
        for name, output in outputs.items():
            rows.append({"fraction": fraction, "method": name, "saturated_share": float(saturated.mean()),
                         "log_psnr_saturated": log_psnr(output, capture.target, saturated),
                         "pu21_psnr": pu_psnr(output, capture.target)})
    return rows


# ---------------------------------------------------------------- video: a synthetic pan


def pan_origin(scene: np.ndarray, size: tuple[int, int], travel: tuple[float, float]) -> tuple[int, int]:
    """Top-left (x, y) of a window of `size` (h, w) centred on the scene's brightest area, with room to move
    `travel` (x, y) px inside the scene."""
    import cv2

    h, w = size
    peak = cv2.blur(scene.max(axis=2), (31, 31))
    y, x = np.unravel_index(int(np.argmax(peak)), peak.shape)
    x0 = int(np.clip(x - w // 2 - travel[0] / 2, 0, max(0, scene.shape[1] - w - travel[0] - 1)))
    y0 = int(np.clip(y - h // 2 - travel[1] / 2, 0, max(0, scene.shape[0] - h - travel[1] - 1)))
    return x0, y0


def pan_frames(scene: np.ndarray, count: int = 32, size: tuple[int, int] = (256, 384),
               velocity: tuple[float, float] = (1.37, 0.41)) -> list[np.ndarray]:
    """`count` (h, w, 3) crops of `scene` moving `velocity` px/frame (x, y), sub-pixel, bilinear; the first
    is centred on the brightest area (`pan_origin`)."""
    import cv2

    h, w = size
    x0, y0 = pan_origin(scene, size, (count * velocity[0], count * velocity[1]))
    frames = []
    for t in range(count):
        shift = np.float32([[1, 0, -x0 - t * velocity[0]], [0, 1, -y0 - t * velocity[1]]])
        frames.append(cv2.warpAffine(scene, shift, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))  # fmt: skip
    return frames


def instability(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], velocity: tuple[float, float],
                margin: int = 8) -> float:
    """Mean |log O_{t+1} moved back by `velocity` - log O_t| over the pixels of masks[t] (interior only)."""
    import cv2

    back = np.float32([[1, 0, velocity[0]], [0, 1, velocity[1]]])
    total, count = 0.0, 0
    for t in range(len(frames) - 1):
        h, w = frames[t].shape[:2]
        following = cv2.warpAffine(np.log(np.maximum(frames[t + 1], FLOOR)), back, (w, h),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        diff = np.abs(following - np.log(np.maximum(frames[t], FLOOR)))[margin:-margin, margin:-margin]
        mask = masks[t][margin:-margin, margin:-margin]
        total += float(diff[mask].sum())
        count += int(mask.sum()) * 3
    return total / max(count, 1)


def evaluate_pan(scene: np.ndarray, methods: dict[str, Method], *, count: int = 32, fraction: float = 0.05,
                 size: tuple[int, int] = (256, 384), velocity: tuple[float, float] = (1.37, 0.41)) -> dict:
    """Temporal instability of the ground truth and of each method on a pan across `scene`."""
    exposed = scene * np.float32(exposure_for(scene, fraction))
    targets = pan_frames(exposed, count, size, velocity)
    curve = tone_curve("srgb")
    # one exposure for the whole pan (a per-frame exposure would change the brightness of every frame)
    displays = [np.round(curve.forward(np.clip(t, 0, 1)) * 255).astype(np.uint8) for t in targets]
    masks = [d.max(axis=2) >= 255 for d in displays]
    result = {"frames": count, "saturated_share": float(np.mean([m.mean() for m in masks])),
              "ground_truth": instability(targets, masks, velocity)}
    for name, method in methods.items():
        result[name] = instability([method(model_input(d)) for d in displays], masks, velocity)
    return result
