"""OpenEXR files: scene-linear (H, W, 3) float32 in, half or float RGB EXR out, and back.

Written files carry linear Rec.709/sRGB primaries, tagged with the `chromaticities` attribute; EXIF facts of
the source (exposure time, aperture, ISO, capture date) go into the standard EXR attributes expTime, aperture,
isoSpeed and capDate. The OpenEXR library writes to a file name, so a file is written in a private temporary
folder first and its bytes then go to the target through `xfix.write` (atomic: never a half-written EXR).
Half floats hold at most 65504: larger values are clamped there rather than becoming infinite.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from xfix.colour import D65, RGB_SPACES, RGBSpace, conversion_matrix, rgb_to_xyz_matrix
from xfix.errors import DecodeError, InputError, UsageError

COMPRESSIONS = ("zip", "piz", "dwaa", "none")
HALF_MAX = 65504.0
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, D65[0], D65[1])
_EXIF_ATTRIBUTES = {"exposure_time": "expTime", "f_number": "aperture", "iso": "isoSpeed"}


def _compression(name: str) -> Any:
    import OpenEXR

    table = {"zip": OpenEXR.ZIP_COMPRESSION, "piz": OpenEXR.PIZ_COMPRESSION,
             "dwaa": OpenEXR.DWAA_COMPRESSION, "none": OpenEXR.NO_COMPRESSION}  # fmt: skip
    if name not in table:
        raise UsageError(f"unknown EXR compression {name!r}; valid: {', '.join(COMPRESSIONS)}")
    return table[name]


def exif_attributes(exposure: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata.read_exposure` facts -> EXR header attributes (expTime s, aperture f-number, isoSpeed,
    capDate "YYYY:MM:DD HH:MM:SS"); absent facts are left out."""
    attributes: dict[str, Any] = {}
    for key, name in _EXIF_ATTRIBUTES.items():
        if exposure.get(key) is not None:
            attributes[name] = float(exposure[key])
    if exposure.get("datetime"):
        attributes["capDate"] = str(exposure["datetime"])
    return attributes


def encode_exr(pixels: np.ndarray, *, half: bool = True, compression: str = "zip",
               attributes: Mapping[str, Any] | None = None) -> bytes:
    """(H, W, 3) float32 linear Rec.709 -> the bytes of an RGB EXR file (half or float samples).

    attributes: extra header entries (str, float or int values), e.g. `exif_attributes(...)`."""
    import OpenEXR

    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"encode_exr expects (H, W, 3), got {pixels.shape}")
    samples = np.nan_to_num(np.asarray(pixels, np.float32), nan=0.0, posinf=HALF_MAX, neginf=0.0)
    samples = np.clip(samples, -HALF_MAX, HALF_MAX).astype(np.float16) if half else samples
    header = {"compression": _compression(compression), "type": OpenEXR.scanlineimage,
              "chromaticities": REC709_CHROMATICITIES, **dict(attributes or {})}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="xfix-exr-") as folder:
        path = Path(folder) / "image.exr"
        with OpenEXR.File(header, {"RGB": np.ascontiguousarray(samples)}) as handle:
            handle.write(str(path))
        return path.read_bytes()


def write_exr(path: Path, pixels: np.ndarray, *, half: bool = True, compression: str = "zip",
              attributes: Mapping[str, Any] | None = None, overwrite: bool = False) -> None:
    """Encode and write atomically; WriteError when the target exists without `overwrite` or is unwritable."""
    from xfix.write import write_atomic

    write_atomic(Path(path), encode_exr(pixels, half=half, compression=compression, attributes=attributes),
                 overwrite=overwrite)


def _space_from_chromaticities(values: tuple[float, ...]) -> RGBSpace:
    rx, ry, gx, gy, bx, by, wx, wy = (float(v) for v in values)
    return RGBSpace("file", ((rx, ry), (gx, gy), (bx, by)), (wx, wy), "linear", "from EXR chromaticities")


def _to_rec709(rgb: np.ndarray, chromaticities: tuple[float, ...] | None) -> np.ndarray:
    """Convert from the file's primaries (Bradford-adapted to D65) when they are not Rec.709's."""
    if chromaticities is None or np.allclose(chromaticities, REC709_CHROMATICITIES, atol=1e-3):
        return rgb
    from xfix.colour import chromatic_adaptation

    source = _space_from_chromaticities(chromaticities)
    target = RGB_SPACES["linear-srgb"]
    to_xyz = chromatic_adaptation(source.white, target.white) @ rgb_to_xyz_matrix(source)
    matrix = np.linalg.inv(rgb_to_xyz_matrix(target)) @ to_xyz
    return (rgb @ matrix.T.astype(np.float32)).astype(np.float32)


def read_exr(path: Path | str) -> tuple[np.ndarray, dict[str, Any]]:
    """An RGB, RGBA or luminance-only (Y) EXR -> ((H, W, 3) float32 linear Rec.709, header dict).

    Other primaries (the `chromaticities` attribute) are converted to Rec.709. Luminance/chroma files (RY, BY)
    are refused with a DecodeError naming what they hold; a missing file is an InputError."""
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        with OpenEXR.File(str(path), separate_channels=True) as handle:
            header = dict(handle.header())
            channels = {name: channel.pixels for name, channel in handle.channels().items()}
    except Exception as exc:  # the binding raises bare Exception/RuntimeError for unreadable files
        raise DecodeError(f"not a readable OpenEXR file ({exc})", path) from None
    if all(c in channels for c in "RGB"):
        rgb = np.stack([channels[c].astype(np.float32) for c in "RGB"], axis=-1)
    elif "Y" in channels and "RY" not in channels:
        rgb = np.repeat(channels["Y"].astype(np.float32)[..., None], 3, axis=-1)
    else:
        message = f"EXR channels {sorted(channels)} are not RGB or Y (luminance/chroma unsupported)"
        raise DecodeError(message, path)
    rgb = np.nan_to_num(rgb, nan=0.0, posinf=HALF_MAX, neginf=0.0)
    return _to_rec709(rgb, header.get("chromaticities")), header


def matrix_to_rec709(space: str) -> np.ndarray:
    """3x3 matrix from a named xfix space's linear values to linear Rec.709 (for callers holding Frames)."""
    return conversion_matrix(space, "linear-srgb")
