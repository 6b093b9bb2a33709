"""Exposure fusion (Mertens, Kautz and Van Reeth, 2007) of renderings over Laplacian pyramids.

Used by the classic profile (virtual exposures for local contrast) and msec's optional `fusion` post-process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xfix.pyramid import collapse, gaussian_pyramid, laplacian_pyramid


def mertens_fusion(images: torch.Tensor, levels: int, detail_levels: int | None = None, base: int = 0):
    """Mertens et al. (2007) exposure fusion of K renderings (K, 3, H, W) in [0, 1] -> (1, 3, H, W).

    Weights: local contrast (|Laplacian| of grey) x saturation (channel std) x well-exposedness (Gaussian
    around 0.5, sigma 0.2, per channel); blended per band of a `levels`-deep Laplacian pyramid, so no halo.
    With `detail_levels`, only the finest that many bands are fused and the coarser ones come from
    images[base]: local contrast from the fusion, overall tone from the base rendering.
    """
    grey = images.mean(dim=1, keepdim=True)  # (K, 1, H, W)
    lap = torch.tensor(
        [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype, device=images.device
    )
    contrast = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), lap.view(1, 1, 3, 3)).abs()
    saturation = (images - grey).square().mean(dim=1, keepdim=True).sqrt()  # channel std
    exposedness = torch.exp(-((images - 0.5) ** 2) / (2 * 0.2**2)).prod(dim=1, keepdim=True)
    weights = contrast * saturation * exposedness + 1e-12  # (K, 1, H, W)
    weights = weights / weights.sum(dim=0, keepdim=True)

    detail_levels = levels if detail_levels is None else detail_levels
    bands = laplacian_pyramid(images, levels)  # finest first, the last one the coarse residual
    fused = [
        (w * band).sum(dim=0, keepdim=True) if level < detail_levels else band[base : base + 1]
        for level, (w, band) in enumerate(zip(gaussian_pyramid(weights, levels), bands))
    ]
    return collapse(fused)
