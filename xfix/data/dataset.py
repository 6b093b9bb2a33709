"""Training photos: folder listing, the fixed validation split, decoding into a RAM cache, random crops and
the batch stream that feeds the training loop.

The split is by hash of the file name, so it never changes when photos are added and no validation photo is
ever trained on. Every batch is drawn from `numpy.random.default_rng([seed, step])`: the same seed gives the
same batches whatever the number of workers, and a resumed run continues the same sequence.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from xfix.colour import from_working, to_float
from xfix.data.synthesis import make_pair
from xfix.errors import InputError, XfixError

log = logging.getLogger(__name__)

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
VALIDATION_MODULUS = 10  # 1 in 10 photos is validation


def list_photos(folder: Path) -> list[Path]:
    """Image files directly in `folder` (extensions matched case-insensitively), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder of photos", folder)
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS)
    if not photos:
        raise InputError(f"no photos ({', '.join(PHOTO_EXTENSIONS)}) in folder", folder)
    return photos


def is_validation(name: str) -> bool:
    """True for the fixed 10% validation split: sha1(file name) mod 10 == 0."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % VALIDATION_MODULUS == 0


def split_photos(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(train, validation) by `is_validation` of each file name."""
    train = [p for p in paths if not is_validation(p.name)]
    val = [p for p in paths if is_validation(p.name)]
    return train, val


def resize_long_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (area filter) so the long side is at most `max_side`; smaller images are returned as is."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    import cv2

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_photo(path: Path, max_side: int | None = None) -> np.ndarray:
    """A photo as display sRGB samples (H, W, 3): uint8 for 8-bit files, uint16 otherwise.

    Goes through the project's decode and linearize stages (so ICC profiles are honoured) and back to sRGB."""
    from xfix.decode import decode
    from xfix.linearize import linearize

    decoded = decode(Path(path))
    display = np.clip(from_working(linearize(decoded).pixels, "srgb"), 0.0, 1.0)
    if decoded.pixels.dtype == np.uint8:
        samples = np.round(display * 255.0).astype(np.uint8)
    else:
        samples = np.round(display * 65535.0).astype(np.uint16)
    return resize_long_side(samples, max_side)


