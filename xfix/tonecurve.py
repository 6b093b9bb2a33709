"""Tone curves shared by the neutral RAW base rendering and the classic profile.

Every function here uses only arithmetic, `**` and `.clip`, so the same code runs on numpy arrays and on
torch tensors (any shape, float32) without importing torch. A tone curve maps scene-linear values (0 = black)
to display-linear values in [0, 1]; the sRGB transfer (also here) encodes them afterwards.
"""

from __future__ import annotations

from typing import TypeVar

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor

# Neutral base rendering of a RAW file, as a camera's JPEG engine would do it: rawpy's linear output without
# auto-brightening places a mid-grey card around 0.12 of the white level, and camera engines lift it to
# about 0.18 (sRGB 0.46). +0.5 EV does that; the shoulder then rolls the sensor's white (1.0 * 2**0.5) off to
# display white instead of clipping it, and keeps everything below BASE_KNEE (display-linear) untouched.
BASE_EXPOSURE_EV = 0.5
BASE_KNEE = 0.5
BASE_WHITE = 2.0**BASE_EXPOSURE_EV


# sRGB (IEC 61966-2-1) transfer, written without `where` so it runs on numpy and torch alike: each piece is
# evaluated on its clipped argument and the two are added, which equals the piecewise formula because the
# curve is continuous at the threshold (residual below 1e-7).
_SRGB_LIN_T, _SRGB_ENC_T = 0.0031308, 0.04045


def srgb_encode(x: Array) -> Array:
    """Linear -> sRGB-encoded, same as colour.srgb_encode within 1e-6. Known value: 0.18 -> 0.46135."""
    power = 1.055 * x.clip(_SRGB_LIN_T, None) ** (1 / 2.4) - 1.055 * _SRGB_LIN_T ** (1 / 2.4)
    return 12.92 * x.clip(None, _SRGB_LIN_T) + power


def srgb_decode(v: Array) -> Array:
    """sRGB-encoded -> linear, same as colour.srgb_decode within 1e-6. Known value: 0.5 -> 0.21404."""
    power = ((v.clip(_SRGB_ENC_T, None) + 0.055) / 1.055) ** 2.4 - ((_SRGB_ENC_T + 0.055) / 1.055) ** 2.4
    return v.clip(None, _SRGB_ENC_T) / 12.92 + power


def _power(white: float, knee: float) -> float:
    """Exponent of the shoulder that makes the curve's slope continuous (equal to 1) at the knee."""
    if not 0.0 <= knee < 1.0 or white <= 1.0:
        raise ValueError(f"filmic curve needs 0 <= knee < 1 < white, got knee={knee}, white={white}")
    return (white - knee) / (1.0 - knee)


def filmic(x: Array, *, knee: float = 0.6, white: float = 3.0) -> Array:
    """Scene-linear -> display-linear: identity up to `knee`, then a power shoulder reaching 1 at `white`.

    Above the knee y = knee + (1 - knee) * (1 - (1 - t)**p), t = (x - knee) / (white - knee) clipped to
    [0, 1], with p = (white - knee) / (1 - knee) so the slope is 1 at the knee (no kink) and 0 at `white`.
    Values at or above `white` give 1; negative values pass through unchanged. Monotone; mid-tones and
    shadows are kept as they are, and f(g * f^-1(x)) with g = 1 is the identity, which is why the classic
    profile leaves alone a photo that needs no exposure change.
    Known values (knee 0.6, white 3): 0.18 -> 0.18, 1.0 -> 0.8660, 3.0 -> 1.0.
    """
    p = _power(white, knee)
    t = ((x - knee) / (white - knee)).clip(0.0, 1.0)
    return x.clip(None, knee) + (1.0 - knee) * (1.0 - (1.0 - t) ** p)


def filmic_inverse(y: Array, *, knee: float = 0.6, white: float = 3.0) -> Array:
    """Display-linear -> scene-linear, the inverse of `filmic` on [0, 1]; y >= 1 gives `white`.

    Known values (knee 0.6, white 3): 0.18 -> 0.18, 0.8660 -> 1.0, 1.0 -> 3.0.
    """
    p = _power(white, knee)
    u = ((y - knee) / (1.0 - knee)).clip(0.0, 1.0)
    return y.clip(None, knee) + (white - knee) * (1.0 - (1.0 - u) ** (1.0 / p))


def base_rendering(linear: Array) -> Array:
    """Neutral camera-like rendering of RAW scene-linear values (white level = 1) to display-linear [0, 1].

    Exposure as shot plus the standard +0.5 EV lift of camera engines, then the shoulder, applied per channel
    (as camera engines and raw converters do in a wide-gamut RGB). Known values: 0.125 -> 0.1768,
    1.0 -> 1.0 (the sensor's white becomes display white), 0.0 -> 0.0.
    """
    return filmic(linear.clip(0.0, None) * 2.0**BASE_EXPOSURE_EV, knee=BASE_KNEE, white=BASE_WHITE)
