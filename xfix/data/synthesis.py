"""Badly exposed inputs synthesized from well-exposed photos.

A photo (display sRGB, float32 (H, W, 3) in [0, 1]) is the target. It is read as a scene rendered through a
camera curve: invert the curve to scene-linear light, scale by 2**EV, add shot and read noise, clip the way a
sensor and raw converter do (highlights go to white), render through the same curve, quantize to 8 bit and
JPEG-compress.
Input and target then differ by exposure only, as two real captures of one scene do.

Every random choice comes from the numpy Generator passed in, so a seed fixes the pair.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from xfix.colour import convert_linear
from xfix.data.curves import ToneCurve, draw_curve

MSEC_LEVELS = (-1.5, -1.0, 0.0, 1.0, 1.5)  # the evaluation exposures of Afifi et al. 2021
JPEG_PROBABILITY = 0.85
JPEG_QUALITY = (70, 98)  # inclusive
# A share of pairs is (nearly) well exposed: a model that never sees a good photo as input learns to move every
# photo towards an average brightness, and the photographer's good frames are the ones it must leave alone.
WELL_EXPOSED_SHARE = 0.25
WELL_EXPOSED_EV = 0.15


def draw_ev(
    rng: np.random.Generator, ev_range: tuple[float, float] = (-3.0, 3.0), well_share: float = WELL_EXPOSED_SHARE,
    min_misexposure: float = 0.0,
) -> float:
    """An exposure error in stops: within +-WELL_EXPOSED_EV for a `well_share` of draws, else uniform over
    `ev_range` without the errors smaller than `min_misexposure` (a model trained so learns that a photo a
    little darker or brighter than usual was meant so, and leaves it alone)."""
    if rng.random() < well_share:
        low, high = max(ev_range[0], -WELL_EXPOSED_EV), min(ev_range[1], WELL_EXPOSED_EV)
        if low <= high:
            return float(rng.uniform(low, high))
    if min_misexposure <= 0:
        return float(rng.uniform(*ev_range))
    low, high = ev_range
    darker = max(0.0, min(high, -min_misexposure) - low)  # length of [low, -min_misexposure]
    brighter = max(0.0, high - max(low, min_misexposure))  # length of [min_misexposure, high]
    if darker + brighter <= 0:
        return float(rng.uniform(low, high))
    u = float(rng.uniform(0.0, darker + brighter))
    return low + u if u < darker else max(low, min_misexposure) + (u - darker)


@dataclass(frozen=True)
class NoiseModel:
    """Sensor noise on linear values in [0, 1]: variance = shot * signal + read**2.

    The same noise on a capture 2**EV darker is larger relative to its signal, which is why under-exposed
    inputs come out noisier after brightening."""

    shot: float
    read: float

    def apply(self, linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma = np.sqrt(self.shot * np.maximum(linear, 0.0) + self.read**2, dtype=np.float32)
        return linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32)


def draw_noise(rng: np.random.Generator) -> NoiseModel:
    """Shot gain log-uniform over ISO 100 to about 6400; read noise tied to it as in Brooks et al. 2019."""
    log_shot = rng.uniform(np.log(5e-5), np.log(3e-3))
    log_read_var = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    return NoiseModel(shot=float(np.exp(log_shot)), read=float(np.sqrt(np.exp(log_read_var))))


def clip_highlights(linear: np.ndarray, white_at: float = 2.0) -> np.ndarray:
    """(H, W, 3) linear -> clipped to [0, 1], moving colour towards neutral as the brightest channel passes 1.

    A channel stuck at saturation while the others keep rising is why real clipped highlights turn white;
    at white_at times saturation a pixel is neutral. Pixels whose channels are all <= 1 are unchanged."""
    peak = linear.max(axis=2, keepdims=True)  # (H, W, 1)
    t = np.clip((peak - 1.0) / (white_at - 1.0), 0.0, 1.0)
    t = t * t * (3.0 - 2.0 * t)  # smoothstep: no visible edge where desaturation starts
    return np.clip(linear + t * (peak - linear), 0.0, 1.0).astype(np.float32)


def quantize8(display: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 with rounding."""
    return np.round(np.clip(display, 0.0, 1.0) * 255.0).astype(np.uint8)


