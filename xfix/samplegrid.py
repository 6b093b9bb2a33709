"""Sample grids of a training run: a fixed set of validation crops, and at intervals a PNG of input | EMA
output | target for each, in display sRGB, to see what the model does while it trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from xfix.data.dataset import load_readable_photos, random_crop

if TYPE_CHECKING:
    from xfix.train import Trainer


def sample_set(paths: list[Path], encoding: str, seed: int, count: int = 4, size: int = 256):
    """(samples, errors): fixed (inputs, targets) (N, 3, S, S) float32 from the first `count` photos that
    decode, at EV -1.5 and +1.5 alternately, or None when none does; and the errors of the photos passed over.
    The photos after those are never read."""
    from xfix.data.synthesis import render_exposure, unprocess

    photos, _, skipped = load_readable_photos(paths, max_side=2 * size, limit=count)
    if not photos:
        return None, skipped
    pairs = []
    for i, photo in enumerate(photos):
        rng = np.random.default_rng([seed, 7919, i])
        crop = random_crop(photo, min(size, *photo.shape[:2]) // 8 * 8, rng, hflip=False)
        ev = (-1.5, 1.5)[i % 2]
        pair = (
            (render_exposure(crop, ev, rng), crop) if encoding == "srgb" else unprocess(crop, rng, ev=ev)[:2]
        )
        pairs.append(pair)
    side = min(p[0].shape[0] for p in pairs)
    stack = lambda k: np.stack([p[k][:side, :side] for p in pairs]).transpose(0, 3, 1, 2)  # noqa: E731
    return (np.ascontiguousarray(stack(0)), np.ascontiguousarray(stack(1))), skipped


def _display(batch: np.ndarray, encoding: str) -> np.ndarray:
    from xfix.colour import from_working

    images = batch.transpose(0, 2, 3, 1)
    if encoding != "srgb":
        images = np.stack([from_working(image, "srgb") for image in images])
    return np.clip(images, 0.0, 1.0)


def save_sample_grid(folder: Path, trainer: Trainer, samples) -> Path:
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