def load_photos(paths: Sequence[Path], max_side: int | None = None, threads: int = 2) -> list[np.ndarray]:
    """Decode every photo into RAM (uint8 / uint16 samples), in `threads` threads, in the order given."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(lambda p: load_photo(p, max_side), paths))


def load_readable_photos(
    paths: Sequence[Path], max_side: int | None = None, threads: int = 2, *, limit: int | None = None
) -> tuple[list[np.ndarray], list[Path], list[XfixError]]:
    """`load_photos`, skipping the photos that do not decode, as one corrupt file among thousands must not
    end a training run: (photos, their paths, the errors of the photos left out, each naming its file).

    limit: stop once this many photos have decoded, reading no further (a few readable photos of many)."""
    photos: list[np.ndarray] = []
    kept: list[Path] = []
    skipped: list[XfixError] = []
    pending = list(paths)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        while pending and (limit is None or len(photos) < limit):
            wanted = len(pending) if limit is None else limit - len(photos)
            batch, pending = pending[:wanted], pending[wanted:]
            for path, outcome in zip(batch, pool.map(lambda p: _photo_or_error(p, max_side), batch)):
                if isinstance(outcome, XfixError):
                    skipped.append(outcome)
                else:
                    photos.append(outcome)
                    kept.append(path)
    return photos, kept, skipped


def _photo_or_error(path: Path, max_side: int | None) -> np.ndarray | XfixError:
    try:
        return load_photo(path, max_side)
    except XfixError as error:
        return error


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator, *, hflip: bool = True,
                whole: bool = False) -> np.ndarray:
    """A random size x size float32 patch of `photo` (H, W, 3) at a random scale, maybe mirrored.

    The patch covers between half and all of the short side (downscaled to `size`), so a patch carries more of
    the scene's context than a 1:1 crop; photos smaller than `size` are upscaled to fit. `whole`: the whole
    photo squeezed to size x size instead, as a model that judges a thumbnail of the whole frame sees it."""
    import cv2

    if whole:
        patch = to_float(photo)
    else:
        h, w = photo.shape[:2]
        short = min(h, w)
        window = int(round(rng.uniform(max(min(size, short), short * 0.5), short))) if short > size else short
        y = int(rng.integers(0, h - window + 1))
        x = int(rng.integers(0, w - window + 1))
        patch = to_float(photo[y : y + window, x : x + window])
    if patch.shape[:2] != (size, size):
        interpolation = cv2.INTER_AREA if min(patch.shape[:2]) > size else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (size, size), interpolation=interpolation)
    if hflip and rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.ascontiguousarray(np.clip(patch, 0.0, 1.0))


@dataclass(frozen=True)
class Stage:
    patch: int
    batch: int


@dataclass(frozen=True)
class Curriculum:
    """Coarse-to-fine patch sizes (MSEC trains on 128, then 256, then 512 px patches).

    patches: sizes in order; fractions: the share of training each size gets (same length; None: 0.4, 0.35,
    0.25 for three sizes, else equal shares). batch: batch size at the first size; larger patches get
    proportionally fewer (at least 1)."""

    patches: tuple[int, ...] = (128, 256, 512)
    fractions: tuple[float, ...] | None = None
    batch: int = 16

    def __post_init__(self) -> None:
        if self.fractions is None:
            default = (0.4, 0.35, 0.25) if len(self.patches) == 3 else (1.0,) * len(self.patches)
            object.__setattr__(self, "fractions", default)
        if len(self.patches) != len(self.fractions) or not self.patches:
            raise ValueError(
                f"curriculum needs one fraction per patch size, got {self.patches} {self.fractions}"
            )

    def stage_at(self, progress: float) -> Stage:
        """The stage for training progress in [0, 1] (fraction of steps or of the time budget)."""
        bounds = np.cumsum(self.fractions) / sum(self.fractions)
        index = min(int(np.searchsorted(bounds, progress, side="right")), len(self.patches) - 1)
        patch = self.patches[index]
        return Stage(patch, max(1, round(self.batch * self.patches[0] / patch)))

    def patch_for_step(self, step: int, total_steps: int) -> int:
        return self.stage_at(step / max(1, total_steps)).patch


def make_batch(
    photos: Sequence[np.ndarray],
    stage: Stage,
    rng: np.random.Generator,
    encoding: str,
    ev_range: tuple[float, float] = (-3.0, 3.0),
    pair_fn: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
    whole_frames: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (B, 3, P, P) float32, from random photos of the list; `pair_fn` (photo, rng,
    encoding, ev_range) -> (input, target) replaces `make_pair` (an architecture's own degradations).
    whole_frames: the share of pairs made from whole photos squeezed to the patch (`random_crop`'s whole)."""
    pair_fn = pair_fn or make_pair
    pairs = []
    for _ in range(stage.batch):
        photo = photos[int(rng.integers(len(photos)))]
        whole = whole_frames > 0 and rng.random() < whole_frames  # no draw at 0: earlier runs repeat exactly
        pairs.append(pair_fn(random_crop(photo, stage.patch, rng, whole=whole), rng, encoding, ev_range))
    inputs = np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)
    targets = np.stack([p[1] for p in pairs]).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)


def batch_stream(
    photos: Sequence[np.ndarray],
    stage: Stage,
    *,
    seed: int,
    start_step: int,
    encoding: str,
    ev_range: tuple[float, float] = (-3.0, 3.0),
    workers: int = 2,
    pin_memory: bool = False,
    pair_fn: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
    whole_frames: float = 0.0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (inputs, targets) tensor batches for steps start_step, start_step + 1, ... in order.

    Batch k is drawn from default_rng([seed, start_step + k]) in whichever worker makes it; the DataLoader
    returns worker outputs round-robin, so order and content do not depend on `workers` (0: in-process)."""
    dataset = _PairBatches(photos, stage, seed, start_step, encoding, ev_range, pair_fn, whole_frames)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        worker_init_fn=_quiet_worker,
        prefetch_factor=2 if workers else None,
        pin_memory=pin_memory,
    )
    for inputs, targets in loader:
        yield inputs, targets


def _quiet_worker(_: int) -> None:
    torch.set_num_threads(1)  # the trainer owns the cores; a worker only runs numpy and one JPEG at a time


class _PairBatches(torch.utils.data.IterableDataset):
    """torch IterableDataset yielding whole batches (a stage fixes one patch size per batch)."""

    def __init__(self, photos, stage, seed, start_step, encoding, ev_range, pair_fn=None, whole_frames=0.0):
        self.photos, self.stage, self.seed = photos, stage, seed
        self.start_step, self.encoding, self.ev_range = start_step, encoding, ev_range
        self.pair_fn = pair_fn  # a module-level function: DataLoader workers pickle it by name
        self.whole_frames = whole_frames

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, count = (info.id, info.num_workers) if info else (0, 1)
        k = worker
        while True:
            rng = np.random.default_rng([self.seed, self.start_step + k])
            inputs, targets = make_batch(
                self.photos, self.stage, rng, self.encoding, self.ev_range, self.pair_fn, self.whole_frames
            )
            yield torch.from_numpy(inputs), torch.from_numpy(targets)
            k += count