def jpeg_roundtrip(pixels: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    """(H, W, 3) uint8 -> the same image after JPEG compression at `quality` (Pillow, in memory)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality), subsampling=subsampling)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def render_exposure(
    target: np.ndarray,
    ev: float,
    rng: np.random.Generator,
    *,
    curve: ToneCurve | None = None,
    noise: bool = True,
    jpeg: bool = True,
) -> np.ndarray:
    """Render `target` (H, W, 3) float32 display [0, 1] as if captured `ev` stops brighter or darker.

    Returns float32 (H, W, 3) on the 8-bit grid (k / 255). EV 0 without noise and JPEG returns the target
    within quantization. The curve is drawn from rng when not given."""
    _check_image(target)
    curve = curve if curve is not None else draw_curve(rng)
    noise_model = draw_noise(rng)
    white_at = rng.uniform(1.5, 3.0)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    use_jpeg = jpeg and rng.random() < JPEG_PROBABILITY
    subsampling = 2 if rng.random() < 0.7 else 0  # 4:2:0 as most cameras, sometimes 4:4:4

    linear = curve.inverse(target) * np.float32(2.0**ev)
    if noise:
        linear = noise_model.apply(linear, rng)
    display = curve.forward(clip_highlights(linear, white_at))
    pixels = quantize8(display)
    if use_jpeg:
        pixels = jpeg_roundtrip(pixels, quality, subsampling)
    return pixels.astype(np.float32) / 255.0


def synthesize_pair(
    photo: np.ndarray, rng: np.random.Generator, ev_range: tuple[float, float] = (-3.0, 3.0),
    well_share: float = WELL_EXPOSED_SHARE, min_misexposure: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A training pair in display sRGB: (badly exposed input, photo), both (H, W, 3) float32 in [0, 1]."""
    ev = draw_ev(rng, ev_range, well_share, min_misexposure)
    inp = render_exposure(photo, ev, rng, curve=draw_curve(rng))
    return inp, np.asarray(photo, dtype=np.float32)


def unprocess(
    photo: np.ndarray,
    rng: np.random.Generator,
    *,
    ev: float | None = None,
    ev_range: tuple[float, float] = (-3.0, 3.0),
    curve: ToneCurve | None = None,
    noise: bool = True,
    well_share: float = WELL_EXPOSED_SHARE,
    min_misexposure: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """A camera-linear ("RAW-like") pair in the working space linear ProPhoto, both (H, W, 3) float32.

    Inverts the camera curve (gamma included), divides by white-balance gains to reach sensor values, exposes
    by 2**EV, adds noise and clips at sensor saturation, then re-applies the gains and clips as dcraw does (so
    clipped highlights are white). The target is the photo's scene-linear light.
    info: {"ev", "curve", "wb_gains", "noise"}."""
    _check_image(photo)
    curve = curve if curve is not None else draw_curve(rng)
    ev = draw_ev(rng, ev_range, well_share, min_misexposure) if ev is None else float(ev)
    gains = np.array(
        [rng.uniform(1.6, 2.4), 1.0, rng.uniform(1.3, 2.0)], dtype=np.float32
    )  # red, green, blue
    noise_model = draw_noise(rng)

    target = curve.inverse(photo)  # (H, W, 3) linear, sRGB primaries
    sensor = target / gains * np.float32(2.0**ev)
    if noise:
        sensor = noise_model.apply(sensor, rng)
    sensor = np.round(np.clip(sensor, 0.0, 1.0) * 16383.0) / np.float32(16383.0)  # 14-bit ADC
    balanced = np.clip(sensor * gains, 0.0, 1.0)
    info = {
        "ev": ev,
        "curve": curve.describe(),
        "wb_gains": [float(g) for g in gains],
        "noise": {"shot": noise_model.shot, "read": noise_model.read} if noise else None,
    }
    to_working = lambda x: convert_linear(x.astype(np.float32), "linear-srgb", "linear-prophoto")  # noqa: E731
    return to_working(balanced), to_working(target), info


def make_pair(
    photo: np.ndarray, rng: np.random.Generator, encoding: str, ev_range: tuple[float, float] = (-3.0, 3.0),
    well_share: float = WELL_EXPOSED_SHARE, min_misexposure: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A training pair in a profile's `encoding`: "srgb" display pairs, "linear-prophoto" unprocessed;
    `well_share` of them (nearly) well exposed, the others at least `min_misexposure` stops off (`draw_ev`)."""
    if encoding == "srgb":
        return synthesize_pair(photo, rng, ev_range, well_share, min_misexposure)
    if encoding == "linear-prophoto":
        inp, target, _ = unprocess(photo, rng, ev_range=ev_range, well_share=well_share,
                                   min_misexposure=min_misexposure)
        return inp, target
    raise ValueError(f"no synthesis for encoding {encoding!r}; valid: srgb, linear-prophoto")


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
