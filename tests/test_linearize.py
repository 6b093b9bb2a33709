"""Linearize stage: which colour space is chosen, and the linear working-space values that come out."""

from __future__ import annotations

from pathlib import Path

import fixtures as fx
import numpy as np
import pytest

from xfix import colour
from xfix.decode import decode
from xfix.errors import UsageError
from xfix.frame import Decoded, SourceInfo
from xfix.icc import icc_profile
from xfix.linearize import detect_space, linearize


def _decoded(pixels, *, icc=None, exif_space=None, encoding=None, alpha=None) -> Decoded:
    h, w, c = pixels.shape
    bits = 32 if pixels.dtype == np.float32 else pixels.dtype.itemsize * 8
    info = SourceInfo(Path("mem.tif"), "tiff", bits, w, h, c, icc, exif_space)
    return Decoded(pixels, info, alpha, encoding)


# ---------------------------------------------------------------- choice of space


def test_prophoto_icc_tiff(tiff16_file):
    d = decode(tiff16_file)
    assert detect_space(d) == "prophoto"
    frame = linearize(d)
    # same primaries as the working space: only the ROMM curve is undone, no matrix
    expected = colour.prophoto_decode(fx.tiff_pixels().astype(np.float32) / 65535)
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-6)
    assert (
        frame.input_space == "prophoto"
        and frame.space == "linear-prophoto"
        and frame.pixels.dtype == np.float32
    )


def test_srgb_jpeg_from_exif(jpeg_file):
    d = decode(jpeg_file)
    assert detect_space(d) == "srgb"
    frame = linearize(d)
    expected = colour.to_working(d.pixels, "srgb")
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-6)
    assert frame.notes == ()


def test_exif_adobe_rgb(tmp_path):
    d = decode(fx.make_jpeg(tmp_path / "a.jpg", colour_space="adobergb"))
    assert detect_space(d) == "adobergb"
    assert linearize(d).input_space == "adobergb"


def test_untagged_jpeg_is_srgb(tmp_path):
    assert detect_space(decode(fx.make_jpeg(tmp_path / "a.jpg", exif=False))) == "srgb"


def test_icc_wins_over_exif(tmp_path):
    d = decode(fx.make_jpeg(tmp_path / "a.jpg", colour_space="srgb", icc="adobergb"))
    assert detect_space(d) == "adobergb"


@pytest.mark.parametrize(
    "override, expected", [("adobergb", "adobergb"), ("ProPhoto", "prophoto"), ("linear", "linear-srgb")]
)
def test_override_wins(jpeg_file, override, expected):
    d = decode(jpeg_file)
    assert detect_space(d, input_space=override) == expected
    assert linearize(d, input_space=override).input_space == expected


def test_unknown_override_lists_valid_names(jpeg_file):
    with pytest.raises(UsageError, match="valid: srgb, adobergb, prophoto"):
        linearize(decode(jpeg_file), input_space="rec2020")


def test_unrecognised_icc_falls_back_with_a_note():
    d = _decoded(np.zeros((2, 2, 3), np.uint8), icc=b"garbage" * 40, exif_space="adobergb")
    assert detect_space(d) == "adobergb"
    assert "embedded ICC profile not recognised" in linearize(d).notes


def test_float_tiff_defaults_to_linear_and_keeps_hdr(float_tiff_file):
    d = decode(float_tiff_file)
    assert detect_space(d) == "linear-srgb"
    frame = linearize(d)
    np.testing.assert_allclose(frame.pixels[:8, :8], 4.0, rtol=1e-5)  # neutral highlight above 1, not clipped
    expected = colour.convert_linear(fx.float_pixels(), "linear-srgb", "linear-prophoto")
    np.testing.assert_allclose(frame.pixels, expected, atol=1e-6)


def test_float_tiff_with_icc_uses_its_curve(tmp_path):
    d = decode(fx.make_float_tiff(tmp_path / "f.tif", space="srgb"))
    assert detect_space(d) == "srgb"
    expected = colour.convert_linear(colour.srgb_decode(fx.float_pixels()), "srgb", "prophoto")
    np.testing.assert_allclose(linearize(d).pixels, expected, atol=1e-5)


# ---------------------------------------------------------------- RAW


def test_raw_is_linear_prophoto_and_ignores_override(dng_file):
    d = decode(dng_file)
    frame = linearize(d, input_space="srgb")
    assert frame.input_space == "linear-prophoto" and any("ignored" in n for n in frame.notes)
    np.testing.assert_allclose(frame.pixels, d.pixels / np.float32(65535), atol=1e-7)
    grey = frame.pixels[fx.patch_centre("grey18")].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(grey, 0.18, rtol=0.02)


# ---------------------------------------------------------------- grey, alpha, values


def test_grey_becomes_three_equal_channels(grey_file):
    frame = linearize(decode(grey_file))
    assert frame.grey and frame.pixels.shape == (32, 40, 3)
    expected = colour.srgb_decode(fx.grey_pixels().astype(np.float32) / 255)
    for c in range(3):
        np.testing.assert_allclose(frame.pixels[..., c], expected, atol=1e-6)


@pytest.mark.parametrize("bits", [8, 16])
def test_alpha_becomes_float_zero_to_one(tmp_path, bits):
    frame = linearize(decode(fx.make_alpha_png(tmp_path / "a.png", bits=bits)))
    assert frame.alpha.dtype == np.float32 and not frame.grey
    expected = np.linspace(0, 1, fx.JPEG_SIZE[1], dtype=np.float32)
    np.testing.assert_allclose(frame.alpha[3], expected, atol=1 / 2**bits)


def test_known_value_srgb_128():
    frame = linearize(_decoded(np.full((1, 1, 3), 128, np.uint8), exif_space="srgb"))
    np.testing.assert_allclose(frame.pixels, 0.21586, atol=1e-5)


def test_srgb_red_lands_inside_prophoto():
    frame = linearize(_decoded(np.array([[[255, 0, 0]]], np.uint8)))
    np.testing.assert_allclose(frame.pixels[0, 0], [0.5293, 0.0984, 0.0169], atol=1e-3)


def test_chunked_rows_match_whole_image_conversion():
    rng = np.random.default_rng(3)
    px = rng.integers(0, 65535, (600, 7, 3), dtype=np.uint16)  # more rows than one chunk
    frame = linearize(_decoded(px, exif_space="adobergb"))
    np.testing.assert_allclose(frame.pixels, colour.to_working(px, "adobergb"), atol=1e-6)


def test_non_finite_floats_are_zeroed_and_noted():
    px = np.array([[[np.nan, np.inf, 0.5]]], np.float32)
    frame = linearize(_decoded(px))
    assert np.isfinite(frame.pixels).all() and "non-finite samples set to 0" in frame.notes


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(H, W, 1\|3\)"):
        linearize(_decoded(np.zeros((2, 2, 2), np.uint8)))


def test_icc_of_prophoto_on_synthetic_decoded():
    d = _decoded(np.zeros((1, 1, 3), np.uint16), icc=icc_profile("prophoto"), exif_space="srgb")
    assert detect_space(d) == "prophoto"
