"""Kernels of the 8-bit display route: correct 8-bit samples without leaving their display encoding.

When a photo arrives as 8-bit sRGB, the profile's model works in sRGB and the output is 8-bit sRGB, the float
route's conversions (linearize, into the model encoding, back to linear, into the output encoding) cancel out,
and on a 24 MP photo they cost several times the decode and the encode together. These kernels take the uint8
samples straight to the corrected uint8 samples in one pass per pixel: the correction (a guided grid of
affine transforms, or a 3D lookup table for a model that maps each colour the same way everywhere), the clip
to [0, 1] and the encoder's quantization with its tapered triangular dither, fused. They agree with the float
route to within the dither.

The dither noise comes from a counter-based hash of the sample's position and the seed rather than from a
sequential generator, so rows can run in parallel and the result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LOW10 = np.uint64(0x3FF)
_S10, _S20, _S27, _S30 = np.uint64(10), np.uint64(20), np.uint64(27), np.uint64(30)
_S31, _S40, _S50 = np.uint64(31), np.uint64(40), np.uint64(50)
_LUMA_R, _LUMA_G, _LUMA_B = 0.2126, 0.7152, 0.0722  # as xfix.guided's grid axis


def _compiled(**options):
    """numba's njit, its machine code cached on disk when numba finds a writable cache folder; without one
    (a read-only install, no home folder) it compiles again in each process rather than failing."""

    def wrap(function):
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError:
            return njit(**options)(function)

    return wrap


@_compiled(inline="always")
def _pixel_noise(index: int, seed: np.uint64) -> tuple[float, float, float]:
    """Three triangular (TPDF) samples in (-1, 1) for pixel `index`: one splitmix64 hash of the index and the
    seed, cut into six 10-bit uniform draws (finer steps would not change a rounded 8-bit code)."""
    z = np.uint64(index) * _GOLDEN + seed
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    u = np.float32(1.0 / 1025.0)  # not 1024: no draw lands on exactly +-0.5, where rounding would favour +1
    d0 = np.float32(z & _LOW10) - np.float32((z >> _S10) & _LOW10)
    d1 = np.float32((z >> _S20) & _LOW10) - np.float32((z >> _S30) & _LOW10)
    d2 = np.float32((z >> _S40) & _LOW10) - np.float32((z >> _S50) & _LOW10)
    return d0 * u, d1 * u, d2 * u


@_compiled(inline="always")
def _quantize(value: float, noise: float) -> np.uint8:
    """[0, 1] encoded value (clipped here) -> 8-bit code, the encoder's dither tapered to 0 at 0 and 255."""
    scaled = min(max(value, np.float32(0.0)), np.float32(1.0)) * np.float32(255.0)
    scaled += noise * min(scaled, np.float32(255.0) - scaled, np.float32(1.0))
    return np.uint8(scaled + np.float32(0.5))


@_compiled(inline="always")
def _noise_or_zero(index: int, seed: np.uint64, dither: bool) -> tuple[float, float, float]:
    if dither:
        return _pixel_noise(index, seed)
    zero = np.float32(0.0)
    return zero, zero, zero


@_compiled(parallel=True, fastmath=True)
def _slice_grid_rows(samples, table, block, bins, seed, dither, out):  # pragma: no cover - compiled
    height, width = samples.shape[0], samples.shape[1]
    scale = np.float32(1.0 / 255.0)
    for y in prange(height):
        by = y // block
        for x in range(width):
            bx = x // block
            r = np.float32(samples[y, x, 0]) * scale
            g = np.float32(samples[y, x, 1]) * scale
            b = np.float32(samples[y, x, 2]) * scale
            z = (np.float32(_LUMA_R) * r + np.float32(_LUMA_G) * g + np.float32(_LUMA_B) * b) * (bins - 1)
            z0 = min(int(z), bins - 2)
            t = z - np.float32(z0)
            noise = _noise_or_zero(y * width + x, seed, dither)
            lo = table[by, bx, z0]
            hi = table[by, bx, z0 + 1]
            for k in range(3):
                cr = lo[k] + t * (hi[k] - lo[k])
                cg = lo[3 + k] + t * (hi[3 + k] - lo[3 + k])
                cb = lo[6 + k] + t * (hi[6 + k] - lo[6 + k])
                c1 = lo[9 + k] + t * (hi[9 + k] - lo[9 + k])
                out[y, x, k] = _quantize(cr * r + cg * g + cb * b + c1, noise[k])
    return out


