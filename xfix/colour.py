"""Colour maths: transfer functions, RGB spaces and conversions between them.

Pure functions on float32 arrays shaped (..., 3) unless said otherwise. Named tables map a space name to its
definition; front functions reject an unknown name by listing the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from xfix.errors import ColourError

WORKING_SPACE = "linear-prophoto"


# ---------------------------------------------------------------- transfer functions (encoded <-> linear)

def srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB (IEC 61966-2-1) encoded [0, 1] -> linear. Known value: 0.5 -> 0.21404."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """Linear -> sRGB encoded. Known value: 0.18 -> 0.46135. Negative input maps linearly (no NaN)."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055).astype(
        np.float32
    )


ADOBE_GAMMA = 563 / 256  # Adobe RGB (1998) specification, about 2.19921875


def adobe_decode(v: np.ndarray) -> np.ndarray:
    """Adobe RGB (1998) encoded -> linear: a pure power 563/256. Known value: 0.5 -> 0.21776."""
    v = np.asarray(v, dtype=np.float32)
    return (np.sign(v) * np.abs(v) ** ADOBE_GAMMA).astype(np.float32)


def adobe_encode(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (np.sign(x) * np.abs(x) ** (1 / ADOBE_GAMMA)).astype(np.float32)


ROMM_ET = 1 / 512  # ProPhoto (ROMM RGB, ISO 22028-2) linear toe below this linear value


def prophoto_decode(v: np.ndarray) -> np.ndarray:
    """ROMM RGB encoded -> linear: gamma 1.8 with a linear toe of slope 16. Known value: 0.5 -> 0.28717."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v < 16 * ROMM_ET, v / 16, np.maximum(v, 16 * ROMM_ET) ** 1.8).astype(np.float32)


def prophoto_encode(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.where(x < ROMM_ET, x * 16, np.maximum(x, ROMM_ET) ** (1 / 1.8)).astype(np.float32)


def identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


TRANSFER_DECODINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "srgb": srgb_decode,
    "adobe": adobe_decode,
    "prophoto": prophoto_decode,
    "linear": identity,
}
TRANSFER_ENCODINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "srgb": srgb_encode,
    "adobe": adobe_encode,
    "prophoto": prophoto_encode,
    "linear": identity,
}


# ---------------------------------------------------------------- RGB spaces

D65 = (0.3127, 0.3290)
D50 = (0.3457, 0.3585)


@dataclass(frozen=True)
class RGBSpace:
    """An RGB colour space: chromaticities of its primaries and white point, and its transfer function."""

    name: str
    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    white: tuple[float, float]
    transfer: str  # key of TRANSFER_DECODINGS / TRANSFER_ENCODINGS
    description: str


_SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
_ADOBE_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
_P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))  # DCI-P3 primaries, D65 white (Apple)
_ROMM_PRIMARIES = ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001))

RGB_SPACES: dict[str, RGBSpace] = {
    "srgb": RGBSpace("srgb", _SRGB_PRIMARIES, D65, "srgb", "sRGB IEC61966-2.1"),
    "adobergb": RGBSpace("adobergb", _ADOBE_PRIMARIES, D65, "adobe", "Adobe RGB (1998) compatible"),
    "prophoto": RGBSpace("prophoto", _ROMM_PRIMARIES, D50, "prophoto", "ProPhoto RGB (ROMM)"),
    "display-p3": RGBSpace("display-p3", _P3_PRIMARIES, D65, "srgb", "Display P3"),
    "linear-srgb": RGBSpace("linear-srgb", _SRGB_PRIMARIES, D65, "linear", "Linear Rec.709/sRGB primaries"),
    "linear-prophoto": RGBSpace("linear-prophoto", _ROMM_PRIMARIES, D50, "linear", "Linear ProPhoto (ROMM)"),
}

OUTPUT_SPACES = ("srgb", "adobergb", "prophoto")


def rgb_space(name: str) -> RGBSpace:
    """Look up a space by name; an unknown name lists the valid ones."""
    try:
        return RGB_SPACES[name]
    except KeyError:
        raise ColourError(f"unknown colour space {name!r}; valid: {', '.join(RGB_SPACES)}") from None


def xy_to_xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz_matrix(space: RGBSpace) -> np.ndarray:
    """3x3 float64 matrix taking linear RGB of `space` to XYZ relative to its own white (Y of white = 1)."""
    prim = np.stack([xy_to_xyz(p) for p in space.primaries], axis=1)  # columns: XYZ of R, G, B at Y = 1
    scale = np.linalg.solve(prim, xy_to_xyz(space.white))
    return prim * scale[None, :]


_BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]], dtype=np.float64
)


def chromatic_adaptation(src_white: tuple[float, float], dst_white: tuple[float, float]) -> np.ndarray:
    """Bradford von Kries matrix adapting XYZ under `src_white` to `dst_white`."""
    if src_white == dst_white:
        return np.eye(3)
    cone_src = _BRADFORD @ xy_to_xyz(src_white)
    cone_dst = _BRADFORD @ xy_to_xyz(dst_white)
    return np.linalg.inv(_BRADFORD) @ np.diag(cone_dst / cone_src) @ _BRADFORD


def conversion_matrix(src: str, dst: str) -> np.ndarray:
    """3x3 float32 matrix converting linear RGB of space `src` to linear RGB of space `dst` (white to white).

    Only primaries and white points matter, so "srgb" and "linear-srgb" give the same matrix."""
    s, d = rgb_space(src), rgb_space(dst)
    m = np.linalg.inv(rgb_to_xyz_matrix(d)) @ chromatic_adaptation(s.white, d.white) @ rgb_to_xyz_matrix(s)
    return m.astype(np.float32)


def apply_matrix(rgb: np.ndarray, matrix: np.ndarray, chunk_rows: int = 512) -> np.ndarray:
    """(H, W, 3) or (N, 3) float32 @ matrix.T, in row chunks so a 50 MP image needs no float64 temporaries."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if np.allclose(matrix, np.eye(3), atol=1e-7):
        return rgb
    m = np.ascontiguousarray(matrix.T, dtype=np.float32)
    out = np.empty_like(rgb)
    for start in range(0, rgb.shape[0], chunk_rows):
        np.matmul(rgb[start : start + chunk_rows], m, out=out[start : start + chunk_rows])
    return out


def convert_linear(rgb: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Linear RGB in `src` primaries -> linear RGB in `dst` primaries; transfer functions are not touched."""
    return apply_matrix(rgb, conversion_matrix(src, dst))


# ---------------------------------------------------------------- encoded <-> working space

def decode_transfer(encoded: np.ndarray, space: str) -> np.ndarray:
    """Encoded values of `space` in [0, 1] (float) -> linear values in the same primaries."""
    return TRANSFER_DECODINGS[rgb_space(space).transfer](encoded)


def encode_transfer(linear: np.ndarray, space: str) -> np.ndarray:
    """Linear values in the primaries of `space` -> encoded values (not clipped)."""
    return TRANSFER_ENCODINGS[rgb_space(space).transfer](linear)


def integer_decode_lut(space: str, bits: int) -> np.ndarray:
    """Table of 2**bits float32 linear values, so 8- and 16-bit samples linearize by indexing, not by pow()."""
    levels = np.arange(2**bits, dtype=np.float32) / (2**bits - 1)
    return decode_transfer(levels, space)


def to_linear(samples: np.ndarray, space: str) -> np.ndarray:
    """File samples (uint8, uint16 or float) encoded in `space` -> float32 linear, same primaries.

    Integer samples go through a lookup table (bit depth from dtype, never from values)."""
    if samples.dtype == np.uint8:
        return integer_decode_lut(space, 8)[samples]
    if samples.dtype == np.uint16:
        return integer_decode_lut(space, 16)[samples]
    if np.issubdtype(samples.dtype, np.floating):
        return decode_transfer(samples.astype(np.float32, copy=False), space)
    raise ColourError(f"unsupported sample type {samples.dtype}")


def to_float(samples: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float samples -> float32 fractions of full scale, encoding untouched (bit depth from
    dtype): uint8 / 255, uint16 / 65535, floats as they are. Known value: uint16 65535 -> 1.0."""
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / 255.0
    if samples.dtype == np.uint16:
        return samples.astype(np.float32) / 65535.0
    return samples.astype(np.float32)


def to_working(samples: np.ndarray, space: str) -> np.ndarray:
    """(H, W, 3) file samples encoded in `space` -> float32 scene-linear in the working space."""
    return convert_linear(to_linear(samples, space), space, WORKING_SPACE)


def from_working(linear: np.ndarray, space: str) -> np.ndarray:
    """(H, W, 3) working-space linear -> encoded float32 values of `space` (not clipped, not quantized)."""
    return encode_transfer(convert_linear(linear, WORKING_SPACE, space), space)


# ---------------------------------------------------------------- measures

def luminance_weights(space: str) -> np.ndarray:
    """Row of the RGB->XYZ matrix giving relative luminance Y of linear RGB in `space`."""
    return rgb_to_xyz_matrix(rgb_space(space))[1].astype(np.float32)


def luminance(linear: np.ndarray, space: str = WORKING_SPACE) -> np.ndarray:
    """(..., 3) linear RGB -> (...) relative luminance Y."""
    return np.asarray(linear, dtype=np.float32) @ luminance_weights(space)
