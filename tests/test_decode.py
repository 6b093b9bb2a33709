"""Decode stage: each supported format from generated fixtures; pixel values, tags, orientation, bad input."""

from __future__ import annotations

import os
import time

import fixtures as fx
import numpy as np
import pytest
from PIL import Image, ImageOps

from xfix import colour
from xfix import decode as decode_module
from xfix.decode import decode
from xfix.errors import DecodeError, InputError
from xfix.headers import apply_orientation, exif_colour_space
from xfix.icc import icc_profile

# ---------------------------------------------------------------- JPEG


def test_jpeg_orientation_6_is_rotated_clockwise(jpeg_file):
    d = decode(jpeg_file)
    h, w = fx.JPEG_SIZE
    assert d.pixels.shape == (w, h, 3) and d.pixels.dtype == np.uint8
    # the stored top-left MARK block is displayed top-right
    np.testing.assert_allclose(d.pixels[1:7, -7:-1].mean(axis=(0, 1)), fx.MARK, atol=6)
    assert abs(int(d.pixels[2, 2, 0]) - fx.MARK[0]) > 100
    expected = np.rot90(fx.jpeg_pixels(), -1).astype(np.float32)
    assert np.abs(d.pixels.astype(np.float32) - expected).mean() < 2.0  # JPEG at quality 95
    s = d.source
    assert (s.format, s.bit_depth, s.width, s.height, s.channels, s.orientation) == ("jpeg", 8, h, w, 3, 6)
    assert s.exif_colour_space == "srgb" and s.icc is None and d.encoding is None and d.alpha is None


def test_jpeg_without_exif_is_not_rotated(tmp_path):
    d = decode(fx.make_jpeg(tmp_path / "plain.jpg", exif=False))
    assert d.pixels.shape == (*fx.JPEG_SIZE, 3)
    assert d.source.orientation == 1 and d.source.exif_colour_space is None


def test_jpeg_adobe_exif_and_icc(tmp_path):
    d = decode(fx.make_jpeg(tmp_path / "a.jpg", colour_space="adobergb", icc="prophoto", orientation=1))
    assert d.source.exif_colour_space == "adobergb"
    assert d.source.icc == icc_profile("prophoto")


def test_multi_picture_jpeg_gives_the_main_picture(tmp_path):
    # Many cameras write MPO (a JPEG followed by more JPEGs); Pillow calls it "MPO", not "JPEG".
    main, extra = Image.fromarray(fx.jpeg_pixels()), Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    main.save(tmp_path / "m.jpg", format="MPO", save_all=True, append_images=[extra], exif=exif.tobytes())
    d = decode(tmp_path / "m.jpg")
    assert d.pixels.shape == (64, 48, 3) and d.source.orientation == 6 and d.source.format == "jpeg"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_agrees_with_pillow(orientation):
    rng = np.random.default_rng(orientation)
    px = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(px)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(px, orientation), expected)


@pytest.mark.parametrize(
    "value, interop, expected",
    [
        (1, None, "srgb"),
        (65535, "R03", "adobergb"),
        (65535, "R98", None),
        (65535, None, None),
        (2, None, "adobergb"),
        (None, None, None),
    ],
)
def test_exif_colour_space(value, interop, expected):
    assert exif_colour_space(value, interop) == expected


def test_fixture_metadata_is_really_written(jpeg_file, dng_file):
    # other stages' tests rely on these tags being present in the generated sources
    import exifread

    with open(jpeg_file, "rb") as f:
        tags = {k: str(v) for k, v in exifread.process_file(f, details=False).items()}
    assert tags["Image Make"] == "XfixCam" and tags["EXIF ExposureTime"] == "1/125"
    assert tags["EXIF LensModel"] == "Xfix 35mm F2" and tags["GPS GPSLatitudeRef"] == "N"
    assert tags["Image Orientation"].startswith("Rotated 90 CW")
    import pyexiv2

    with pyexiv2.Image(str(jpeg_file)) as img:
        assert img.read_xmp()["Xmp.dc.creator"] == fx.XMP_TAGS["Xmp.dc.creator"]
        assert img.read_iptc()["Iptc.Application2.Keywords"] == fx.IPTC_TAGS["Iptc.Application2.Keywords"]
    with pyexiv2.Image(str(dng_file)) as img:
        exif = img.read_exif()
    assert exif["Exif.Photo.ExposureTime"] == "1/125" and exif["Exif.Image.Model"] == "Synthetic DNG"


