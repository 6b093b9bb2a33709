"""bgrid: a learned bilateral grid of colour transforms (after Gharbi et al., HDRNet, SIGGRAPH 2017).

A low-resolution copy of the photo (always `low_size` square, so the network sees the whole frame at one
scale whatever the input size) goes through strided convolutions to a coarse feature map; a global path
(more strided convolutions, the exposure statistics of the whole photo, fully connected layers) and a local
path are fused into a grid of 3 x 4 affine colour transforms over (x, y, luminance). Each full-resolution
pixel takes the transform interpolated at its position and at a learned guide value, so edges and texture
come from the input and the correction costs a few operations per pixel. The last layer starts at the
identity transform, so an untrained network returns its input.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.archs.statistics import exposure_statistics, statistics_branch

DEFAULTS: dict[str, Any] = {
    "low_size": 128,  # the low-resolution stream's input side
    "grid_depth": 8,  # luminance bins of the grid
    "width": 8,  # channels after the first strided convolution; doubled at each of the next ones
    "splat_layers": 4,  # strided convolutions: a 128 px input gives an 8 x 8 grid
    "global_layers": 2,  # further strided convolutions of the global path
    "global_width": 64,
}


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True))


class BilateralGrid(nn.Module):
    """(B, 3, H, W) sRGB-encoded [0, 1] -> corrected (B, 3, H, W), same encoding; any H, W."""

    def __init__(self, low_size: int, grid_depth: int, width: int, splat_layers: int, global_layers: int,
                 global_width: int):
        super().__init__()
        self.low_size, self.grid_depth = low_size, grid_depth
        widths = [3] + [width * 2**i for i in range(splat_layers)]
        self.splat = nn.Sequential(*(_down(widths[i], widths[i + 1]) for i in range(splat_layers)))
        features = widths[-1]
        self.global_convs = nn.Sequential(*(_down(features, features) for _ in range(global_layers)))
        side = max(1, low_size // 2 ** (splat_layers + global_layers))
        self.global_fc = nn.Sequential(
            nn.Linear(features * side * side, 2 * global_width), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(2 * global_width, global_width), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(global_width, features),
        )
        self.global_side = side
        self.stats = statistics_branch(features)
        self.local = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(features, features, 3, padding=1, bias=False),
        )
        self.to_grid = nn.Conv2d(features, 12 * grid_depth, 1)
        nn.init.zeros_(self.to_grid.weight)
        identity = torch.cat([torch.eye(3), torch.zeros(1, 3)]).reshape(12)  # (R, G, B, 1) x out channel
        with torch.no_grad():
            self.to_grid.bias.copy_(identity.repeat_interleave(grid_depth))
        # the guide: a per-pixel colour mix and curve, near luminance at the start
        self.guide = nn.Sequential(nn.Conv2d(3, 8, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(8, 1, 1))

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 12, D, GH, GW) affine coefficients; channel i * 3 + k: input feature i
        (R, G, B, 1) in output channel k."""
        low = F.interpolate(x, size=(self.low_size, self.low_size), mode="bilinear", antialias=True,
                            align_corners=False)
        features = self.splat(low)  # (B, F, GH, GW)
        glob = self.global_convs(features)
        glob = F.adaptive_avg_pool2d(glob, self.global_side).flatten(1)
        glob = self.global_fc(glob) + self.stats(exposure_statistics(x))  # (B, F)
        fused = F.leaky_relu(self.local(features) + glob[:, :, None, None], 0.2)
        b, _, gh, gw = fused.shape
        return self.to_grid(fused).view(b, 12, self.grid_depth, gh, gw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"bgrid expects (B, 3, H, W), got {tuple(x.shape)}")
        grid = self.grid(x)
        b, _, h, w = x.shape
        guide = torch.sigmoid(self.guide(x))  # (B, 1, H, W) in (0, 1)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, h, 1).expand(b, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, 1, w).expand(b, h, w)
        coords = torch.stack([xs, ys, guide[:, 0] * 2 - 1], dim=-1)[:, None]  # (B, 1, H, W, 3)
        coef = F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)
        coef = coef[:, :, 0].view(b, 4, 3, h, w)  # (B, 4, 3, H, W)
        out = coef[:, 3] + (x[:, :, None] * coef[:, :3]).sum(1)
        return out.clamp(0.0, 1.0)


def build(settings: Mapping[str, Any]) -> BilateralGrid:
    merged = {**DEFAULTS, **dict(settings)}
    return BilateralGrid(**{key: merged[key] for key in DEFAULTS})


ARCHITECTURE = Architecture(
    name="bgrid",
    description="Learned bilateral grid of colour transforms (after HDRNet, Gharbi et al. 2017)",
    build=build,
    encoding="srgb",
    receptive_field=0,  # the grid comes from the whole frame: tiles would each judge their own exposure
    # no recipe: it trains on the default loss, L1 of the result (xfix.train.L1Recipe)
    defaults=DEFAULTS,
)
