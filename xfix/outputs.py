"""Where a corrected file goes and in which format: out_dir / the job's sub-folder / stem + suffix +
extension, the format following the input's unless one is asked for.

Light at import (the encode stage is imported inside the functions), as the pipeline and the CLI need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xfix.discover import Job, format_of
from xfix.errors import UsageError

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
