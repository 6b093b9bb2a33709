"""What an image file says about itself before any pixel is decoded: its type from the signature, the size its
header declares (JPEG frame header, PNG IHDR, TIFF pages), and the EXIF orientation and colour space.

Reading a header costs a few bytes, so `decode` refuses a decompression bomb or a truncated file here, before
handing the file to a decoding library.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from xfix.discover import EXTENSION_FORMATS
from xfix.errors import DecodeError

# "dng", "nef", ...: one list of raw extensions, the one `discover` finds files by
RAW_EXTENSIONS = frozenset(ext.lstrip(".") for ext, fmt in EXTENSION_FORMATS.items() if fmt == "raw")
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_OTHER_FORMATS = {b"GIF8": "a GIF image", b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive"}
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers; C4/C8/CC are DHT/JPG/DAC


# ---------------------------------------------------------------- sniffing


def _looks_like_text(head: bytes) -> bool:
    printable = sum(32 <= b < 127 or b in b"\t\r\n" or b >= 128 for b in head)
    return b"\x00" not in head and printable >= 0.95 * len(head)


def file_kind(path: Path, head: bytes) -> str:
    """raw | tiff | jpeg | png from the file's signature; the extension only tells TIFF-based RAW from TIFF"""
    raw_ext = path.suffix.lower().lstrip(".") in RAW_EXTENSIONS
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(TIFF_MAGICS):
        return "raw" if raw_ext else "tiff"
    if _looks_like_text(head):
        raise DecodeError("not an image: the file contains text", path)
    for magic, name in _OTHER_FORMATS.items():
        if head.startswith(magic):
            raise DecodeError(f"not a supported image: the file is {name}", path)
    if raw_ext:  # CR3, RAF, ORF, RW2 have signatures of their own: LibRaw judges them
        return "raw"
    raise DecodeError("not an image: unrecognised file signature", path)


# ---------------------------------------------------------------- declared sizes


def check_size(width: int, height: int, max_megapixels: float, path: Path) -> None:
    """DecodeError when width x height is over `max_megapixels` (the --max-megapixels message)."""
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        shown = _shown_over(megapixels, max_megapixels)
        raise DecodeError(f"image is {shown} MP, over the --max-megapixels limit of {max_megapixels:g}", path)


def _shown_over(megapixels: float, limit: float) -> str:
    """`megapixels` with as many decimals as it takes to read larger than `limit`: 0.12 over 0.1, not "0.1
    over 0.1". Six always do (width x height / 1e6 has no more)."""
    for decimals in range(1, 7):
        shown = f"{megapixels:.{decimals}f}"
        if float(shown) > limit:
            break
    return shown.rstrip("0").rstrip(".")


def check_tiff_pages(tf, path: Path, max_megapixels: float, label: str) -> None:
    """Declared sizes of an open `tifffile.TiffFile` within the limit, and every strip or tile inside the file
    (else it is truncated)."""
    size = path.stat().st_size
    for page in tf.pages:
        check_size(page.imagewidth, page.imagelength, max_megapixels, path)
        if any(o + n > size for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)):
            raise DecodeError(f"truncated or corrupt {label} (image data runs past the end)", path)


def jpeg_size(path: Path) -> tuple[int, int]:
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


def png_header(head: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk, which must come first."""
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise ValueError("no IHDR chunk")
    return struct.unpack(">IIBB", head[16:26])


def png_complete(path: Path) -> bool:
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


# ---------------------------------------------------------------- orientation and EXIF colour space


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