@_compiled(parallel=True, fastmath=True)
def _apply_lut_rows(samples, lut, seed, dither, out):  # pragma: no cover - compiled
    height, width = samples.shape[0], samples.shape[1]
    step = np.float32((lut.shape[0] - 1) / 255.0)
    top = lut.shape[0] - 2
    for y in prange(height):
        for x in range(width):
            fr = np.float32(samples[y, x, 0]) * step
            fg = np.float32(samples[y, x, 1]) * step
            fb = np.float32(samples[y, x, 2]) * step
            i, j, m = min(int(fr), top), min(int(fg), top), min(int(fb), top)
            tr, tg, tb = fr - np.float32(i), fg - np.float32(j), fb - np.float32(m)
            noise = _noise_or_zero(y * width + x, seed, dither)
            for k in range(3):
                c00 = lut[i, j, m, k] + tb * (lut[i, j, m + 1, k] - lut[i, j, m, k])
                c01 = lut[i, j + 1, m, k] + tb * (lut[i, j + 1, m + 1, k] - lut[i, j + 1, m, k])
                c10 = lut[i + 1, j, m, k] + tb * (lut[i + 1, j, m + 1, k] - lut[i + 1, j, m, k])
                c11 = lut[i + 1, j + 1, m, k] + tb * (lut[i + 1, j + 1, m + 1, k] - lut[i + 1, j + 1, m, k])
                c0 = c00 + tg * (c01 - c00)
                c1 = c10 + tg * (c11 - c10)
                out[y, x, k] = _quantize(c0 + tr * (c1 - c0), noise[k])
    return out


def _checked_samples(samples: np.ndarray) -> np.ndarray:
    if samples.dtype != np.uint8 or samples.ndim != 3 or samples.shape[2] != 3:
        raise ValueError(f"the 8-bit route takes (H, W, 3) uint8, got {samples.dtype} {samples.shape}")
    return np.ascontiguousarray(samples)


def _seed(dither_seed: int | None) -> tuple[np.uint64, bool]:
    return np.uint64((dither_seed or 0) & 0xFFFFFFFFFFFFFFFF), dither_seed is not None


