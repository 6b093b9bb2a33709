"""`xfix apply`: a thin wrapper over `xfix.apply` and the correction pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from xfix.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    Debug,
    Device,
    JsonOut,
    Overwrite,
    Quiet,
    exit_codes,
    stderr_console,
)
from xfix.errors import UsageError


def apply(
    edits: Annotated[
        Path, typer.Argument(help="A saved edit, NAME.xfix.json (from `xfix correct --edits`).", exists=True,
                             dir_okay=False)
    ],
    inputs: Annotated[
        list[str], typer.Argument(help="Images, folders or glob patterns to apply it to.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("xfix-out"),
    fmt: Annotated[
        str, typer.Option("--format", help="same | jpeg | tiff | png (same keeps JPEG/PNG, else TIFF).")
    ] = "same",
    bits: Annotated[Optional[int], typer.Option(help="8 or 16 for TIFF/PNG.", show_default=False)] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 95,
    output_space: Annotated[str, typer.Option(help="srgb | adobergb | prophoto.")] = "srgb",
    suffix: Annotated[str, typer.Option(help="Added to each output file name before the extension.")] = "",
    overwrite: Overwrite = False,
    strength: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help="Blend with the input (default: the edit's saved strength)."),
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the edit runs.")] = Device.cpu,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Apply a saved edit to IMAGES (the same photo, or others, e.g. the rest of a burst)."""
    from xfix import pipeline
    from xfix.apply import edit_corrector
    from xfix.cli import _discover
    from xfix.edit import Edit
    from xfix.progress import Reporter, choose_mode, summary_table

    console = stderr_console()
    with exit_codes(debug, console):
        edit = Edit.load(edits)
        found = _discover(inputs, recursive=False, nul=False, exclude=(out,))
        if not found.jobs:
            raise UsageError("no images found in the inputs")
        config = pipeline.CorrectConfig(
            jobs=found.jobs, out_dir=out, fmt=fmt, bits=bits, quality=quality, output_space=output_space,
            suffix=suffix, overwrite=overwrite, device=device.value,
            strength=float(edit.extra.get("strength", 1.0)) if strength is None else strength,
        )
        corrector = edit_corrector(edit, edits, device.value)
        with Reporter(len(config.jobs), console, mode=choose_mode(console, quiet=quiet)) as reporter:
            for warning in found.warnings:
                reporter.warning(warning)

            def on_result(result: pipeline.FileResult) -> None:
                if json_out:
                    typer.echo(json.dumps(result.to_json()))
                reporter.result(result)

            summary = pipeline.correct(
                config, on_start=reporter.start, on_result=on_result, corrector=corrector
            )
        if not quiet:
            console.print(summary_table(summary, extra_warnings=len(found.warnings)))
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