# ---------------------------------------------------------------- TIFF


def test_tiff16_prophoto_exact(tiff16_file):
    d = decode(tiff16_file)
    np.testing.assert_array_equal(d.pixels, fx.tiff_pixels())
    assert d.pixels.dtype == np.uint16 and d.source.bit_depth == 16 and d.source.format == "tiff"
    assert d.source.icc == icc_profile("prophoto")


def test_tiff_planar_with_alpha_and_orientation(tmp_path):
    h, w = fx.TIFF_SIZE
    alpha = fx.alpha_ramp(h, w, np.uint16)
    d = decode(fx.make_tiff16(tmp_path / "p.tif", alpha=alpha, planar=True, orientation=6))
    np.testing.assert_array_equal(d.pixels, np.rot90(fx.tiff_pixels(), -1))
    np.testing.assert_array_equal(d.alpha, np.rot90(alpha, -1))
    assert (
        d.source.channels == 4 and d.source.orientation == 6 and (d.source.width, d.source.height) == (h, w)
    )


@pytest.mark.parametrize("extrasamples,alpha_at", [((2, 0), 3), ((0, 1), 4), ((0,), None)])
def test_tiff_alpha_is_the_extra_sample_tagged_alpha(tmp_path, extrasamples, alpha_at):
    """ExtraSamples 1/2 are alpha; 0 ("unspecified", e.g. a mask or depth) is not transparency."""
    import tifffile

    rgb = fx.tiff_pixels()
    extra = [fx.alpha_ramp(*rgb.shape[:2], np.uint16), np.full(rgb.shape[:2], 7, np.uint16)]
    samples = np.concatenate([rgb, *(e[..., None] for e in extra[: len(extrasamples)])], axis=-1)
    path = tmp_path / "extra.tif"
    tifffile.imwrite(path, samples, photometric="rgb", extrasamples=extrasamples, metadata=None)
    d = decode(path)
    np.testing.assert_array_equal(d.pixels, rgb)
    if alpha_at is None:
        assert d.alpha is None
    else:
        np.testing.assert_array_equal(d.alpha, samples[..., alpha_at])


def test_lzw_tiff_reads_or_says_what_is_missing(tmp_path):
    path = fx.make_tiff16(tmp_path / "lzw.tif", lzw=True, orientation=6)
    try:
        import imagecodecs  # noqa: F401  (tifffile's optional codecs)
    except ImportError:
        assert "install the imagecodecs package" in _decode_error(path)
        return
    d = decode(path)
    np.testing.assert_array_equal(d.pixels, np.rot90(fx.tiff_pixels(), -1))
    assert d.source.icc == icc_profile("prophoto")


@pytest.mark.parametrize("bits", [32, 16])
def test_float_tiff_keeps_values_above_one(tmp_path, bits):
    d = decode(fx.make_float_tiff(tmp_path / "f.tif", bits=bits))
    assert d.pixels.dtype == np.float32 and d.source.bit_depth == 32
    np.testing.assert_allclose(d.pixels, fx.float_pixels(), rtol=1e-3 if bits == 16 else 0)
    assert d.pixels.max() == pytest.approx(4.0)


# ---------------------------------------------------------------- PNG and grey


def test_png16_is_16_bit_rgb_order(png16_file):
    d = decode(png16_file)
    np.testing.assert_array_equal(d.pixels, fx.tiff_pixels())  # R first: OpenCV's BGR has been undone
    assert d.source.bit_depth == 16 and d.source.format == "png" and d.alpha is None


def test_png16_with_alpha_and_icc(tmp_path):
    alpha = fx.alpha_ramp(*fx.TIFF_SIZE, np.uint16)
    d = decode(fx.make_png16(tmp_path / "a.png", alpha=alpha, icc="adobergb"))
    np.testing.assert_array_equal(d.pixels, fx.tiff_pixels())
    np.testing.assert_array_equal(d.alpha, alpha)
    assert d.source.icc == icc_profile("adobergb") and d.source.channels == 4


