"""Gaussian and Laplacian image pyramids on torch tensors (B, C, H, W).

Shared by the msec network (its levels), the classic profile and exposure fusion (Mertens blending). Levels are
ordered finest first; a level halves the size with ceil, so any size works and `collapse` restores the exact shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # Burt & Adelson 5-tap kernel


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur with reflect padding, (B, C, H, W) -> same shape."""
    c = x.shape[1]
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16.0
    pad_mode = "reflect" if min(x.shape[-2:]) > 2 else "replicate"
    x = F.pad(x, (2, 2, 0, 0), mode=pad_mode)
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    x = F.pad(x, (0, 0, 2, 2), mode=pad_mode)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every other pixel: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))."""
    return _blur(x)[..., ::2, ::2]


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling to `size` (H, W); smooth enough for pyramid reconstruction and differentiable."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[x, down(x), down(down(x)), ...] with `levels` entries, finest first."""
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(x.shape)}")
    out = [x]
    for _ in range(levels - 1):
        out.append(downsample(out[-1]))
    return out


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels finest first, the last entry is the coarsest Gaussian level (the residual)."""
    gauss = gaussian_pyramid(x, levels)
    bands = [fine - upsample(coarse, fine.shape[-2:]) for fine, coarse in zip(gauss[:-1], gauss[1:])]
    return bands + [gauss[-1]]


def collapse(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of `laplacian_pyramid`: exact reconstruction of the original image."""
    x = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        x = band + upsample(x, band.shape[-2:])
    return x


def max_levels(height: int, width: int, smallest: int = 8) -> int:
    """How many levels fit before the coarsest side would drop below `smallest` pixels."""
    levels, side = 1, min(height, width)
    while side >= 2 * smallest:
        side = (side + 1) // 2
        levels += 1
    return levels
