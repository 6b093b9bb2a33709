"""Tiled inference with feathered overlaps, for images too large to run whole.

The pair `tile_boxes` / `feather_weights` is pure (plain integers and tensors); `run_tiled` uses them.

Geometry, along each axis: `overlap` is the context margin, in pixels, a tile needs on each side shared with a
neighbour (at least the model's receptive field). On such a side a tile's weight is 0 for the first `overlap`
pixels (their outputs saw the tile's edge instead of the image), then rises linearly over the next `overlap`
pixels to 1. Neighbouring tiles therefore share at least 3 * overlap pixels, and every pixel with a non-zero
weight was computed with its full receptive field inside the tile: when overlap >= receptive field, the tiled
result equals the whole-image result up to float rounding, and the ramps hide any seam otherwise.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # (top, bottom, left, right), half-open


def _starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Starts of tiles of size `tile` covering [0, length), neighbours sharing >= 3 * overlap pixels; with
    `align` > 1 every start is a multiple of it (the last tile may then be shorter)."""
    if tile >= length:
        return [0]
    stride = tile - 3 * overlap
    if stride <= 0:
        raise ValueError(f"tile {tile} too small for overlap {overlap}: need tile > 3 * overlap")
    if align > 1:
        step = stride // align * align
        if step <= 0:
            raise ValueError(f"tile {tile} too small for overlap {overlap} and alignment {align}")
        return list(range(0, length - tile + step, step))[: math.ceil((length - tile) / step) + 1]
    count = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_boxes(h: int, w: int, tile: int, overlap: int, align: int = 1) -> list[Box]:
    """Boxes (top, bottom, left, right) of tiles at most `tile` x `tile` covering an h x w image, starting at
    multiples of `align` (for models whose output depends on position modulo it, e.g. strided or periodic).

    A tile larger than the image gives one box, the whole image. Example: tile_boxes(100, 50, 64, 8) ->
    [(0, 64, 0, 50), (36, 100, 0, 50)].
    """
    if h <= 0 or w <= 0 or tile <= 0 or overlap < 0 or align < 1:
        raise ValueError(f"bad tiling h={h} w={w} tile={tile} overlap={overlap} align={align}")
    rows, cols = _starts(h, tile, overlap, align), _starts(w, tile, overlap, align)
    return [(y, min(y + tile, h), x, min(x + tile, w)) for y in rows for x in cols]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """(length,) weights: zero over `overlap`, then a linear ramp of `overlap` steps, at each flagged end."""
    d = torch.arange(length, dtype=torch.float32)
    weight = torch.ones(length)
    if ramp_start:
        weight = torch.minimum(weight, ((d - overlap + 1) / (overlap + 1)).clamp(0, 1))
    if ramp_end:
        weight = torch.minimum(weight, ((length - 1 - d - overlap + 1) / (overlap + 1)).clamp(0, 1))
    return weight


def feather_weights(box: Box, h: int, w: int, overlap: int) -> torch.Tensor:
    """(bh, bw) float32 blending weights of `box` in an h x w image; ramps only on sides inside the image."""
    top, bottom, left, right = box
    wy = _ramp(bottom - top, overlap, top > 0, bottom < h)
    wx = _ramp(right - left, overlap, left > 0, right < w)
    return wy[:, None] * wx[None, :]


def pad_to_multiple(x: torch.Tensor, multiple_of: int) -> tuple[torch.Tensor, int, int]:
    """Pad (B, C, H, W) bottom and right by reflection to multiples of `multiple_of`; returns (x, H, W)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple_of, -w % multiple_of
    if pad_h or pad_w:
        # reflection needs the pad smaller than the side; replicate covers tiny inputs
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, h, w


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    multiple_of: int = 1,
    align: int = 1,
) -> torch.Tensor:
    """Apply `fn` ((1, C, h, w) -> (1, C', h, w), same spatial size) to (1, C, H, W) `x` tile by tile.

    Each tile is padded by reflection to a multiple of `multiple_of`, run, cropped, and accumulated with
    `feather_weights`; the sum is normalised. Tiles start at multiples of `align`. Accumulates in float32 on
    x's device; `fn` may move each tile to another device and back. Returns (1, C', H, W).
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"run_tiled expects (1, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    out = weight_sum = None
    for box in tile_boxes(h, w, tile, overlap, align):
        top, bottom, left, right = box
        padded, th, tw = pad_to_multiple(x[:, :, top:bottom, left:right], multiple_of)
        result = fn(padded)[:, :, :th, :tw].to(device=x.device, dtype=torch.float32)  # (1, C', th, tw)
        weight = feather_weights(box, h, w, overlap).to(x.device)  # (th, tw)
        if out is None:
            out = torch.zeros((1, result.shape[1], h, w), dtype=torch.float32, device=x.device)
            weight_sum = torch.zeros((h, w), dtype=torch.float32, device=x.device)
        out[:, :, top:bottom, left:right] += result * weight
        weight_sum[top:bottom, left:right] += weight
    return out / weight_sum
