"""Bilateral guided upsampling: a correction fitted at low resolution, applied to the full-res photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from xfix.guided import fit_grid, slice_grid, upsample

M = np.array([[0.9, 0.1, 0.0], [0.05, 0.8, 0.1], [0.0, 0.2, 1.1]], np.float32)
B = np.array([0.05, -0.02, 0.1], np.float32)


@pytest.fixture(scope="module")
def photo():
    """(full 512x512, low 128x128) float32 [0, 1]: a real photo and its area-averaged copy."""
    full = skimage.data.astronaut().astype(np.float32) / 255
    return full, cv2.resize(full, (128, 128), interpolation=cv2.INTER_AREA)


def smooth_gain(h: int, w: int) -> np.ndarray:
    """(h, w, 1) gain between 0.6 and 1.4 varying slowly over the frame."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (1 + 0.4 * np.sin(xx / w * 3) * np.cos(yy / h * 2))[..., None]


def test_global_affine_is_reproduced_at_full_resolution(photo):
    full, low = photo
    out = upsample(low, low @ M.T + B, full)
    assert out.shape == full.shape and out.dtype == np.float32
    assert np.abs(out - (full @ M.T + B)).max() < 2e-3


def test_smooth_spatially_varying_gain_has_small_error(photo):
    full, low = photo
    target = full * smooth_gain(512, 512)
    # cells of 8 px on this 128 px copy cover what cells of 16-32 px do at the usual 512-1024 px work size
    out = upsample(low, low * smooth_gain(128, 128), full, cell=8)
    error = np.abs(out - target)
    naive = np.abs(full - target)  # doing nothing, for scale
    assert error.mean() < 0.006 and error.mean() < naive.mean() / 10


def test_tone_curve_keeps_full_resolution_detail(photo):
    """A nonlinear curve: guided beats upsampling the low-res output, which loses the detail."""
    full, low = photo
    curve = lambda x: np.clip(x, 0, 1) ** 0.6  # noqa: E731
    out = upsample(low, curve(low), full)
    resized = cv2.resize(curve(low), (512, 512), interpolation=cv2.INTER_LINEAR)
    psnr = lambda a: 10 * np.log10(1 / np.mean((a - curve(full)) ** 2))  # noqa: E731
    assert psnr(out) > 32 and psnr(out) > psnr(resized) + 6


def test_block_slicing_matches_exact_slicing(photo):
    full, low = photo
    grid = fit_grid(low, np.clip(low, 0, 1) ** 0.7)
    exact = slice_grid(grid, full, block=1)
    assert np.abs(slice_grid(grid, full, block=4) - exact).max() < 2e-3
    assert np.abs(slice_grid(grid, full, block=1, chunk_rows=7) - exact).max() < 1e-6  # chunking is exact


def test_torch_in_torch_out_and_clip_input(photo):
    full, low = photo
    hot = torch.from_numpy(full * 1.5)  # values above 1, as an unclipped encoding may hold
    out = upsample(torch.from_numpy(low), torch.from_numpy(low * 0.5), hot, clip_input=True)
    assert isinstance(out, torch.Tensor) and out.shape == hot.shape
    assert torch.allclose(out, hot.clamp(0, 1) * 0.5, atol=2e-3)


def test_single_bin_and_tiny_images():
    rng = np.random.default_rng(0)
    low = rng.random((3, 5, 3), dtype=np.float32)
    full = rng.random((9, 14, 3), dtype=np.float32)
    out = upsample(low, low * 0.5 + 0.1, full, bins=1, cell=4)
    assert np.abs(out - (full * 0.5 + 0.1)).max() < 1e-3


def test_shape_errors_name_the_shape():
    with pytest.raises(ValueError, match="\\(H, W, 3\\)"):
        upsample(np.zeros((3, 8, 8), np.float32), np.zeros((3, 8, 8), np.float32), np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match="differ"):
        fit_grid(np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32))
