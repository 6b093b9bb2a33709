"""The records that flow between pipeline stages.

Between decode and linearize an image travels as a `Decoded` (file encoding, integer or float samples);
from linearize to encode it travels as a `Frame`: float32, scene-linear, (H, W, 3), in the working space
`colour.WORKING_SPACE` (linear ProPhoto/ROMM primaries, which hold every colour a camera records), never clipped,
so values above 1 survive to the encoder. The one exception is the 8-bit display route: 8-bit samples already
in the model's display encoding, bound for 8-bit output in that encoding, travel as a `DisplayFrame` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

FORMATS = ("raw", "tiff", "jpeg", "png")


@dataclass(frozen=True)
class SourceInfo:
    """What is known about the file an image came from; metadata is copied from `path` by the metadata stage."""

    path: Path
    format: str  # one of FORMATS
    bit_depth: int  # from the sample dtype: 8, 16 or 32 (float)
    width: int
    height: int
    channels: int  # channels stored in the file, alpha included
    icc: bytes | None = None
    exif_colour_space: str | None = None  # "srgb", "adobergb" or None, from EXIF ColorSpace / Interop index
    orientation: int = 1  # EXIF orientation as stored; decode has already applied it to the pixels


@dataclass(frozen=True)
class Decoded:
    """Pixels as stored in the file, orientation applied.

    pixels: (H, W, C) with C = 1 or 3; dtype uint8, uint16 or float32.
    alpha: (H, W) of the same dtype, or None.
    encoding: colour encoding the decoder knows for certain (RAW gives "linear-prophoto"), else None and
        linearize decides from ICC / EXIF / override.
    """

    pixels: np.ndarray
    source: SourceInfo
    alpha: np.ndarray | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class Frame:
    """A scene-linear image in the working space.

    pixels: (H, W, 3) float32, linear, primaries of `space`; not clipped.
    alpha: (H, W) float32 in [0, 1], or None.
    input_space: the encoding the pixels were decoded from (e.g. "srgb"), kept for reporting and defaults.
    grey: the source had one colour channel; the encoder may write one back.
    """

    pixels: np.ndarray
    source: SourceInfo
    space: str = "linear-prophoto"
    input_space: str = "linear-prophoto"
    alpha: np.ndarray | None = None
    grey: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    strength: float = 1.0  # after a correction: the share of the profile's correction the pixels carry

    def with_pixels(self, pixels: np.ndarray, space: str | None = None) -> "Frame":
        """A copy carrying new pixels (and optionally a new space); everything else is kept."""
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"Frame pixels must be (H, W, 3), got {pixels.shape}")
        return replace(self, pixels=pixels.astype(np.float32, copy=False), space=space or self.space)

    @property
    def megapixels(self) -> float:
        return self.pixels.shape[0] * self.pixels.shape[1] / 1e6


@dataclass(frozen=True)
class DisplayFrame:
    """An 8-bit RGB image kept in its display encoding: the record of the 8-bit display route.

    When the samples are already in the profile's model encoding and the output is 8-bit in that encoding too,
    converting them to a linear Frame and back would cancel out at full resolution; `linearize.keep_display`
    hands them on as they are, `Corrector.apply_display` corrects them in one fused pass and
    `encode.encode_display` writes them.

    samples: (H, W, 3) uint8 encoded in `space` (a display encoding such as "srgb").
    """

    samples: np.ndarray
    source: SourceInfo
    space: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    strength: float = 1.0  # after a correction: the share of the profile's correction the samples carry

    def with_samples(self, samples: np.ndarray) -> "DisplayFrame":
        """A copy carrying new samples of the same shape and type; everything else is kept."""
        if samples.shape != self.samples.shape or samples.dtype != np.uint8:
            got, wanted = f"{samples.shape} {samples.dtype}", self.samples.shape
            raise ValueError(f"DisplayFrame samples must stay {wanted} uint8, got {got}")
        return replace(self, samples=samples)

    @property
    def megapixels(self) -> float:
        return self.samples.shape[0] * self.samples.shape[1] / 1e6
