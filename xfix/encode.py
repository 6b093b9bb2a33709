"""Encode stage: a working-space `Frame` -> the bytes of a JPEG, TIFF or PNG file, output ICC embedded.

Linear working pixels are converted to the output primaries, given the output transfer function, clipped to
[0, 1] (the only place xfix clips), then quantized with rounding; 8-bit output gets a small triangular (TPDF)
dither from a fixed seed, so gradients do not band and runs are reproducible. The work goes in row chunks, so
a 50 MP frame needs one integer output array and a few MB of float temporaries, not several float32 copies.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace

import numpy as np

from xfix import colour, icc
from xfix.errors import EncodeError
from xfix.frame import DisplayFrame, Frame

FORMATS = ("jpeg", "tiff", "png")
_EXTENSIONS = {"jpeg": ".jpg", "tiff": ".tif", "png": ".png"}
_SAME_FORMAT = {"jpeg": "jpeg", "png": "png", "tiff": "tiff", "raw": "tiff"}
_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
_CHUNK_PIXELS = 1 << 20  # about 1 MP of float32 temporaries per chunk
_PNG_COMPRESSION = 4  # zlib level for 16-bit PNG: most of the size gain of 9 at a fraction of the time


def resolve_format(fmt: str, source_format: str) -> str:
    """The output format for a request: "same" keeps jpeg/png and writes tiff for raw/tiff sources."""
    fmt = _ALIASES.get(fmt.lower(), fmt.lower())
    if fmt == "same":
        try:
            return _SAME_FORMAT[source_format]
        except KeyError:
            raise EncodeError(
                f"unknown source format {source_format!r}; valid: {', '.join(_SAME_FORMAT)}"
            ) from None
    if fmt not in FORMATS:
        raise EncodeError(f"unknown output format {fmt!r}; valid: same, {', '.join(FORMATS)}")
    return fmt


def default_bits(fmt: str) -> int:
    """8 for JPEG (the only depth it has), 16 for TIFF and PNG."""
    return 8 if resolve_format(fmt, "tiff") == "jpeg" else 16


def output_extension(fmt: str) -> str:
    """The file extension of a format: ".jpg", ".tif" or ".png"."""
    return _EXTENSIONS[resolve_format(fmt, "tiff")]


def _check_quality(quality: int, frame: Frame | DisplayFrame) -> None:
    if not 1 <= quality <= 100:
        raise EncodeError(f"JPEG quality must be 1-100, got {quality}", frame.source.path)


def _check_request(frame: Frame, fmt: str, bits: int, quality: int, output_space: str) -> None:
    if bits not in (8, 16):
        raise EncodeError(f"unsupported bit depth {bits}; valid: 8, 16", frame.source.path)
    if fmt == "jpeg" and bits != 8:
        raise EncodeError(
            "JPEG holds 8 bits per sample only; use --format tiff or png for 16 bits", frame.source.path
        )
    _check_quality(quality, frame)
    if output_space not in icc.BUILDABLE_SPACES:
        valid = ", ".join(icc.BUILDABLE_SPACES)
        raise EncodeError(f"unknown output space {output_space!r}; valid: {valid}", frame.source.path)
    if colour.rgb_space(frame.space).transfer != "linear":
        raise EncodeError(f"frame space {frame.space!r} is not linear", frame.source.path)
    if frame.pixels.ndim != 3 or frame.pixels.shape[2] != 3:
        raise EncodeError(f"frame pixels must be (H, W, 3), got {frame.pixels.shape}", frame.source.path)


def _encode_rows(linear: np.ndarray, src: str, dst: str, grey: bool) -> np.ndarray:
    """(h, W, 3) linear in `src` -> (h, W, C) encoded in `dst`, clipped to [0, 1]; C = 1 when `grey`."""
    linear = np.nan_to_num(linear, nan=0.0, posinf=1.0, neginf=0.0)
    out_linear = colour.convert_linear(linear, src, dst)
    if grey:
        out_linear = colour.luminance(out_linear, dst)[..., None]  # (h, W, 1): the neutral the RGB carried
    return np.clip(colour.encode_transfer(out_linear, dst), 0.0, 1.0)


def _quantize_rows(encoded: np.ndarray, bits: int, rng: np.random.Generator | None) -> np.ndarray:
    """[0, 1] -> integers with rounding; with `rng`, +-1 LSB triangular dither, tapered to 0 at black and
    white so pure black/white stay exact and the dither never clips (which keeps the mean unbiased)."""
    top = float(2**bits - 1)
    scaled = encoded * top
    if rng is not None:
        noise = rng.random(scaled.shape, dtype=np.float32) - rng.random(scaled.shape, dtype=np.float32)
        scaled += noise * np.minimum(np.minimum(scaled, top - scaled), 1.0)
    return np.rint(scaled).astype(np.uint8 if bits == 8 else np.uint16)


def quantize(
    frame: Frame, *, bits: int, output_space: str, grey: bool, dither_seed: int | None = 0
) -> np.ndarray:
    """Frame -> (H, W, C) uint8/uint16 samples of `output_space`, C = 1 or 3 (+1 with alpha).

    Known value: linear 0.18 grey in sRGB 8-bit -> 117.6 on average (dithered among 117, 118, 119).
    dither_seed=None disables dither; 16-bit output is never dithered."""
    height, width, _ = frame.pixels.shape
    channels = (1 if grey else 3) + (frame.alpha is not None)
    out = np.empty((height, width, channels), dtype=np.uint8 if bits == 8 else np.uint16)
    rng = np.random.default_rng(dither_seed) if bits == 8 and dither_seed is not None else None
    step = max(1, _CHUNK_PIXELS // max(width, 1))
    colour_channels = 1 if grey else 3
    for start in range(0, height, step):
        rows = slice(start, start + step)
        encoded = _encode_rows(frame.pixels[rows], frame.space, output_space, grey)
        out[rows, :, :colour_channels] = _quantize_rows(encoded, bits, rng)
        if frame.alpha is not None:  # alpha is coverage, not colour: no transfer, no dither
            alpha = np.clip(np.nan_to_num(frame.alpha[rows], nan=1.0), 0.0, 1.0)
            out[rows, :, colour_channels] = _quantize_rows(alpha, bits, None)
    return out


def _jpeg(samples: np.ndarray, quality: int, profile: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(samples[..., :3]), "RGB")  # JPEG has no alpha
    # 4:4:4 at high quality: chroma subsampling is visible on saturated edges, which exposure fixes bring out.
    subsampling = 0 if quality >= 90 else 2
    image.save(
        buffer, format="JPEG", quality=quality, subsampling=subsampling, optimize=True, icc_profile=profile
    )
    return buffer.getvalue()


def _tiff(samples: np.ndarray, profile: bytes, has_alpha: bool) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    photometric = "minisblack" if samples.shape[2] - has_alpha == 1 else "rgb"
    data = samples[..., 0] if samples.shape[2] == 1 else samples
    tifffile.imwrite(
        buffer,
        data,
        photometric=photometric,
        compression="zlib",
        predictor=True,
        iccprofile=profile,
        extrasamples=["unassalpha"] if has_alpha else None,
        metadata=None,
        software=False,
    )
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def insert_iccp(png: bytes, profile: bytes, name: str = "ICC profile") -> bytes:
    """Insert an iCCP chunk (name, NUL, method 0, zlib profile) right after IHDR, as the PNG spec wants."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise EncodeError("the PNG encoder produced no IHDR chunk")
    ihdr_end = 8 + 12 + struct.unpack_from(">I", png, 8)[0]
    chunk = _png_chunk(b"iCCP", name.encode("latin-1") + b"\0\0" + zlib.compress(profile))
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _png(samples: np.ndarray, profile: bytes) -> bytes:
    if samples.dtype == np.uint8:
        from PIL import Image

        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[samples.shape[2]]
        buffer = io.BytesIO()
        Image.fromarray(samples[..., 0] if mode == "L" else samples, mode).save(
            buffer, format="PNG", icc_profile=profile
        )
        return buffer.getvalue()
    import cv2

    order = {1: [0], 3: [2, 1, 0], 4: [2, 1, 0, 3]}[samples.shape[2]]  # OpenCV wants BGR(A)
    ok, buffer = cv2.imencode(".png", samples[..., order], [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION])
    if not ok:
        raise EncodeError("OpenCV could not encode the 16-bit PNG")
    return insert_iccp(buffer.tobytes(), profile)


