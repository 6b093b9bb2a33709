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
from xfix.files import real_path

if TYPE_CHECKING:
    from xfix.pipeline import CorrectConfig


def output_path(job: Job, config: CorrectConfig) -> Path:
    """out_dir / the job's sub-folder / (stem + suffix + extension of the resolved output format)."""
    from xfix.encode import output_extension

    ext = output_extension(output_format(job, config))
    return config.out_dir / job.rel_dir / (job.input.stem + config.suffix + ext)


def planned_files(output: Path, config: CorrectConfig) -> tuple[Path, ...]:
    """Every file a job writes: the image at `output`, its sidecars, then each variant and its sidecars.
    All follow the image's rules: never replacing an input, kept unless --overwrite, no two jobs' alike."""
    from xfix.sidecars import sidecar_path, variant_path

    images = [output] + [variant_path(output, k) for k in range(1, config.variants + 1)]
    return tuple(
        path for image in images for path in (image, *(sidecar_path(image, k) for k in config.sidecars))
    )


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
    checked): one input's output can land on another input (a.png -> a.jpg beside the input a.jpg). Paths
    are compared with symbolic links followed, never raising on a link loop (`files.real_path`)."""

    def __init__(self, inputs: Iterable[Path] = ()):
        self._inputs = {real_path(p): Path(p) for p in inputs}
        self._owners: dict[Path, Path] = {}  # real output path -> the input it belongs to

    def _replaced_input(self, source: Path, output: Path) -> Path | None:
        """The input that writing `output` for `source` would destroy: `source` itself or another input."""
        key = real_path(output)
        if key == real_path(source):
            return Path(source)
        return self._inputs.get(key)

    def _claimed_by(self, source: Path, output: Path) -> Path | None:
        """The earlier input that already claimed `output`, or None (unclaimed, or `source`'s own)."""
        owner = self._owners.get(real_path(output), Path(source))
        return None if owner == Path(source) else owner

    def _claim(self, source: Path, outputs: Iterable[Path]) -> None:
        """`outputs` are `source`'s from now on."""
        self._owners.update(dict.fromkeys(map(real_path, outputs), Path(source)))

    def refusal(
        self, source: Path, outputs: Iterable[Path], *, replace_hint: str, clash_hint: str
    ) -> str | None:
        """Why `outputs` (all the files one job writes) must not be written for `source`, or None: one would
        replace `source` or another input, or is already another input's output. They are claimed only all
        together, when none is refused, so a refused job takes no name from a later one.

        The hints end the message and say what to change: `replace_hint` when an output would replace an
        input, `clash_hint` when two inputs have one output (each command offers its own options)."""
        outputs = list(outputs)
        for output in outputs:
            replaced = self._replaced_input(source, output)
            if replaced == Path(source):
                return f"the output would replace the input; {replace_hint}"
            if replaced is not None:
                return f"{output} would replace the input {replaced}; {replace_hint}"
            other = self._claimed_by(source, output)
            if other is not None:
                return f"{output} is also the output of {other}; {clash_hint}"
        self._claim(source, outputs)
        return None
