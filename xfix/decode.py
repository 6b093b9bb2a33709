"""Decode stage: an image file -> `Decoded` (samples as stored, orientation applied).

RAW goes through LibRaw (rawpy) to 16-bit linear ProPhoto, camera white balance as shot, no auto-brightening;
TIFF through tifffile; JPEG through imageio's Pillow plugin; PNG through imageio's OpenCV plugin (Pillow reads
16-bit RGB PNG as 8 bit). Every failure becomes a `DecodeError` with a one-line reason, or an `InputError`
when the file cannot be opened at all. The size declared in the header is checked against `max_megapixels`
before any pixel is decoded, so a decompression bomb costs a few bytes of reading.
"""

from __future__ import annotations

import logging
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from xfix.errors import DecodeError, InputError
from xfix.frame import Decoded, SourceInfo

log = logging.getLogger(__name__)

RAW_EXTENSIONS = frozenset({"dng", "cr2", "cr3", "nef", "arw", "raf", "orf", "rw2", "pef", "srw"})
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_OTHER_FORMATS = {b"GIF8": "a GIF image", b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive"}
# Library exceptions that mean "these bytes are bad", as opposed to bugs in xfix, which must propagate.
_CORRUPT = (OSError, ValueError, EOFError, SyntaxError, IndexError, KeyError, struct.error, zlib.error)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers; C4/C8/CC are DHT/JPG/DAC
_LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}


def decode(path: Path | str, *, max_megapixels: float = 200) -> Decoded:
    """Decode `path` to samples as stored ((H, W, 1|3) uint8/uint16/float32), orientation applied.

    Raises InputError when the file cannot be read, DecodeError (one-line reason) when it is not a decodable
    image or its header declares more than `max_megapixels`."""
    path = Path(path)
    head = _read_head(path)
    reader = {"raw": _decode_raw, "tiff": _decode_tiff, "jpeg": _decode_jpeg, "png": _decode_png}
    try:
        return reader[_kind(path, head)](path, head, max_megapixels)
    except MemoryError:
        raise DecodeError("not enough memory to decode this image", path) from None


# ---------------------------------------------------------------- sniffing and limits


def _read_head(path: Path, size: int = 512) -> bytes:
    """First bytes of the file; InputError for a missing or unreadable path, DecodeError for an empty file."""
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


def _looks_like_text(head: bytes) -> bool:
    printable = sum(32 <= b < 127 or b in b"\t\r\n" or b >= 128 for b in head)
    return b"\x00" not in head and printable >= 0.95 * len(head)


def _kind(path: Path, head: bytes) -> str:
    """raw | tiff | jpeg | png from the file's signature; the extension only tells TIFF-based RAW from TIFF"""
    raw_ext = path.suffix.lower().lstrip(".") in RAW_EXTENSIONS
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(_TIFF_MAGICS):
        return "raw" if raw_ext else "tiff"
    if _looks_like_text(head):
        raise DecodeError("not an image: the file contains text", path)
    for magic, name in _OTHER_FORMATS.items():
        if head.startswith(magic):
            raise DecodeError(f"not a supported image: the file is {name}", path)
    if raw_ext:  # CR3, RAF, ORF, RW2 have signatures of their own: LibRaw judges them
        return "raw"
    raise DecodeError("not an image: unrecognised file signature", path)


def _check_size(width: int, height: int, max_megapixels: float, path: Path) -> None:
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        shown = f"{megapixels:.1f}".rstrip("0").rstrip(".")
        raise DecodeError(f"image is {shown} MP, over the --max-megapixels limit of {max_megapixels:g}", path)


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


# ---------------------------------------------------------------- orientation, EXIF colour space, assembly


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, ...) samples stored with EXIF `orientation` 1-8 -> display orientation (6: a quarter turn
    clockwise, the stored top-left corner ends top-right). Unknown values count as 1."""
    if orientation not in range(2, 9):
        return pixels
    turned = pixels.swapaxes(0, 1) if orientation >= 5 else pixels  # 5-8 swap rows and columns
    rows = -1 if orientation in (3, 4, 7, 8) else 1
    cols = -1 if orientation in (2, 3, 6, 7) else 1
    return np.ascontiguousarray(turned[::rows, ::cols])


def exif_colour_space(colour_space: int | None, interop_index: str | None) -> str | None:
    """EXIF ColorSpace (+ Interoperability index) -> "srgb", "adobergb" or None.

    1 is sRGB; 65535 (uncalibrated) with index "R03" is the DCF option file, Adobe RGB; 2 is the non-standard
    Adobe RGB value some cameras write."""
    if colour_space == 1:
        return "srgb"
    if colour_space == 2 or (colour_space == 0xFFFF and (interop_index or "").strip("\x00 ") == "R03"):
        return "adobergb"
    return None


def _split_alpha(samples: np.ndarray, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) or (H, W, C) -> (H, W, 1|3) colour samples and the (H, W) alpha (last channel) or None."""
    if samples.ndim == 2:
        return samples[..., None], None
    alpha = samples[..., -1] if has_alpha else None
    colour = samples[..., :-1] if has_alpha else samples
    return (colour[..., :1] if colour.shape[2] < 3 else colour[..., :3]), alpha


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
    if head.startswith(_TIFF_MAGICS):
        _check_raw_tiff(path, max_megapixels, label)
    try:
        with rawpy.imread(str(path)) as raw:
            _check_size(raw.sizes.raw_width, raw.sizes.raw_height, max_megapixels, path)
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