@pytest.mark.parametrize("bits", [8, 16])
def test_alpha_png(tmp_path, bits):
    d = decode(fx.make_alpha_png(tmp_path / "a.png", bits=bits))
    dtype = np.uint8 if bits == 8 else np.uint16
    np.testing.assert_array_equal(d.alpha, fx.alpha_ramp(*fx.JPEG_SIZE, dtype))
    np.testing.assert_array_equal(d.pixels, fx.jpeg_pixels().astype(dtype) * (1 if bits == 8 else 257))


@pytest.mark.parametrize(
    "fmt, ext", [("jpeg", "jpg"), ("png", "png"), ("png16", "png"), ("tiff", "tif"), ("tiff16", "tif")]
)
def test_grey(tmp_path, fmt, ext):
    d = decode(fx.make_grey(tmp_path / f"g.{ext}", fmt))
    dtype = np.uint16 if fmt.endswith("16") else np.uint8
    assert d.pixels.shape == (32, 40, 1) and d.pixels.dtype == dtype and d.source.channels == 1
    tolerance = 2 if fmt == "jpeg" else 0
    np.testing.assert_allclose(d.pixels[..., 0], fx.grey_pixels(dtype=dtype), atol=tolerance)


# ---------------------------------------------------------------- DNG


def _patch(pixels, name):
    return pixels[fx.patch_centre(name)].reshape(-1, 3).mean(axis=0) / 65535


def test_dng_decodes_to_linear_prophoto_with_camera_white_balance(dng_file):
    d = decode(dng_file)
    assert (
        d.encoding == "linear-prophoto"
        and d.pixels.dtype == np.uint16
        and d.pixels.shape == (*fx.DNG_SIZE, 3)
    )
    assert d.source.format == "raw" and d.source.bit_depth == 16
    grey, bright = _patch(d.pixels, "grey18"), _patch(d.pixels, "grey50")
    np.testing.assert_allclose(grey, 0.18, rtol=0.02)  # neutral after white balance, exposure as shot
    np.testing.assert_allclose(bright, 0.5, rtol=0.02)
    np.testing.assert_allclose(_patch(d.pixels, "white"), 0.9, rtol=0.02)  # not stretched to full scale
    for name in ("red", "green", "blue"):
        expected = colour.convert_linear(np.array([fx.DNG_PATCHES[name][4]], np.float32), "srgb", "prophoto")[
            0
        ]
        np.testing.assert_allclose(_patch(d.pixels, name), expected, atol=0.01)


def test_dng_exposure_and_orientation(tmp_path):
    d = decode(fx.make_dng(tmp_path / "r.dng", exposure=0.25, orientation=6))
    h, w = fx.DNG_SIZE
    assert d.pixels.shape == (w, h, 3) and d.source.orientation == 6
    stored = np.rot90(d.pixels, 1)  # undo the clockwise turn to find the patches where they were recorded
    np.testing.assert_allclose(_patch(stored, "grey50"), 0.125, rtol=0.03)


# ---------------------------------------------------------------- bad input


def _decode_error(path, **kwargs):
    with pytest.raises(DecodeError) as info:
        decode(path, **kwargs)
    err = info.value
    assert "\n" not in str(err) and str(path) in str(err) and err.__cause__ is None
    return err.message


def test_empty_file(tmp_path):
    assert _decode_error(fx.make_empty(tmp_path / "e.jpg")) == "file is empty"


@pytest.mark.parametrize(
    "make, name, label",
    [
        (fx.make_jpeg, "x.jpg", "JPEG"),
        (fx.make_tiff16, "x.tif", "TIFF"),
        (fx.make_dng, "x.dng", "DNG"),
        (fx.make_png16, "x.png", "PNG"),
    ],
)
@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated(tmp_path, make, name, label, keep):
    source = make(tmp_path / name)
    message = _decode_error(fx.make_truncated(source, tmp_path / f"t-{name}", keep))
    assert message.startswith(f"truncated or corrupt {label}")


