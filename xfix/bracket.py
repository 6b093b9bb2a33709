"""`xfix fuse` as a library: brackets of files -> one fused, well-exposed file each.

Per bracket: decode -> linearize every frame -> display sRGB -> `xfix.fuse.fuse` (order, align, deghost,
Mertens blend) -> working space -> encode -> metadata copied from the middle exposure -> atomic write. A
bracket that fails (a corrupt frame, frames of different sizes) is reported with its reason and nothing is
written for it; the others go on. `group_by_count` and `group_by_time` split a shoot's files into brackets.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from time import perf_counter
from typing import Callable, Sequence

from xfix.discover import natural_key
from xfix.errors import InputError, UsageError, XfixError

log = logging.getLogger(__name__)

MIN_FRAMES, MAX_FRAMES = 2, 9
FORMATS = ("jpeg", "tiff", "png")
_EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".png": "png"}


# ---------------------------------------------------------------- grouping


def group_by_count(paths: Sequence[Path], count: int) -> list[list[Path]]:
    """Consecutive runs of `count` files in natural name order (IMG_2 before IMG_10). UsageError when the
    files do not divide evenly. Known value: 6 files, count 3 -> [[1, 2, 3], [4, 5, 6]]."""
    if not MIN_FRAMES <= count <= MAX_FRAMES:
        raise UsageError(f"--groups must be {MIN_FRAMES}-{MAX_FRAMES} frames, got {count}")
    ordered = sorted(paths, key=lambda p: natural_key(Path(p).name))
    if len(ordered) % count:
        raise UsageError(f"{len(ordered)} files do not split into brackets of {count}")
    return [ordered[i : i + count] for i in range(0, len(ordered), count)]


def capture_time(path: Path) -> float:
    """Seconds since the epoch when the photo was taken: EXIF DateTimeOriginal (or DateTime), else the file's
    modification time."""
    from xfix.metadata import read_exposure

    stamp = read_exposure(Path(path)).get("datetime")
    if stamp:
        try:
            return datetime.strptime(stamp[:19], "%Y:%m:%d %H:%M:%S").timestamp()
        except ValueError:
            log.debug("%s: unreadable capture time %r, using the file time", path, stamp)
    return Path(path).stat().st_mtime


def group_by_time(
    paths: Sequence[Path], seconds: float, times: Callable[[Path], float] = capture_time
) -> list[list[Path]]:
    """Brackets of files taken within `seconds` of the previous one (in capture order): a longer gap starts a
    new bracket. Known value: times 0, 1, 2, 30, 31, 32 with seconds 5 -> two brackets of three."""
    if seconds < 0:
        raise UsageError(f"--by-time must be at least 0 seconds, got {seconds:g}")
    stamped = sorted(((times(Path(p)), natural_key(Path(p).name), Path(p)) for p in paths))
    groups: list[list[Path]] = []
    previous = None
    for stamp, _, path in stamped:
        if previous is None or stamp - previous > seconds:
            groups.append([])
        groups[-1].append(path)
        previous = stamp
    return groups


# ---------------------------------------------------------------- config and results


@dataclass(frozen=True)
class FuseConfig:
    """What `run_fuse` does. out: the output file when there is one bracket and it has an image extension,
    else a folder that gets `<middle frame stem><suffix>.<ext>` per bracket. fmt: jpeg | tiff | png, None to
    follow `out`'s extension (else jpeg)."""

    brackets: tuple[tuple[Path, ...], ...]
    out: Path
    fmt: str | None = None
    bits: int | None = None
    quality: int = 95
    output_space: str = "srgb"
    align: bool = True
    deghost: bool = True
    suffix: str = "_fused"
    overwrite: bool = False
    strip_gps: bool = False
    max_megapixels: float = 200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "brackets", tuple(tuple(Path(p) for p in b) for b in self.brackets))
        object.__setattr__(self, "out", Path(self.out))
        if not self.brackets:
            raise UsageError("no brackets to fuse")
        for bracket in self.brackets:
            if not MIN_FRAMES <= len(bracket) <= MAX_FRAMES:
                names = ", ".join(p.name for p in bracket)
                raise UsageError(
                    f"a bracket needs {MIN_FRAMES}-{MAX_FRAMES} frames, got {len(bracket)}: {names}"
                )
        if self.fmt is not None and self.fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {self.fmt!r}")
        if self.bits not in (None, 8, 16) or (self.bits == 16 and self.output_format() == "jpeg"):
            raise UsageError(f"--bits must be 8 or 16 (16 needs tiff or png), got {self.bits}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be 1-100, got {self.quality}")
        if len(self.brackets) > 1 and self.out.suffix.lower() in _EXTENSIONS:
            raise UsageError(f"-o {self.out} names a file, but there are {len(self.brackets)} brackets; "
                             "give a folder")

    @property
    def single_file(self) -> bool:
        return len(self.brackets) == 1 and self.out.suffix.lower() in _EXTENSIONS

    def output_format(self) -> str:
        if self.fmt is not None:
            return self.fmt
        return _EXTENSIONS.get(self.out.suffix.lower(), "jpeg") if self.single_file else "jpeg"

    def output_for(self, bracket: Sequence[Path], middle: Path) -> Path:
        """Where a bracket's fusion goes, given its middle exposure."""
        from xfix.encode import output_extension

        if self.single_file:
            return self.out
        return self.out / f"{middle.stem}{self.suffix}{output_extension(self.output_format())}"


