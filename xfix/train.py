"""`xfix train`: one training loop for every learned architecture.

AdamW with warm-up and a cosine schedule, an exponential moving average of the weights (the EMA is what
gets exported), gradient clipping, autocast (bf16, else fp16 with loss scaling) on CUDA only, a
coarse-to-fine patch curriculum, a CSV log, sample grids and checkpoints every few minutes. Pairs come from
`xfix.data` in the profile's encoding. At the end: `models/<profile>.safetensors`, the profile file's sha256,
and a model card with the eval table. Checkpoints are safetensors (tensors) + JSON (everything else): no
pickle anywhere. This module is the loop; what it writes lives in `xfix.checkpoint` (checkpoints, CSV log,
weights, the profile's sha256), `xfix.modelcard` and `xfix.samplegrid`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import shlex
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from xfix.archs import Architecture, get_architecture
from xfix.checkpoint import (
    CsvLog,
    checkpoint_exists,
    export_weights,
    init_from_weights,
    load_checkpoint,
    save_checkpoint,
    update_profile_sha256,
)
from xfix.data.dataset import Curriculum, batch_stream, list_photos, load_readable_photos, split_photos
from xfix.errors import InputError, UsageError, XfixError
from xfix.modelcard import model_card_eval, write_model_card
from xfix.profile_choice import HDR_ARCHITECTURES
from xfix.samplegrid import sample_set, save_sample_grid

log = logging.getLogger(__name__)

# What trains the HDR architectures (`profile_choice.HDR_ARCHITECTURES`) instead: their targets are light
# above white, which the photo pairs of this loop cannot give
HDR_TRAINER = "python -m xfix.hdr_train {profile} MINUTES [INIT_FROM]"


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Exactly one of `minutes` and `steps` bounds it (a resumed run counts from step 0 and
    time 0 of the original run). `architecture` trains an Architecture object directly (tests), without a
    profile file; `settings` override the profile's [settings]. `command` is recorded in the model card."""

    profile: str
    data: Path
    minutes: float | None = None
    steps: int | None = None
    device: str = "auto"
    resume: bool = False
    restart: bool = False  # replace the checkpoint a new run would otherwise refuse to overwrite
    seed: int = 0
    out: Path = Path("models")
    checkpoints: Path | None = None  # default ./checkpoints/<profile>
    batch_size: int = 16  # at the first patch size; larger patches get proportionally fewer
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    patches: tuple[int, ...] = (128, 256, 512)
    patch_fractions: tuple[float, ...] | None = None  # share of training per patch size; None: 0.4/0.35/0.25
    ev_range: tuple[float, float] = (-3.0, 3.0)
    whole_frames: float = 0.0  # share of pairs made from whole photos squeezed to the patch (thumbnail models)
    workers: int = 2
    max_side: int | None = None  # downscale training photos when caching them
    init_from_weights: bool = False
    checkpoint_minutes: float = 5.0
    sample_every: int = 500
    log_every: int = 10
    eval_limit: int = 20  # validation photos in the model card's eval; 0 skips it
    eval_max_side: int = 512
    export: bool = True
    command: str | None = None
    architecture: Architecture | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.minutes is None) == (self.steps is None):
            raise UsageError("give exactly one of --minutes and --steps")
        if (self.minutes is not None and self.minutes <= 0) or (self.steps is not None and self.steps < 1):
            raise UsageError("--minutes and --steps must be positive")
        if self.resume and (self.restart or self.init_from_weights):
            raise UsageError("--resume continues a checkpoint; --restart and --init-from-weights start over")
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        if not 0.0 <= self.whole_frames <= 1.0:
            raise UsageError(f"--whole-frames must be a share in 0..1, got {self.whole_frames}")
        if self.patch_fractions is not None and len(self.patch_fractions) != len(self.patches):
            raise UsageError(
                f"give one patch fraction per patch size {self.patches}, got {self.patch_fractions}"
            )
        folder = Path("checkpoints") / self.profile if self.checkpoints is None else self.checkpoints
        object.__setattr__(self, "checkpoints", Path(folder))

    def equivalent_command(self) -> str:
        """A command line that repeats this run (used when `command` was not given)."""
        budget = f"--minutes {self.minutes:g}" if self.minutes is not None else f"--steps {self.steps}"
        return (
            f"xfix train {shlex.quote(self.profile)} --data {shlex.quote(str(self.data))} {budget} "
            f"--seed {self.seed} --device {self.device} --out {shlex.quote(str(self.out))}"
        )


