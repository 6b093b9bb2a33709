"""Training and evaluation data for HDR reconstruction: HDR scenes, and a virtual camera that clips them.

Two sources of scene-linear light, as in Eilertsen et al. 2017: real HDR images (OpenEXR files), and ordinary
photos read as linear light (HDR simulated by exposing them so that part of the photo clips). A patch is
exposed so that a random 2-10% of its pixels reach sensor saturation (1.0), gets sensor noise, is clipped per
channel, rendered through a camera curve (sRGB half the time, else a random one from `xfix.data.curves`),
quantized to 8 bits and optionally JPEG-compressed. The model's input is that 8-bit image linearized with the
sRGB decoding (what `xfix hdr` does to a file); the target is the exposed, unclipped light.

A few real scenes are held out by name (HOLDOUT) and never trained on; they are the benchmark's test set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from xfix.colour import srgb_decode
from xfix.data.curves import ToneCurve, draw_curve, tone_curve
from xfix.data.synthesis import draw_noise, jpeg_roundtrip, quantize8

HOLDOUT = ("CandleGlass", "GoldenGate", "MtTamWest", "StillLife")  # scene names; never trained on
CLIP_FRACTION = (0.02, 0.10)
JPEG_QUALITY = (40, 95)
_SRGB = tone_curve("srgb")


def scene_name(path: Path | str) -> str:
    """'openexr-images__CrissyField.rgb.exr' -> 'CrissyField' (collection prefix and '.rgb' dropped)."""
    stem = Path(path).name.split("__")[-1]
    return re.sub(r"(\.rgb)?\.exr$", "", stem, flags=re.IGNORECASE)


def list_hdr(folder: Path) -> list[Path]:
    """One EXR per scene in `folder`, sorted by scene: an RGB file is preferred to a luminance/chroma one."""
    from xfix.errors import InputError

    files = sorted(Path(folder).glob("*.exr"))
    if not files:
        raise InputError("no .exr files in folder", folder)
    chosen: dict[str, Path] = {}
    for path in files:
        name = scene_name(path)
        if name not in chosen or path.name.lower().endswith(".rgb.exr"):
            chosen[name] = path
    return [chosen[name] for name in sorted(chosen)]


def split_hdr(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(train, held out) by scene name."""
    held = [scene_name(p) in HOLDOUT for p in paths]
    return [p for p, h in zip(paths, held) if not h], [p for p, h in zip(paths, held) if h]


def load_hdr(path: Path, max_side: int | None = None) -> np.ndarray:
    """(H, W, 3) float32 linear Rec.709, non-negative, long side at most `max_side` (area filter)."""
    from xfix.data.dataset import resize_long_side
    from xfix.exr import read_exr

    pixels, _ = read_exr(path)
    return resize_long_side(np.maximum(pixels, 0.0), max_side)


def exposure_for(linear: np.ndarray, fraction: float) -> float:
    """The gain that makes `fraction` of the pixels' brightest channel reach 1 (sensor saturation)."""
    peak = linear.max(axis=2)
    level = float(np.quantile(peak, 1.0 - fraction))
    return 1.0 / max(level, 1e-6)


@dataclass(frozen=True)
class Capture:
    """What the virtual camera made: `display` (H, W, 3) uint8 file values, `target` the exposed light."""

    display: np.ndarray
    target: np.ndarray
    exposure: float


def virtual_camera(scene: np.ndarray, rng: np.random.Generator, *, fraction: float | None = None,
                   exposure: float | None = None, curve: ToneCurve | None = None, noise: bool = True,
                   jpeg_quality: int | None = None) -> Capture:
    """Expose `scene` (H, W, 3) linear by `exposure`, or else so that `fraction` (default: random in
    CLIP_FRACTION) of its pixels clip; then noise, per-channel clip, camera `curve` (default: sRGB or random),
    8 bits, optional JPEG."""
    if exposure is None:
        fraction = float(rng.uniform(*CLIP_FRACTION)) if fraction is None else fraction
        exposure = exposure_for(scene, fraction)
    target = (scene * np.float32(exposure)).astype(np.float32)
    sensor = draw_noise(rng).apply(np.minimum(target, 2.0), rng) if noise else target
    if curve is None:
        curve = _SRGB if rng.random() < 0.5 else draw_curve(rng)
    display = quantize8(curve.forward(np.clip(sensor, 0.0, 1.0)))
    if jpeg_quality is not None:
        display = jpeg_roundtrip(display, jpeg_quality)
    return Capture(display, target, exposure)


