"""Training the hdrcnn weight sets: `xfix.train`'s Trainer (AdamW, warm-up + cosine, EMA, clipping) and its
checkpoint, export and model-card code, fed with HDR batches from `xfix.data.hdr` instead of photo pairs.

The photo-pair stream of `xfix.train` crops and clips display images to [0, 1]; HDR targets must stay above 1,
so this module only replaces the batch source and the loop around `Trainer.train_step`. A run may start from
another profile's exported weights (`init_from`): `hdr-compressed` and `hdr-video` fine-tune `hdr-default`.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Callable

import numpy as np
import torch

from xfix.checkpoint import CsvLog, save_checkpoint
from xfix.data.dataset import Stage
from xfix.errors import UsageError

log = logging.getLogger(__name__)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@dataclass(frozen=True)
class HdrTrainConfig:
    profile: str  # hdr-default | hdr-compressed | hdr-video (any profile of architecture hdrcnn)
    minutes: float
    hdr: Path = SHARED / "hdr"
    photos: Path | None = SHARED / "train_photos"
    init_from: str | None = None  # profile whose exported weights (out/<name>.safetensors) start the run
    photo_limit: int = 300
    max_side: int = 1024  # HDR scenes are downscaled to this long side when loaded
    patch: int = 160
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    out: Path = Path("models")
    checkpoints: Path | None = None
    log_every: int = 20
    threads: int = 1  # torch threads: on a shared 2-core machine more threads than free cores slow it 10x


def _clean_photos(photos: list[np.ndarray], limit: int) -> list[np.ndarray]:
    """Photos with under 0.5% near-white pixels: their own clipped areas would teach "nothing to recover"."""
    kept = []
    for photo in photos:
        white = np.iinfo(photo.dtype).max * 0.98
        if (photo.max(axis=2) >= white).mean() < 0.005:
            kept.append(photo)
        if len(kept) >= limit:
            break
    return kept


def _sources(config: HdrTrainConfig, settings: dict):
    from xfix.data.dataset import list_photos, load_photos, split_photos
    from xfix.data.hdr import HdrBatches, list_hdr, load_hdr, split_hdr

    train, held_out = split_hdr(list_hdr(config.hdr))
    scenes = [load_hdr(p, config.max_side) for p in train]
    photos: list[np.ndarray] = []
    if config.photos is not None and float(settings["photo_share"]) > 0:
        paths = split_photos(list_photos(config.photos))[0][: config.photo_limit * 2]
        photos = _clean_photos(load_photos(paths, max_side=512), config.photo_limit)
    batches = HdrBatches(scenes, photos, patch=config.patch, batch=config.batch_size,
                         photo_share=float(settings["photo_share"]),
                         jpeg_probability=float(settings["jpeg_probability"]))
    return batches, train, held_out, len(photos)


def run_hdr_training(config: HdrTrainConfig, *, on_progress: Callable[[dict], None] | None = None):
    """Train `config.profile` for `config.minutes`, export `out/<profile>.safetensors`, record its sha256 in
    the profile file and write the model card. Returns xfix.train.TrainResult."""
    from xfix.devices import select_device
    from xfix.train import TrainConfig, Trainer, TrainResult, _finish, _resolve

    command = shlex.join(["python", "-m", "xfix.hdr_train", config.profile, str(config.minutes)]
                         + ([config.init_from] if config.init_from else []))
    base = TrainConfig(profile=config.profile, data=config.hdr, minutes=config.minutes, device="cpu",
                       seed=config.seed, out=config.out, checkpoints=config.checkpoints,
                       batch_size=config.batch_size, lr=config.lr, warmup_steps=100, patches=(config.patch,),
                       workers=0, eval_limit=0, command=command)
    setup = _resolve(base)
    if setup.arch.name != "hdrcnn":
        raise UsageError(f"profile {config.profile} is not an hdrcnn profile")
    torch.set_num_threads(config.threads)
    trainer = Trainer(base, setup, select_device("cpu"))
    if config.init_from:
        _init_from(trainer, config.out / f"{config.init_from}.safetensors")
    batches, train, held_out, n_photos = _sources(config, setup.settings)
    stage = Stage(config.patch, config.batch_size)
    csv_log = CsvLog(base.checkpoints / "log.csv")
    trainer.clock = perf_counter()  # the budget counts training, not loading the data
    window: list[dict] = []
    while not trainer.done():
        rng = np.random.default_rng([config.seed, trainer.step])
        inp, target = (torch.from_numpy(a) for a in batches.make(rng))
        window.append(trainer.train_step(inp, target))
        if trainer.step % config.log_every == 0 or trainer.done():
            row = {"step": trainer.step, "elapsed_s": round(trainer.elapsed, 1), "patch": stage.patch,
                   "batch": stage.batch}
            row.update({k: float(np.mean([w[k] for w in window if k in w])) for k in sorted(window[-1])})
            csv_log.write(row)
            window = []
            if on_progress:
                on_progress(row)
    save_checkpoint(base.checkpoints, trainer, stage)
    result = TrainResult(setup.name, trainer.step, trainer.elapsed, None, base.checkpoints, csv_log.path)
    result = _finish(base, setup, trainer, result, len(train), len(held_out))
    _describe_data(result.model_card, config, train, held_out, n_photos)
    return result


def _init_from(trainer, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise UsageError(f"--init-from: no weights at {path}")
    state = load_file(str(path))
    trainer.model.load_state_dict(state)
    trainer.ema.load_state_dict(state)


def _describe_data(card: Path, config: HdrTrainConfig, train: list[Path], held_out: list[Path],
                   n_photos: int) -> None:
    """Replace the card's photo-pair data line with what this run trained on."""
    from xfix.checkpoint import write_file
    from xfix.data.hdr import scene_name

    lines = card.read_text(encoding="utf-8").splitlines()
    data = (f"- Data: {len(train)} real HDR scenes from `{config.hdr.name}/` "
            f"({', '.join(scene_name(p) for p in train)}) and {n_photos} photos of `train_photos/` read as "
            f"linear light, through the virtual camera of `xfix.data.hdr` (2-10% of pixels clipped, random "
            f"curve, noise, 8 bits); held out, never trained on: "
            f"{', '.join(scene_name(p) for p in held_out)}."
            + (f" Started from `{config.init_from}` weights." if config.init_from else ""))
    lines = [data if line.startswith("- Data:") else line for line in lines]
    write_file(card, ("\n".join(lines) + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    """python -m xfix.hdr_train PROFILE MINUTES [INIT_FROM]"""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        raise SystemExit("usage: python -m xfix.hdr_train PROFILE MINUTES [INIT_FROM]")
    logging.basicConfig(level=logging.INFO)
    init_from = args[2] if len(args) == 3 else None
    config = HdrTrainConfig(profile=args[0], minutes=float(args[1]), init_from=init_from)
    result = run_hdr_training(config, on_progress=lambda row: log.info("%s", row))
    log.info("trained %d steps in %.1f min: %s (%s)", result.steps, result.elapsed_s / 60, result.weights,
             result.sha256)


if __name__ == "__main__":
    main()