@dataclass(frozen=True)
class TrainResult:
    profile: str
    steps: int
    elapsed_s: float
    final_loss: float | None
    checkpoint_dir: Path
    log_path: Path
    weights: Path | None = None
    sha256: str | None = None
    model_card: Path | None = None
    eval: Any = None  # EvalReport of the model card, or None
    warnings: tuple[str, ...] = ()


class L1Recipe:
    """The default loss: L1 between output and target."""

    def loss(self, model: torch.nn.Module, inp: torch.Tensor, target: torch.Tensor, step: int):
        loss = F.l1_loss(model(inp), target)
        return loss, {"l1": float(loss.detach())}


@dataclass
class _Setup:
    name: str
    arch: Architecture
    settings: dict[str, Any]
    encoding: str
    profile: Any  # xfix.profile.Profile, or None when training an Architecture directly


def _resolve(config: TrainConfig) -> _Setup:
    """Architecture, settings and encoding from the profile file; `config.architecture` replaces the registry
    lookup (as Corrector.load's `architecture` does), with or without a profile file of that name."""
    from xfix.profile import profile_files, read_profile
    from xfix.profile_choice import resolve_profile

    arch = config.architecture
    if arch is None:
        profile = resolve_profile(config.profile)  # an unknown name is a usage error, as for `xfix correct`
        arch = get_architecture(profile.architecture)
    elif config.profile in profile_files():
        profile = read_profile(profile_files()[config.profile])
    else:
        return _Setup(config.profile, arch, {**arch.defaults, **config.settings}, arch.encoding, None)
    if not arch.learned or arch.name != profile.architecture:
        raise UsageError(f"profile {profile.name} names architecture {profile.architecture}, which "
                         f"{'does not learn' if not arch.learned else f'is not {arch.name}'}")
    unknown = set(config.settings) - set(arch.defaults)
    if arch.defaults and unknown:  # Corrector.load would refuse these when the weights are used
        raise UsageError(f"unknown setting(s) {', '.join(sorted(unknown))} for {arch.name}; "
                         f"valid: {', '.join(sorted(arch.defaults))}")
    settings = {**arch.defaults, **profile.settings, **config.settings}
    return _Setup(profile.name, arch, settings, profile.encoding, profile)


