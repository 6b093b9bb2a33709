"""Tone curves and exposure synthesis: known values, invertibility, determinism, EV behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from xfix.colour import convert_linear
from xfix.data.curves import CURVE_FAMILIES, draw_curve, tone_curve
from xfix.data.synthesis import (
    MSEC_LEVELS,
    clip_highlights,
    make_pair,
    render_exposure,
    synthesize_pair,
    unprocess,
)


def _photo(seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth 8-bit-valued test photo with a gradient, colour and a bright patch, float32 [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.2 + 0.6 * xx, 0.15 + 0.5 * yy, 0.3 + 0.2 * np.sin(6 * xx)], axis=2)
    base[h // 3 : h // 2, w // 3 : w // 2] = [0.95, 0.9, 0.85]
    base += rng.normal(0, 0.01, base.shape)
    return (np.round(np.clip(base, 0, 1) * 255) / 255).astype(np.float32)


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("srgb", {}, 0.46136),
        ("gamma", {"gamma": 2.2}, 0.45866),
        ("sigmoid", {"n": 0.9, "s": 0.6}, 0.42016),
        ("filmic", {"white": 11.2, "shoulder": 1.0, "toe": 1.0}, 0.73229),
        ("basecurve", {"white": 3.0, "contrast": 0.3}, 0.67999),
        ("xfix-base", {}, 0.54157),
    ],
)
def test_curve_known_values(name, params, expected):
    curve = tone_curve(name, **params)
    assert curve.forward(np.array([0.18]))[0] == pytest.approx(expected, abs=2e-4)
    assert curve.forward(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]


def test_drawn_curves_are_monotone_and_invertible():
    rng = np.random.default_rng(7)
    names = set()
    y = np.linspace(0, 1, 1001, dtype=np.float32)
    for _ in range(60):
        curve = draw_curve(rng)
        names.add(curve.name)
        assert np.all(np.diff(curve.knots_y) > 0) and np.all(np.diff(curve.inverse_x) >= 0)
        assert np.abs(curve.forward(curve.inverse(y)) - y).max() < 1e-4
    assert names == set(CURVE_FAMILIES)


def test_unknown_curve_lists_families():
    with pytest.raises(ValueError, match="valid: srgb"):
        tone_curve("velvia")


def test_ev0_without_noise_or_jpeg_returns_target():
    photo = _photo()
    rng = np.random.default_rng(3)
    for _ in range(5):
        out = render_exposure(photo, 0.0, rng, noise=False, jpeg=False)
        assert np.abs(out - photo).max() <= 0.5 / 255 + 1e-6


def test_same_seed_same_pair_and_other_seed_differs():
    photo = _photo()
    a = synthesize_pair(photo, np.random.default_rng(11))
    b = synthesize_pair(photo, np.random.default_rng(11))
    c = synthesize_pair(photo, np.random.default_rng(12))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.float32 and a[0].shape == photo.shape


def test_ev_darker_and_brighter_with_clipping():
    photo = _photo()
    curve = tone_curve("srgb")
    dark = render_exposure(photo, -1.5, np.random.default_rng(0), curve=curve)
    bright = render_exposure(photo, 1.5, np.random.default_rng(0), curve=curve)
    assert dark.mean() < photo.mean() - 0.1
    assert bright.mean() > photo.mean() + 0.1
    assert (bright >= 250 / 255).mean() > 0.15 > 0.01 > (photo >= 250 / 255).mean()
    # pure exposure, no noise: dark input is the photo's linear light scaled by 2**-1.5
    clean = render_exposure(photo, -1.5, np.random.default_rng(0), curve=curve, noise=False, jpeg=False)
    ratio = curve.inverse(clean[photo > 0.3]) / curve.inverse(photo[photo > 0.3])
    assert np.median(ratio) == pytest.approx(2**-1.5, rel=0.02)


def test_noise_is_stronger_in_darker_captures():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    curve = tone_curve("srgb")
    spreads = []
    for ev in (-3.0, 0.0):
        out = render_exposure(flat, ev, np.random.default_rng(5), curve=curve, jpeg=False)
        restored = curve.inverse(out) / 2.0**ev  # back to the target's exposure
        spreads.append(restored.std())
    assert spreads[0] > 2 * spreads[1]


def test_clipped_highlights_desaturate_towards_white():
    linear = np.array([[[1.9, 0.5, 0.3], [0.9, 0.5, 0.3]]], np.float32)
    out = clip_highlights(linear, white_at=2.0)
    assert out.max() <= 1.0
    assert np.allclose(out[0, 1], [0.9, 0.5, 0.3])  # below saturation: unchanged
    assert out[0, 0, 2] > 0.9  # far above saturation: nearly white, not (1, 0.5, 0.3)


def test_unprocess_ev0_is_the_target_in_working_space():
    photo = _photo()
    inp, target, info = unprocess(photo, np.random.default_rng(2), ev=0.0, noise=False)
    assert np.abs(inp - target).max() < 2e-4  # only the 14-bit quantization
    srgb_lin = convert_linear(target, "linear-prophoto", "linear-srgb")
    assert srgb_lin.max() <= 1.0 + 1e-4
    assert set(info) == {"ev", "curve", "wb_gains", "noise"} and info["wb_gains"][1] == 1.0
    dark, _, _ = unprocess(photo, np.random.default_rng(2), ev=-2.0)
    assert dark.mean() == pytest.approx(target.mean() / 4, rel=0.1)


def test_make_pair_encodings():
    photo = _photo()
    for encoding in ("srgb", "linear-prophoto"):
        inp, target = make_pair(photo, np.random.default_rng(1), encoding, (-1.0, 1.0))
        assert inp.shape == target.shape == photo.shape
    with pytest.raises(ValueError, match="linear-prophoto"):
        make_pair(photo, np.random.default_rng(1), "adobergb")


def test_msec_levels():
    assert MSEC_LEVELS == (-1.5, -1.0, 0.0, 1.0, 1.5)


# ---------------------------------------------------------------- photo folder, split, crops, batches

def _write_photos(folder, count: int = 5):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.round(_photo(i, 40 + 4 * i, 56) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.JPG")
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_list_and_split_photos(tmp_path):
    from xfix.data.dataset import is_validation, list_photos, split_photos
    from xfix.errors import InputError

    photos = list_photos(_write_photos(tmp_path / "photos"))
    assert [p.name for p in photos] == [f"img{i}.JPG" for i in range(5)]
    names = [f"photo_{i:04d}.jpg" for i in range(2000)]
    share = np.mean([is_validation(n) for n in names])
    assert 0.08 < share < 0.12
    assert is_validation("photo_0003.jpg") == is_validation("photo_0003.jpg")  # by name only, stable
    train, val = split_photos([tmp_path / n for n in names[:50]])
    assert len(train) + len(val) == 50 and not set(train) & set(val)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no photos"):
        list_photos(tmp_path / "empty")
    with pytest.raises(InputError, match="not a folder"):
        list_photos(tmp_path / "missing")


def test_load_photo_and_random_crop(tmp_path):
    from xfix.data.dataset import load_photo, random_crop, resize_long_side

    path = _write_photos(tmp_path / "photos", 1) / "img0.JPG"
    photo = load_photo(path)
    assert photo.dtype == np.uint8 and photo.shape == (40, 56, 3)
    assert load_photo(path, max_side=28).shape == (20, 28, 3)
    assert resize_long_side(photo, 100) is photo
    rng = np.random.default_rng(0)
    for size in (16, 32, 64):  # 64 is larger than the photo: upscaled
        crop = random_crop(photo, size, rng)
        assert crop.shape == (size, size, 3) and crop.dtype == np.float32
        assert 0 <= crop.min() <= crop.max() <= 1
    crop = random_crop(photo, 40, np.random.default_rng(3), hflip=False)  # short side 40: a 1:1 window
    assert any(np.allclose(crop, photo[:, x : x + 40] / 255.0) for x in range(17))


def test_whole_frames_squeeze_the_whole_photo_and_leave_other_runs_as_they_were():
    from xfix.data.dataset import Stage, make_batch, random_crop

    photo = np.zeros((40, 60, 3), np.uint8)
    photo[:, :15] = 255  # a white band at the left edge: a square window could miss it, the whole frame cannot
    whole = random_crop(photo, 32, np.random.default_rng(0), hflip=False, whole=True)
    assert whole.shape == (32, 32, 3) and whole[:, :6].min() > 0.99 and whole[:, 10:].max() < 0.01
    photos = [photo, 255 - photo]
    plain = make_batch(photos, Stage(24, 8), np.random.default_rng(5), "srgb")
    again = make_batch(photos, Stage(24, 8), np.random.default_rng(5), "srgb", whole_frames=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, again))  # 0 draws nothing: same pairs as before
    wholes = make_batch(photos, Stage(24, 8), np.random.default_rng(5), "srgb", whole_frames=1.0)
    assert not np.array_equal(wholes[1], plain[1])


def test_curriculum_stages():
    from xfix.data.dataset import Curriculum, Stage

    c = Curriculum((128, 256, 512), None, 16)
    assert c.stage_at(0.0) == Stage(128, 16) and c.stage_at(0.39) == Stage(128, 16)
    assert c.stage_at(0.5) == Stage(256, 8) and c.stage_at(0.8) == Stage(512, 4)
    assert c.stage_at(1.5) == Stage(512, 4)
    assert c.patch_for_step(500, 1000) == 256
    assert Curriculum((64, 128), None, 4).stage_at(0.6) == Stage(128, 2)
    with pytest.raises(ValueError, match="one fraction"):
        Curriculum((64, 128), (1.0,))


def test_batch_stream_same_for_any_worker_count(tmp_path):
    from xfix.data.dataset import Stage, batch_stream, list_photos, load_photos

    photos = load_photos(list_photos(_write_photos(tmp_path / "photos")))
    stage = Stage(24, 3)

    def take(workers: int, start: int, n: int):
        stream = batch_stream(photos, stage, seed=5, start_step=start, encoding="srgb", workers=workers)
        return [next(stream) for _ in range(n)]

    serial, parallel, resumed = take(0, 0, 4), take(2, 0, 4), take(0, 2, 2)
    for (a_in, a_t), (b_in, b_t) in zip(serial, parallel, strict=True):
        assert a_in.shape == (3, 3, 24, 24) and a_in.dtype == torch_float32()
        assert np.array_equal(a_in.numpy(), b_in.numpy()) and np.array_equal(a_t.numpy(), b_t.numpy())
    assert np.array_equal(serial[2][0].numpy(), resumed[0][0].numpy())  # step 2 is step 2 after a resume
    assert not np.array_equal(serial[0][0].numpy(), serial[1][0].numpy())


def torch_float32():
    import torch

    return torch.float32


def test_exposure_errors_include_well_exposed_pairs_and_respect_the_range():
    from xfix.data.synthesis import WELL_EXPOSED_EV, WELL_EXPOSED_SHARE, draw_ev

    rng = np.random.default_rng(0)
    evs = np.array([draw_ev(rng, (-3.0, 3.0)) for _ in range(4000)])
    near_zero = np.mean(np.abs(evs) <= WELL_EXPOSED_EV)
    expected = WELL_EXPOSED_SHARE + (1 - WELL_EXPOSED_SHARE) * WELL_EXPOSED_EV / 3.0
    assert abs(near_zero - expected) < 0.03 and evs.min() >= -3.0 and evs.max() <= 3.0
    only_bright = np.array([draw_ev(rng, (0.5, 3.0)) for _ in range(500)])
    assert only_bright.min() >= 0.5  # a range without 0 never yields well-exposed pairs
    all_well = np.array([draw_ev(rng, (-3.0, 3.0), well_share=1.0) for _ in range(500)])
    assert np.abs(all_well).max() <= WELL_EXPOSED_EV
    none_well = np.array([draw_ev(rng, (-3.0, 3.0), well_share=0.0) for _ in range(4000)])
    assert abs(np.mean(np.abs(none_well) <= WELL_EXPOSED_EV) - WELL_EXPOSED_EV / 3.0) < 0.02
    gap = np.array([draw_ev(rng, (-3.0, 3.0), well_share=0.3, min_misexposure=0.6) for _ in range(4000)])
    small = (np.abs(gap) > WELL_EXPOSED_EV) & (np.abs(gap) < 0.6)
    assert not small.any() and abs(np.mean(np.abs(gap) <= WELL_EXPOSED_EV) - 0.3) < 0.03
    assert abs(np.mean(gap > 0) - np.mean(gap < 0)) < 0.05 and gap.min() >= -3.0 and gap.max() <= 3.0
    bright = np.array([draw_ev(rng, (0.3, 3.0), well_share=0.0, min_misexposure=0.6) for _ in range(500)])
    assert bright.min() >= 0.6 and bright.max() <= 3.0
