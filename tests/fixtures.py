"""Fixture files generated in code, for any test: each `make_*` writes one file and returns its path.

`path` may be a file path or an existing folder (then a default file name is used). Every image is small
(tens of pixels a side) so a test that decodes it runs in milliseconds. Known contents are exported as
constants and functions (`jpeg_pixels`, `DNG_PATCHES`, `JPEG_TAGS`...) so tests can check pixel values and
tags, not only that a file decodes.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- helpers


# The keys of every `xfix correct --json` line (FileResult.to_json).
RESULT_JSON_KEYS = {
    "input", "output", "profile", "device", "seconds", "status", "error", "warnings", "strength", "note"
}


def display_frame(display: np.ndarray):
    """A Frame of (H, W, 3) display sRGB values in [0, 1], as `xfix correct` makes of an 8-bit JPEG."""
    from xfix.colour import to_working
    from xfix.frame import Frame, SourceInfo

    source = SourceInfo(path="synthetic.jpg", format="jpeg", bit_depth=8, width=display.shape[1],
                        height=display.shape[0], channels=3)
    return Frame(pixels=to_working(display.astype(np.float32), "srgb"), source=source, input_space="srgb")


def raw_frame(linear: np.ndarray):
    """A Frame of (H, W, 3) camera-linear ProPhoto values, as `xfix correct` makes of a RAW file."""
    from xfix.frame import Frame, SourceInfo

    source = SourceInfo(path="synthetic.dng", format="dng", bit_depth=16, width=linear.shape[1],
                        height=linear.shape[0], channels=3)
    return Frame(pixels=linear.astype(np.float32), source=source)


def _target(path: Path | str, default_name: str) -> Path:
    """A folder gets `default_name` inside it; anything else is the file path itself."""
    path = Path(path)
    return path / default_name if path.is_dir() else path


def _rational(value: float, max_den: int = 10000) -> tuple[int, int]:
    f = Fraction(float(value)).limit_denominator(max_den)
    return f.numerator, f.denominator


def _icc(space: str | None) -> bytes | None:
    # Imported lazily: xfix.icc is its own module and only TIFF/PNG fixtures with a profile need it.
    if space is None:
        return None
    from xfix.icc import icc_profile

    return icc_profile(space)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_insert_after_ihdr(data: bytes, chunk: bytes) -> bytes:
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR payload, CRC
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def _write_png_with_icc(path: Path, data: bytes, icc: bytes | None) -> None:
    """PNG bytes from OpenCV (which cannot embed ICC) get an iCCP chunk when a profile is given."""
    if icc is not None:
        data = _png_insert_after_ihdr(data, _png_chunk(b"iCCP", b"xfix\x00\x00" + zlib.compress(icc)))
    path.write_bytes(data)


# ---------------------------------------------------------------- JPEG with full metadata

JPEG_SIZE = (48, 64)  # (H, W) as stored, before orientation
MARK = (220, 30, 30)  # colour of the 8x8 block in the stored top-left corner, to follow orientation

JPEG_TAGS = {
    "Exif.Image.Make": "XfixCam",
    "Exif.Image.Model": "Model One",
    "Exif.Photo.LensModel": "Xfix 35mm F2",
    "Exif.Photo.DateTimeOriginal": "2024:05:01 10:20:30",
    "Exif.Photo.ExposureTime": "1/125",
    "Exif.Photo.FNumber": "56/10",
    "Exif.Photo.ISOSpeedRatings": "400",
    "Exif.Photo.ExposureBiasValue": "-2/3",
}
GPS_TAGS = {
    "Exif.GPSInfo.GPSLatitudeRef": "N",
    "Exif.GPSInfo.GPSLatitude": "48/1 51/1 2964/100",
    "Exif.GPSInfo.GPSLongitudeRef": "E",
    "Exif.GPSInfo.GPSLongitude": "2/1 17/1 4008/100",
}
XMP_TAGS = {"Xmp.dc.creator": ["Xfix Tester"]}
IPTC_TAGS = {"Iptc.Application2.Keywords": ["exposure", "test"]}
_EXIF_COLOUR_SPACE = {
    "srgb": {"Exif.Photo.ColorSpace": "1"},
    "adobergb": {"Exif.Photo.ColorSpace": "65535", "Exif.Iop.InteroperabilityIndex": "R03"},
    None: {},
}


def jpeg_pixels(h: int = JPEG_SIZE[0], w: int = JPEG_SIZE[1]) -> np.ndarray:
    """(H, W, 3) uint8: smooth ramps (R across, G down, B 96) and an 8x8 MARK block in the top-left corner."""
    y, x = np.mgrid[0:h, 0:w]
    px = np.stack([40 + 160 * x / (w - 1), 40 + 160 * y / (h - 1), np.full((h, w), 96.0)], axis=-1)
    px[:8, :8] = MARK
    return np.round(px).astype(np.uint8)


def write_tags(
    path: Path, exif: dict | None = None, xmp: dict | None = None, iptc: dict | None = None
) -> None:
    """Add EXIF / XMP / IPTC to an existing file with pyexiv2 (JPEG, TIFF, PNG and DNG all work)."""
    import pyexiv2

    with pyexiv2.Image(str(path)) as img:
        if exif:
            img.modify_exif(exif)
        if xmp:
            img.modify_xmp(xmp)
        if iptc:
            img.modify_iptc(iptc)


def make_jpeg(
    path: Path | str,
    pixels: np.ndarray | None = None,
    *,
    exif: bool = True,
    orientation: int = 6,
    gps: bool = True,
    colour_space: str | None = "srgb",
    icc: str | None = None,
    quality: int = 95,
) -> Path:
    """A JPEG (default `jpeg_pixels()`, 48x64 stored) with EXIF camera/lens/exposure tags, Orientation, GPS,
    EXIF ColorSpace ("srgb" -> 1, "adobergb" -> 65535 + Interop R03, None -> no tag), XMP dc:creator and IPTC
    Keywords. `exif=False` writes pixels only. `icc` names a space whose ICC profile gets embedded."""
    import imageio.v3 as iio

    path = _target(path, "photo.jpg")
    pixels = jpeg_pixels() if pixels is None else pixels
    extra = {"icc_profile": _icc(icc)} if icc else {}
    iio.imwrite(path, pixels, extension=".jpg", quality=quality, **extra)
    if exif:
        tags = dict(JPEG_TAGS, **_EXIF_COLOUR_SPACE[colour_space])
        tags["Exif.Image.Orientation"] = str(orientation)
        if gps:
            tags.update(GPS_TAGS)
        write_tags(path, tags, XMP_TAGS, IPTC_TAGS)
    return path


# ---------------------------------------------------------------- TIFF

TIFF_SIZE = (40, 56)


def tiff_pixels(h: int = TIFF_SIZE[0], w: int = TIFF_SIZE[1]) -> np.ndarray:
    """(H, W, 3) uint16 ramps spanning most of the 16-bit range, with a MARK-coloured top-left 8x8 block."""
    px = jpeg_pixels(h, w).astype(np.uint16) * 257
    px[..., 2] = np.linspace(1000, 64000, w, dtype=np.uint16)[None, :]
    px[:8, :8] = np.array(MARK, np.uint16) * 257
    return px


def make_tiff16(
    path: Path | str,
    space: str | None = "prophoto",
    *,
    pixels: np.ndarray | None = None,
    orientation: int = 1,
    alpha: np.ndarray | None = None,
    planar: bool = False,
    exif: bool = True,
    lzw: bool = False,
) -> Path:
    """16-bit RGB TIFF (default `tiff_pixels()`) with the ICC profile of `space` embedded (None: no profile),
    an Orientation tag, optional alpha (H, W) uint16 as an extra sample, chunky or planar layout, and EXIF
    camera tags (for the metadata stage). `lzw` writes it LZW-compressed (through OpenCV, chunky only), as
    Photoshop and Lightroom do."""
    import tifffile

    path = _target(path, "image.tif")
    px = tiff_pixels() if pixels is None else pixels
    if lzw:
        return _write_lzw_tiff(path, px, alpha, space, orientation, exif)
    extrasamples = ()
    if alpha is not None:
        px = np.concatenate([px, alpha[..., None].astype(px.dtype)], axis=-1)
        extrasamples = (2,)  # unassociated alpha
    if planar:
        px = np.moveaxis(px, -1, 0)
    tifffile.imwrite(
        path,
        px,
        photometric="rgb",
        planarconfig="separate" if planar else "contig",
        extrasamples=extrasamples,
        iccprofile=_icc(space),
        extratags=[(274, "H", 1, orientation, True)],
        metadata=None,
    )
    if exif:
        write_tags(path, {k: v for k, v in JPEG_TAGS.items() if k != "Exif.Photo.LensModel"})
    return path


def _write_lzw_tiff(path, px, alpha, space, orientation, exif) -> Path:
    import cv2
    import pyexiv2

    bgr = px[..., ::-1] if alpha is None else np.dstack([px[..., ::-1], alpha])
    cv2.imwrite(str(path), np.ascontiguousarray(bgr))  # OpenCV's TIFF default is LZW
    with pyexiv2.Image(str(path)) as img:
        if space is not None:
            img.modify_icc(_icc(space))
        img.modify_exif({"Exif.Image.Orientation": str(orientation)})
    if exif:
        write_tags(path, {k: v for k, v in JPEG_TAGS.items() if k != "Exif.Photo.LensModel"})
    return path


def make_float_tiff(
    path: Path | str, *, bits: int = 32, pixels: np.ndarray | None = None, space: str | None = None
) -> Path:
    """Float RGB TIFF (32 or 16 bit) of linear values, some above 1 (a highlight of 4.0 in the top-left 8x8),
    no ICC unless `space` is given. Default pixels: `float_pixels()`."""
    import tifffile

    path = _target(path, "linear.tif")
    px = float_pixels() if pixels is None else pixels
    dtype = {32: np.float32, 16: np.float16}[bits]
    tifffile.imwrite(path, px.astype(dtype), photometric="rgb", iccprofile=_icc(space), metadata=None)
    return path


def float_pixels(h: int = 24, w: int = 32) -> np.ndarray:
    """(H, W, 3) float32 linear: a 0.01..1 ramp across, 0.18 grey green channel, a 4.0 highlight block."""
    px = np.empty((h, w, 3), np.float32)
    px[..., 0] = np.linspace(0.01, 1.0, w, dtype=np.float32)[None, :]
    px[..., 1] = 0.18
    px[..., 2] = np.linspace(0.5, 0.05, h, dtype=np.float32)[:, None]
    px[:8, :8] = 4.0
    return px


# ---------------------------------------------------------------- PNG and grey


def make_png16(
    path: Path | str,
    pixels: np.ndarray | None = None,
    *,
    alpha: np.ndarray | None = None,
    icc: str | None = None,
) -> Path:
    """16-bit RGB (RGBA with `alpha`) PNG, default `tiff_pixels()`, optional iCCP profile of space `icc`."""
    import cv2

    path = _target(path, "image16.png")
    px = tiff_pixels() if pixels is None else pixels
    bgr = px[..., ::-1] if alpha is None else np.dstack([px[..., ::-1], alpha])
    ok, data = cv2.imencode(".png", np.ascontiguousarray(bgr.astype(np.uint16)))
    assert ok
    _write_png_with_icc(path, data.tobytes(), _icc(icc))
    return path


def alpha_ramp(h: int, w: int, dtype=np.uint8) -> np.ndarray:
    """(H, W) alpha rising from 0 (left) to full (right)."""
    top = np.iinfo(dtype).max
    return np.round(np.linspace(0, top, w))[None, :].repeat(h, 0).astype(dtype)


def make_alpha_png(path: Path | str, *, bits: int = 8) -> Path:
    """RGBA PNG of `jpeg_pixels()` (x257 for 16 bit), `alpha_ramp` alpha (0 on the left, max on the right)."""
    import cv2

    path = _target(path, "alpha.png")
    dtype = np.uint8 if bits == 8 else np.uint16
    rgb = jpeg_pixels().astype(dtype) * (1 if bits == 8 else 257)
    alpha = alpha_ramp(*rgb.shape[:2], dtype=dtype)
    ok, data = cv2.imencode(".png", np.dstack([rgb[..., ::-1], alpha]))
    assert ok
    path.write_bytes(data.tobytes())
    return path


def grey_pixels(h: int = 32, w: int = 40, dtype=np.uint8) -> np.ndarray:
    """(H, W) grey ramp across from 10% to 90% of the dtype's range."""
    top = np.iinfo(dtype).max
    return np.round(np.linspace(0.1 * top, 0.9 * top, w))[None, :].repeat(h, 0).astype(dtype)