def slice_grid_u8(samples: np.ndarray, table: np.ndarray, block: int, *, dither_seed: int | None = 0):
    """(H, W, 3) uint8 -> (H, W, 3) uint8: each pixel's affine transform from `table`, then clip and quantize.

    table: (nby, nbx, bins, 12) float32, the grid at the centres of `block` x `block` pixel blocks (see
    `xfix.guided.block_grid_table`), coefficient i * 3 + k of input feature i (R, G, B, 1) in output channel k;
    bins >= 2, interpolated linearly in the pixel's luminance as in `xfix.guided.slice_grid`; a non-finite
    coefficient counts as 0. dither_seed=None: plain rounding.
    """
    samples = _checked_samples(samples)
    h, w = samples.shape[:2]
    needed = (-(-h // block), -(-w // block))
    if table.ndim != 4 or table.shape[:2] != needed or table.shape[2] < 2 or table.shape[3] != 12:
        raise ValueError(f"grid table {table.shape} does not fit a {w}x{h} image in blocks of {block}")
    seed, dither = _seed(dither_seed)
    table = np.nan_to_num(np.ascontiguousarray(table, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    out = np.empty_like(samples)
    return _slice_grid_rows(samples, table, int(block), int(table.shape[2]), seed, dither, out)


def apply_lut_u8(samples: np.ndarray, lut: np.ndarray, *, dither_seed: int | None = 0) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) uint8 through an (N, N, N, 3) float32 lookup table over [0, 1]^3 (axes
    R, G, B; N >= 2), interpolated trilinearly, then clipped and quantized; non-finite entries become 0
    (NaN, -inf) or 1 (+inf), as the encoder treats non-finite samples."""
    samples = _checked_samples(samples)
    n = lut.shape[0]
    if lut.ndim != 4 or lut.shape != (n, n, n, 3) or n < 2:
        raise ValueError(f"a 3D lookup table must be (N, N, N, 3) with N >= 2, got {lut.shape}")
    seed, dither = _seed(dither_seed)
    lut = np.nan_to_num(np.ascontiguousarray(lut, np.float32), nan=0.0, posinf=1.0, neginf=0.0)  # as encode
    out = np.empty_like(samples)
    return _apply_lut_rows(samples, lut, seed, dither, out)


def _area_weights(n_in: int, n_out: int, adaptive: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR weights of an area average along one axis: output o averages inputs index[start[o]:start[o + 1]]
    with weight[...]. Exact (adaptive=False): each output covers [o, o + 1) * n_in / n_out, boundary inputs
    by the fraction they overlap, as OpenCV's INTER_AREA. Adaptive: inputs floor(o * n_in / n_out) to
    ceil((o + 1) * n_in / n_out) - 1, equally weighted, as torch's adaptive average pooling."""
    starts, index, weight = [0], [], []
    scale = n_in / n_out
    for o in range(n_out):
        if adaptive:
            lo, hi = (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)
            cover = [(i, 1.0 / (hi - lo)) for i in range(lo, hi)]
        else:
            left, right = o * scale, min((o + 1) * scale, n_in)
            cover = [(i, (min(i + 1, right) - max(i, left)) / (right - left))
                     for i in range(int(left), int(np.ceil(right)))]
        cover = [(i, w) for i, w in cover if w > 0]
        index += [i for i, _ in cover]
        weight += [w for _, w in cover]
        starts.append(len(index))
    return np.array(starts, np.int64), np.array(index, np.int64), np.array(weight, np.float32)


@_compiled(parallel=True, fastmath=True)
def _area_rows(samples, y_start, y_index, y_weight, x_start, x_index, x_weight, out):  # pragma: no cover
    out_h, out_w = out.shape[0], out.shape[1]
    for oy in prange(out_h):
        row = np.zeros((out_w, 3), np.float32)
        for a in range(y_start[oy], y_start[oy + 1]):
            iy, wy = y_index[a], y_weight[a]
            for ox in range(out_w):
                for b in range(x_start[ox], x_start[ox + 1]):
                    w = wy * x_weight[b]
                    ix = x_index[b]
                    for k in range(3):
                        row[ox, k] += w * np.float32(samples[iy, ix, k])
        for ox in range(out_w):
            for k in range(3):
                out[oy, ox, k] = row[ox, k] * np.float32(1.0 / 255.0)
    return out


def area_average(samples: np.ndarray, height: int, width: int, *, adaptive: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) float32 in [0, 1], each output the mean of the input area it
    covers, never rounded to 8 bits (a model fed a rounded copy shifts its output measurably). adaptive=False
    matches OpenCV's INTER_AREA on float samples, adaptive=True torch's area interpolation."""
    samples = _checked_samples(samples)
    h, w = samples.shape[:2]
    if not (0 < height <= h and 0 < width <= w):
        raise ValueError(f"area averaging shrinks: {w}x{h} cannot become {width}x{height}")
    out = np.empty((height, width, 3), np.float32)
    rows, cols = _area_weights(h, height, adaptive), _area_weights(w, width, adaptive)
    return _area_rows(samples, *rows, *cols, out)
