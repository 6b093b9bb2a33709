"""Where a corrected file goes and in which format: out_dir / the job's sub-folder / stem + suffix +
extension, the format following the input's unless one is asked for; and which outputs a run may not write
(`OutputClaims`, shared by `xfix correct` and `xfix hdr`).

Light at import (the encode stage is imported inside the functions), as the pipeline and the CLI need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from xfix.discover import Job, format_of
from xfix.errors import UsageError

if TYPE_CHECKING:
    from xfix.pipeline import CorrectConfig


def output_path(job: Job, config: CorrectConfig) -> Path:
    """out_dir / the job's sub-folder / (stem + suffix + extension of the resolved output format)."""
    from xfix.encode import output_extension

    ext = output_extension(output_format(job, config))
    return config.out_dir / job.rel_dir / (job.input.stem + config.suffix + ext)


def output_format(job: Job, config: CorrectConfig) -> str:
    """jpeg | tiff | png for this job. "same" follows the input's extension, known before decoding, so the
    output name and its contents always agree (a JPEG misnamed .tif still gives a .tif)."""
    from xfix.encode import resolve_format

    return resolve_format(config.fmt, job.format or "tiff")


def format_for_extension(path: Path) -> str:
    """jpeg | tiff | png from an output file name (`correct_file`'s output); UsageError for anything else."""
    fmt = format_of(path)
    if fmt not in ("jpeg", "tiff", "png"):
        raise UsageError(f"cannot tell the output format from {path.name!r}; use .jpg, .tif or .png", path)
    return fmt


class OutputClaims:
    """The outputs claimed so far in one run, so that no output replaces an input or another input's output
    (the later input would be skipped, or with --overwrite replace the earlier one's file).

    inputs: the run's inputs that no output may replace besides each output's own source (which is always
    checked); `xfix hdr` gives all of them, since one input's preview can land on another input."""

    def __init__(self, inputs: Iterable[Path] = ()):
        self._inputs = {Path(p).resolve(): Path(p) for p in inputs}
        self._owners: dict[Path, Path] = {}  # resolved output -> the input it belongs to

    def replaced_input(self, source: Path, output: Path) -> Path | None:
        """The input that writing `output` for `source` would destroy: `source` itself or another input."""
        key = Path(output).resolve()
        if key == Path(source).resolve():
            return Path(source)
        return self._inputs.get(key)

    def owner(self, source: Path, output: Path) -> Path | None:
        """The earlier input that already claimed `output`, or None, and then `output` is `source`'s."""
        owner = self._owners.setdefault(Path(output).resolve(), Path(source))
        return None if owner == Path(source) else owner
