"""`xfix hdr`: a thin wrapper over `xfix.hdr.run_hdr` (single-exposure HDR reconstruction to OpenEXR)."""

from __future__ import annotations

import json
from enum import Enum
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


class Weights(str, Enum):
    default = "default"
    compressed = "compressed"
    video = "video"


class Compression(str, Enum):
    zip = "zip"
    piz = "piz"
    dwaa = "dwaa"
    none = "none"


def hdr(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Images, folders of frames (natural order) or video files.", show_default=False),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("xfix-hdr"),
    gamma: Annotated[
        float,
        typer.Option(min=0.1, max=5.0, help="Above 1 brightens reconstructed highlights (1.1-1.3 is good)."),
    ] = 1.0,
    tau: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Display level where blending in the prediction starts.")
    ] = 0.95,
    weights: Annotated[
        Optional[Weights],
        typer.Option(help="Weight set: default, compressed (JPEG inputs) or video.", show_default=False),
    ] = None,
    video: Annotated[bool, typer.Option("--video", help="Temporally stable weights for video.")] = False,
    exr_compression: Annotated[Compression, typer.Option(help="EXR compression.")] = Compression.zip,
    half: Annotated[
        bool, typer.Option("--half/--float", help="Half (16-bit) or float (32-bit) samples.")
    ] = True,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also write a tone-mapped PNG per frame (and an MP4 for video).")
    ] = False,
    overwrite: Overwrite = False,
    device: Annotated[Device, typer.Option(help="Where the model runs.")] = Device.auto,
    json_out: JsonOut = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Reconstruct HDR from 8-bit photos or video frames: one OpenEXR (linear Rec.709) per frame."""
    console = stderr_console()
    with exit_codes(debug, console):
        from xfix.hdr import HdrConfig, run_hdr

        if video and weights not in (None, Weights.video):
            raise UsageError(f"--video uses the video weights; it cannot go with --weights {weights.value}")
        chosen = "video" if video else (weights or Weights.default).value
        config = HdrConfig(inputs=tuple(inputs), out_dir=out, weights=chosen, gamma=gamma, tau=tau,
                           compression=exr_compression.value, half=half, preview=preview, overwrite=overwrite,
                           device=device.value)

        def show(result) -> None:
            if json_out:
                typer.echo(json.dumps({"source": result.source, "output": str(result.output or ""),
                                       "status": result.status, "message": result.message,
                                       "seconds": round(result.seconds, 3), "peak": result.peak}))
            if result.status == "failed" or not quiet:
                done = result.status == "done"
                detail = f"peak {result.peak:.3g}, {result.seconds:.1f} s" if done else result.message
                console.print(f"{result.status} {result.source} -> {result.output or '-'} ({detail})",
                              soft_wrap=True, markup=False)

        def warn(text: str) -> None:
            if not quiet:
                console.print(f"warning {text}", soft_wrap=True, markup=False)

        summary = run_hdr(config, on_result=show, on_warning=warn)
        if not quiet:
            done = sum(r.status == "done" for r in summary.results)
            warned = f", {len(summary.warnings)} warning(s)" if summary.warnings else ""
            console.print(f"{done} written, {summary.failed} failed, "
                          f"{len(summary.results) - done - summary.failed} skipped{warned}", markup=False)
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command("hdr")(hdr)