def encode(
    frame: Frame,
    *,
    fmt: str,
    bits: int,
    quality: int = 95,
    output_space: str = "srgb",
    dither_seed: int | None = 0,
) -> bytes:
    """Encode a working-space frame as `fmt` (jpeg|tiff|png) with `bits` (8|16) per sample in `output_space`
    with its ICC profile embedded. Grey frames are written as one channel in TIFF/PNG; alpha is kept for
    TIFF/PNG, dropped for JPEG. Raises EncodeError for an impossible request (16-bit JPEG, unknown space)."""
    fmt = resolve_format(fmt, frame.source.format)
    _check_request(frame, fmt, bits, quality, output_space)
    has_alpha = frame.alpha is not None and fmt != "jpeg"
    # One channel for grey TIFF/PNG; OpenCV cannot write 16-bit grey+alpha PNG, so that one stays RGBA.
    grey = frame.grey and fmt != "jpeg" and not (fmt == "png" and has_alpha and bits == 16)
    source = frame if has_alpha else replace(frame, alpha=None)
    samples = quantize(source, bits=bits, output_space=output_space, grey=grey, dither_seed=dither_seed)
    profile = icc.icc_profile(output_space, grey=grey)
    return _container(samples, fmt, quality, profile, has_alpha, frame.source)


def _container(samples: np.ndarray, fmt: str, quality: int, profile: bytes, has_alpha: bool, source) -> bytes:
    """Quantized samples -> the bytes of a `fmt` file with `profile` embedded."""
    try:
        if fmt == "jpeg":
            return _jpeg(samples, quality, profile)
        if fmt == "tiff":
            return _tiff(samples, profile, has_alpha)
        return _png(samples, profile)
    except (OSError, ValueError) as error:
        raise EncodeError(f"could not encode {fmt}: {error}", source.path) from error


def encode_display(frame: DisplayFrame, *, fmt: str, quality: int = 95) -> bytes:
    """Encode the already quantized samples of a DisplayFrame (8-bit display route) as an 8-bit `fmt` file in
    the frame's own space, its ICC profile embedded. Raises EncodeError as `encode` does."""
    fmt = resolve_format(fmt, frame.source.format)
    _check_quality(quality, frame)
    if frame.space not in icc.BUILDABLE_SPACES:
        raise EncodeError(f"no ICC profile can be built for {frame.space!r}", frame.source.path)
    return _container(frame.samples, fmt, quality, icc.icc_profile(frame.space), False, frame.source)
