"""Bilateral guided upsampling (Chen, Adams, Wadhwa, Hasinoff, SIGGRAPH Asia 2016).

A model runs on a small copy of the photo; this carries its correction to full resolution. On a bilateral
grid over the low-res input (spatial cells of `cell` low-res pixels x `bins` luminance bins) each cell holds a
local affine colour transform (3 x 4) fitted by least squares from (low-res input -> low-res output), smoothed
across neighbouring cells, and pulled towards the image's global affine fit where a cell has little or
degenerate data (ridge regularisation). The grid is then sliced at full resolution: each pixel's transform is
the grid interpolated at (x, y, luminance of the full-res input) and is applied to that pixel, so edges and
texture come from the full-res input, not from an upsampled output.

Images are (H, W, 3) float32 in the model's encoding (numpy or torch). The full-res side is processed in row
chunks, so a 50 MP photo needs little memory beyond its input and output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_LUMA = (0.2126, 0.7152, 0.0722)
CELL = 16  # low-res pixels per spatial grid cell, unless asked otherwise


def _as_tensor(image, device: torch.device | None = None) -> torch.Tensor:
    """numpy or torch (H, W, 3) -> float32 torch tensor (on `device` when given)."""
    t = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
    if t.ndim != 3 or t.shape[2] != 3:
        raise ValueError(f"guided upsampling expects (H, W, 3) images, got {tuple(t.shape)}")
    return t.to(device=device or t.device, dtype=torch.float32)


def _guide(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (...) luminance clipped to [0, 1], the grid's third axis."""
    return (rgb @ torch.tensor(_LUMA, dtype=rgb.dtype, device=rgb.device)).clamp(0, 1)


def _blur_grid(grid: torch.Tensor, passes: int) -> torch.Tensor:
    """(C, D, GH, GW) -> same: `passes` rounds of a [1, 2, 1] / 4 filter on each grid axis, edges clamped."""
    for _ in range(passes):
        for dim in (1, 2, 3):
            if grid.shape[dim] > 1:
                before = torch.cat([grid.narrow(dim, 0, 1), grid.narrow(dim, 0, grid.shape[dim] - 1)], dim)
                after = torch.cat([grid.narrow(dim, 1, grid.shape[dim] - 1), grid.narrow(dim, -1, 1)], dim)
                grid = 0.25 * before + 0.5 * grid + 0.25 * after
    return grid


def _splat_moments(x: torch.Tensor, y: torch.Tensor, cell: int, bins: int) -> torch.Tensor:
    """Least-squares moments of (h, w, 3) x -> y per grid cell: (28, bins, GH, GW), p p^T (16) then p y^T (12)
    with p = (R, G, B, 1). Each pixel goes to its spatial cell and, by a tent, to its two nearest bins."""
    h, w, _ = x.shape
    gh, gw = -(-h // cell), -(-w // cell)
    p = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1).reshape(-1, 4)  # (N, 4) features
    pp = (p[:, :, None] * p[:, None, :]).reshape(-1, 16)  # (N, 16) p p^T
    po = (p[:, :, None] * y.reshape(-1, 1, 3)).reshape(-1, 12)  # (N, 12) p y^T
    moments = torch.cat([pp, po], dim=1)
    iy = torch.arange(h, device=x.device) * gh // h
    ix = torch.arange(w, device=x.device) * gw // w
    cell_index = (iy[:, None] * gw + ix[None, :]).reshape(-1)  # (N,)
    z = _guide(x).reshape(-1) * (bins - 1)
    z0 = z.floor().clamp(0, max(bins - 2, 0)).long()
    frac = (z - z0).clamp(0, 1) if bins > 1 else torch.zeros_like(z)
    grid = torch.zeros(bins * gh * gw, 28, dtype=torch.float32, device=x.device)
    grid.index_add_(0, z0 * gh * gw + cell_index, moments * (1 - frac)[:, None])
    if bins > 1:
        grid.index_add_(0, (z0 + 1) * gh * gw + cell_index, moments * frac[:, None])
    return grid.T.reshape(28, bins, gh, gw)


