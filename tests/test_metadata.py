"""Metadata stage: tags copied from generated JPEG, TIFF and DNG sources into JPEG, TIFF, PNG outputs."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import fixtures
import numpy as np
import pytest
import tifffile
from PIL import Image

from xfix import encode, icc, metadata
from xfix.frame import Frame, SourceInfo

pyexiv2 = pytest.importorskip("pyexiv2")

OUTPUTS = [("jpeg", 8), ("tiff", 16), ("png", 16), ("png", 8)]
SOFTWARE = "xfix 0.1.0"


def _encoded(fmt: str, bits: int, space: str = "srgb", shape=(30, 40)) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.random(shape + (3,), dtype=np.float32) * 0.5
    frame = Frame(pixels, SourceInfo(Path("in.jpg"), "jpeg", 8, shape[1], shape[0], 3))
    return encode.encode(frame, fmt=fmt, bits=bits, output_space=space)


def _pixels(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "tiff":
        return tifffile.imread(io.BytesIO(data))
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def _tags(data: bytes) -> tuple[dict, dict, dict, bytes, bytes]:
    """(exif, xmp, iptc, thumbnail, icc) of encoded bytes."""
    image = pyexiv2.ImageData(data)
    try:
        return (
            image.read_exif(),
            image.read_xmp(),
            image.read_iptc(),
            image.read_thumbnail(),
            image.read_icc(),
        )
    finally:
        image.close()


@pytest.fixture
def rich_jpeg(tmp_path) -> Path:
    """The shared EXIF JPEG (camera, exposure, GPS, Orientation 6, XMP creator, IPTC keywords) plus a
    thumbnail, XMP orientation/GPS and Camera Raw settings."""
    path = fixtures.make_jpeg(tmp_path / "photo.jpg")
    thumbnail = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 10, 10)).save(thumbnail, "JPEG")
    with pyexiv2.Image(str(path)) as image:
        image.modify_thumbnail(thumbnail.getvalue())
        image.modify_xmp(
            {
                "Xmp.tiff.Orientation": "6",
                "Xmp.exif.GPSLatitude": "48,51.494N",
                "Xmp.crs.Exposure2012": "+1.50",
            }
        )
    with pyexiv2.Image(str(path)) as image:
        assert len(image.read_thumbnail()) > 0  # the fixture really has one to drop
    return path


@pytest.mark.parametrize("fmt,bits", OUTPUTS)
def test_jpeg_metadata_survives_into_every_format(rich_jpeg, fmt, bits):
    encoded = _encoded(fmt, bits)
    data, warnings = metadata.copy_metadata(rich_jpeg, encoded, fmt=fmt, strip_gps=False, software=SOFTWARE)
    assert warnings == []
    exif, xmp, iptc, thumbnail, profile = _tags(data)
    for key, value in fixtures.JPEG_TAGS.items():
        assert exif[key] == value, key
    for key, value in fixtures.GPS_TAGS.items():
        assert exif[key] == value, key
    assert exif["Exif.Image.Orientation"] == "1" and exif["Exif.Image.Software"] == SOFTWARE
    assert exif["Exif.Photo.ColorSpace"] == "1"
    assert not any(key.startswith("Exif.Thumbnail.") for key in exif) and thumbnail == b""
    assert xmp["Xmp.dc.creator"] == ["Xfix Tester"] and xmp["Xmp.tiff.Orientation"] == "1"
    assert xmp["Xmp.exif.GPSLatitude"] == "48,51.494N"
    assert not any(key.startswith("Xmp.crs.") for key in xmp)  # Lightroom would re-apply them
    assert iptc["Iptc.Application2.Keywords"] == ["exposure", "test"]
    assert icc.identify_space(profile) == "srgb"
    np.testing.assert_array_equal(_pixels(data, fmt), _pixels(encoded, fmt))


@pytest.mark.parametrize("fmt,bits", [("jpeg", 8), ("tiff", 16), ("png", 16)])
def test_strip_gps_removes_exif_and_xmp_location(rich_jpeg, fmt, bits):
    data, warnings = metadata.copy_metadata(
        rich_jpeg, _encoded(fmt, bits), fmt=fmt, strip_gps=True, software=SOFTWARE
    )
    exif, xmp, *_ = _tags(data)
    assert warnings == []
    assert not any("GPS" in key for key in exif) and not any("GPS" in key for key in xmp)
    assert exif["Exif.Image.Make"] == "XfixCam"  # everything else is still there


@pytest.mark.parametrize("fmt,bits", [("tiff", 16), ("jpeg", 8), ("png", 16)])
def test_dng_source_keeps_photo_facts_but_no_raw_structure(tmp_path, fmt, bits):
    dng = fixtures.make_dng(tmp_path / "raw.dng")
    encoded = _encoded(fmt, bits, space="prophoto")
    data, warnings = metadata.copy_metadata(
        dng, encoded, fmt=fmt, strip_gps=False, software=SOFTWARE, output_space="prophoto"
    )
    assert warnings == []
    exif, xmp, *_ = _tags(data)
    assert exif["Exif.Image.Make"] == "XfixCam" and exif["Exif.Photo.ExposureTime"] == "1/125"
    assert xmp["Xmp.dc.creator"] == ["Xfix Tester"]
    assert exif["Exif.Photo.ColorSpace"] == "65535"  # uncalibrated: not sRGB
    for tag in (
        "DNGVersion",
        "UniqueCameraModel",
        "ColorMatrix1",
        "AsShotNeutral",
        "BlackLevel",
        "WhiteLevel",
        "CFAPattern",
        "CFARepeatPatternDim",
        "CalibrationIlluminant1",
    ):
        assert f"Exif.Image.{tag}" not in exif, tag
    if fmt == "tiff":  # the output's own layout, not the DNG's
        assert exif["Exif.Image.ImageWidth"] == "40" and exif["Exif.Image.PhotometricInterpretation"] == "2"
        assert exif["Exif.Image.BitsPerSample"] == "16 16 16"
    else:
        assert not any(k in exif for k in ("Exif.Image.ImageWidth", "Exif.Image.BitsPerSample"))
    np.testing.assert_array_equal(_pixels(data, fmt), _pixels(encoded, fmt))
    assert icc.identify_space(_tags(data)[4]) == "prophoto"


def test_tiff_source_with_its_own_icc_and_strips_does_not_leak_into_tiff_output(tmp_path):
    source = fixtures.make_tiff16(tmp_path / "src.tif", "adobergb")  # 40x56, own strips and ICC
    encoded = _encoded("tiff", 16, space="srgb", shape=(30, 40))
    data, warnings = metadata.copy_metadata(source, encoded, fmt="tiff", strip_gps=False, software=SOFTWARE)
    assert warnings == []
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        assert page.shape == (30, 40, 3)
        assert icc.identify_space(page.tags[34675].value) == "srgb"
        assert page.tags["Make"].value == "XfixCam" and page.tags["Orientation"].value == 1
        np.testing.assert_array_equal(page.asarray(), _pixels(encoded, "tiff"))


def test_tiff_ep_exposure_tags_move_to_the_exif_ifd(tmp_path):
    source = tmp_path / "ep.tif"
    tifffile.imwrite(source, np.zeros((8, 8, 3), np.uint8), photometric="rgb", metadata=None)
    fixtures.write_tags(
        source,
        {
            "Exif.Image.Make": "OldCam",
            "Exif.Image.ExposureTime": "1/60",
            "Exif.Image.FNumber": "4/1",
            "Exif.Image.SubIFDs": "8",
        },
    )
    data, warnings = metadata.copy_metadata(
        source, _encoded("jpeg", 8), fmt="jpeg", strip_gps=False, software=SOFTWARE
    )
    exif = _tags(data)[0]
    assert exif["Exif.Photo.ExposureTime"] == "1/60" and exif["Exif.Photo.FNumber"] == "4/1"
    assert "Exif.Image.SubIFDs" not in exif and "Exif.Image.ExposureTime" not in exif


@pytest.mark.parametrize(
    "space,colour_space,interop",
    [("srgb", "1", "R98"), ("adobergb", "65535", "R03"), ("prophoto", "65535", None)],
)
def test_colour_space_tags_follow_the_output(tmp_path, space, colour_space, interop):
    source = fixtures.make_jpeg(tmp_path / "adobe.jpg", colour_space="adobergb")  # ColorSpace 65535, R03
    data, _ = metadata.copy_metadata(
        source,
        _encoded("jpeg", 8, space=space),
        fmt="jpeg",
        strip_gps=False,
        software=SOFTWARE,
        output_space=space,
    )
    exif = _tags(data)[0]
    assert exif["Exif.Photo.ColorSpace"] == colour_space
    assert exif.get("Exif.Iop.InteroperabilityIndex") == interop


def test_adobe_output_is_flagged_r03_even_from_an_srgb_source(tmp_path):
    source = fixtures.make_jpeg(tmp_path / "srgb.jpg", colour_space="srgb")
    data, _ = metadata.copy_metadata(
        source,
        _encoded("jpeg", 8, space="adobergb"),
        fmt="jpeg",
        strip_gps=False,
        software=SOFTWARE,
        output_space="adobergb",
    )
    exif = _tags(data)[0]
    assert exif["Exif.Photo.ColorSpace"] == "65535" and exif["Exif.Iop.InteroperabilityIndex"] == "R03"


def test_source_without_metadata_is_fine(tmp_path):
    source = fixtures.make_jpeg(tmp_path / "bare.jpg", exif=False)
    data, warnings = metadata.copy_metadata(
        source, _encoded("png", 16), fmt="png", strip_gps=False, software=SOFTWARE
    )
    assert warnings == []
    exif, xmp, iptc, _, profile = _tags(data)
    assert exif["Exif.Image.Software"] == SOFTWARE and "Exif.Image.Make" not in exif
    assert icc.identify_space(profile) == "srgb"


@pytest.mark.parametrize("kind", ["text", "empty", "missing"])
def test_unreadable_source_is_a_warning_not_a_failure(tmp_path, kind):
    source = {
        "text": lambda: fixtures.make_text_as_jpg(tmp_path / "notes.jpg"),
        "empty": lambda: fixtures.make_empty(tmp_path / "empty.jpg"),
        "missing": lambda: tmp_path / "missing.jpg",
    }[kind]()
    encoded = _encoded("jpeg", 8)
    data, warnings = metadata.copy_metadata(source, encoded, fmt="jpeg", strip_gps=False, software=SOFTWARE)
    assert len(warnings) == 1 and str(source) in warnings[0] and "not copied" in warnings[0]
    np.testing.assert_array_equal(_pixels(data, "jpeg"), _pixels(encoded, "jpeg"))
    assert _tags(data)[0]["Exif.Image.Software"] == SOFTWARE  # the output is still stamped


def test_garbage_encoded_bytes_come_back_unchanged_with_a_warning(rich_jpeg):
    data, warnings = metadata.copy_metadata(
        rich_jpeg, b"not an image", fmt="jpeg", strip_gps=False, software=SOFTWARE
    )
    assert data == b"not an image" and len(warnings) == 1 and str(rich_jpeg) in warnings[0]


def test_maker_notes_are_dropped_with_a_warning_when_they_do_not_fit(rich_jpeg, monkeypatch):
    real_attempt = metadata._attempt

    def attempt(*args, maker_notes, **kwargs):
        if maker_notes:  # what exiv2 does when APP1 would exceed 64 KB
            raise RuntimeError("Size of Exif data exceeds JPEG segment size limit")
        return real_attempt(*args, maker_notes=maker_notes, **kwargs)

    monkeypatch.setattr(metadata, "_attempt", attempt)
    data, warnings = metadata.copy_metadata(
        rich_jpeg, _encoded("jpeg", 8), fmt="jpeg", strip_gps=False, software=SOFTWARE
    )
    assert len(warnings) == 1 and "maker notes dropped" in warnings[0] and "64" not in warnings[0][:5]
    assert _tags(data)[0]["Exif.Image.Make"] == "XfixCam"


@pytest.mark.parametrize(
    "key,strip_gps,kept",
    [
        ("Exif.Image.Make", False, True),
        ("Exif.Image.StripOffsets", False, False),
        ("Exif.Image.DNGVersion", False, False),
        ("Exif.Image.InterColorProfile", False, False),
        ("Exif.Thumbnail.JPEGInterchangeFormat", False, False),
        ("Exif.SubImage1.ImageWidth", False, False),
        ("Exif.Photo.ExposureTime", True, True),
        ("Exif.GPSInfo.GPSLatitude", False, True),
        ("Exif.GPSInfo.GPSLatitude", True, False),
        ("Exif.Image.GPSTag", True, False),
        ("Exif.Canon.LensModel", False, True),
        ("Exif.NikonPreview.JPEGInterchangeFormat", False, False),
        ("Exif.Olympus.ThumbnailImage", False, False),
    ],
)
def test_keep_exif_key(key, strip_gps, kept):
    assert metadata.keep_exif_key(key, strip_gps=strip_gps) is kept


def test_read_exposure_known_values(jpeg_file):
    facts = metadata.read_exposure(jpeg_file)
    assert facts["exposure_time"] == pytest.approx(1 / 125) and facts["f_number"] == pytest.approx(5.6)
    assert facts["iso"] == 400 and facts["exposure_bias"] == pytest.approx(-2 / 3)
    assert facts["camera"] == "XfixCam Model One" and facts["lens"] == "Xfix 35mm F2"
    assert facts["datetime"] == "2024:05:01 10:20:30"


def test_read_exposure_of_garbage_is_all_none(tmp_path):
    facts = metadata.read_exposure(fixtures.make_text_as_jpg(tmp_path / "x.jpg"))
    assert set(facts) == {"exposure_time", "f_number", "iso", "exposure_bias", "camera", "lens", "datetime"}
    assert all(value is None for value in facts.values())


def test_latin1_text_does_not_break_the_copy(tmp_path):
    source = fixtures.make_jpeg(tmp_path / "old.jpg", exif=False)
    with pyexiv2.Image(str(source)) as image:
        image.modify_exif({"Exif.Image.Artist": "Jürgen Müller"}, encoding="latin-1")
    data, warnings = metadata.copy_metadata(
        source, _encoded("jpeg", 8), fmt="jpeg", strip_gps=False, software=SOFTWARE
    )
    assert warnings == []
    image = pyexiv2.ImageData(data)
    assert (
        image.read_exif(encoding="latin-1")["Exif.Image.Artist"] == "Jürgen Müller"
    )  # bytes kept as they were
    image.close()


def test_a_file_name_that_is_not_utf8_keeps_its_metadata(rich_jpeg):
    """Cards written on old systems carry Latin-1 names; pyexiv2 takes paths as UTF-8 text."""
    import os

    latin1 = rich_jpeg.with_name(os.fsdecode(b"caf\xe9.jpg"))
    rich_jpeg.rename(latin1)
    data, warnings = metadata.copy_metadata(latin1, _encoded("jpeg", 8), fmt="jpeg", strip_gps=False,
                                            software=SOFTWARE)
    assert warnings == []
    exif, xmp, *_ = _tags(data)
    assert exif["Exif.Image.Make"] == fixtures.JPEG_TAGS["Exif.Image.Make"]
    assert xmp["Xmp.dc.creator"] == ["Xfix Tester"]
    assert metadata.read_exposure(latin1)["iso"] == 400