def model_input(display: np.ndarray) -> np.ndarray:
    """uint8 file values -> what the linearize stage gives for them: linear, sRGB decoding, float32."""
    return srgb_decode(display.astype(np.float32) / 255.0).astype(np.float32)


def random_patch(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size float32 patch at a random scale (half to all of the short side), maybe mirrored."""
    import cv2

    h, w = image.shape[:2]
    short = min(h, w)
    window = int(round(rng.uniform(max(min(size, short), short * 0.5), short))) if short > size else short
    y, x = int(rng.integers(0, h - window + 1)), int(rng.integers(0, w - window + 1))
    patch = np.asarray(image[y : y + window, x : x + window], np.float32)
    if window != size:
        interpolation = cv2.INTER_AREA if window > size else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (size, size), interpolation=interpolation)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)


class HdrBatches:
    """Training batches ((B, 3, P, P) linear LDR inputs, (B, 3, P, P) HDR targets) from real HDR scenes and
    photos (uint8/uint16 display sRGB, as `dataset.load_photos` gives). `photo_share` of the patches come from
    photos; `jpeg_probability` of the inputs are JPEG-compressed.

    A real scene is exposed as a whole (2-10% of the scene's pixels clip, as in the benchmark), so a patch may
    hold a large clipped area or a small one; a patch is redrawn (up to 4 times) while under 1% of it clips.
    A photo holds no light above its white, so a photo patch is exposed on its own."""

    def __init__(self, scenes: Sequence[np.ndarray], photos: Sequence[np.ndarray], *, patch: int, batch: int,
                 photo_share: float = 0.5, jpeg_probability: float = 0.0):
        if not scenes and not photos:
            raise ValueError("HdrBatches needs HDR scenes or photos")
        self.scenes, self.photos, self.patch, self.batch = list(scenes), list(photos), patch, batch
        self.photo_share = photo_share if scenes and photos else (1.0 if photos else 0.0)
        self.jpeg_probability = jpeg_probability
        self.peaks = [np.sort(s[::4, ::4].max(axis=2).ravel()) for s in self.scenes]  # for scene exposures

    def _scene_patch(self, rng: np.random.Generator) -> tuple[np.ndarray, float | None]:
        """(patch, exposure): a photo patch (exposure None: its own), or an exposed patch of a real scene."""
        from xfix.colour import to_float

        if rng.random() < self.photo_share:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            return srgb_decode(random_patch(to_float(photo), self.patch, rng)).astype(np.float32), None
        index = int(rng.integers(len(self.scenes)))
        peaks = self.peaks[index]
        level = peaks[min(len(peaks) - 1, int(len(peaks) * (1.0 - rng.uniform(*CLIP_FRACTION))))]
        for _ in range(4):
            patch = random_patch(self.scenes[index], self.patch, rng) / np.float32(max(level, 1e-6))
            if (patch.max(axis=2) >= 1.0).mean() >= 0.01:
                break
        return patch, 1.0

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        scene, exposure = self._scene_patch(rng)
        quality = None
        if rng.random() < self.jpeg_probability:
            quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        capture = virtual_camera(scene, rng, exposure=exposure, noise=rng.random() < 0.5, jpeg_quality=quality)
        return model_input(capture.display), capture.target

    def make(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.pair(rng) for _ in range(self.batch)]
        inputs = np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)
        targets = np.stack([p[1] for p in pairs]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)
