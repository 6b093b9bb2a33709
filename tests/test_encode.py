"""Encode stage: decode what we wrote (Pillow, tifffile, OpenCV); check pixel values, ICC, alpha, errors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from xfix import colour, encode, icc
from xfix.errors import EncodeError
from xfix.frame import Frame, SourceInfo

MID_GREY = 0.18  # linear; sRGB-encoded 0.46135 -> 117.64 in 8 bit, 30234.6 in 16 bit


def _frame(pixels, *, alpha=None, grey=False, fmt="jpeg") -> Frame:
    h, w = pixels.shape[:2]
    source = SourceInfo(Path("in." + fmt), fmt, 8, w, h, 3)
    return Frame(np.asarray(pixels, np.float32), source, alpha=alpha, grey=grey)


def _grey_frame(value=MID_GREY, shape=(40, 50), **kwargs) -> Frame:
    return _frame(np.full(shape + (3,), value, np.float32), **kwargs)


def _read(data: bytes, fmt: str) -> tuple[np.ndarray, bytes | None]:
    """(samples as stored, channels in RGB(A) order; embedded ICC profile)."""
    if fmt == "tiff":
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            return page.asarray(), page.tags[34675].value if 34675 in page.tags else None
    icc_bytes = Image.open(io.BytesIO(data)).info.get("icc_profile")
    samples = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if samples.ndim == 3:
        samples = samples[..., [2, 1, 0, 3][: samples.shape[2]]]  # BGR(A) -> RGB(A)
    return samples, icc_bytes


@pytest.mark.parametrize("fmt,bits", [("jpeg", 8), ("tiff", 8), ("tiff", 16), ("png", 8), ("png", 16)])
def test_mid_grey_values_and_icc(fmt, bits):
    data = encode.encode(_grey_frame(), fmt=fmt, bits=bits, quality=95, output_space="srgb")
    samples, icc_bytes = _read(data, fmt)
    assert samples.dtype == (np.uint8 if bits == 8 else np.uint16) and samples.shape == (40, 50, 3)
    assert icc.identify_space(icc_bytes) == "srgb"
    if bits == 16:
        assert np.all(samples == 30235)  # 0.461354 * 65535 = 30234.8
    else:
        assert abs(samples.mean() - 117.64) < 0.3 and np.median(samples) == 118
        slack = 2 if fmt == "jpeg" else 0  # JPEG is lossy on top of the +-1 dither
        assert samples.min() >= 116 - slack and samples.max() <= 119 + slack


@pytest.mark.parametrize("space", ["adobergb", "prophoto"])
def test_other_output_spaces_use_their_transfer_and_profile(space):
    data = encode.encode(_grey_frame(), fmt="tiff", bits=16, output_space=space)
    samples, icc_bytes = _read(data, "tiff")
    expected = float(colour.encode_transfer(np.float32(MID_GREY), space)) * 65535
    assert np.abs(samples.astype(float) - expected).max() <= 1.0
    assert icc.identify_space(icc_bytes) == space


def test_colour_converted_to_output_primaries():
    # A saturated sRGB red expressed in the working space comes back as pure red in sRGB.
    red_working = colour.convert_linear(
        np.array([[[1.0, 0.0, 0.0]]], np.float32), "srgb", colour.WORKING_SPACE
    )
    data = encode.encode(_frame(np.broadcast_to(red_working, (8, 8, 3))), fmt="png", bits=16)
    samples, _ = _read(data, "png")
    assert np.all(samples[..., 0] >= 65534) and np.all(samples[..., 1:] <= 1)


def test_sixteen_bit_precision_of_a_ramp():
    encoded = np.linspace(0, 1, 1000, dtype=np.float32)
    linear = colour.convert_linear(
        colour.srgb_decode(np.repeat(encoded[None, :, None], 3, axis=2)), "srgb", colour.WORKING_SPACE
    )
    samples, _ = _read(encode.encode(_frame(linear), fmt="tiff", bits=16), "tiff")
    assert np.abs(samples[0, :, 1] / 65535 - encoded).max() < 2e-4


def test_clipping_hdr_and_nan():
    pixels = np.array([[[4.0, -1.0, np.nan], [np.inf, 0.0, 1.0]]], np.float32)
    samples, _ = _read(
        encode.encode(_frame(pixels), fmt="png", bits=16, output_space="linear-prophoto"), "png"
    )
    np.testing.assert_array_equal(samples[0], [[65535, 0, 0], [65535, 0, 65535]])


def test_dither_keeps_mean_and_is_deterministic():
    values = np.linspace(0.05, 0.95, 64, dtype=np.float32)
    ramp = np.repeat(
        np.repeat(values[None, :, None], 3, axis=2), 256, axis=0
    )  # encoded sRGB, 256 rows of a ramp
    frame = _frame(colour.convert_linear(colour.srgb_decode(ramp), "srgb", colour.WORKING_SPACE))
    dithered = encode.quantize(frame, bits=8, output_space="srgb", grey=False, dither_seed=7).astype(float)
    plain = encode.quantize(frame, bits=8, output_space="srgb", grey=False, dither_seed=None).astype(float)
    column_means = dithered.mean(axis=(0, 2))
    assert np.abs(column_means - values * 255).max() < 0.1  # rounding alone errs up to 0.5
    assert np.abs(plain.mean(axis=(0, 2)) - values * 255).max() > 0.2
    assert dithered.std(axis=0).mean() > 0.3  # it is dithered at all
    np.testing.assert_array_equal(
        dithered, encode.quantize(frame, bits=8, output_space="srgb", grey=False, dither_seed=7)
    )


def test_pure_black_and_white_stay_exact_with_dither():
    samples = encode.quantize(_grey_frame(0.0), bits=8, output_space="srgb", grey=False)
    assert np.all(samples == 0)
    assert np.all(encode.quantize(_grey_frame(1.0), bits=8, output_space="srgb", grey=False) == 255)


@pytest.mark.parametrize("fmt,bits", [("tiff", 8), ("tiff", 16), ("png", 8), ("png", 16)])
def test_alpha_is_kept(fmt, bits):
    alpha = np.tile(np.linspace(0, 1, 50, dtype=np.float32), (40, 1))
    samples, _ = _read(encode.encode(_grey_frame(alpha=alpha), fmt=fmt, bits=bits), fmt)
    assert samples.shape == (40, 50, 4)
    top = 2**bits - 1
    np.testing.assert_array_equal(samples[..., 3], np.rint(alpha * top))


def test_alpha_dropped_for_jpeg():
    samples, _ = _read(
        encode.encode(_grey_frame(alpha=np.ones((40, 50), np.float32)), fmt="jpeg", bits=8), "jpeg"
    )
    assert samples.shape == (40, 50, 3)


@pytest.mark.parametrize("fmt,bits", [("tiff", 16), ("png", 8), ("png", 16)])
def test_grey_written_as_one_channel_with_grey_profile(fmt, bits):
    data = encode.encode(_grey_frame(grey=True), fmt=fmt, bits=bits)
    samples, icc_bytes = _read(data, fmt)
    assert samples.ndim == 2
    assert icc_bytes[16:20] == b"GRAY" and icc.identify_space(icc_bytes) == "srgb"
    assert abs(samples.mean() / (2**bits - 1) - 0.46135) < 2e-3


def test_jpeg_quality_and_subsampling():
    rng = np.random.default_rng(0)
    frame = _frame(rng.random((64, 64, 3), dtype=np.float32))
    high = encode.encode(frame, fmt="jpeg", bits=8, quality=95)
    low = encode.encode(frame, fmt="jpeg", bits=8, quality=60)
    assert len(low) < len(high)
    from PIL import JpegImagePlugin

    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(high))) == 0  # 4:4:4
    assert JpegImagePlugin.get_sampling(Image.open(io.BytesIO(low))) == 2  # 4:2:0


def test_png_iccp_chunk_is_after_ihdr_with_valid_crc():
    data = encode.encode(_grey_frame(), fmt="png", bits=16, output_space="prophoto")
    length = struct.unpack_from(">I", data, 33)[0]
    assert data[37:41] == b"iCCP"
    body = data[41 : 41 + length]
    assert struct.unpack_from(">I", data, 41 + length)[0] == zlib.crc32(b"iCCP" + body)
    name, rest = body.split(b"\0", 1)
    assert rest[0] == 0 and zlib.decompress(rest[1:]) == icc.icc_profile("prophoto")


def test_large_frame_is_processed_in_chunks(monkeypatch):
    monkeypatch.setattr(
        encode, "_CHUNK_PIXELS", 100
    )  # many chunks on a small frame: same result as one chunk
    rng = np.random.default_rng(3)
    frame = _frame(rng.random((37, 20, 3), dtype=np.float32))
    chunked = encode.quantize(frame, bits=16, output_space="srgb", grey=False)
    monkeypatch.setattr(encode, "_CHUNK_PIXELS", 1 << 20)
    np.testing.assert_array_equal(chunked, encode.quantize(frame, bits=16, output_space="srgb", grey=False))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"fmt": "jpeg", "bits": 16}, "8 bits"),
        ({"fmt": "tiff", "bits": 12}, "bit depth"),
        ({"fmt": "bmp", "bits": 8}, "valid"),
        ({"fmt": "png", "bits": 8, "output_space": "rec2020"}, "valid"),
        ({"fmt": "jpeg", "bits": 8, "quality": 0}, "quality"),
    ],
)
def test_bad_requests_raise_encode_error(kwargs, match):
    with pytest.raises(EncodeError, match=match):
        encode.encode(_grey_frame(), **kwargs)


def test_format_helpers():
    assert encode.resolve_format("same", "jpeg") == "jpeg"
    assert encode.resolve_format("same", "png") == "png"
    assert encode.resolve_format("same", "raw") == "tiff"
    assert encode.resolve_format("same", "tiff") == "tiff"
    assert encode.resolve_format("JPG", "raw") == "jpeg"
    assert [encode.default_bits(f) for f in ("jpeg", "tiff", "png")] == [8, 16, 16]
    assert [encode.output_extension(f) for f in ("jpeg", "tiff", "png")] == [".jpg", ".tif", ".png"]
    with pytest.raises(EncodeError):
        encode.resolve_format("gif", "jpeg")
