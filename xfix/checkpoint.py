"""What a training run writes and reads back: checkpoints, the CSV log, the exported weights and the sha256
line of the profile file.

Checkpoints are safetensors (tensors) + JSON (everything else): no pickle anywhere. Every file is written
atomically through `xfix.write`, so an interrupted run never leaves a half-written checkpoint or profile file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from xfix.errors import UsageError

if TYPE_CHECKING:
    from xfix.train import Trainer

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "xfix-checkpoint-1"


def write_file(path: Path, data: bytes) -> str:
    """Write atomically (xfix.write), creating the folder; returns the sha256 of `data`."""
    from xfix.write import ensure_folder, write_atomic

    ensure_folder(path.parent)
    write_atomic(path, data, overwrite=True)
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- checkpoints: safetensors + JSON, no pickle


def checkpoint_exists(folder: Path) -> bool:
    return (folder / "checkpoint.json").is_file() and (folder / "checkpoint.safetensors").is_file()


def save_checkpoint(folder: Path, trainer: Trainer, stage: Any) -> None:
    """checkpoint.safetensors: model/, ema/, extra/<name>/, optim/<name>/<index>/<key>, rng/ tensors;
    checkpoint.json: step, clock, seed, settings, data folder, optimiser param groups and scalar state,
    written last."""
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
    tensors_sha = write_file(folder / "checkpoint.safetensors", save(tensors))
    meta = {
        "format": CHECKPOINT_FORMAT,
        "profile": trainer.setup.name,
        "architecture": trainer.setup.arch.name,
        "settings": trainer.setup.settings,
        "data": _data_folder(trainer),
        "seed": trainer.seed,
        "step": trainer.step,
        "elapsed_s": trainer.elapsed,
        "stage": {"patch": stage.patch, "batch": stage.batch} if stage else None,
        "optimisers": optimisers,
        "scaler": trainer.scaler.state_dict() if trainer.scaler else None,
        "safetensors_sha256": tensors_sha,
    }
    write_file(folder / "checkpoint.json", json.dumps(meta, indent=1, default=str).encode())
    log.info("checkpoint at step %d in %s", trainer.step, folder)


def _data_folder(trainer: Trainer) -> str:
    """The training data folder as a checkpoint records it and a resumed run compares it: absolute, links
    followed."""
    return str(Path(trainer.config.data).resolve())


def load_checkpoint(folder: Path, trainer: Trainer) -> list[str]:
    """Restore everything `save_checkpoint` wrote into `trainer`; returns warnings (e.g. a different seed or
    data folder). Settings other than the checkpoint's are refused: they may change the tensors' shapes, and
    the weights would no longer come from the settings the profile and model card record."""
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
    differences = _setting_differences(meta.get("settings"), trainer.setup.settings)
    if differences:
        listed = "; ".join(differences)
        raise UsageError(f"{folder}: the checkpoint was trained with other settings ({listed}); resume with "
                         "its --set options, or start over with --restart")
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
    data = _data_folder(trainer)
    if meta.get("data", data) != data:  # a moved corpus is the same photos: warned, not refused
        warnings.append(f"resumed run was trained on {meta['data']}, now reads {data}")
    if meta["seed"] != trainer.seed:
        warnings.append(f"resumed run keeps its seed {meta['seed']} (asked for {trainer.seed})")
        trainer.seed = int(meta["seed"])
    return warnings


def _setting_differences(saved: dict[str, Any] | None, current: Any) -> list[str]:
    """'key: A in the checkpoint, B now' for each setting that differs, compared as the JSON the checkpoint
    stores (tuples as lists, paths as strings); a checkpoint without settings has nothing to compare."""
    if saved is None:
        return []
    now = json.loads(json.dumps(dict(current), default=str))

    def shown(values: dict[str, Any], key: str) -> str:
        return json.dumps(values[key], sort_keys=True) if key in values else "unset"

    return [f"{key}: {shown(saved, key)} in the checkpoint, {shown(now, key)} now"
            for key in sorted(set(saved) | set(now)) if shown(saved, key) != shown(now, key)]


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


# ---------------------------------------------------------------- exported weights and the profile file


def init_from_weights(trainer: Trainer) -> None:
    """Start model and EMA from the weights file the profile names, its sha256 checked (--init-from-weights).
    Not from --out: a run exported elsewhere starts from the profile's weights all the same."""
    from xfix.profile import load_weights

    profile, name = trainer.setup.profile, trainer.setup.name
    if profile is None or profile.weights is None:
        message = f"--init-from-weights: profile {name} names no weights yet; train it once without it"
        raise UsageError(message)
    if not profile.weights.is_file():
        raise UsageError(f"--init-from-weights: no weights at {profile.weights} (named by {profile.path})")
    state = load_weights(profile)
    if trainer.setup.arch.adapt_weights is not None:
        state = trainer.setup.arch.adapt_weights(state, trainer.model)
    try:
        trainer.model.load_state_dict(state)
    except RuntimeError as error:  # e.g. --set width=... on weights of another width
        reason = str(error).strip().splitlines()[-1].strip()
        message = f"--init-from-weights: {profile.weights} does not fit this run's settings: {reason}"
        raise UsageError(message) from None
    trainer.ema.load_state_dict(state)


def export_weights(path: Path, trainer: Trainer) -> tuple[Path, str]:
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
    return path, write_file(path, canonical_safetensors(save(state, metadata=metadata)))


def canonical_safetensors(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted. safetensors writes the metadata in hash-map
    order, different on every run, so the same weights would get another sha256 each time they are
    exported; the tensors' bytes and offsets are unchanged."""
    (size,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to keep the data aligned
    return struct.pack("<Q", len(text)) + text + data[8 + size :]


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
    write_file(path, text.encode("utf-8"))
    return []