@dataclass(frozen=True)
class BracketResult:
    """One bracket: its frames, the output (None when it failed), status done | skipped | failed, the one-line
    reason of a failure, metadata warnings, seconds, and the fusion facts (reference frame, shifts)."""

    frames: tuple[Path, ...]
    output: Path | None
    status: str
    seconds: float
    error: str | None = None
    warnings: tuple[str, ...] = ()
    reference: Path | None = None
    shifts: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict:
        return {
            "frames": [str(p) for p in self.frames],
            "output": None if self.output is None else str(self.output),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "warnings": list(self.warnings),
            "reference": None if self.reference is None else str(self.reference),
            "shifts": [list(s) for s in self.shifts],
        }


# ---------------------------------------------------------------- running


def _exposure(path: Path) -> float | None:
    """time x ISO / N**2 from EXIF (None when any is missing): the frame's relative exposure."""
    from xfix.metadata import read_exposure

    facts = read_exposure(path)
    time, iso, f_number = facts["exposure_time"], facts["iso"], facts["f_number"]
    if not time or not f_number:
        return None
    return time * (iso or 100) / f_number**2


def _load(paths: Sequence[Path], max_megapixels: float) -> list:
    """Decoded and linearized frames; XfixError (naming the file) for a frame that cannot be read."""
    from xfix import decode, linearize

    frames = [linearize.linearize(decode.decode(p, max_megapixels=max_megapixels)) for p in paths]
    sizes = {f.pixels.shape[:2] for f in frames}
    if len(sizes) != 1:
        found = ", ".join(
            f"{p.name} {f.pixels.shape[1]}x{f.pixels.shape[0]}" for p, f in zip(paths, frames, strict=True)
        )
        raise InputError(f"frames of a bracket must have one size, got {found}", paths[0])
    return frames


def fuse_bracket(
    paths: Sequence[Path], config: FuseConfig, planned: set[Path] | None = None
) -> BracketResult:
    """Fuse one bracket and write it; raises XfixError (nothing written) when it cannot. `planned`: outputs of
    earlier brackets of the batch, which this one must not replace (it is added to it)."""
    import numpy as np

    from xfix import __version__, encode, metadata, write
    from xfix.colour import from_working, to_working
    from xfix.fuse import fuse

    start = perf_counter()
    paths = tuple(Path(p) for p in paths)
    frames = _load(paths, config.max_megapixels)
    display = [np.clip(from_working(f.pixels, "srgb"), 0.0, 1.0) for f in frames]
    result = fuse(display, exposures=[_exposure(p) for p in paths], align=config.align,
                  deghost=config.deghost)
    middle = paths[result.reference]
    output = config.output_for(paths, middle)
    if planned is not None:
        if output.resolve() in planned:
            raise UsageError(f"{output} is also the output of an earlier bracket (same middle frame name)")
        planned.add(output.resolve())
    if os.path.lexists(output) and not config.overwrite:
        return BracketResult(paths, output, "skipped", perf_counter() - start, reference=middle,
                             error=f"{output} exists (--overwrite replaces it)")
    write.ensure_folder(output.parent)
    fused = frames[result.reference].with_pixels(to_working(result.image, "srgb"))
    fmt = config.output_format()
    bits = config.bits if config.bits is not None and fmt != "jpeg" else encode.default_bits(fmt)
    data = encode.encode(fused, fmt=fmt, bits=bits, quality=config.quality, output_space=config.output_space)
    data, warnings = metadata.copy_metadata(middle, data, fmt=fmt, strip_gps=config.strip_gps,
                                            software=f"xfix {__version__} (fuse)",
                                            output_space=config.output_space)
    write.write_atomic(output, data, overwrite=config.overwrite)
    return BracketResult(paths, output, "done", perf_counter() - start, warnings=tuple(warnings),
                         reference=middle, shifts=result.shifts)


def run_fuse(
    config: FuseConfig, on_result: Callable[[BracketResult], None] | None = None
) -> list[BracketResult]:
    """Fuse every bracket of `config`; a failed bracket becomes a result with its reason, the rest go on."""
    results, planned = [], set()
    for bracket in config.brackets:
        start = perf_counter()
        try:
            result = fuse_bracket(bracket, config, planned)
        except XfixError as error:
            result = BracketResult(bracket, None, "failed", perf_counter() - start,
                                   error=" ".join(str(error).split()))  # names the file
        except MemoryError:
            result = BracketResult(bracket, None, "failed", perf_counter() - start,
                                   error="out of memory (try --max-megapixels)")
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
