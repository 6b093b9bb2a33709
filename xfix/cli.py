"""The `xfix` command line: parse flags into a frozen config, call the library, turn errors into exit codes.

Exit codes: 0 every file done or skipped, 1 at least one file failed, 2 usage error (bad option, unknown
profile, no inputs), 130 interrupted (Ctrl-C); `correct` also stops cleanly on SIGTERM (143) and SIGHUP (129).
No traceback unless --debug.

Start-up imports only typer, rich and the light xfix modules (errors, discover, pipeline), so `--help`,
`--version` and shell completion never load torch, rawpy, cv2 or pyexiv2. Each command is a function on `app`;
later commands (eval, train, hdr, fuse, apply) are added the same way.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from xfix import __version__
from xfix.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    Debug,
    Device,
    JsonOut,
    Overwrite,
    Quiet,
    complete_correction_profile,
    correction_overrides,
    exit_codes,
    stderr_console,
    stop_signals_interrupt,
)
from xfix.errors import UsageError, XfixError

app = typer.Typer(
    name="xfix",
    help="Fix badly exposed photos in batches: RAW, TIFF, JPEG, PNG in; corrected files with metadata out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)



class OutputFormat(str, Enum):
    same = "same"
    jpeg = "jpeg"
    tiff = "tiff"
    png = "png"


class Bits(str, Enum):
    eight = "8"
    sixteen = "16"


class OutputSpace(str, Enum):
    srgb = "srgb"
    adobergb = "adobergb"
    prophoto = "prophoto"


class InputSpace(str, Enum):
    srgb = "srgb"
    adobergb = "adobergb"
    prophoto = "prophoto"
    display_p3 = "display-p3"
    linear_srgb = "linear-srgb"
    linear_prophoto = "linear-prophoto"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xfix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Fix badly exposed photos in batches, with metadata and colour intact."""


def _discover(inputs: list[str], *, recursive: bool, nul: bool, exclude: tuple[Path, ...] = ()):
    from xfix.discover import discover

    return discover(
        inputs, recursive=recursive, stdin=sys.stdin if "-" in inputs else None, nul=nul, exclude=exclude
    )


@app.command()
def correct(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Files, folders, glob patterns, or - to read paths from stdin.", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("xfix-out"),
    recursive: Annotated[
        bool, typer.Option("-r", "--recursive", help="Walk sub-folders; outputs mirror them.")
    ] = False,
    nul: Annotated[
        bool, typer.Option("-0", "--null", help="Paths on stdin are NUL-separated (find -print0).")
    ] = False,
    profile: Annotated[
        Optional[str],
        typer.Option(
            help="Profile name (see `xfix profiles`); default: the best shipped one.",
            autocompletion=complete_correction_profile,
        ),
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the model runs.")] = Device.auto,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", help="Output format; same keeps JPEG/PNG, RAW and TIFF give TIFF."),
    ] = OutputFormat.same,
    bits: Annotated[
        Optional[Bits],
        typer.Option(help="Bits per sample for TIFF/PNG (JPEG is 8); default 16.", show_default=False),
    ] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 95,
    output_space: Annotated[
        OutputSpace, typer.Option(help="Colour space of the outputs.")
    ] = OutputSpace.srgb,
    input_space: Annotated[
        Optional[InputSpace],
        typer.Option(help="Override the detected input colour space.", show_default=False),
    ] = None,
    suffix: Annotated[str, typer.Option(help="Added to each output file name before the extension.")] = "",
    overwrite: Overwrite = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")
    ] = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="One line per file with details.")] = False,
    strip_gps: Annotated[bool, typer.Option("--strip-gps", help="Do not copy GPS position tags.")] = False,
    max_megapixels: Annotated[
        float, typer.Option(help="Refuse larger images (decompression bombs).")
    ] = 200.0,
    strength: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="0 keeps the input, 1 the full correction.")
    ] = 1.0,
    work_size: Annotated[
        Optional[int],
        typer.Option(min=16, help="Long side the network sees before guided upsampling.", show_default=False),
    ] = None,
    full_res: Annotated[
        bool, typer.Option("--full-res", help="Run the network on the full image (tiled where it can).")
    ] = False,
    leave_alone: Annotated[
        Optional[float],
        typer.Option(
            min=0.0, max=2.0, metavar="STOPS", show_default=False,
            help="Fade out corrections that move the brightness by much less than STOPS (0: off; "
            "default: the profile's).",
        ),
    ] = None,
    pyramid_scale: Annotated[
        Optional[str],
        typer.Option(help="msec: scale each Laplacian level, finest first, e.g. 1,1,1.2,1.", show_default=False),
    ] = None,
    fusion: Annotated[
        bool, typer.Option("--fusion", help="msec: fuse the result with the input (Mertens weights).")
    ] = False,
    hist_adjust: Annotated[
        bool, typer.Option("--hist-adjust", help="msec: stretch the result's histogram afterwards.")
    ] = False,
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a profile setting, key=value (repeatable).")
    ] = [],  # noqa: B006  (typer needs a literal default)
    edits: Annotated[
        bool, typer.Option("--edits", help="whitebox: write the edit as NAME.xfix.json (see `xfix apply`).")
    ] = False,
    xmp: Annotated[
        bool, typer.Option("--xmp", help="whitebox: write the edit as Camera Raw settings, NAME.xmp.")
    ] = False,
    steps: Annotated[
        bool, typer.Option("--steps", help="whitebox: write NAME.steps.jpg, the photo after each operation.")
    ] = False,
    variants: Annotated[
        int, typer.Option(min=0, max=100, help="whitebox: also write N other edits it may make, NAME.vK.ext.")
    ] = 0,
    debug: Debug = False,
) -> None:
    """Correct the exposure of INPUTS and write the results to the output folder."""
    from xfix import pipeline
    from xfix.progress import Reporter, choose_mode, summary_table

    console = stderr_console()
    with exit_codes(debug, console, verbose=verbose), stop_signals_interrupt():
        found = _discover(inputs, recursive=recursive, nul=nul, exclude=(out,))
        if not found.jobs:
            raise UsageError(
                "no images found in the inputs" + ("" if not found.warnings else f" ({found.warnings[0]})")
            )
        settings, inference = correction_overrides(
            work_size=work_size, full_res=full_res, pyramid_scale=pyramid_scale, fusion=fusion,
            hist_adjust=hist_adjust, settings=set_, leave_alone=leave_alone,
        )
        config = pipeline.CorrectConfig(
            jobs=found.jobs,
            out_dir=out,
            profile=profile,
            device=device.value,
            fmt=fmt.value,
            bits=None if bits is None else int(bits.value),
            quality=quality,
            output_space=output_space.value,
            input_space=None if input_space is None else input_space.value,
            suffix=suffix,
            overwrite=overwrite,
            dry_run=dry_run,
            strip_gps=strip_gps,
            max_megapixels=max_megapixels,
            strength=strength,
            settings=settings,
            inference=inference,
            sidecars=tuple(k for k, on in (("edits", edits), ("xmp", xmp), ("steps", steps)) if on),
            variants=variants,
        )
        mode = choose_mode(console, quiet=quiet)
        with Reporter(len(config.jobs), console, mode=mode, verbose=verbose) as reporter:
            for warning in found.warnings:
                reporter.warning(warning)

            def on_result(result: pipeline.FileResult) -> None:
                if json_out:
                    typer.echo(json.dumps(result.to_json()))
                reporter.result(result)

            summary = pipeline.correct(config, on_start=reporter.start, on_result=on_result)
        if not quiet:
            console.print(summary_table(summary, extra_warnings=len(found.warnings)))
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)


