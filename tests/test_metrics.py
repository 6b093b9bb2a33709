"""Metrics against known values: PSNR arithmetic, SSIM against scikit-image, CIEDE2000 against Sharma et
al. 2005."""

from __future__ import annotations

import numpy as np
import pytest

from xfix.metrics import PSNR_CAP, ciede2000, delta_e2000, exposure_consistency, psnr, srgb_to_lab, ssim

# Sharma, Wu and Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 dE00, all 34 pairs.
SHARMA = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""


def _sharma() -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in SHARMA.strip().splitlines()])


def _image(seed: int, h: int = 40, w: int = 52) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_psnr_known_values():
    target = np.full((8, 8, 3), 0.5, np.float32)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)
    assert psnr(target + 0.01, target) == pytest.approx(40.0, abs=1e-3)
    assert psnr(target, target) == PSNR_CAP == 60.0
    assert psnr(target + 1e-4, target) == PSNR_CAP  # 80 dB is capped: no visible difference
    with pytest.raises(ValueError, match="one shape"):
        psnr(target, target[:4])


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    target = _image(0)
    rng = np.random.default_rng(1)
    noisy = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    for output in (noisy, target * 0.7 + 0.1, target[::-1]):
        expected = structural_similarity(
            output, target, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )
        assert ssim(output, target) == pytest.approx(expected, abs=1e-3)
    assert ssim(target, target) == pytest.approx(1.0, abs=1e-9)


def test_ciede2000_sharma_pairs_both_orders():
    data = _sharma()
    assert len(data) == 34
    np.testing.assert_allclose(ciede2000(data[:, :3], data[:, 3:6]), data[:, 6], atol=1e-4)
    np.testing.assert_allclose(ciede2000(data[:, 3:6], data[:, :3]), data[:, 6], atol=1e-4)


def test_srgb_to_lab_known_values():
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(lab[1], [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(lab[2], [0.0, 0.0, 0.0], atol=1e-6)


def test_delta_e2000_images():
    target = _image(2)
    assert delta_e2000(target, target) == 0.0
    white, black = np.ones((4, 4, 3)), np.zeros((4, 4, 3))
    assert delta_e2000(white, black) == pytest.approx(100.0, abs=1e-3)


def test_exposure_consistency():
    scene = _image(3)
    assert exposure_consistency([scene, scene, scene]) == PSNR_CAP
    # outputs differing by 0.1 and 0.2: pairs at 20 dB, 20 dB and 13.98 dB
    outs = [scene * 0 + 0.3, scene * 0 + 0.4, scene * 0 + 0.5]
    assert exposure_consistency(outs) == pytest.approx((20 + 20 + 20 * np.log10(1 / 0.2)) / 3, abs=1e-3)
    with pytest.raises(ValueError, match="at least two"):
        exposure_consistency([scene])
