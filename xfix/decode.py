"""Decode stage: an image file -> `Decoded` (samples as stored, orientation applied).

RAW goes through LibRaw (rawpy) to 16-bit linear ProPhoto, camera white balance as shot, no auto-brightening;
TIFF through tifffile; JPEG through imageio's Pillow plugin; PNG through imageio's OpenCV plugin (Pillow reads
16-bit RGB PNG as 8 bit). Every failure becomes a `DecodeError` with a one-line reason, or an `InputError`
when the file cannot be opened at all. The size declared in the header (`xfix.headers`) is checked against
`max_megapixels` before any pixel is decoded, so a decompression bomb costs a few bytes of reading.
"""

from __future__ import annotations

import logging
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from xfix.errors import DecodeError, InputError
from xfix.files import special_file_kind
from xfix.frame import Decoded, SourceInfo
from xfix.headers import (
    TIFF_MAGICS,
    apply_orientation,
    check_size,
    check_tiff_pages,
    exif_colour_space,
    file_kind,
    jpeg_size,
    png_complete,
    png_header,
)

log = logging.getLogger(__name__)

# Library exceptions that mean "these bytes are bad", as opposed to bugs in xfix, which must propagate.
_CORRUPT = (OSError, ValueError, EOFError, SyntaxError, IndexError, KeyError, struct.error, zlib.error)
_LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}


def decode(path: Path | str, *, max_megapixels: float = 200) -> Decoded:
    """Decode `path` to samples as stored ((H, W, 1|3) uint8/uint16/float32), orientation applied.

    Raises InputError when the file cannot be read, DecodeError (one-line reason) when it is not a decodable
    image or its header declares more than `max_megapixels`."""
    path = Path(path)
    head = _read_head(path)
    reader = {"raw": _decode_raw, "tiff": _decode_tiff, "jpeg": _decode_jpeg, "png": _decode_png}
    try:
        return reader[file_kind(path, head)](path, head, max_megapixels)
    except MemoryError:
        raise DecodeError("not enough memory to decode this image", path) from None


# ---------------------------------------------------------------- reading the head, Pillow's limit


def _read_head(path: Path, size: int = 512) -> bytes:
    """First bytes of the file; InputError for a missing or unreadable path or one that is no regular file,
    DecodeError for an empty file."""
    kind = special_file_kind(path)
    if kind is not None:  # discovery skips these; a path handed to decode() directly must not hang on a FIFO
        raise InputError(f"not a regular file ({kind}); not opened", path)
    try:
        with open(path, "rb") as f:
            head = f.read(size)
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not an image file", path) from None
    except PermissionError:
        raise InputError("permission denied", path) from None
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror or e}", path) from None
    if not head:
        raise DecodeError("file is empty", path)
    return head


@contextmanager
def _pillow_allows(pixels: int):
    """Lift Pillow's decompression-bomb limit to `pixels` for one read: our --max-megapixels check has passed,
    and Pillow's own (about 89 MP warns, 179 MP refuses) must not overrule what the user allowed."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    if saved is not None and pixels > saved:
        Image.MAX_IMAGE_PIXELS = pixels
    try:
        yield Image
    finally:
        Image.MAX_IMAGE_PIXELS = saved


# ---------------------------------------------------------------- assembly


def _split_alpha(samples: np.ndarray, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) or (H, W, C) -> (H, W, 1|3) colour samples and the (H, W) alpha (last channel) or None."""
    if samples.ndim == 2 or not has_alpha:
        return _colour_channels(samples), None
    return _colour_channels(samples[..., :-1]), samples[..., -1]