def make_grey(path: Path | str, fmt: str = "png") -> Path:
    """One-channel image of `grey_pixels()`; fmt: jpeg, png (8 bit), png16, tiff (8 bit) or tiff16."""
    import cv2
    import imageio.v3 as iio
    import tifffile

    ext = {"jpeg": "jpg", "png": "png", "png16": "png", "tiff": "tif", "tiff16": "tif"}[fmt]
    path = _target(path, f"grey.{ext}")
    px = grey_pixels(dtype=np.uint16 if fmt.endswith("16") else np.uint8)
    if fmt == "jpeg":
        iio.imwrite(path, px, extension=".jpg", quality=95)
    elif fmt.startswith("png"):
        path.write_bytes(cv2.imencode(".png", px)[1].tobytes())
    else:
        tifffile.imwrite(path, px, photometric="minisblack", metadata=None)
    return path


# ---------------------------------------------------------------- synthetic DNG

DNG_SIZE = (64, 96)  # (H, W) as stored
# Patches of the scene in stored coordinates: name -> (row0, row1, col0, col1, linear sRGB relative to white)
DNG_PATCHES = {
    "grey18": (0, 32, 0, 32, (0.18, 0.18, 0.18)),
    "grey50": (0, 32, 32, 64, (0.5, 0.5, 0.5)),
    "white": (0, 32, 64, 96, (0.9, 0.9, 0.9)),
    "red": (32, 64, 0, 32, (0.6, 0.1, 0.1)),
    "green": (32, 64, 32, 64, (0.1, 0.45, 0.1)),
    "blue": (32, 64, 64, 96, (0.08, 0.12, 0.6)),
}
DNG_SENSITIVITY = (0.5, 1.0, 0.7)  # camera response to D65 white: R and B pixels are less sensitive than G
DNG_LIGHT = (1.25, 1.0, 0.6)  # the scene is lit warmer than D65; only the as-shot white balance undoes that
# AsShotNeutral: the camera's response to the light
DNG_NEUTRAL = tuple(sens * light for sens, light in zip(DNG_SENSITIVITY, DNG_LIGHT, strict=True))
DNG_BLACK, DNG_WHITE = 512, 16383


