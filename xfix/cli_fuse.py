"""`xfix fuse`: thin wrapper over `xfix.bracket.run_fuse` (exposure fusion of brackets)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from xfix.cli_common import EXIT_FAILED, EXIT_OK, Debug, JsonOut, Overwrite, exit_codes, stderr_console
from xfix.errors import InputError, UsageError


class FuseFormat(str, Enum):
    jpeg = "jpeg"
    tiff = "tiff"
    png = "png"


class FuseBits(str, Enum):
    eight = "8"
    sixteen = "16"


class FuseSpace(str, Enum):
    srgb = "srgb"
    adobergb = "adobergb"
    prophoto = "prophoto"


def _images_in(folder: Path) -> list[Path]:
    from xfix.discover import format_of, natural_key

    images = (p for p in folder.iterdir() if p.is_file() and format_of(p) and not p.name.startswith("."))
    return sorted(images, key=lambda p: natural_key(p.name))


def brackets_from_inputs(inputs: list[Path], groups: int | None, by_time: float | None) -> list[list[Path]]:
    """Inputs -> brackets. With --groups / --by-time every image (folders opened) is split into brackets;
    without, the files given are one bracket, or each folder given is one bracket."""
    from xfix.bracket import group_by_count, group_by_time

    if groups is not None and by_time is not None:
        raise UsageError("give at most one of --groups and --by-time")
    for path in inputs:
        if not path.exists():
            raise InputError("no such file or folder", path)
    folders = [p for p in inputs if p.is_dir()]
    if groups is not None or by_time is not None:
        files = [f for p in inputs for f in (_images_in(p) if p.is_dir() else [p])]
        return group_by_count(files, groups) if groups is not None else group_by_time(files, by_time)
    if folders and len(folders) != len(inputs):
        raise UsageError("give either the frames of one bracket or folders that each hold one bracket")
    return [_images_in(p) for p in folders] if folders else [list(inputs)]


def fuse(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="The frames of one bracket, or folders of brackets.", show_default=False),
    ],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Output file (one bracket) or folder.", show_default=False)
    ],
    groups: Annotated[
        Optional[int], typer.Option(help="Split the images into brackets of N frames (name order).")
    ] = None,
    by_time: Annotated[
        Optional[float], typer.Option(help="Split where more than SECONDS pass between captures.")
    ] = None,
    fmt: Annotated[
        Optional[FuseFormat], typer.Option("--format", help="Output format; default from -o, else jpeg.")
    ] = None,
    bits: Annotated[
        Optional[FuseBits], typer.Option(help="Bits per sample for TIFF/PNG; default 16.", show_default=False)
    ] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 95,
    output_space: Annotated[FuseSpace, typer.Option(help="Colour space of the outputs.")] = FuseSpace.srgb,
    align: Annotated[bool, typer.Option(help="Correct small hand-held shifts between frames.")] = True,
    deghost: Annotated[bool, typer.Option(help="Keep moving objects from the middle exposure only.")] = True,
    overwrite: Overwrite = False,
    strip_gps: Annotated[bool, typer.Option("--strip-gps", help="Do not copy GPS position tags.")] = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Merge exposure brackets into well-exposed images (Mertens fusion); EXIF from the middle frame."""
    console = stderr_console()
    failed = 0
    with exit_codes(debug, console):
        from xfix.bracket import FuseConfig, run_fuse

        config = FuseConfig(
            brackets=tuple(tuple(b) for b in brackets_from_inputs(inputs, groups, by_time)), out=out,
            fmt=fmt.value if fmt else None, bits=int(bits.value) if bits else None, quality=quality,
            output_space=output_space.value, align=align, deghost=deghost, overwrite=overwrite,
            strip_gps=strip_gps,
        )

        def report(result) -> None:
            if json_out:
                typer.echo(json.dumps(result.to_json()))
                return
            frames = ", ".join(p.name for p in result.frames)
            if result.status == "failed":
                console.print(f"failed [{frames}]: {result.error}", soft_wrap=True, markup=False)
            elif result.status == "skipped":
                console.print(f"skipped [{frames}]: {result.error}", soft_wrap=True, markup=False)
            else:
                console.print(f"fused [{frames}] -> {result.output} ({result.seconds:.1f} s)",
                              soft_wrap=True, markup=False)
            for warning in result.warnings:
                console.print(f"warning {warning}", soft_wrap=True, markup=False)

        results = run_fuse(config, on_result=report)
        failed = sum(r.status == "failed" for r in results)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command()(fuse)
