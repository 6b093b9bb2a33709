"""`xfix train`: one training loop for every learned architecture.

AdamW with warm-up and a cosine schedule, an exponential moving average of the weights (the EMA is what
gets exported), gradient clipping, autocast (bf16, else fp16 with loss scaling) on CUDA only, a
coarse-to-fine patch curriculum, a CSV log, sample grids and checkpoints every few minutes. Pairs come from
`xfix.data` in the profile's encoding. At the end: `models/<profile>.safetensors`, the profile file's sha256,
and a model card with the eval table. Checkpoints are safetensors (tensors) + JSON (everything else): no
pickle anywhere.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import logging
import math
import os
import platform
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from xfix.archs import Architecture, get_architecture
from xfix.data.dataset import Curriculum, batch_stream, list_photos, load_photos, split_photos
from xfix.errors import UsageError, XfixError

log = logging.getLogger(__name__)


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
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
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
    from xfix.profile import load_profile, profile_files, read_profile

    arch = config.architecture
    if arch is None:
        profile = load_profile(config.profile)
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


class _Trainer:
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


def _photos(config: TrainConfig) -> tuple[list[np.ndarray], list[Path], list[Path]]:
    train, val = split_photos(list_photos(config.data))
    if not train:
        raise UsageError(f"{config.data}: every photo falls in the validation split; add more photos")
    log.info("loading %d training photos from %s", len(train), config.data)
    return load_photos(train, config.max_side), train, val


def run_training(config: TrainConfig, *, on_progress: Callable[[dict], None] | None = None) -> TrainResult:
    """Train (or resume), checkpoint, and at the end export the EMA weights with their model card.

    on_progress(row) is called with every CSV row (step, elapsed_s, patch, batch, loss terms, lr). Ctrl-C
    writes a checkpoint before KeyboardInterrupt propagates, so `resume=True` continues from there."""
    setup = _resolve(config)
    from xfix.devices import select_device

    trainer = _Trainer(config, setup, select_device(config.device))
    warnings = _restore(config, trainer)
    if config.settings and setup.profile is not None:
        warnings.append(f"settings {dict(config.settings)} are not in {setup.profile.path}; add them there, "
                        "or the exported weights may not fit the profile")
    photos, train_paths, val_paths = _photos(config)
    samples = sample_set(val_paths or train_paths, setup.encoding, trainer.seed)
    csv_log = CsvLog(config.checkpoints / "log.csv", keep_until=trainer.step if config.resume else 0)
    last = _loop(config, trainer, photos, samples, csv_log, on_progress)
    result = TrainResult(setup.name, trainer.step, trainer.elapsed, last.get("loss"), config.checkpoints,
                         csv_log.path, warnings=tuple(warnings))
    if config.export:
        result = _finish(config, setup, trainer, result, len(train_paths), len(val_paths))
    return result


def _restore(config: TrainConfig, trainer: _Trainer) -> list[str]:
    if config.resume:
        if not checkpoint_exists(config.checkpoints):
            raise UsageError(f"no checkpoint to resume in {config.checkpoints}")
        return load_checkpoint(config.checkpoints, trainer)
    if config.init_from_weights:
        _init_from_weights(trainer, config)
    return []


def _loop(config: TrainConfig, trainer: _Trainer, photos: list[np.ndarray], samples: Any, csv_log: "CsvLog",
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
                    pin_memory=device.type == "cuda")
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


def _flush(csv_log: "CsvLog", trainer: _Trainer, stage: Any, window: list[dict]) -> dict:
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


def _init_from_weights(trainer: _Trainer, config: TrainConfig) -> None:
    from safetensors.torch import load_file

    path = config.out / f"{trainer.setup.name}.safetensors"
    if not path.is_file():
        raise UsageError(f"--init-from-weights: no weights at {path}")
    state = load_file(str(path))
    trainer.model.load_state_dict(state)
    trainer.ema.load_state_dict(state)


def _finish(
    config: TrainConfig, setup: _Setup, trainer: _Trainer, result: TrainResult, n_train: int, n_val: int
) -> TrainResult:
    weights, sha = export_weights(config.out / f"{setup.name}.safetensors", trainer)
    warnings = list(result.warnings)
    if setup.profile is not None:
        warnings += update_profile_sha256(setup.profile, weights, sha)
    report = None
    if config.eval_limit > 0 and n_val > 0:
        try:
            report = _model_card_eval(config, setup, trainer)
        except XfixError as error:  # the weights are saved; a failed eval is reported, not fatal
            warnings.append(f"model card eval failed: {error}")
    card = write_model_card(
        config.out / f"{setup.name}.md", config, trainer, weights, sha, (n_train, n_val), report
    )
    return replace(
        result, weights=weights, sha256=sha, model_card=card, eval=report, warnings=tuple(warnings)
    )


def _model_card_eval(config: TrainConfig, setup: _Setup, trainer: _Trainer):
    """The eval table of the validation split, through Corrector.apply as `xfix correct` runs: the profile
    file re-read with the exported weights (which proves they load), or without a profile file the EMA
    model beside the identity baseline."""
    from xfix.evaluate import EvalConfig, corrector_method, method_from_corrector, run_eval

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

        method = corrector_method(read_profile(setup.profile.path), config.device, architecture=setup.arch)
        return run_eval(eval_config, methods=[method])
    from xfix.profile import Corrector, Profile

    # no profile file: the EMA model in a Corrector of an in-memory profile, the same code path all the same
    profile = Profile(setup.name, setup.arch.description, setup.arch.name, setup.encoding, config.out)
    corrector = Corrector(profile, setup.arch, trainer.ema, trainer.device, setup.settings, profile.inference)
    return run_eval(replace(eval_config, baselines=("identity",)), methods=[method_from_corrector(corrector)])


# ---------------------------------------------------------------- checkpoints: safetensors + JSON, no pickle

CHECKPOINT_FORMAT = "xfix-checkpoint-1"


def _write(path: Path, data: bytes) -> str:
    """Write atomically (xfix.write), creating the folder; returns the sha256 of `data`."""
    from xfix.write import ensure_folder, write_atomic

    ensure_folder(path.parent)
    write_atomic(path, data, overwrite=True)
    return hashlib.sha256(data).hexdigest()


def checkpoint_exists(folder: Path) -> bool:
    return (folder / "checkpoint.json").is_file() and (folder / "checkpoint.safetensors").is_file()


def save_checkpoint(folder: Path, trainer: _Trainer, stage: Any) -> None:
    """checkpoint.safetensors: model/, ema/, extra/<name>/, optim/<name>/<index>/<key>, rng/ tensors;
    checkpoint.json: step, clock, seed, settings, optimiser param groups and scalar state, written last."""
    from safetensors.torch import save

    tensors = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    tensors.update({f"ema/{k}": v for k, v in trainer.ema.state_dict().items()})
    for name, module in trainer.extras.items():
        tensors.update({f"extra/{name}/{k}": v for k, v in module.state_dict().items()})
    optimisers = {}
    for name, optimiser in trainer.optimisers.items():
        state = optimiser.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if torch.is_tensor(value):
                    tensors[f"optim/{name}/{index}/{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        optimisers[name] = {"param_groups": state["param_groups"], "scalars": scalars}
    tensors["rng/torch"] = torch.get_rng_state()
    if trainer.device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(trainer.device)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    tensors_sha = _write(folder / "checkpoint.safetensors", save(tensors))
    meta = {
        "format": CHECKPOINT_FORMAT,
        "profile": trainer.setup.name,
        "architecture": trainer.setup.arch.name,
        "settings": trainer.setup.settings,
        "seed": trainer.seed,
        "step": trainer.step,
        "elapsed_s": trainer.elapsed,
        "stage": {"patch": stage.patch, "batch": stage.batch} if stage else None,
        "optimisers": optimisers,
        "scaler": trainer.scaler.state_dict() if trainer.scaler else None,
        "safetensors_sha256": tensors_sha,
    }
    _write(folder / "checkpoint.json", json.dumps(meta, indent=1, default=str).encode())
    log.info("checkpoint at step %d in %s", trainer.step, folder)


def load_checkpoint(folder: Path, trainer: _Trainer) -> list[str]:
    """Restore everything `save_checkpoint` wrote into `trainer`; returns warnings (e.g. a different seed)."""
    from safetensors.torch import load

    meta = json.loads((folder / "checkpoint.json").read_text())
    data = (folder / "checkpoint.safetensors").read_bytes()
    intact = meta.get("safetensors_sha256") == hashlib.sha256(data).hexdigest()
    if meta.get("format") != CHECKPOINT_FORMAT or not intact:
        raise UsageError(f"{folder}: checkpoint is from another version or its files do not match")
    if meta["architecture"] != trainer.setup.arch.name:
        raise UsageError(
            f"{folder}: checkpoint is of architecture {meta['architecture']}, not {trainer.setup.arch.name}"
        )
    tensors = load(data)

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    trainer.model.load_state_dict(part("model/"))
    trainer.ema.load_state_dict(part("ema/"))
    for name, module in trainer.extras.items():
        module.load_state_dict(part(f"extra/{name}/"))
    for name, optimiser in trainer.optimisers.items():
        saved = meta["optimisers"][name]
        state: dict[int, dict[str, Any]] = {}
        for key, value in part(f"optim/{name}/").items():
            index, entry = key.split("/", 1)
            state.setdefault(int(index), {})[entry] = value
        for index, entries in saved["scalars"].items():
            state.setdefault(int(index), {}).update(entries)
        optimiser.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng/cuda"], trainer.device)
    if trainer.scaler is not None and meta.get("scaler"):
        trainer.scaler.load_state_dict(meta["scaler"])
    trainer.step, trainer.elapsed_before = int(meta["step"]), float(meta["elapsed_s"])
    warnings = []
    if meta["seed"] != trainer.seed:
        warnings.append(f"resumed run keeps its seed {meta['seed']} (asked for {trainer.seed})")
        trainer.seed = int(meta["seed"])
    return warnings


class CsvLog:
    """log.csv: step, elapsed_s, patch, batch, then every logged term; columns grow when a new term appears
    (e.g. the adversarial loss switching on). A resumed run first drops rows past its checkpoint."""

    def __init__(self, path: Path, keep_until: int = 0):
        self.path, self.rows, self.fields = path, [], []
        if keep_until > 0 and path.is_file():
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                self.fields = list(reader.fieldnames or [])
                self.rows = [row for row in reader if int(row["step"]) <= keep_until]
        self._rewrite()

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(self.rows)

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new:
            self.fields += new
            self._rewrite()
            return
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.fields).writerow(row)


# ---------------------------------------------------------------- sample grids


def sample_set(paths: list[Path], encoding: str, seed: int, count: int = 4, size: int = 256):
    """Fixed (inputs, targets) (N, 3, S, S) float32 from the first photos, at EV -1.5 and +1.5 alternately."""
    from xfix.data.dataset import random_crop
    from xfix.data.synthesis import render_exposure, unprocess

    pairs = []
    for i, photo in enumerate(load_photos(paths[:count], max_side=2 * size)):
        rng = np.random.default_rng([seed, 7919, i])
        crop = random_crop(photo, min(size, *photo.shape[:2]) // 8 * 8, rng, hflip=False)
        ev = (-1.5, 1.5)[i % 2]
        pair = (
            (render_exposure(crop, ev, rng), crop) if encoding == "srgb" else unprocess(crop, rng, ev=ev)[:2]
        )
        pairs.append(pair)
    side = min(p[0].shape[0] for p in pairs)
    stack = lambda k: np.stack([p[k][:side, :side] for p in pairs]).transpose(0, 3, 1, 2)  # noqa: E731
    return np.ascontiguousarray(stack(0)), np.ascontiguousarray(stack(1))


def _display(batch: np.ndarray, encoding: str) -> np.ndarray:
    from xfix.colour import from_working

    images = batch.transpose(0, 2, 3, 1)
    if encoding != "srgb":
        images = np.stack([from_working(image, "srgb") for image in images])
    return np.clip(images, 0.0, 1.0)


def save_sample_grid(folder: Path, trainer: _Trainer, samples) -> Path:
    """samples/step_NNNNNNN.png: one row per sample, columns input | EMA output | target, in display sRGB."""
    from PIL import Image

    inputs, targets = samples
    with torch.no_grad():
        outputs = trainer.ema(torch.from_numpy(inputs).to(trainer.device)).float().cpu().numpy()
    encoding = trainer.setup.encoding
    columns = [_display(batch, encoding) for batch in (inputs, outputs, targets)]  # each (N, S, S, 3)
    grid = np.concatenate([np.concatenate(list(col), axis=0) for col in columns], axis=1)
    path = folder / "samples" / f"step_{trainer.step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(grid * 255).astype(np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- export, profile file, model card


def export_weights(path: Path, trainer: _Trainer) -> tuple[Path, str]:
    """Write the EMA weights as safetensors (keys of model.state_dict()); returns (path, sha256)."""
    from safetensors.torch import save

    state = {k: v.detach().float().cpu().contiguous().clone() for k, v in trainer.ema.state_dict().items()}
    metadata = {
        "architecture": trainer.setup.arch.name,
        "profile": trainer.setup.name,
        "steps": str(trainer.step),
        "seed": str(trainer.seed),
        "settings": json.dumps(trainer.setup.settings, default=str),
    }
    return path, _write(path, save(state, metadata=metadata))


_SHA_LINE = re.compile(r'^(\s*sha256\s*=\s*)"[^"\n]*"', re.MULTILINE)
_WEIGHTS_LINE = re.compile(r'^\s*weights\s*=\s*"([^"\n]*)".*$', re.MULTILINE)


def update_profile_sha256(profile: Any, weights: Path, sha: str) -> list[str]:
    """Record the export in the profile's TOML file (`profile.path`): an empty `weights = ""` gets the
    export's path relative to the file, and the `sha256 = "..."` line the new hash (added after the weights
    line when missing); every other byte is kept. A profile naming other weights is left alone (warning)."""
    path = Path(profile.path)
    text = path.read_text(encoding="utf-8")
    match = _WEIGHTS_LINE.search(text)
    if match is None:
        return [f"{path}: no weights line; sha256 {sha} not recorded"]
    declared = match.group(1)
    if declared and (path.parent / declared).resolve() != weights.resolve():
        return [f"{path} names weights {declared}, not {weights}; profile left unchanged"]
    if not declared:
        relative = Path(os.path.relpath(weights.resolve(), path.parent)).as_posix()
        text = text[: match.start(1)] + relative + text[match.end(1) :]
    if _SHA_LINE.search(text):
        text = _SHA_LINE.sub(lambda m: f'{m.group(1)}"{sha}"', text, count=1)
    else:
        end = _WEIGHTS_LINE.search(text).end()
        text = f'{text[:end]}\nsha256 = "{sha}"{text[end:]}'
    _write(path, text.encode("utf-8"))
    return []


def write_model_card(
    path: Path,
    config: TrainConfig,
    trainer: _Trainer,
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
    _write(path, "\n".join(lines).encode("utf-8"))
    return path


def _markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    columns = ["set", "method", "group", "n", "psnr", "ssim", "deltae", "consistency", "moved", "sec_per_mp"]
    cell = lambda v: "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows),
    ]