def _check_tiff_pages(tf, path: Path, max_megapixels: float, label: str) -> None:
    """Declared sizes within the limit, and every strip or tile inside the file (else it is truncated)."""
    size = path.stat().st_size
    for page in tf.pages:
        _check_size(page.imagewidth, page.imagelength, max_megapixels, path)
        if any(o + n > size for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)):
            raise DecodeError(f"truncated or corrupt {label} (image data runs past the end)", path)


def _check_raw_tiff(path: Path, max_megapixels: float, label: str) -> None:
    """A TIFF-based raw (DNG, NEF, CR2...) cut short fails here, cleanly, rather than inside LibRaw.
    Structures tifffile cannot parse are left to LibRaw: camera makers bend TIFF in ways LibRaw knows."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            _check_tiff_pages(tf, path, max_megapixels, label)
    except (tifffile.TiffFileError, *_CORRUPT) as e:
        log.debug("tifffile could not check %s, leaving it to LibRaw: %r", path, e)


def _decode_tiff(path: Path, head: bytes, max_megapixels: float) -> Decoded:
    """8/16-bit integer or float TIFF, grey or RGB, chunky or planar, alpha from ExtraSamples."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            _check_tiff_pages(tf, path, max_megapixels, "TIFF")
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
            extra_samples = bool(page.extrasamples)
    except (tifffile.TiffFileError, *_CORRUPT) as e:
        log.debug("tifffile failed on %s: %r", path, e)
        raise DecodeError("truncated or corrupt TIFF", path) from None
    samples = _tiff_dtype(samples, path)
    if photometric == 0:  # MINISWHITE stores ink, not light
        samples = (np.iinfo(samples.dtype).max - samples) if samples.dtype.kind == "u" else 1 - samples
    channels = samples.shape[2] if samples.ndim == 3 else 1
    colour, alpha = _split_alpha(samples, extra_samples and channels in (2, 4))
    return _finish(path, "tiff", colour, alpha, orientation, channels, icc, exif_space)


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


def _jpeg_size(path: Path) -> tuple[int, int]:
    """(width, height) from the first frame header (SOFn), reading only the marker segments before it."""
    with open(path, "rb") as f:
        f.seek(2)
        while True:
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise ValueError("no frame header")
            code = marker[1]
            while code == 0xFF:  # fill bytes
                code = (f.read(1) or b"\xd9")[0]
            if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
                continue
            if code in (0xD9, 0xDA):
                raise ValueError("no frame header before the scan")
            (length,) = struct.unpack(">H", f.read(2))
            if code in _JPEG_SOF:
                _precision, height, width = struct.unpack(">BHH", f.read(5))
                return width, height
            f.seek(length - 2, 1)


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
        width, height = _jpeg_size(path)
        _check_size(width, height, max_megapixels, path)
        with _pillow_allows(width * height) as Image, Image.open(path) as im:
            icc, orientation, space = _pillow_metadata(im)
            channels = len(im.getbands())
            mode = im.mode if im.mode in ("L", "RGB") else "RGB"  # CMYK / YCCK JPEGs arrive as RGB
            samples = iio.imread(path, plugin="pillow", index=0, mode=mode)  # MPO: the main picture
    except _CORRUPT as e:
        log.debug("Pillow failed on %s: %r", path, e)
        raise DecodeError("truncated or corrupt JPEG", path) from None
    return _finish(path, "jpeg", _split_alpha(samples, False)[0], None, orientation, channels, icc, space)


def _png_header(head: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk, which must come first."""
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise ValueError("no IHDR chunk")
    return struct.unpack(">IIBB", head[16:26])


def _png_complete(path: Path) -> bool:
    """Walk the chunk chain by lengths (no decompression): True when IEND lies inside the file. Catches a
    truncated PNG before OpenCV, whose libpng would print its own error."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 8
        while pos + 12 <= size:
            f.seek(pos)
            length, kind = struct.unpack(">I4s", f.read(8))
            if kind == b"IEND":
                return True
            pos += 12 + length
    return False


def _decode_png(path: Path, head: bytes, max_megapixels: float) -> Decoded:
    import cv2
    import imageio.v3 as iio

    try:
        width, height, _bits, colour_type = _png_header(head)
        _check_size(width, height, max_megapixels, path)
        if not _png_complete(path):
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