def _autocast(device: torch.device):
    """(context factory, GradScaler or None): bf16 where supported, else fp16 with loss scaling; CUDA only."""
    if device.type != "cuda":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def learning_rate(config: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine from lr down to lr * min_lr_ratio at progress 1."""
    warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
    cosine = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * min(progress, 1.0))
    )
    return config.lr * warm * cosine


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """ema <- decay * ema + (1 - decay) * model; the decay ramps up early so the EMA leaves the init fast."""
    d = min(decay, (1 + step) / (10 + step))
    ema_params, params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1 - d)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


class Trainer:
    """The state of one run: model, EMA, optimiser, recipe, step and clock."""

    def __init__(self, config: TrainConfig, setup: _Setup, device: torch.device):
        self.config, self.setup, self.device = config, setup, device
        torch.manual_seed(config.seed)
        self.model = setup.arch.build(setup.settings).to(device).train()
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.recipe = setup.arch.recipe(self.model, setup.settings) if setup.arch.recipe else L1Recipe()
        self.extras: dict[str, torch.nn.Module] = dict(getattr(self.recipe, "extra_modules", dict)())
        for module in self.extras.values():
            module.to(device)
        self.optimiser = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay
        )
        self.optimisers = {"main": self.optimiser, **dict(getattr(self.recipe, "extra_optimisers", dict)())}
        self.autocast, self.scaler = _autocast(device)
        self.step, self.elapsed_before, self.seed = 0, 0.0, config.seed
        self.clock = perf_counter()

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + perf_counter() - self.clock

    def progress(self) -> float:
        if self.config.steps is not None:
            return self.step / self.config.steps
        return self.elapsed / (self.config.minutes * 60)

    def done(self) -> bool:
        return self.progress() >= 1.0

    def train_step(self, inp: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        lr = learning_rate(self.config, self.step, self.progress())
        for group in self.optimiser.param_groups:
            group["lr"] = lr
        with self.autocast():
            loss, logs = self.recipe.loss(self.model, inp, target, self.step)
        self.optimiser.zero_grad(set_to_none=True)
        if not math.isfinite(float(loss.detach())):  # one bad batch must not poison the weights and the EMA
            log.warning("step %d: non-finite loss, update skipped", self.step)
            self.step += 1
            return {"loss": float("nan"), "skipped": 1.0, "lr": lr}
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimiser)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimiser)
            self.scaler.update()
        else:
            self.optimiser.step()
        if hasattr(self.recipe, "after_step"):
            with self.autocast():
                logs = {**logs, **(self.recipe.after_step(self.model, inp, target, self.step) or {})}
        update_ema(self.ema, self.model, self.config.ema_decay, self.step)
        self.step += 1
        return {"loss": float(loss.detach()), **logs, "grad_norm": float(grad_norm), "lr": lr}


def _photos(config: TrainConfig) -> tuple[list[np.ndarray], list[Path], list[Path], list[str]]:
    """(training photos, their paths, validation paths, warnings). A data folder that cannot train is a usage
    error (exit 2); a training photo that does not decode is left out with a warning naming it. Validation
    photos are not read here: the sample grids read the few they show (`_samples`)."""
    try:
        train, val = split_photos(list_photos(config.data))
    except InputError as error:  # an empty folder is a wrong --data, as is one of validation photos only
        raise UsageError(error.message, error.path) from None
    if not train:
        raise UsageError(f"{config.data}: every photo falls in the validation split; add more photos")
    log.info("loading %d training photos from %s", len(train), config.data)
    photos, train, skipped = load_readable_photos(train, config.max_side)
    if not train:
        raise UsageError(f"{config.data}: no training photo decodes; add readable photos")
    return photos, train, val, [f"skipped {error}" for error in skipped]


def _samples(setup: _Setup, seed: int, val: list[Path], train: list[Path]) -> tuple[Any, list[str]]:
    """(the sample grids' crops, warnings naming the validation photos that do not decode): from the first
    validation photos that do, or from the training photos (which all do) when none does."""
    samples, skipped = sample_set(val, setup.encoding, seed)
    if samples is None:
        samples = sample_set(train, setup.encoding, seed)[0]
    return samples, [f"skipped {error}" for error in skipped]


def run_training(config: TrainConfig, *, on_progress: Callable[[dict], None] | None = None) -> TrainResult:
    """Train (or resume), checkpoint, and at the end export the EMA weights with their model card.

    on_progress(row) is called with every CSV row (step, elapsed_s, patch, batch, loss terms, lr). Ctrl-C
    writes a checkpoint before KeyboardInterrupt propagates, so `resume=True` continues from there."""
    setup = _resolve(config)
    _check_trained_here(setup)
    _check_checkpoint_folder(config)
    from xfix.devices import select_device

    trainer = Trainer(config, setup, select_device(config.device))
    warnings = _restore(config, trainer)
    differing = {k: v for k, v in config.settings.items()
                 if setup.profile is not None and setup.profile.settings.get(k) != v}  # fmt: skip
    if differing:
        warnings.append(f"settings {differing} are not in {setup.profile.path}; add them there, "
                        "or the exported weights may not fit the profile")
    photos, train_paths, val_paths, photo_warnings = _photos(config)
    samples, sample_warnings = _samples(setup, trainer.seed, val_paths, train_paths)
    warnings += photo_warnings + sample_warnings
    csv_log = CsvLog(config.checkpoints / "log.csv", keep_until=trainer.step if config.resume else 0)
    last = _loop(config, trainer, photos, samples, csv_log, on_progress)
    result = TrainResult(setup.name, trainer.step, trainer.elapsed, last.get("loss"), config.checkpoints,
                         csv_log.path, warnings=tuple(warnings))
    if config.export:
        result = _finish(config, setup, trainer, result, len(train_paths), len(val_paths))
    return result


def _check_trained_here(setup: _Setup) -> None:
    """Refuse a profile whose architecture another command trains: the HDR ones (`HDR_TRAINER`)."""
    if setup.arch.name in HDR_ARCHITECTURES:
        raise UsageError(f"profile {setup.name} ({setup.arch.name}) is not trained by xfix train; "
                         f"use: {HDR_TRAINER.format(profile=setup.name)}")


def _check_checkpoint_folder(config: TrainConfig) -> None:
    """A new run replaces the checkpoint, CSV log and sample grids in its folder (and the export in --out):
    refuse unless asked to start over, by --restart or by --init-from-weights (which names the starting
    point; the model cards chain runs that way in the default folder)."""
    if config.resume or not checkpoint_exists(config.checkpoints):
        return
    if not (config.restart or config.init_from_weights):
        raise UsageError(f"{config.checkpoints} holds the checkpoint of an earlier run: pass --resume to "
                         "continue it, or --restart (or another --checkpoints folder) to start over")
    log.warning("starting over: the checkpoint in %s is replaced", config.checkpoints)


def _restore(config: TrainConfig, trainer: Trainer) -> list[str]:
    if config.resume:
        if not checkpoint_exists(config.checkpoints):
            raise UsageError(f"no checkpoint to resume in {config.checkpoints}")
        return load_checkpoint(config.checkpoints, trainer)
    if config.init_from_weights:
        init_from_weights(trainer)
    return []


def _pair_function(setup: _Setup) -> Callable[..., Any] | None:
    """The architecture's pair function with its `pair_settings` bound from the run's settings (a partial of
    a module-level function, which DataLoader workers can still pickle)."""
    arch = setup.arch
    if arch.pairs is None or not arch.pair_settings:
        return arch.pairs
    return partial(arch.pairs, **{name: setup.settings[name] for name in arch.pair_settings})


def _loop(config: TrainConfig, trainer: Trainer, photos: list[np.ndarray], samples: Any, csv_log: CsvLog,
          on_progress: Callable[[dict], None] | None) -> dict:
    """Train until the step or time budget is spent; returns the last CSV row."""
    curriculum = Curriculum(config.patches, config.patch_fractions, config.batch_size)
    device, folder = trainer.device, config.checkpoints
    trainer.clock = last_checkpoint = perf_counter()
    stage, stream, window, last = None, None, [], {}
    try:
        while not trainer.done():
            wanted = curriculum.stage_at(trainer.progress())
            if wanted != stage:  # a new patch size: restart the workers at this step
                if stream is not None:
                    stream.close()
                stage, stream = wanted, batch_stream(
                    photos, wanted, seed=trainer.seed, start_step=trainer.step,
                    encoding=trainer.setup.encoding, ev_range=config.ev_range, workers=config.workers,
                    pin_memory=device.type == "cuda", pair_fn=_pair_function(trainer.setup),
                    whole_frames=config.whole_frames)
            inp, target = next(stream)
            window.append(trainer.train_step(inp.to(device, non_blocking=True),
                                             target.to(device, non_blocking=True)))
            if trainer.step % config.log_every == 0 or trainer.done():
                last, window = _flush(csv_log, trainer, stage, window), []
                if on_progress:
                    on_progress(last)
            if trainer.step % config.sample_every == 0:
                save_sample_grid(folder, trainer, samples)
            if perf_counter() - last_checkpoint > config.checkpoint_minutes * 60:
                save_checkpoint(folder, trainer, stage)
                last_checkpoint = perf_counter()
    except KeyboardInterrupt:
        save_checkpoint(folder, trainer, stage)
        raise
    finally:
        if stream is not None:
            stream.close()  # stops the DataLoader workers now, not at garbage collection
    save_checkpoint(folder, trainer, stage)
    save_sample_grid(folder, trainer, samples)
    return last


def _flush(csv_log: CsvLog, trainer: Trainer, stage: Any, window: list[dict]) -> dict:
    row = {
        "step": trainer.step,
        "elapsed_s": round(trainer.elapsed, 2),
        "patch": stage.patch,
        "batch": stage.batch,
    }
    keys = sorted({k for logs in window for k in logs})
    row.update({k: float(np.mean([logs[k] for logs in window if k in logs])) for k in keys})
    csv_log.write(row)
    return row


def _finish(
    config: TrainConfig, setup: _Setup, trainer: Trainer, result: TrainResult, n_train: int, n_val: int
) -> TrainResult:
    weights, sha = export_weights(config.out / f"{setup.name}.safetensors", trainer)
    warnings = list(result.warnings)
    if setup.profile is not None:
        warnings += update_profile_sha256(setup.profile, weights, sha)
    report = None
    if config.eval_limit > 0 and n_val > 0:
        try:
            report = model_card_eval(config, trainer, weights, sha)
        except XfixError as error:  # the weights are saved; a failed eval is reported, not fatal
            warnings.append(f"model card eval failed: {error}")
    card = write_model_card(
        config.out / f"{setup.name}.md", config, trainer, weights, sha, (n_train, n_val), report
    )
    return replace(
        result, weights=weights, sha256=sha, model_card=card, eval=report, warnings=tuple(warnings)
    )
