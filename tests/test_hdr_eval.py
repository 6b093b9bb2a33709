"""The HDR measurements of xfix.hdr_eval: known values, and that each one can tell good output from bad."""

from __future__ import annotations

import numpy as np

from xfix.hdr_eval import (
    BEST_GAIN,
    best_gain,
    evaluate_pan,
    evaluate_scene,
    instability,
    log_psnr,
    match_exposure,
    naive,
    pu21,
    pu_psnr,
)


def hdr_scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth linear light with a bright lamp (peak about 40) on a dim room."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    room = 0.05 + 0.2 * (x / w)[..., None] * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    lamp = 40.0 * np.exp(-((x - w * 0.6) ** 2 + (y - h * 0.4) ** 2) / (2 * 6.0**2))
    return (room + lamp[..., None] * np.float32([1.0, 0.9, 0.7])).astype(np.float32)


def test_pu21_places_100_nits_near_256_and_rises():
    assert abs(float(pu21(np.array(100.0))) - 256) < 3
    values = pu21(np.array([0.1, 1.0, 10.0, 100.0, 1000.0]))
    assert np.all(np.diff(values) > 0)


def test_log_psnr_known_value_and_mask():
    target = hdr_scene()
    mask = target.max(axis=2) > 1.0
    peak = np.log10(target.max()) - np.log10(target.min())
    ten_times = np.where(mask[..., None], target * 10, target)  # off by one log10 unit on the mask
    assert abs(log_psnr(ten_times, target, mask) - 20 * np.log10(peak)) < 1e-3
    assert log_psnr(ten_times, target, ~mask) > 100  # exact off the mask


def test_match_exposure_undoes_a_global_scale():
    target = hdr_scene()
    unsaturated = target.max(axis=2) < 1.0
    assert np.allclose(match_exposure(target * 0.25, target, unsaturated), target, rtol=1e-5)


def test_best_gain_finds_the_lost_brightness_and_beats_the_clip():
    target = hdr_scene()
    saturated = target.max(axis=2) >= 1.0
    clipped = np.minimum(target, 1.0)
    gain, output = best_gain(clipped, target, saturated)
    assert gain > 2.0
    assert log_psnr(output, target, saturated) > log_psnr(clipped, target, saturated) + 3
    assert np.array_equal(output[~saturated], clipped[~saturated])


def test_scene_rows_add_the_best_gain_reference_above_the_naive_baseline():
    scene = hdr_scene(128, 160)
    rows = evaluate_scene(scene, {"naive": naive}, fractions=(0.05,))
    assert [r["method"] for r in rows] == ["naive", BEST_GAIN]
    naive_row, best_row = rows
    assert 0.03 < naive_row["saturated_share"] < 0.08
    assert best_row["log_psnr_saturated"] > naive_row["log_psnr_saturated"]
    assert best_row["pu21_psnr"] > naive_row["pu21_psnr"]


def test_instability_is_low_for_a_steady_pan_and_high_for_flicker():
    scene = hdr_scene(160, 240)
    result = evaluate_pan(scene, {"naive": naive}, count=8, fraction=0.05, size=(64, 96), velocity=(1.5, 0.5))
    assert result["frames"] == 8 and result["saturated_share"] > 0
    assert result["ground_truth"] < 0.05
    frames = [np.full((64, 96, 3), 1.0 + (t % 2), np.float32) for t in range(6)]  # doubles every other frame
    masks = [np.ones((64, 96), bool)] * 6
    assert abs(instability(frames, masks, (0.0, 0.0)) - np.log(2)) < 1e-5
    still = [np.full((64, 96, 3), 2.0, np.float32)] * 6
    assert instability(still, masks, (0.0, 0.0)) == 0.0
    assert pu_psnr(still[0], still[0]) > 100