def dng_scene(h: int = DNG_SIZE[0], w: int = DNG_SIZE[1]) -> np.ndarray:
    """(H, W, 3) float32 linear sRGB scene made of the DNG_PATCHES (scaled to h, w)."""
    scene = np.zeros((h, w, 3), np.float32)
    sy, sx = h / DNG_SIZE[0], w / DNG_SIZE[1]
    for r0, r1, c0, c1, rgb in DNG_PATCHES.values():
        scene[round(r0 * sy) : round(r1 * sy), round(c0 * sx) : round(c1 * sx)] = rgb
    return scene


def patch_centre(name: str, margin: int = 8) -> tuple[slice, slice]:
    """Row/column slices of a DNG patch's interior (stored coordinates), away from demosaicing edges."""
    r0, r1, c0, c1, _ = DNG_PATCHES[name]
    return slice(r0 + margin, r1 - margin), slice(c0 + margin, c1 - margin)


def bayer_rggb(camera_rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) mosaic: R at (even, even), G at (even, odd) and (odd, even), B at (odd, odd)."""
    h, w, _ = camera_rgb.shape
    mosaic = np.empty((h, w), camera_rgb.dtype)
    mosaic[0::2, 0::2] = camera_rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = camera_rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = camera_rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = camera_rgb[1::2, 1::2, 2]
    return mosaic


def dng_colour_matrix(sensitivity=DNG_SENSITIVITY) -> np.ndarray:
    """ColorMatrix1: XYZ (D65) -> camera RGB for a camera whose native space is linear sRGB scaled by
    `sensitivity`; D65 white maps to `sensitivity` (largest component 1), as the DNG specification wants."""
    from xfix.colour import RGB_SPACES, rgb_to_xyz_matrix

    return np.diag(sensitivity) @ np.linalg.inv(rgb_to_xyz_matrix(RGB_SPACES["linear-srgb"]))


def make_dng(
    path: Path | str,
    scene: np.ndarray | None = None,
    *,
    exposure: float = 1.0,
    orientation: int = 1,
    exif: bool = True,
    light: tuple[float, float, float] = DNG_LIGHT,
) -> Path:
    """A single-IFD uncompressed DNG (Bayer RGGB, 16-bit samples, black 512, white 16383) of `scene` (linear
    sRGB reflectances, default `dng_scene()`) times `exposure`, lit by `light` (green 1) and recorded by a
    camera with native sRGB primaries and per-channel DNG_SENSITIVITY. ColorMatrix1 (+ CalibrationIlluminant1
    D65) describes the camera and AsShotNeutral = sensitivity x light, so a decoder using the as-shot white
    balance renders a grey patch neutral at its reflectance (grey18 -> 0.18), one using daylight balance does
    not. With `exif`, EXIF exposure/date tags and XMP dc:creator are added (pyexiv2)."""
    import tifffile

    path = _target(path, "raw.dng")
    scene = dng_scene() if scene is None else scene
    response = np.asarray(DNG_SENSITIVITY, np.float32) * np.asarray(light, np.float32)
    camera = np.clip(scene * exposure * response, 0, 1)
    raw = np.round(DNG_BLACK + bayer_rggb(camera) * (DNG_WHITE - DNG_BLACK)).astype(np.uint16)
    colour_matrix = [n for v in dng_colour_matrix().ravel() for n in _rational(v)]
    as_shot = [n for v in response for n in _rational(v)]
    tags = [
        (271, "s", 0, "XfixCam", True),
        (272, "s", 0, "Synthetic DNG", True),
        (274, "H", 1, orientation, True),
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern RGGB
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Xfix Synthetic Camera", True),  # UniqueCameraModel
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout rectangular
        (50714, "H", 1, DNG_BLACK, True),
        (50717, "H", 1, DNG_WHITE, True),
        (50721, "2i", 9, colour_matrix, True),  # ColorMatrix1 (SRATIONAL)
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1 = D65
        (50728, "2I", 3, as_shot, True),  # AsShotNeutral
    ]
    tifffile.imwrite(path, raw, photometric=32803, subfiletype=0, extratags=tags, metadata=None)
    if exif:
        exposure_tags = {k: v for k, v in JPEG_TAGS.items() if k.startswith("Exif.Photo.")}
        write_tags(path, exposure_tags, XMP_TAGS)
    return path


# ---------------------------------------------------------------- bad inputs


def make_empty(path: Path | str) -> Path:
    path = _target(path, "empty.jpg")
    path.write_bytes(b"")
    return path


def make_truncated(source: Path | str, dest: Path | str, keep: float = 0.5) -> Path:
    """Copy of the first `keep` fraction of `source`'s bytes (header intact, pixel data cut)."""
    data = Path(source).read_bytes()
    dest = _target(dest, "truncated" + Path(source).suffix)
    dest.write_bytes(data[: max(1, int(len(data) * keep))])
    return dest


def make_text_as_jpg(path: Path | str) -> Path:
    path = _target(path, "notes.jpg")
    path.write_text("These are my holiday notes, not a photo.\n" * 20, encoding="utf-8")
    return path


@contextmanager
def fifo_with_standby_writer(path: Path | str):
    """A FIFO at `path`, for the duration. A thread stands by as its writer, so code that wrongly opens it
    for reading gets end-of-file (an empty file) and the test fails instead of hanging forever."""
    path = Path(path)
    os.mkfifo(path)

    def writer() -> None:
        with open(path, "wb"):  # blocks until someone opens the FIFO for reading
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # releases the writer when nobody read
        thread.join(10)


BOMB_SIZE = (100_000, 100_000)


def make_png_bomb_header(path: Path | str) -> Path:
    """A valid PNG signature and IHDR claiming 100000x100000 RGB 8-bit, then a tiny IDAT and IEND: decoding it
    would need 30 GB, reading its header needs 33 bytes."""
    path = _target(path, "bomb.png")
    w, h = BOMB_SIZE
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = (
        _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path
