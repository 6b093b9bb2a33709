"""`xfix train` and `xfix eval`: thin wrappers over `xfix.train.run_training` and `xfix.evaluate.run_eval`."""

from __future__ import annotations

import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from xfix.cli_common import (
    EXIT_INTERRUPTED,
    Debug,
    Device,
    Terminated,
    complete_correction_profile,
    exit_codes,
    parse_settings,
    stderr_console,
    stop_signals_interrupt,
)
from xfix.errors import UsageError


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--patches expects sizes like 128,256,512, got {text!r}") from None
    if not sizes or min(sizes) < 16:
        raise UsageError(f"patch sizes must be at least 16 px, got {text!r}")
    return sizes


def train(
    profile: Annotated[
        str,
        typer.Argument(help="Profile to train (its file names the architecture).",
                       autocompletion=complete_correction_profile),
    ],
    data: Annotated[Path, typer.Option(help="Folder of well-exposed photos.", exists=True, file_okay=False)],
    minutes: Annotated[Optional[float], typer.Option(help="Train for this long (wall clock).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Train for this many steps.")] = None,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="Start over, replacing the checkpoint in the checkpoint folder.")
    ] = False,
    init_from_weights: Annotated[
        bool, typer.Option("--init-from-weights", help="Start from the weights file the profile names.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    out: Annotated[Path, typer.Option(help="Where the weights and model card are exported.")] = Path("models"),
    checkpoints: Annotated[
        Optional[Path], typer.Option(help="Checkpoint folder (default checkpoints/PROFILE).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size at the first patch size.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-4,
    patches: Annotated[str, typer.Option(help="Patch-size curriculum.")] = "128,256,512",
    whole_frames: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of pairs made from whole photos squeezed to the patch "
                     "(for models that judge a thumbnail of the whole frame, as whitebox)."),
    ] = 0.0,
    workers: Annotated[int, typer.Option(min=0, help="Data worker processes.")] = 2,
    max_side: Annotated[
        Optional[int], typer.Option(help="Downscale training photos to this long side first.")
    ] = None,
    eval_limit: Annotated[int, typer.Option(help="Validation photos in the model card's eval (0: none).")] = 20,
    checkpoint_minutes: Annotated[float, typer.Option(help="Minutes between checkpoints.")] = 5.0,
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a profile setting, key=value (repeatable).")
    ] = [],  # noqa: B006  (typer needs a literal default)
    style: Annotated[
        Optional[Path],
        typer.Option(help="whitebox: photos in the wanted look (unpaired, adversarial).", exists=True,
                     file_okay=False, show_default=False),
    ] = None,
    debug: Debug = False,
) -> None:
    """Train a profile's network on degraded copies of well-exposed photos and export its weights."""
    console = stderr_console()
    with exit_codes(debug, console, verbose=True), stop_signals_interrupt():
        from xfix.train import TrainConfig, run_training

        config = TrainConfig(
            profile=profile, data=data, minutes=minutes, steps=steps, device=device.value, resume=resume,
            restart=restart, seed=seed, out=out, checkpoints=checkpoints, batch_size=batch_size, lr=lr,
            patches=parse_sizes(patches), whole_frames=whole_frames, workers=workers, max_side=max_side,
            init_from_weights=init_from_weights, eval_limit=eval_limit, checkpoint_minutes=checkpoint_minutes,
            command=shlex.join(["xfix", *sys.argv[1:]]),
            settings={**parse_settings(set_), **({"style": str(style.resolve())} if style else {})},
        )

        def show(progress: dict) -> None:
            console.print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in progress.items()), markup=False, soft_wrap=True)

        started = time.time()
        try:
            result = run_training(config, on_progress=show)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM / SIGHUP as Terminated: checkpoint saved
            raise _training_stopped(console, stop, saved=_saved_since(config.checkpoints, started)) from None
        console.print(f"trained {result.steps} steps in {result.elapsed_s / 60:.1f} min; weights {result.weights}"
                      f" (sha256 {result.sha256[:12]}...), model card {result.model_card}", markup=False)
        for warning in result.warnings:
            console.print(f"xfix: warning: {warning}", markup=False)


