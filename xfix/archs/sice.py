"""sice: single image contrast enhancement learned from multi-exposure fusions (Cai, Gu and Zhang, TIP 2018).

As the paper's network, sized for a 2-core CPU. Stage 1 decomposes the display-referred input into a smooth
low-frequency component (the image through a Gaussian pyramid and back: its luminance and colour at large
scale) and the high-frequency detail that remains. The luminance branch, a small U-Net with global context,
enhances the smooth component at the coarsest level, where it sees the whole photo's exposure; the detail
branch, a few full-resolution convolutions, enhances the detail given the image it belongs to. Stage 2 adds
the two and a fusion network refines the sum (colour, halos, clipped edges). Every sub-network predicts a
residual from a zero-initialised last layer, so an untrained network returns its input.

The references it learns from are fused exposure stacks (`xfix.data.sice`); the loss is the paper's SSIM on
8 x 8 patches with stride 8 (c1 = 1e-4, c2 = 1e-3) plus L1, and L1 on each stage-1 component.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.archs.msec import UNet
from xfix.data.sice import sice_pair
from xfix.pyramid import gaussian_pyramid, upsample

DEFAULTS: dict[str, Any] = {
    "levels": 4,  # smooth component: 3 halvings (1/8 size) and back
    "luminance_width": 16,
    "luminance_depth": 3,
    "detail_width": 16,
    "detail_depth": 3,
    "fusion_width": 16,
    "fusion_depth": 3,
}
TRAINING_DEFAULTS: dict[str, Any] = {  # read by SICERecipe only
    "ssim_window": 8,
    "ssim_stride": 8,
    "ssim_c1": 1e-4,
    "ssim_c2": 1e-3,
    "l1_weight": 1.0,
    "component_weight": 0.5,  # L1 of the stage-1 components against the reference's smooth and detail
}


def _convs(cin: int, width: int, depth: int, cout: int) -> nn.Sequential:
    """`depth` 3x3 conv + LeakyReLU layers then a zero-initialised 3x3 conv to `cout`: (B, cin, H, W) ->
    (B, cout, H, W), receptive field depth + 1 pixels each side."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(cin if i == 0 else width, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
    last = nn.Conv2d(width, cout, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


def decompose(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, C, H, W) -> (smooth, detail, coarse): smooth = the coarsest of `levels` Gaussian-pyramid levels
    upsampled back to (H, W), detail = x - smooth, coarse = that level itself. smooth + detail == x."""
    coarse = gaussian_pyramid(x, levels)[-1]  # (B, C, ~H/2**(levels-1), ~W/2**(levels-1))
    smooth = upsample(coarse, x.shape[-2:])
    return smooth, x - smooth, coarse


class SICE(nn.Module):
    """(B, 3, H, W) sRGB-encoded [0, 1] -> enhanced (B, 3, H, W), same encoding; any H, W."""

    def __init__(self, levels: int, luminance_width: int, luminance_depth: int, detail_width: int,
                 detail_depth: int, fusion_width: int, fusion_depth: int):
        super().__init__()
        if levels < 2:
            raise ValueError(f"sice needs levels >= 2 (one halving at least), got {levels}")
        self.levels = levels
        self.luminance = UNet(3, 3, luminance_width, luminance_depth, global_context=True)
        self.detail = _convs(6, detail_width, detail_depth, 3)
        self.fusion = _convs(9, fusion_width, fusion_depth, 3)

    def forward_parts(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"smooth", "detail", "output"}: the enhanced stage-1 components and the result, unclipped."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"sice expects (B, 3, H, W), got {tuple(x.shape)}")
        _, detail, coarse = decompose(x, self.levels)
        smooth = upsample(coarse + self.luminance(coarse), x.shape[-2:])  # (B, 3, H, W)
        detail = detail + self.detail(torch.cat([detail, x], dim=1))  # (B, 3, H, W)
        merged = smooth + detail
        output = merged + self.fusion(torch.cat([merged, smooth, x], dim=1))
        return {"smooth": smooth, "detail": detail, "output": output}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_parts(x)["output"].clamp(0.0, 1.0)


def build(settings: Mapping[str, Any]) -> SICE:
    merged = {**DEFAULTS, **dict(settings)}
    return SICE(**{key: merged[key] for key in DEFAULTS})  # training-only keys are the recipe's


def patch_ssim(x: torch.Tensor, y: torch.Tensor, window: int = 8, stride: int = 8, c1: float = 1e-4,
               c2: float = 1e-3) -> torch.Tensor:
    """Mean SSIM of (B, C, H, W) images over window x window patches every `stride` pixels, per channel
    (uniform weights, population variances), as the SICE authors' Caffe SSIM layer. Identical images -> 1.

    With window 7, stride 1, c1 = (0.01)**2, c2 = 1e-3 it equals skimage's structural_similarity(...,
    win_size=7, K1=0.01, K2=sqrt(1e-3), data_range=1, use_sample_covariance=False, channel_axis=-1)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"patch_ssim needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    pool = lambda t: F.avg_pool2d(t, window, stride)  # noqa: E731  (B, C, H', W')
    mu_x, mu_y = pool(x), pool(y)
    var_x = pool(x * x) - mu_x**2
    var_y = pool(y * y) - mu_y**2
    cov = pool(x * y) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.mean()


class SICERecipe:
    """Loss: (1 - patch SSIM) + l1_weight * L1 of the result, plus component_weight * L1 of the enhanced
    smooth and detail components against the reference's own decomposition (the paper trains its stage-1
    branches on the reference's components)."""

    def __init__(self, model: SICE, settings: Mapping[str, Any]):
        settings = {**TRAINING_DEFAULTS, **dict(settings)}
        self.ssim_args = dict(window=int(settings["ssim_window"]), stride=int(settings["ssim_stride"]),
                              c1=float(settings["ssim_c1"]), c2=float(settings["ssim_c2"]))
        self.l1_weight = float(settings["l1_weight"])
        self.component_weight = float(settings["component_weight"])

    def loss(self, model: SICE, inp: torch.Tensor, target: torch.Tensor, step: int):
        parts = model.forward_parts(inp)
        output = parts["output"]
        ssim_loss = 1.0 - patch_ssim(output, target, **self.ssim_args)
        l1 = F.l1_loss(output, target)
        smooth_target, detail_target, _ = decompose(target, model.levels)
        components = F.l1_loss(parts["smooth"], smooth_target) + F.l1_loss(parts["detail"], detail_target)
        total = ssim_loss + self.l1_weight * l1 + self.component_weight * components
        logs = {"ssim": float(ssim_loss.detach()), "l1": float(l1.detach()),
                "components": float(components.detach())}
        return total, logs


ARCHITECTURE = Architecture(
    name="sice",
    description="Single image contrast enhancer learned from fused exposure stacks (Cai et al., TIP 2018)",
    build=build,
    encoding="srgb",
    learned=True,
    receptive_field=0,  # the luminance branch sees the whole image: tiles would each judge their own exposure
    multiple_of=8,
    supports_half=False,
    recipe=SICERecipe,
    defaults={**DEFAULTS, **TRAINING_DEFAULTS},
    pairs=sice_pair,
)
