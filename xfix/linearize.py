"""Linearize stage: `Decoded` file samples -> `Frame` (float32 scene-linear, working space, never clipped).

The source's colour space is decided in this order: the encoding the decoder knows for certain (RAW: linear
ProPhoto, which no override can change); an explicit `input_space`; the embedded ICC profile; the EXIF
ColorSpace tag; else sRGB for integer files and linear sRGB primaries for float TIFF (scene-referred tools
write linear floats).
"""

from __future__ import annotations

import logging

import numpy as np

from xfix import colour
from xfix.errors import UsageError
from xfix.frame import Decoded, DisplayFrame, Frame

log = logging.getLogger(__name__)

INPUT_SPACES = tuple(colour.RGB_SPACES)
_ALIASES = {"linear": "linear-srgb", "adobe": "adobergb", "romm": "prophoto"}
_CHUNK_ROWS = 256  # rows linearized at a time: float temporaries stay a few MB even for 50 MP frames


def resolve_input_space(name: str) -> str:
    """Validate an `--input-space` value (aliases: linear, adobe, romm); an unknown name lists valid ones."""
    name = _ALIASES.get(name.lower(), name.lower())
    if name not in colour.RGB_SPACES:
        raise UsageError(f"unknown input space {name!r}; valid: {', '.join(INPUT_SPACES)}")
    return name


def _detect(decoded: Decoded, input_space: str | None) -> tuple[str, tuple[str, ...]]:
    """(space, notes): the decision of `detect_space`, with a note whenever an assumption was made."""
    src = decoded.source
    notes: tuple[str, ...] = ()
    if decoded.encoding is not None:
        if input_space is not None and resolve_input_space(input_space) != decoded.encoding:
            notes = (f"--input-space ignored: {src.format} decodes to {decoded.encoding}",)
        return decoded.encoding, notes
    if input_space is not None:
        return resolve_input_space(input_space), notes
    if src.icc:
        from xfix.icc import identify_space

        space = identify_space(src.icc)
        if space is not None:
            return space, ()
        notes = ("embedded ICC profile not recognised",)
    if src.exif_colour_space is not None:
        return src.exif_colour_space, notes
    if np.issubdtype(decoded.pixels.dtype, np.floating):
        return "linear-srgb", notes + ("no colour space tagged: float samples assumed linear sRGB",)
    if notes:
        notes += ("assumed sRGB",)
    return "srgb", notes


def detect_space(decoded: Decoded, input_space: str | None = None) -> str:
    """Name of the colour space (a key of `colour.RGB_SPACES`) the decoded samples are encoded in."""
    return _detect(decoded, input_space)[0]


def _alpha_to_float(alpha: np.ndarray | None) -> np.ndarray | None:
    """(H, W) alpha of any sample type -> float32 in [0, 1] (integer full scale from the dtype)."""
    if alpha is None:
        return None
    if alpha.dtype.kind == "u":
        return alpha.astype(np.float32) / np.float32(np.iinfo(alpha.dtype).max)
    return np.clip(alpha.astype(np.float32), 0.0, 1.0)


def _to_working(samples: np.ndarray, space: str) -> np.ndarray:
    """(H, W, 1|3) samples encoded in `space` -> (H, W, 3) float32 working-space linear, in row chunks.

    Integer samples go through a lookup table built once; one channel (grey) is neutral in every space, so it
    is linearized and repeated without a matrix."""
    h, w, c = samples.shape
    out = np.empty((h, w, 3), np.float32)
    if samples.dtype in (np.uint8, np.uint16):
        lut = colour.integer_decode_lut(space, samples.dtype.itemsize * 8)

        def decode(chunk):
            return lut[chunk]
    else:

        def decode(chunk):
            return colour.decode_transfer(chunk.astype(np.float32, copy=False), space)

    matrix = colour.conversion_matrix(space, colour.WORKING_SPACE)
    for r in range(0, h, _CHUNK_ROWS):
        linear = decode(samples[r : r + _CHUNK_ROWS])  # (rows, W, C)
        out[r : r + _CHUNK_ROWS] = linear if c == 1 else colour.apply_matrix(linear, matrix)
    return out


def linearize(decoded: Decoded, *, input_space: str | None = None) -> Frame:
    """Decoded samples -> Frame: (H, W, 3) float32 linear ProPhoto, not clipped; alpha float32 [0, 1].

    Known values: an 8-bit sRGB sample 128 gives 0.2158 linear (neutral, so equal in every space); a 16-bit
    RAW sample 65535 gives 1.0."""
    pixels = decoded.pixels
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"Decoded pixels must be (H, W, 1|3), got {pixels.shape}")
    space, notes = _detect(decoded, input_space)
    for note in notes:
        log.debug("%s: %s", decoded.source.path, note)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite float samples are zeroed just below
        working = _to_working(pixels, space)
    if pixels.dtype.kind == "f" and not np.isfinite(working).all():
        np.nan_to_num(working, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        notes += ("non-finite samples set to 0",)
    return Frame(
        pixels=working,
        source=decoded.source,
        space=colour.WORKING_SPACE,
        input_space=space,
        alpha=_alpha_to_float(decoded.alpha),
        grey=pixels.shape[2] == 1,
        notes=notes,
    )


def keep_display(decoded: Decoded, encoding: str, *, input_space: str | None = None) -> DisplayFrame | None:
    """The samples as a DisplayFrame when they are 8-bit RGB without alpha encoded in `encoding` (a display
    encoding: the model's), so they need no linearizing; else None (use `linearize`).

    The colour space is decided as `linearize` decides it, with the same notes."""
    pixels = decoded.pixels
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or decoded.alpha is not None:
        return None
    if colour.rgb_space(encoding).transfer == "linear":
        return None
    space, notes = _detect(decoded, input_space)
    if space != encoding:
        return None
    return DisplayFrame(samples=pixels, source=decoded.source, space=space, notes=notes)