def _training_stopped(console: Console, stop: KeyboardInterrupt, *, saved: bool) -> typer.Exit:
    """Say that training stopped and whether it can go on; the exit status is the shell's for the signal,
    128 + its number (130 for Ctrl-C)."""
    if isinstance(stop, Terminated):
        how, code = f"stopped by {signal.Signals(stop.signum).name}", 128 + stop.signum
    else:
        how, code = "interrupted", EXIT_INTERRUPTED
    after = "a checkpoint was saved, rerun with --resume" if saved else "before its first step; nothing saved"
    console.print(f"xfix: training {how}; {after}", markup=False)
    return typer.Exit(code)


def _saved_since(checkpoints: Path, started: float) -> bool:
    """True when `checkpoints` holds a checkpoint written since `started` (time.time())."""
    from xfix.checkpoint import checkpoint_exists

    folder = Path(checkpoints)
    return checkpoint_exists(folder) and (folder / "checkpoint.json").stat().st_mtime >= started


def check_report_path(path: Path) -> None:
    """Fail before an evaluation of many minutes, not after it: a folder is refused, and the report's folder
    is created now, as `xfix correct` creates its output folder."""
    from xfix.write import ensure_folder

    if path.is_dir():
        raise UsageError(f"--json {path} is a folder; name the report file, e.g. {path / 'eval.json'}")
    ensure_folder(path.parent)


def evaluate(
    profile: Annotated[
        str, typer.Argument(help="Profile to evaluate.", autocompletion=complete_correction_profile)
    ],
    data: Annotated[
        Optional[Path],
        typer.Option(help="Photo folder: its validation split at the MSEC exposure levels.", exists=True,
                     file_okay=False),
    ] = None,
    pairs: Annotated[
        Optional[Path],
        typer.Option(help="Real pairs: DIR/input and DIR/target.", exists=True, file_okay=False),
    ] = None,
    brackets: Annotated[
        Optional[Path],
        typer.Option(help="Folders of real differently exposed frames, one per scene.", exists=True,
                     file_okay=False),
    ] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Also write the report as JSON.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many photos / pairs / scenes.")] = None,
    max_side: Annotated[int, typer.Option(help="Downscale photos to this long side (0: full size).")] = 512,
    device: Annotated[Device, typer.Option(help="Where the models run.")] = Device.auto,
    seed: Annotated[int, typer.Option(help="Seed of the rendered exposures.")] = 0,
    baselines: Annotated[
        str, typer.Option(help="Comma-separated baselines: identity, classic, trivial-inverse or a profile.")
    ] = "identity,classic",
    highlights: Annotated[
        bool, typer.Option("--highlights", help="Also the over-exposure scores and the simple clipping set.")
    ] = False,
    fused_reference: Annotated[
        bool,
        typer.Option("--fused-reference", help="Also score against exposure fusions (the sice references)."),
    ] = False,
    debug: Debug = False,
) -> None:
    """Measure a profile beside the identity and classic baselines: PSNR, SSIM, CIEDE2000, consistency."""
    console = stderr_console()
    with exit_codes(debug, console):
        from xfix.evaluate import EvalConfig, report_table, run_eval

        if data is None and pairs is None and brackets is None:
            raise UsageError("give at least one of --data, --pairs, --brackets")
        config = EvalConfig(profile=profile, data=data, pairs=pairs, brackets=brackets, device=device.value,
                            limit=limit, max_side=max_side or None, seed=seed, highlights=highlights,
                            fused_reference=fused_reference,
                            baselines=tuple(name.strip() for name in baselines.split(",") if name.strip()))
        if json_file is not None:
            check_report_path(json_file)
        report = run_eval(config)
        Console(highlight=False).print(report_table(report))
        if json_file is not None:
            from xfix.write import write_atomic

            write_atomic(json_file, (report.to_json() + "\n").encode("utf-8"), overwrite=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(evaluate)