def _solve_affine(moments: torch.Tensor, reg: float) -> torch.Tensor:
    """(28, D, GH, GW) moments -> (D * GH * GW, 4, 3) affine coefficients, float64.

    Ridge regression towards the image's global affine fit, with a weight of `reg` times the mean weight of a
    cell: a cell with little or one-coloured data falls back to the global fit instead of blowing up.
    """
    mpp = moments[:16].permute(1, 2, 3, 0).reshape(-1, 4, 4)
    mpo = moments[16:].permute(1, 2, 3, 0).reshape(-1, 4, 3)
    total_pp, total_po = mpp.sum(0), mpo.sum(0)
    eye = torch.eye(4, dtype=torch.float64, device=moments.device)
    identity = torch.cat([torch.eye(3), torch.zeros(1, 3)]).to(eye)
    tiny = 1e-6 * total_pp[3, 3]  # keeps a flat (single-colour) image solvable, pulling it to identity
    glob = torch.linalg.solve(total_pp + tiny * eye, total_po + tiny * identity)
    lam = reg * total_pp[3, 3] / mpp.shape[0] + 1e-9
    return torch.linalg.solve(mpp + lam * eye, mpo + lam * glob)  # (cells, 4, 3)


def fit_grid(
    low_in, low_out, *, cell: int = CELL, bins: int = 8, smooth: int = 1, reg: float = 1e-4
) -> torch.Tensor:
    """Affine grid (1, 12, bins, GH, GW) fitted from (h, w, 3) low-res input -> output; channel i*3 + k holds
    the coefficient of input feature i (R, G, B, 1) in output channel k. GH = ceil(h / cell), GW likewise.
    `smooth` rounds of a [1, 2, 1] filter over the moments tie neighbouring cells together.
    """
    device = low_out.device if isinstance(low_out, torch.Tensor) else None
    x, y = _as_tensor(low_in, device), _as_tensor(low_out, device)
    if x.shape != y.shape:
        raise ValueError(f"low-res input {tuple(x.shape)} and output {tuple(y.shape)} differ in shape")
    moments = _blur_grid(_splat_moments(x, y, cell, bins), smooth)  # (28, D, GH, GW)
    # the small solves run in float64 (MPS has none: solve on the CPU there)
    coef = _solve_affine((moments.cpu() if moments.device.type == "mps" else moments).double(), reg)
    _, d, gh, gw = moments.shape
    return coef.reshape(d, gh, gw, 12).permute(3, 0, 1, 2)[None].float().to(x.device)


def _at_least_two_bins(grid: torch.Tensor) -> torch.Tensor:
    """One luminance bin has nothing to interpolate between: repeat it, so slicing can always lerp."""
    return grid.expand(-1, -1, 2, -1, -1) if grid.shape[2] == 1 else grid


def _block_table(grid: torch.Tensor, top: int, rows: int, h: int, w: int, block: int) -> torch.Tensor:
    """The grid interpolated bilinearly at the centres of the `block` x `block` pixel blocks of rows
    [top, top + rows).

    Returns (nby * nbx * D, 12): the 12 coefficients of each block and luminance bin, bins varying fastest.
    """
    _, c, d, gh, gw = grid.shape
    ys = (torch.arange(top, top + rows, block, device=grid.device) + (block - 1) / 2).clamp(max=h - 1)
    xs = (torch.arange(0, w, block, device=grid.device) + (block - 1) / 2).clamp(max=w - 1)
    gy = ((ys + 0.5) / h * 2 - 1).view(-1, 1).expand(len(ys), len(xs))
    gx = ((xs + 0.5) / w * 2 - 1).view(1, -1).expand(len(ys), len(xs))
    coords = torch.stack([gx, gy], dim=-1)[None]  # (1, nby, nbx, 2)
    flat = grid.reshape(1, c * d, gh, gw)
    table = F.grid_sample(flat, coords, mode="bilinear", padding_mode="border", align_corners=False)
    return table[0].view(c, d, len(ys), len(xs)).permute(2, 3, 1, 0).reshape(-1, c)  # (nby * nbx * D, 12)