def _colour_channels(samples: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) colour samples, alpha already taken off -> (H, W, 1) grey or (H, W, 3) RGB: the
    first channel when there are fewer than three, the first three when there are more."""
    if samples.ndim == 2:
        return samples[..., None]
    return samples[..., :1] if samples.shape[2] < 3 else samples[..., :3]


def _finish(path, fmt, colour, alpha, orientation, channels, icc=None, exif_space=None) -> Decoded:
    pixels = apply_orientation(colour, orientation)
    alpha = None if alpha is None else apply_orientation(alpha, orientation)
    bits = 32 if pixels.dtype == np.float32 else pixels.dtype.itemsize * 8
    h, w = pixels.shape[:2]
    return Decoded(pixels, SourceInfo(path, fmt, bits, w, h, channels, icc, exif_space, orientation), alpha)


# ---------------------------------------------------------------- RAW


def _decode_raw(path: Path, head: bytes, max_megapixels: float) -> Decoded:
    """LibRaw decode to (H, W, 3) uint16 linear ProPhoto, camera white balance and exposure as shot."""
    import rawpy

    label = path.suffix.lstrip(".").upper() or "raw"
    if head.startswith(TIFF_MAGICS):
        _check_raw_tiff(path, max_megapixels, label)
    try:
        with rawpy.imread(str(path)) as raw:
            check_size(raw.sizes.raw_width, raw.sizes.raw_height, max_megapixels, path)
            rgb = raw.postprocess(
                gamma=(1, 1),
                no_auto_bright=True,
                adjust_maximum_thr=0.0,  # else LibRaw rescales frames whose peak is near white: not as shot
                output_bps=16,
                use_camera_wb=True,
                output_color=rawpy.ColorSpace.ProPhoto,
            )
            orientation = _LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip, 1)
    except rawpy.LibRawFileUnsupportedError:
        raise DecodeError(f"not a supported raw file (LibRaw cannot read this {label})", path) from None
    except (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError):
        raise DecodeError("raw image too large for LibRaw to decode", path) from None
    except (rawpy.LibRawError, *_CORRUPT) as e:
        log.debug("LibRaw failed on %s: %r", path, e)
        raise DecodeError(f"truncated or corrupt {label} file", path) from None
    # LibRaw has already turned the pixels; the orientation is kept as information only
    info = SourceInfo(path, "raw", 16, rgb.shape[1], rgb.shape[0], 3, None, None, orientation)
    return Decoded(rgb, info, None, "linear-prophoto")


# ---------------------------------------------------------------- TIFF


def _check_raw_tiff(path: Path, max_megapixels: float, label: str) -> None:
    """A TIFF-based raw (DNG, NEF, CR2...) cut short fails here, cleanly, rather than inside LibRaw.
    Structures tifffile cannot parse are left to LibRaw: camera makers bend TIFF in ways LibRaw knows."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            check_tiff_pages(tf, path, max_megapixels, label)
    except (tifffile.TiffFileError, *_CORRUPT) as e:
        log.debug("tifffile could not check %s, leaving it to LibRaw: %r", path, e)


def _decode_tiff(path: Path, head: bytes, max_megapixels: float) -> Decoded:
    """8/16-bit integer or float TIFF, grey or RGB, chunky or planar, alpha from ExtraSamples."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            check_tiff_pages(tf, path, max_megapixels, "TIFF")
            page = tf.pages.first
            photometric = int(page.photometric)
            if photometric not in (0, 1, 2):  # MINISWHITE, MINISBLACK, RGB
                name = getattr(page.photometric, "name", photometric)
                raise DecodeError(f"unsupported TIFF colour model {name}", path)
            samples = _tiff_samples(path, page)
            tags = page.tags
            icc = bytes(tags[34675].value) if 34675 in tags else None
            orientation = int(tags[274].value) if 274 in tags else 1
            exif = tags[34665].value if 34665 in tags else {}
            # TIFF writers tag Adobe RGB with an ICC profile; the DCF interop index is a JPEG convention
            exif_space = exif_colour_space(exif.get("ColorSpace"), None) if isinstance(exif, dict) else None
            extra_samples = tuple(int(kind) for kind in page.extrasamples)
    except (tifffile.TiffFileError, *_CORRUPT) as e:
        log.debug("tifffile failed on %s: %r", path, e)
        raise DecodeError("truncated or corrupt TIFF", path) from None
    samples = _tiff_dtype(samples, path)
    if photometric == 0:  # MINISWHITE stores ink, not light
        samples = (np.iinfo(samples.dtype).max - samples) if samples.dtype.kind == "u" else 1 - samples
    channels = samples.shape[2] if samples.ndim == 3 else 1
    alpha_channel = _tiff_alpha_channel(channels, extra_samples)
    alpha = None if alpha_channel is None else samples[..., alpha_channel]
    colour_samples = samples[..., : channels - len(extra_samples)] if extra_samples else samples
    colour = _colour_channels(colour_samples)
    return _finish(path, "tiff", colour, alpha, orientation, channels, icc, exif_space)


def _tiff_alpha_channel(channels: int, extra_samples: tuple[int, ...]) -> int | None:
    """The channel holding alpha: the first extra sample tagged associated (1) or unassociated (2) alpha;
    None when the extra samples are all "unspecified" (0), which is not transparency (TIFF 6.0,
    ExtraSamples)."""
    for k, kind in enumerate(extra_samples):
        if kind in (1, 2):
            return channels - len(extra_samples) + k
    return None


def _tiff_samples(path: Path, page) -> np.ndarray:
    """(H, W) or (H, W, S) samples of a TIFF page. LZW and JPEG compression (common in Photoshop and Lightroom
    exports) need tifffile's optional imagecodecs package: without it, say so rather than "corrupt"."""
    from tifffile import TIFF

    missing = [
        getattr(code, "name", code)
        for code, table in ((page.compression, TIFF.DECOMPRESSORS), (page.predictor, TIFF.UNPREDICTORS))
        if code not in table
    ]
    if missing:
        message = f"TIFF uses {missing[0]} compression: install the imagecodecs package to read it"
        raise DecodeError(message, path)
    samples = page.asarray()
    return np.moveaxis(samples, 0, -1) if page.axes.startswith("S") else samples  # planar: (S, H, W)