def test_truncated_raw_is_caught_by_libraw_too(tmp_path, monkeypatch):
    # Raws with data in sub-IFDs or non-TIFF containers skip the strip check: LibRaw must catch them.
    monkeypatch.setattr(decode_module, "_check_raw_tiff", lambda *args, **kwargs: None)
    truncated = fx.make_truncated(fx.make_dng(tmp_path / "r.dng"), tmp_path / "t.dng", 0.6)
    assert _decode_error(truncated) == "truncated or corrupt DNG file"


def test_garbage_behind_a_tiff_signature_named_nef(tmp_path):
    (tmp_path / "g.nef").write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    message = _decode_error(tmp_path / "g.nef")
    assert message.startswith(("not a supported raw file", "truncated or corrupt NEF"))


def test_text_named_jpg(tmp_path):
    assert (
        _decode_error(fx.make_text_as_jpg(tmp_path / "notes.jpg")) == "not an image: the file contains text"
    )


def test_text_named_dng(tmp_path):
    assert (
        _decode_error(fx.make_text_as_jpg(tmp_path / "notes.dng")) == "not an image: the file contains text"
    )


def test_binary_garbage_and_other_formats(tmp_path):
    (tmp_path / "x.png").write_bytes(bytes(range(256)) * 4)
    assert _decode_error(tmp_path / "x.png") == "not an image: unrecognised file signature"
    (tmp_path / "y.jpg").write_bytes(b"GIF89a" + bytes(100))
    assert "GIF" in _decode_error(tmp_path / "y.jpg")
    (tmp_path / "z.nef").write_bytes(bytes(range(256)) * 4)
    assert "not a supported raw file" in _decode_error(tmp_path / "z.nef")


def test_png_bomb_fails_fast_from_its_header(tmp_path):
    start = time.perf_counter()
    message = _decode_error(fx.make_png_bomb_header(tmp_path / "bomb.png"))
    assert time.perf_counter() - start < 0.5
    assert message == "image is 10000 MP, over the --max-megapixels limit of 200"


def test_max_megapixels_message_shows_the_size_over_the_limit(tmp_path):
    path = tmp_path / "u.png"
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(path)  # 0.12 MP
    limit = "over the --max-megapixels limit of"
    assert _decode_error(path, max_megapixels=0.1) == f"image is 0.12 MP, {limit} 0.1"
    assert _decode_error(path, max_megapixels=0.11999) == f"image is 0.12 MP, {limit} 0.11999"
    assert _decode_error(path, max_megapixels=0.05) == f"image is 0.1 MP, {limit} 0.05"


@pytest.mark.parametrize("make", [fx.make_jpeg, fx.make_tiff16, fx.make_dng, fx.make_png16])
def test_max_megapixels_applies_to_every_format(tmp_path, make):
    message = _decode_error(make(tmp_path), max_megapixels=0.001)
    assert "over the --max-megapixels limit of 0.001" in message


def test_pillow_bomb_limit_does_not_override_ours(jpeg_file, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse 48x64 as a bomb
    assert decode(jpeg_file).pixels.shape == (64, 48, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_signature_wins_over_extension(tmp_path):
    fx.make_jpeg(tmp_path / "a.jpg", exif=False)
    (tmp_path / "a.jpg").rename(tmp_path / "a.png")
    assert decode(tmp_path / "a.png").source.format == "jpeg"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_being_opened(tmp_path):
    with fx.fifo_with_standby_writer(tmp_path / "pipe.jpg") as fifo:
        with pytest.raises(InputError, match=r"not a regular file \(a FIFO\)"):
            decode(fifo)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        decode(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a directory"):
        decode(tmp_path)


def test_permission_denied_is_an_input_error(jpeg_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode_module, "open", refuse, raising=False)  # works as root, unlike chmod
    with pytest.raises(InputError, match="permission denied"):
        decode(jpeg_file)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(jpeg_file):
    jpeg_file.chmod(0)
    try:
        with pytest.raises(InputError, match="permission denied"):
            decode(jpeg_file)
    finally:
        jpeg_file.chmod(0o644)
