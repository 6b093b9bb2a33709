"""Exposure fusion (Mertens, Kautz and Van Reeth, 2007) of renderings over Laplacian pyramids.

Used by the classic profile (virtual exposures for local contrast) and msec's optional `fusion` post-process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xfix.pyramid import collapse, gaussian_pyramid, laplacian_pyramid


def mertens_weights(images: torch.Tensor, sigma: float = 0.2) -> torch.Tensor:
    """Mertens et al. (2007) quality of every pixel of K renderings (K, 3, H, W) in [0, 1] -> (K, 1, H, W),
    not normalised: local contrast (|Laplacian| of the channel mean, replicate border) x saturation (std of
    the channels) x well-exposedness (Gaussian around 0.5 of width `sigma`, product over channels).

    Known value: a pixel (0.5, 0.5, 0.5) has saturation 0, so weight 0; (0.7, 0.5, 0.3) on a flat image has
    contrast 0, so weight 0; with contrast c it is c * 0.1633 * exp(-0.04 / 0.08)**2 = 0.0601 c."""
    grey = images.mean(dim=1, keepdim=True)  # (K, 1, H, W)
    lap = torch.tensor(
        [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype, device=images.device
    )
    contrast = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), lap.view(1, 1, 3, 3)).abs()
    saturation = (images - grey).square().mean(dim=1, keepdim=True).sqrt()  # channel std
    exposedness = torch.exp(-((images - 0.5) ** 2) / (2 * sigma**2)).prod(dim=1, keepdim=True)
    return contrast * saturation * exposedness


def pyramid_blend(
    images: torch.Tensor, weights: torch.Tensor, levels: int, detail_levels: int | None = None, base: int = 0
) -> torch.Tensor:
    """Blend K images (K, C, H, W) with per-pixel weights (K, 1, H, W) (normalised here, + 1e-12 so a pixel
    where every weight is zero averages) band by band over `levels`-deep Laplacian pyramids, the weights over
    Gaussian ones -> (1, C, H, W). With `detail_levels`, only the finest that many bands are blended and the
    coarser ones come from images[base]. Equal weights give the mean image exactly (the pyramids are
    linear)."""
    weights = weights + 1e-12
    weights = weights / weights.sum(dim=0, keepdim=True)
    detail_levels = levels if detail_levels is None else detail_levels
    bands = laplacian_pyramid(images, levels)  # finest first, the last one the coarse residual
    fused = [
        (w * band).sum(dim=0, keepdim=True) if level < detail_levels else band[base : base + 1]
        for level, (w, band) in enumerate(zip(gaussian_pyramid(weights, levels), bands, strict=True))
    ]
    return collapse(fused)


def mertens_fusion(images: torch.Tensor, levels: int, detail_levels: int | None = None, base: int = 0):
    """Mertens et al. (2007) exposure fusion of K renderings (K, 3, H, W) in [0, 1] -> (1, 3, H, W).

    Weights: `mertens_weights`; blended per band of a `levels`-deep Laplacian pyramid (`pyramid_blend`), so no
    halo. With `detail_levels`, only the finest that many bands are fused and the coarser ones come from
    images[base]: local contrast from the fusion, overall tone from the base rendering.
    """
    return pyramid_blend(images, mertens_weights(images), levels, detail_levels, base)