def _tiff_dtype(samples: np.ndarray, path: Path) -> np.ndarray:
    """Keep uint8/uint16; floats of any width -> float32; anything else is refused (bit depth from dtype)."""
    if samples.dtype in (np.uint8, np.uint16):
        return samples
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    raise DecodeError(f"unsupported TIFF sample type {samples.dtype} (need 8/16-bit unsigned or float)", path)


# ---------------------------------------------------------------- JPEG and PNG


def _pillow_metadata(im) -> tuple[bytes | None, int, str | None]:
    """ICC bytes, EXIF orientation and EXIF colour space of an open Pillow image, without decoding pixels."""
    from PIL import Image

    exif = Image.Exif()
    if im.info.get("exif"):  # JPEG/MPO APP1, PNG eXIf before the pixels (PNG getexif() would decode them)
        exif.load(im.info["exif"])
    space = exif_colour_space(exif.get_ifd(0x8769).get(0xA001), exif.get_ifd(0xA005).get(0x0001))
    return im.info.get("icc_profile") or None, int(exif.get(0x0112, 1) or 1), space


def _decode_jpeg(path: Path, head: bytes, max_megapixels: float) -> Decoded:
    import imageio.v3 as iio

    try:
        width, height = jpeg_size(path)
        check_size(width, height, max_megapixels, path)
        with _pillow_allows(width * height) as Image, Image.open(path) as im:
            icc, orientation, space = _pillow_metadata(im)
            channels = len(im.getbands())
            mode = im.mode if im.mode in ("L", "RGB") else "RGB"  # CMYK / YCCK JPEGs arrive as RGB
            samples = iio.imread(path, plugin="pillow", index=0, mode=mode)  # MPO: the main picture
    except _CORRUPT as e:
        log.debug("Pillow failed on %s: %r", path, e)
        raise DecodeError("truncated or corrupt JPEG", path) from None
    return _finish(path, "jpeg", _colour_channels(samples), None, orientation, channels, icc, space)


def _decode_png(path: Path, head: bytes, max_megapixels: float) -> Decoded:
    import cv2
    import imageio.v3 as iio

    try:
        width, height, _bits, colour_type = png_header(head)
        check_size(width, height, max_megapixels, path)
        if not png_complete(path):
            raise ValueError("chunk chain ends before IEND")
        with _pillow_allows(width * height) as Image, Image.open(path) as im:
            icc, orientation, space = _pillow_metadata(im)
        # OpenCV keeps 16 bits; colorspace None gives grey, RGB or RGBA (the plugin undoes BGR order)
        samples = iio.imread(path, plugin="opencv", flags=cv2.IMREAD_UNCHANGED)
    except (cv2.error, *_CORRUPT) as e:
        log.debug("PNG decode failed on %s: %r", path, e)
        raise DecodeError("truncated or corrupt PNG", path) from None
    colour, alpha = _split_alpha(samples, samples.ndim == 3 and samples.shape[2] == 4)
    if colour_type == 4:  # grey + alpha arrives as RGBA with R = G = B
        colour = colour[..., :1]
    channels = 2 if colour_type == 4 else (samples.shape[2] if samples.ndim == 3 else 1)
    return _finish(path, "png", colour, alpha, orientation, channels, icc, space)
