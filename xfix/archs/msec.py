"""msec: multi-scale Laplacian-pyramid exposure correction (Afifi et al., CVPR 2021), sized for a 2-core CPU.

The display-referred sRGB input is split into a Laplacian pyramid. A U-Net with a global-context branch corrects
the coarsest level (overall brightness and colour); each finer level adds its own Laplacian band to the upsampled
result below and a lighter U-Net refines it (detail, halos, clipped edges). Every sub-network predicts a residual,
so an untrained or unsure network leaves the photo as it was.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.archs.adversarial import critic_lsgan_step, generator_lsgan_loss
from xfix.archs.statistics import exposure_statistics, statistics_branch, with_initial_weights
from xfix.data.synthesis import WELL_EXPOSED_SHARE, make_pair
from xfix.pyramid import gaussian_pyramid, laplacian_pyramid, upsample

DEFAULTS: dict[str, Any] = {
    "levels": 4,
    "coarse_width": 32,
    "fine_width": 16,
    "coarse_depth": 3,
    "fine_depth": 2,
    "pyramid_scale": [1.0, 1.0, 1.0, 1.0],  # the paper's S vector, finest level first
    # "residual": the coarse U-Net adds a correction to the coarsest level (the paper). "affine": it predicts
    # a per-pixel 3x4 colour transform of that level, and the finer bands are carried up through the same
    # transform before refinement, so brightening a photo also brightens its detail without the refiners
    # having to relearn the gain at every level (the inductive bias of bilateral-grid correctors).
    "coarse_output": "residual",
    "fusion": False,  # post-process: Mertens fusion of input and result (the authors' optional `fusion`)
    "hist_adjust": False,  # post-process: black/white point stretch of the result (the authors' `pp`)
    # Feed the coarse U-Net's global context with statistics of the whole input (luminance histogram,
    # percentiles, clipped fraction): whether highlights reach white or pile up clipped is the evidence that
    # tells an under- or over-exposed photo from a dark or bright scene, and a mean of conv features
    # captures it poorly.
    "global_stats": False,
}
TRAINING_DEFAULTS: dict[str, Any] = {  # read by MSECRecipe and the pair function; profile files may set them
    "pyramid_weight": 1.0,
    "adversarial_weight": 0.005,
    "adversarial_after": 10**9,
    # Train the coarse level alone (its pyramid loss; the refiners are not run): global brightness and colour
    # are where the error is, and a 32 px coarse level trains about five times faster than the whole pyramid.
    "coarse_only": False,
    # Train the refiners alone, the coarse level kept as it is: after coarse-only runs the refiners were
    # trained against an earlier coarse level, and they must learn what the new one leaves them.
    "refiners_only": False,
    "well_share": WELL_EXPOSED_SHARE,  # share of (nearly) well-exposed training pairs, to be left alone
    "min_misexposure": 0.0,  # stops: the other pairs are at least this far off (synthesis.draw_ev)
}


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


class UNet(nn.Module):
    """A small U-Net: (B, cin, H, W) -> (B, cout, H, W); any H, W (skips are resized to match).

    With `global_context`, the bottleneck also receives the image-wide mean of its features, which is what lets
    the coarse level judge the exposure of the whole photo rather than of a neighbourhood. With `global_stats`,
    a small MLP of the `exposure_statistics` vector given to forward joins that context.
    """

    def __init__(self, cin: int, cout: int, width: int, depth: int, global_context: bool = False,
                 global_stats: bool = False):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.inc = nn.Sequential(_conv(cin, widths[0]), _conv(widths[0], widths[0]))
        self.down = nn.ModuleList(
            nn.Sequential(_conv(widths[i], widths[i + 1]), _conv(widths[i + 1], widths[i + 1])) for i in range(depth)
        )
        self.global_context = nn.Linear(widths[-1], widths[-1]) if global_context else None
        self.stats = statistics_branch(widths[-1]) if global_stats else None
        self.up = nn.ModuleList(
            nn.Sequential(_conv(widths[i + 1] + widths[i], widths[i]), _conv(widths[i], widths[i]))
            for i in reversed(range(depth))
        )
        self.out = nn.Conv2d(widths[0], cout, 1)
        nn.init.zeros_(self.out.weight)  # residual starts at zero: identity correction
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        skips = [self.inc(x)]  # (B, w, H, W)
        for block in self.down:
            skips.append(block(F.avg_pool2d(skips[-1], 2, ceil_mode=True)))
        y = skips.pop()
        if self.global_context is not None:
            context = self.global_context(y.mean(dim=(2, 3)))  # (B, w_max)
            if self.stats is not None and stats is not None:
                context = context + self.stats(stats)
            y = y + F.leaky_relu(context, 0.2)[:, :, None, None]
        for block in self.up:
            skip = skips.pop()
            y = block(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="bilinear"), skip], dim=1))
        return self.out(y)


class MSEC(nn.Module):
    """(B, 3, H, W) sRGB-encoded [0, 1] -> corrected (B, 3, H, W), same encoding.

    `forward_levels` returns the corrected image at every pyramid level, coarsest first, for the pyramid loss.
    """

    def __init__(self, levels: int, coarse_width: int, fine_width: int, coarse_depth: int, fine_depth: int,
                 pyramid_scale: Sequence[float], fusion: bool = False, hist_adjust: bool = False,
                 coarse_output: str = "residual", global_stats: bool = False):
        super().__init__()
        self.fusion, self.hist_adjust = bool(fusion), bool(hist_adjust)
        if len(pyramid_scale) != levels:
            raise ValueError(f"pyramid_scale needs {levels} values, got {len(pyramid_scale)}")
        if coarse_output not in ("residual", "affine"):
            raise ValueError(f"coarse_output must be 'residual' or 'affine', got {coarse_output!r}")
        self.levels = levels
        self.affine = coarse_output == "affine"
        self.register_buffer("pyramid_scale", torch.tensor(list(pyramid_scale), dtype=torch.float32),
                             persistent=False)
        self.global_stats = bool(global_stats)
        self.coarse = UNet(3, 12 if self.affine else 3, coarse_width, coarse_depth, global_context=True,
                           global_stats=self.global_stats)
        self.refiners = nn.ModuleList(UNet(6, 3, fine_width, fine_depth) for _ in range(levels - 1))

    def forward_levels(self, x: torch.Tensor, *, frozen_coarse: bool = False) -> list[torch.Tensor]:
        """frozen_coarse: compute the coarse level without gradients (training the refiners alone)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen_coarse):
            bands, coefficients = self._coarse(x)
            y = self._corrected_coarse(bands[-1], coefficients)
        outputs = [y]
        for refiner, band in zip(self.refiners, reversed(bands[:-1])):
            if self.affine:  # a band is a difference of colours: it takes the transform's gain, not its offset
                band = band + apply_affine(upsample(coefficients, band.shape[-2:]), band, offset=False)
            merged = upsample(y, band.shape[-2:]) + band
            # the refiner sees the merged image and its band, so it can tell detail from artefact
            y = merged + refiner(torch.cat([merged, band], dim=1))
            outputs.append(y)
        return outputs

    def _coarse(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The scaled Laplacian bands (finest first) and the coarse U-Net's output."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"msec expects (B, 3, H, W), got {tuple(x.shape)}")
        bands = laplacian_pyramid(x, self.levels)
        bands = [band * scale for band, scale in zip(bands, self.pyramid_scale)]
        return bands, self.coarse(bands[-1], exposure_statistics(x) if self.global_stats else None)

    def forward_coarse(self, x: torch.Tensor) -> torch.Tensor:
        """The corrected coarsest level only (what `forward_levels` returns first), without the refiners."""
        bands, coefficients = self._coarse(x)
        return self._corrected_coarse(bands[-1], coefficients)

    def _corrected_coarse(self, coarse: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        return coarse + (apply_affine(coefficients, coarse, offset=True) if self.affine else coefficients)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.forward_levels(x)[-1].clamp(0.0, 1.0)
        if self.fusion:
            y = torch.cat([fuse_with_input(xi[None], yi[None]) for xi, yi in zip(x, y)])
        if self.hist_adjust:
            y = stretch_histogram(y)
        return y


def apply_affine(coefficients: torch.Tensor, x: torch.Tensor, offset: bool) -> torch.Tensor:
    """(B, 12, H, W) coefficients (a 3x3 matrix row by row, then a 3-vector offset) applied to (B, 3, H, W)."""
    matrix = coefficients[:, :9].unflatten(1, (3, 3))  # (B, 3, 3, H, W)
    out = (matrix * x[:, None]).sum(dim=2)
    return out + coefficients[:, 9:] if offset else out


def fuse_with_input(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) input and result -> Mertens fusion of the two, which keeps whatever is better exposed."""
    from xfix.fusion import mertens_fusion
    from xfix.pyramid import max_levels

    return mertens_fusion(torch.cat([x, y]), max_levels(*x.shape[-2:])).clamp(0.0, 1.0)


def stretch_histogram(y: torch.Tensor, low: float = 0.005, high: float = 0.995, max_gain: float = 1.25):
    """(B, 3, H, W) -> black and white points moved to the 0.5 and 99.5 percentiles, gain capped at `max_gain`."""
    flat = y.flatten(1)  # (B, 3HW)
    black = torch.quantile(flat[:, :: max(1, flat.shape[1] // 200_000)], low, dim=1)[:, None, None, None]
    white = torch.quantile(flat[:, :: max(1, flat.shape[1] // 200_000)], high, dim=1)[:, None, None, None]
    span = (white - black).clamp(min=1.0 / max_gain)
    return ((y - black) / span).clamp(0.0, 1.0)


def residual_to_affine(state: dict[str, torch.Tensor], model: MSEC) -> dict[str, torch.Tensor]:
    """Weights of a residual-coarse network -> the same network with an affine coarse output (`model`'s kind).

    The old residual becomes the transform's offset and its matrix starts at zero, so the adapted network
    computes exactly what the old one did and training continues from there."""
    weight, bias = state.get("coarse.out.weight"), state.get("coarse.out.bias")
    if not model.affine or weight is None or weight.shape[0] != 3:
        return state
    new_weight = weight.new_zeros((12, *weight.shape[1:]))
    new_bias = bias.new_zeros(12)
    new_weight[9:], new_bias[9:] = weight, bias
    return {**state, "coarse.out.weight": new_weight, "coarse.out.bias": new_bias}


def adapt_weights(state: dict[str, torch.Tensor], model: MSEC) -> dict[str, torch.Tensor]:
    """Weights of an earlier msec variant -> weights for `model`: a residual coarse output becomes affine
    (`residual_to_affine`), and a statistics branch the weights lack starts at its silent initialisation."""
    return with_initial_weights(residual_to_affine(state, model), model, "coarse.stats.")


def build(settings: Mapping[str, Any]) -> MSEC:
    merged = {**DEFAULTS, **dict(settings)}
    return MSEC(**{key: merged[key] for key in DEFAULTS})  # training-only keys are the recipe's


class PatchCritic(nn.Module):
    """A small PatchGAN discriminator on (B, 3, H, W) sRGB images, spectral-normalised for stable training."""

    def __init__(self, width: int = 32):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(width, width * 2, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(width * 2, width * 4, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(width * 4, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)  # (B, 1, H/8, W/8) patch scores


class MSECRecipe:
    """The paper's losses: L1 reconstruction + pyramid loss at every level + a least-squares adversarial loss
    switched on only after `adversarial_after` steps, once reconstruction has converged."""

    def __init__(self, model: MSEC, settings: Mapping[str, Any]):
        settings = {**TRAINING_DEFAULTS, **dict(settings)}
        self.pyramid_weight = float(settings["pyramid_weight"])
        self.adversarial_weight = float(settings["adversarial_weight"])
        self.adversarial_after = int(settings["adversarial_after"])
        self.coarse_only = bool(settings["coarse_only"])
        self.refiners_only = bool(settings["refiners_only"])
        if self.coarse_only and self.refiners_only:
            raise ValueError("coarse_only and refiners_only exclude each other")
        self.critic = PatchCritic()
        self.critic_optimiser = torch.optim.Adam(self.critic.parameters(), lr=1e-4, betas=(0.5, 0.999))

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}

    def extra_optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_optimiser}

    def adversarial(self, step: int) -> bool:
        return not self.coarse_only and self.adversarial_weight > 0 and step >= self.adversarial_after

    def loss(self, model: MSEC, inp: torch.Tensor, target: torch.Tensor, step: int):
        if self.coarse_only:
            coarse = model.forward_coarse(inp)
            loss = F.l1_loss(coarse, gaussian_pyramid(target, model.levels)[-1])
            return loss, {"coarse": float(loss.detach())}
        outputs = model.forward_levels(inp, frozen_coarse=self.refiners_only)
        targets = list(reversed(gaussian_pyramid(target, len(outputs))))  # coarsest first, as outputs
        reconstruction = F.l1_loss(outputs[-1], target)
        pyramid = sum(F.l1_loss(o, t) for o, t in zip(outputs[:-1], targets[:-1]))
        total = reconstruction + self.pyramid_weight * pyramid
        logs = {"l1": float(reconstruction.detach()), "pyramid": float(pyramid.detach())}
        if self.adversarial(step):
            critic = self.critic.to(inp.device)
            critic.requires_grad_(False)
            fooling = generator_lsgan_loss(critic(outputs[-1]))
            critic.requires_grad_(True)
            total = total + self.adversarial_weight * fooling
            logs["adv"] = float(fooling.detach())
        self._last_output = outputs[-1].detach()
        return total, logs

    def after_step(self, model: MSEC, inp: torch.Tensor, target: torch.Tensor, step: int) -> dict[str, float]:
        if not self.adversarial(step):
            return {}
        critic = self.critic.to(inp.device)
        return critic_lsgan_step(self.critic_optimiser, critic(target), critic(self._last_output))


ARCHITECTURE = Architecture(
    name="msec",
    description="Multi-scale Laplacian-pyramid exposure correction (Afifi et al., CVPR 2021)",
    build=build,
    encoding="srgb",
    learned=True,
    receptive_field=0,  # the coarse level sees the whole image: tiles would each judge their own exposure
    multiple_of=8,
    supports_half=False,
    recipe=MSECRecipe,
    defaults={**DEFAULTS, **TRAINING_DEFAULTS},
    adapt_weights=adapt_weights,
    pairs=make_pair,
    pair_settings=("well_share", "min_misexposure"),
)