def slice_grid(
    grid: torch.Tensor, full_in, *, block: int = 1, chunk_rows: int = 64, clip_input: bool = False, out=None
):
    """Apply an affine grid (1, 12, D, GH, GW) to (H, W, 3) `full_in`; returns (H, W, 3) like `full_in`.

    Each pixel's transform is the grid interpolated linearly in luminance (exact) and bilinearly in space
    at the centre of its `block` x `block` block (block 1: exact trilinear slicing; the grid is smooth over
    a cell of many full-res pixels, so blocks of a few pixels change nothing visible and make slicing
    several times cheaper). `clip_input` clamps full_in to [0, 1] first, as the model's input was.
    numpy in -> numpy out (written into `out` when given), torch in -> torch on the same device.
    """
    is_numpy = not isinstance(full_in, torch.Tensor)
    h, w = full_in.shape[:2]
    if out is None:
        out = np.empty((h, w, 3), np.float32) if is_numpy else torch.empty_like(full_in, dtype=torch.float32)
    grid = _at_least_two_bins(grid)
    bins = grid.shape[2]
    chunk_rows = max(block, chunk_rows // block * block)
    nbx = -(-w // block)
    bx = torch.arange(w, device=grid.device) // block  # (W,)
    for top in range(0, h, chunk_rows):
        rows = _as_tensor(full_in[top : top + chunk_rows], grid.device)  # (R, W, 3)
        if clip_input:
            rows = rows.clamp(0, 1)
        r = rows.shape[0]
        table = _block_table(grid, top, r, h, w, block)
        z = _guide(rows) * (bins - 1)  # (R, W)
        z0 = z.floor().clamp(max=bins - 2)
        by = (torch.arange(r, device=grid.device) // block).view(r, 1)
        index = ((by * nbx + bx) * bins + z0.long()).view(-1)  # (R * W,) row of bin z0; bin z0 + 1 follows
        lower, upper = F.embedding(index, table), F.embedding(index + 1, table)  # (R * W, 12) each
        coef = torch.lerp(lower, upper, (z - z0).view(-1, 1)).view(r, w, 4, 3)
        result = coef[:, :, 3] + rows[..., 0:1] * coef[:, :, 0] + rows[..., 1:2] * coef[:, :, 1]
        result += rows[..., 2:3] * coef[:, :, 2]  # (R, W, 3)
        if is_numpy:
            out[top : top + r] = result.cpu().numpy()
        else:
            out[top : top + r] = result.to(out.device)
    return out


def default_block(full_shape: tuple[int, ...], low_shape: tuple[int, ...], cell: int) -> int:
    """A sixteenth of a grid cell in full-res pixels (measured: under 0.3 8-bit codes from exact slicing for a
    classic correction at 6 MP, and several times faster than block 1); see `slice_grid`."""
    scale = max(full_shape[0] / low_shape[0], full_shape[1] / low_shape[1])
    return max(1, int(cell * scale / 16))


def with_strength(grid: torch.Tensor, strength: float) -> torch.Tensor:
    """The grid of lerp(input, corrected, strength): each affine transform blended with the identity."""
    if strength == 1.0:
        return grid
    identity = torch.zeros(12, dtype=grid.dtype, device=grid.device)
    identity[[0, 4, 8]] = 1.0  # coefficient i * 3 + k is 1 where input channel i is output channel k
    return torch.lerp(identity.view(1, 12, 1, 1, 1), grid, strength)


def block_grid_table(grid: torch.Tensor, h: int, w: int, block: int) -> np.ndarray:
    """(nby, nbx, D, 12) float32 numpy, D >= 2: the grid at every `block` x `block` block centre of an h x w
    image, the table `xfix.display8.slice_grid_u8` slices with."""
    grid = _at_least_two_bins(grid)
    d = grid.shape[2]
    table = _block_table(grid, 0, h, h, w, block)  # (nby * nbx * D, 12)
    return table.reshape(-(-h // block), -(-w // block), d, 12).float().cpu().numpy()


def upsample(
    low_in,
    low_out,
    full_in,
    *,
    cell: int = CELL,
    bins: int = 8,
    smooth: int = 1,
    reg: float = 1e-4,
    block: int | None = None,
    chunk_rows: int = 64,
    clip_input: bool = False,
    out=None,
):
    """Carry the low-res correction low_in -> low_out (h, w, 3) to full_in (H, W, 3); returns (H, W, 3).

    All three in the same encoding. Known behaviour: if low_out = low_in @ M.T + b for one matrix M and
    offset b, the result is full_in @ M.T + b up to float rounding. Same type as full_in (numpy or torch).
    `block` defaults to `default_block`.
    """
    grid = fit_grid(low_in, low_out, cell=cell, bins=bins, smooth=smooth, reg=reg)
    block = default_block(full_in.shape, low_in.shape, cell) if block is None else block
    return slice_grid(grid, full_in, block=block, chunk_rows=chunk_rows, clip_input=clip_input, out=out)
