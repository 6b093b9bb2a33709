"""Image quality metrics on display sRGB images: (H, W, 3) float arrays in [0, 1].

PSNR, SSIM (Wang et al. 2004 with a Gaussian window, as scikit-image computes it), mean CIEDE2000 (Sharma, Wu
and Dalal 2005) and the exposure consistency of a correction (mean pairwise PSNR between its outputs for one
scene).
Vectorized numpy in float32 (means are accumulated in float64); `ciede2000` keeps the dtype it is given.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np

from xfix.colour import D65, rgb_space, rgb_to_xyz_matrix, srgb_decode, xy_to_xyz

# PSNR never exceeds this: identical images stay finite in means, and below one 8-bit step of difference
# (uniform +-0.5/255 error: 58.9 dB) nothing is visible, so "unchanged" does not outweigh a real change.
PSNR_CAP = 60.0


def _pair(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(output, dtype=np.float32), np.asarray(target, dtype=np.float32)
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"metrics need two (H, W, 3) images of one shape, got {a.shape} and {b.shape}")
    return a, b


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for data range 1, at most PSNR_CAP. Known value: a uniform error of
    0.1 gives 20 dB; identical images give PSNR_CAP."""
    a, b = _pair(output, target)
    mse = float(np.mean(np.square(a - b), dtype=np.float64))
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else min(PSNR_CAP, float(10.0 * np.log10(1.0 / mse)))


def ssim(output: np.ndarray, target: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity over pixels and channels, data range 1, K1 0.01, K2 0.03.

    Matches skimage.metrics.structural_similarity(channel_axis=2, data_range=1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False): 11-tap Gaussian (truncate 3.5), reflected borders, a border of
    half a window excluded from the mean. Known value: 1.0 for identical images."""
    import cv2

    a, b = _pair(output, target)
    pad = int(3.5 * sigma + 0.5)  # skimage's truncate 3.5: radius 5, an 11-tap window at sigma 1.5
    if min(a.shape[:2]) < 2 * pad + 1:
        raise ValueError(f"SSIM needs images of at least {2 * pad + 1} px a side, got {a.shape[:2]}")

    def blur(x: np.ndarray) -> np.ndarray:
        # OpenCV's BORDER_REFLECT is scipy.ndimage's "reflect" (edge sample repeated), and 7x faster
        return cv2.GaussianBlur(x, (2 * pad + 1, 2 * pad + 1), sigma, borderType=cv2.BORDER_REFLECT)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s[pad:-pad, pad:-pad].mean(dtype=np.float64))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Display sRGB (..., 3) in [0, 1] -> CIE L*a*b* (..., 3) float32, D65 white.

    Known values: white -> (100, 0, 0); (1, 0, 0) -> (53.24, 80.09, 67.20)."""
    linear = srgb_decode(np.clip(rgb, 0.0, 1.0))
    to_xyz = rgb_to_xyz_matrix(rgb_space("srgb")) / xy_to_xyz(D65)[:, None]  # rows scaled: XYZ / white
    xyz = linear @ to_xyz.T.astype(np.float32)
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1
    )


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of L*a*b* arrays (..., 3) -> (...), kL = kC = kH = 1.

    Known value (Sharma et al. 2005, pair 1): (50, 2.6772, -79.7751) vs (50, 0, -82.7485) -> 2.0425."""
    dtype = np.result_type(np.asarray(lab1).dtype, np.asarray(lab2).dtype, np.float32)
    lab1, lab2 = np.asarray(lab1, dtype=dtype), np.asarray(lab2, dtype=dtype)
    l1, a1, b1 = np.moveaxis(lab1, -1, 0)
    l2, a2, b2 = np.moveaxis(lab2, -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    chroma_zero = c1p * c2p == 0

    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_zero, 0.0, dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))

    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(
        np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)
    )
    h_mean = np.where(chroma_zero, h_sum, h_mean)

    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    tl, tc, th = d_l / s_l, d_c / s_c, d_h / s_h
    return np.sqrt(tl**2 + tc**2 + th**2 + r_t * tc * th)


def delta_e2000(output: np.ndarray, target: np.ndarray) -> float:
    """Mean CIEDE2000 between two display sRGB images. Known value: 0 for identical images."""
    a, b = _pair(output, target)
    return float(ciede2000(srgb_to_lab(a), srgb_to_lab(b)).mean(dtype=np.float64))


def exposure_consistency(outputs: Sequence[np.ndarray]) -> float:
    """Mean PSNR over all pairs of a scene's outputs (one per exposure); high when the result does not depend
    on how the photo was exposed. Needs at least two outputs."""
    if len(outputs) < 2:
        raise ValueError(f"exposure consistency needs at least two outputs, got {len(outputs)}")
    return float(np.mean([psnr(a, b) for a, b in combinations(outputs, 2)]))


# ---------------------------------------------------------------- over-exposure (Le Jeune 2019)

CLIP_LEVEL = 250 / 255  # an input channel at or above this is taken as clipped (JPEG blurs a clipped 255)


def _local_similarity(a: np.ndarray, b: np.ndarray, blur) -> tuple[np.ndarray, np.ndarray]:
    """SSIM's luminance and contrast terms of two (H, W) maps, per pixel over Gaussian windows."""
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    sd_a = np.sqrt(np.maximum(blur(a * a) - mu_a * mu_a, 0.0))
    sd_b = np.sqrt(np.maximum(blur(b * b) - mu_b * mu_b, 0.0))
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    contrast = (2 * sd_a * sd_b + c2) / (sd_a**2 + sd_b**2 + c2)
    return luminance, contrast


def exposure_similarities(output: np.ndarray, target: np.ndarray, sigma: float = 1.5) -> dict[str, float]:
    """The seed's luminance, contrast and saturation similarity to the target, in percent (100: identical).

    luminance / contrast: SSIM's luminance and contrast terms on Rec. 709 luma of the display values, over
    11-tap Gaussian windows as `ssim`; saturation: SSIM's luminance term on HSV saturation (max - min) / max.
    Known value: 100 for identical images."""
    import cv2

    a, b = _pair(output, target)
    pad = int(3.5 * sigma + 0.5)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (2 * pad + 1, 2 * pad + 1), sigma, borderType=cv2.BORDER_REFLECT)

    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    lum, con = _local_similarity(a @ weights, b @ weights, blur)

    def saturation(x: np.ndarray) -> np.ndarray:
        top = x.max(axis=2)
        return np.where(top > 1e-6, (top - x.min(axis=2)) / np.maximum(top, 1e-6), 0.0).astype(np.float32)

    sat, _ = _local_similarity(saturation(a), saturation(b), blur)
    mean = lambda m: float(100.0 * m.mean(dtype=np.float64))  # noqa: E731
    return {"luminance": mean(lum), "contrast": mean(con), "saturation": mean(sat)}


def clipped_mask(inp: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of a display input with a channel at the maximum (>= CLIP_LEVEL)."""
    return np.asarray(inp).max(axis=2) >= CLIP_LEVEL


def clipped_error(inp: np.ndarray, output: np.ndarray, target: np.ndarray) -> float | None:
    """Mean absolute error in 8-bit levels (x 255) over the pixels clipped in `inp`; None when none is.
    Known value: an output 0.1 below the target everywhere gives 25.5."""
    a, b = _pair(output, target)
    mask = clipped_mask(inp)
    if not mask.any():
        return None
    return float(255.0 * np.abs(a[mask] - b[mask]).mean(dtype=np.float64))