@app.command()
def info(
    files: Annotated[
        list[str], typer.Argument(help="Images (files, folders, globs, or - for stdin).", metavar="FILES...")
    ],
    json_out: JsonOut = False,
    max_megapixels: Annotated[float, typer.Option(help="Refuse larger images.")] = 200.0,
    debug: Debug = False,
) -> None:
    """Show format, size, bit depth, colour space, EXIF exposure and the measured exposure state."""
    console = stderr_console()
    failed = 0
    with exit_codes(debug, console):
        from xfix.inspect import inspect_image, render_info
        from xfix.pipeline import failure_reason

        found = _discover(files, recursive=False, nul=False)
        for warning in found.warnings:
            console.print(f"warning {warning}", soft_wrap=True, markup=False)
        if not found.jobs:
            raise UsageError("no images found in the inputs")
        out = Console(highlight=False)
        for job in found.jobs:
            try:
                if job.problem is not None:
                    raise XfixError(job.problem, job.input)
                facts = inspect_image(job.input, max_megapixels=max_megapixels)
            except XfixError as error:
                failed += 1
                reason = failure_reason(error, job.input)
                console.print(f"failed {job.input}: {reason}", soft_wrap=True, markup=False)
                if json_out:  # a script reading stdout alone must see the file too
                    typer.echo(json.dumps({"path": str(job.input), "error": reason}))
                continue
            if json_out:
                typer.echo(json.dumps(facts))
            else:
                out.print(render_info(facts))
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command()
def profiles(json_out: JsonOut = False, debug: Debug = False) -> None:
    """List the profiles: description, architecture, weights, and whether each loads (and why not)."""
    from rich.table import Table
    from rich.text import Text

    console = stderr_console()
    with exit_codes(debug, console):
        from xfix.inspect import describe_profiles

        rows = describe_profiles()
        if json_out:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        table = Table(title="xfix profiles", title_justify="left")
        for column in ("name", "description", "architecture", "weights", "loads"):
            table.add_column(column, overflow="fold")
        for row in rows:
            # the file's path with the reason: a broken file on $XFIX_PROFILE_PATH may shadow a shipped one
            reason = f": {row['path']}: {row['reason']}"
            loads = Text("yes", "green") if row["loads"] else Text.assemble(("no", "red"), reason)
            table.add_row(row["name"], row["description"], row["architecture"], row["weights"] or "-", loads)
        Console().print(table)


from xfix import cli_learning  # noqa: E402  (its commands attach to `app`)

cli_learning.register(app)

from xfix import cli_whitebox  # noqa: E402

cli_whitebox.register(app)

from xfix import cli_hdr  # noqa: E402

cli_hdr.register(app)


from xfix import cli_fuse  # noqa: E402

cli_fuse.register(app)


def main() -> None:
    """Console-script entry point (`xfix`); prog_name fixed so completion works under `python -m xfix` too."""
    app(prog_name="xfix")
