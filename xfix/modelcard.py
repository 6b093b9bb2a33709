"""The model card a training run writes beside its weights: `models/<profile>.md`, with how the weights were
made (architecture, data, command, seed, time, device) and the eval table of the validation split.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from xfix.checkpoint import write_file

if TYPE_CHECKING:
    from xfix.train import TrainConfig, Trainer


def write_model_card(
    path: Path,
    config: TrainConfig,
    trainer: Trainer,
    weights: Path,
    sha: str,
    counts: tuple[int, int],
    report: Any,
) -> Path:
    """models/<profile>.md: architecture and size, data, command, seed, time, device, and the eval table."""
    setup = trainer.setup
    params = sum(p.numel() for p in trainer.model.parameters())
    if trainer.device.type == "cuda":
        device = torch.cuda.get_device_name(trainer.device)
    else:
        device = f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    lines = [
        f"# {setup.name}: model card",
        "",
        f"- Architecture: `{setup.arch.name}`, {setup.arch.description}; {params:,} parameters.",
        f"- Encoding: `{setup.encoding}`. Settings: `{json.dumps(setup.settings, default=str)}`.",
        f"- Data: `{config.data}`, {counts[0]} training and {counts[1]} validation photos "
        "(validation: sha1(file name) mod 10 == 0, never trained on); pairs synthesized by `xfix.data`.",
        f"- Command: `{config.command or config.equivalent_command()}`",
        f"- Seed {trainer.seed}; {trainer.step} steps; wall time {trainer.elapsed / 60:.1f} min; device "
        f"{trainer.device.type} ({device}); torch {torch.__version__}.",
        f"- Optimiser: AdamW lr {config.lr:g}, cosine, warm-up {config.warmup_steps} steps, "
        f"EMA {config.ema_decay}, patches {list(config.patches)} at batch {config.batch_size} (first size).",
        f"- Weights: `{weights.name}`, sha256 `{sha}` (EMA of the weights).",
        "",
    ]
    if report is not None:
        lines += [
            f"## Evaluation (`xfix eval {setup.name} --data {config.data} --limit {config.eval_limit} "
            f"--max-side {config.eval_max_side}`)",
            "",
            *_markdown_table(report.table()),
            "",
        ]
    write_file(path, "\n".join(lines).encode("utf-8"))
    return path


def _markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    columns = ["set", "method", "group", "n", "psnr", "ssim", "deltae", "consistency", "moved", "sec_per_mp"]
    cell = lambda v: "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows),
    ]


def model_card_eval(config: TrainConfig, trainer: Trainer, weights: Path, sha256: str):
    """The eval table of the validation split, through Corrector.apply as `xfix correct` runs: the profile
    file re-read with the exported `weights` (which proves the file now names them and they load), or without
    a profile file the EMA model beside the identity baseline. A profile naming other weights (left as it
    was, as when a run exports elsewhere) is given the exported ones, so they and not its own are scored."""
    from xfix.evaluate import EvalConfig, corrector_method, method_from_corrector, run_eval

    setup = trainer.setup
    eval_config = EvalConfig(
        profile=setup.name,
        data=config.data,
        device=config.device,
        limit=config.eval_limit,
        max_side=config.eval_max_side,
        seed=0,
    )
    if setup.profile is not None:  # re-read: the file now holds the new sha256
        from xfix.profile import read_profile

        profile = read_profile(setup.profile.path)
        if profile.weights != weights.resolve():
            profile = replace(profile, weights=weights.resolve(), sha256=sha256)
        method = corrector_method(profile, config.device, architecture=setup.arch)
        return run_eval(eval_config, methods=[method])
    from xfix.profile import Corrector, Profile

    # no profile file: the EMA model in a Corrector of an in-memory profile, the same code path all the same
    profile = Profile(setup.name, setup.arch.description, setup.arch.name, setup.encoding, config.out)
    corrector = Corrector(profile, setup.arch, trainer.ema, trainer.device, setup.settings, profile.inference)
    return run_eval(replace(eval_config, baselines=("identity",)), methods=[method_from_corrector(corrector)])
