"""highlights: pix2pix-style recovery of blown highlights (after Le Jeune 2019, Isola et al. 2017), CPU-sized.

Generator: a small fully-convolutional U-Net on display sRGB that predicts a residual (an untrained network
returns its input). After every convolution a noise map with a learnable per-channel scale is added
(StyleGAN's noise injection), so the network can invent texture where clipping destroyed all detail. Training
draws fresh noise every step; inference uses a fixed noise texture drawn from `noise_seed`, so the same photo
gives the same result and another seed gives another variant. The texture repeats every NOISE_PERIOD pixels
and tiles start on multiples of it (`tile_align`), so a tiled run sees the noise a whole-image run sees.

Critic: a conditional PatchGAN (input and output stacked) with spectral normalisation and a 142 px field of
view. Losses: least-squares adversarial, L1 content, and a perceptual loss on the critic's feature maps
(feature matching, as pix2pixHD): no ImageNet network can be downloaded here, and the critic's features are
the ones trained on exactly this task to tell a recovered highlight from a real one.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.archs.adversarial import critic_lsgan_step, generator_lsgan_loss
from xfix.archs.statistics import exposure_statistics, statistics_branch, with_initial_weights
from xfix.data.highlights import SHARES, highlight_pair

DEPTH = 4  # pooling levels: H and W are padded to multiples of 2**DEPTH
NOISE_PERIOD = 128  # px; a multiple of 2**DEPTH, and the tile alignment
RECEPTIVE_FIELD = 128  # px each side an output pixel can depend on (measured bound: 122; tests check it)

DEFAULTS: dict[str, Any] = {
    "width": 10,  # channels at full resolution; x2, x3, x4, x6 further down
    "noise_seed": 0,  # which fixed noise texture inference uses: another seed, another variant
    # Add statistics of the whole photo (xfix.archs.statistics) to the bottleneck: a 128 px neighbourhood
    # cannot tell a bright scene from an over-exposed one, so without them the network darkens good photos.
    # Tiled runs compute them once on the whole image and hand them to every tile.
    "global_stats": False,
    # Scale the whole residual by a factor in (0, 2) read from the same statistics (starts at 1): one number
    # lets the network leave a well-exposed photo as it is, which the per-pixel residual does only roughly.
    # Needs global_stats.
    "residual_gate": False,
}
# Read in training only (by HighlightsRecipe, and `well_share` by the pair function); listed so profile files
# may set them.
TRAINING_DEFAULTS: dict[str, Any] = {
    "adversarial_weight": 0.01,
    "perceptual_weight": 0.05,
    "adversarial_after": 200,
    "critic_width": 16,
    "well_share": SHARES["well"],  # share of nearly well-exposed training pairs, to come out unchanged
}
WIDTH_FACTORS = (1, 2, 3, 4, 6)


class NoiseInjection(nn.Module):
    """x + scale * noise, one noise map shared by the channels, one learnable scale per channel (init 0)."""

    def __init__(self, channels: int, layer: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.layer = layer

    def forward(self, x: torch.Tensor, texture: torch.Tensor | None) -> torch.Tensor:
        b, _, h, w = x.shape  # (B, C, H, W)
        if texture is None:  # training: fresh noise
            noise = torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
        else:  # inference: the periodic texture, anchored at the tile's origin
            reps = (-(-h // texture.shape[-2]), -(-w // texture.shape[-1]))
            noise = texture.repeat(1, 1, *reps)[:, :, :h, :w].to(x.device, x.dtype)
        return x + self.scale * noise


class Block(nn.Module):
    """conv 3x3 -> noise -> LeakyReLU, twice."""

    def __init__(self, cin: int, cout: int, level: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.noise1, self.noise2 = NoiseInjection(cout, level), NoiseInjection(cout, level)

    def forward(self, x: torch.Tensor, texture: torch.Tensor | None) -> torch.Tensor:
        x = F.leaky_relu(self.noise1(self.conv1(x), texture), 0.2)
        return F.leaky_relu(self.noise2(self.conv2(x), texture), 0.2)


def noise_texture(seed: int, level: int) -> torch.Tensor:
    """(1, 1, P, P) standard normal noise, P = NOISE_PERIOD / 2**level; fixed by seed and level."""
    size = NOISE_PERIOD >> level
    generator = torch.Generator().manual_seed(int(seed) * 1009 + level)
    return torch.randn(1, 1, size, size, generator=generator)


class HighlightsGenerator(nn.Module):
    """(B, 3, H, W) display sRGB [0, 1] -> corrected, same shape; H and W multiples of 2**DEPTH.

    `forward_raw` is the unclipped residual output (training); `forward` clips to [0, 1]. In eval mode the
    noise is the periodic texture of `noise_seed`; in train mode it is fresh every call."""

    def __init__(self, width: int, noise_seed: int = 0, global_stats: bool = False,
                 residual_gate: bool = False):
        super().__init__()
        if residual_gate and not global_stats:
            raise ValueError("highlights: residual_gate reads the global statistics; set global_stats = true")
        widths = [width * f for f in WIDTH_FACTORS[: DEPTH + 1]]
        self.noise_seed = int(noise_seed)
        self.stats = statistics_branch(widths[-1]) if global_stats else None
        self.gate = statistics_branch(1) if residual_gate else None
        self.inc = Block(3, widths[0], 0)
        self.down = nn.ModuleList(Block(widths[i], widths[i + 1], i + 1) for i in range(DEPTH))
        self.up = nn.ModuleList(
            Block(widths[i + 1] + widths[i], widths[i], i) for i in reversed(range(DEPTH))
        )
        self.out = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.out.weight)  # residual starts at zero: identity correction
        nn.init.zeros_(self.out.bias)
        for level in range(DEPTH + 1):
            self.register_buffer(f"texture{level}", noise_texture(self.noise_seed, level), persistent=False)

    def _texture(self, level: int) -> torch.Tensor | None:
        return None if self.training else getattr(self, f"texture{level}")

    def global_context(self, image: torch.Tensor) -> torch.Tensor | None:
        """(B, 3, H, W) whole photo -> what `forward` needs to know about it beyond a tile (None: nothing)."""
        return None if self.stats is None else exposure_statistics(image)

    def forward_raw(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """`context`: `global_context` of the whole photo when x is a tile of it; None computes it from x."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-2] % 2**DEPTH or x.shape[-1] % 2**DEPTH:
            raise ValueError(f"highlights expects (B, 3, H, W) with H, W multiples of {2**DEPTH}, "
                             f"got {tuple(x.shape)}")
        skips = [self.inc(x * 2 - 1, self._texture(0))]  # (B, w, H, W)
        for level, block in enumerate(self.down, start=1):
            skips.append(block(F.avg_pool2d(skips[-1], 2), self._texture(level)))  # (B, w_l, H/2^l, W/2^l)
        y = skips.pop()
        if self.stats is not None:
            context = (self.global_context(x) if context is None else context).to(y.dtype)
            y = y + self.stats(context)[:, :, None, None]
        for level, block in zip(reversed(range(DEPTH)), self.up):
            up = F.interpolate(y, scale_factor=2, mode="bilinear")
            y = block(torch.cat([up, skips.pop()], dim=1), self._texture(level))
        residual = self.out(y)  # (B, 3, H, W)
        if self.gate is not None:
            residual = residual * (2.0 * torch.sigmoid(self.gate(context)))[:, :, None, None]
        return x + residual

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_raw(x, context).clamp(0.0, 1.0)


def build(settings: Mapping[str, Any]) -> HighlightsGenerator:
    merged = {**DEFAULTS, **dict(settings)}
    return HighlightsGenerator(int(merged["width"]), int(merged["noise_seed"]), bool(merged["global_stats"]),
                               bool(merged["residual_gate"]))


def adapt_weights(state: dict[str, torch.Tensor], model: HighlightsGenerator) -> dict[str, torch.Tensor]:
    """Weights trained without the statistics branch or the gate -> weights for `model`, both silent."""
    return with_initial_weights(state, model, "stats.", "gate.")


# ---------------------------------------------------------------- training


class PatchCritic(nn.Module):
    """Conditional PatchGAN: (input, image) -> (B, 1, H/16 - 2, W/16 - 2) least-squares scores, 142 px view.

    Five 4x4 convolutions (strides 2, 2, 2, 2, 1) and a 4x4 output, spectral-normalised. `features` returns
    the activations after each hidden layer, for the perceptual (feature-matching) loss."""

    def __init__(self, width: int = 16):
        super().__init__()
        sn = nn.utils.spectral_norm
        widths = [6, width, width * 2, width * 4, width * 4, width * 4]
        strides = [2, 2, 2, 2, 1]
        self.layers = nn.ModuleList(
            sn(nn.Conv2d(widths[i], widths[i + 1], 4, strides[i], padding=1))
            for i in range(len(strides))
        )
        self.head = sn(nn.Conv2d(widths[-1], 1, 4, 1, padding=1))

    def features(self, inp: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        x = torch.cat([inp, image], dim=1) * 2 - 1  # (B, 6, H, W)
        feats = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            feats.append(x)
        return feats

    def forward(self, inp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inp, image)[-1])


class HighlightsRecipe:
    """L1 + perceptual (critic features) + least-squares adversarial, the last two from `adversarial_after`
    steps on, so the critic first sees outputs that are already roughly right."""

    def __init__(self, model: HighlightsGenerator, settings: Mapping[str, Any]):
        settings = {**TRAINING_DEFAULTS, **dict(settings)}
        self.adversarial_weight = float(settings["adversarial_weight"])
        self.perceptual_weight = float(settings["perceptual_weight"])
        self.adversarial_after = int(settings["adversarial_after"])
        self.critic = PatchCritic(int(settings["critic_width"]))
        self.critic_optimiser = torch.optim.Adam(self.critic.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}

    def extra_optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_optimiser}

    def adversarial(self, step: int) -> bool:
        return (self.adversarial_weight > 0 or self.perceptual_weight > 0) and step >= self.adversarial_after

    def loss(self, model: HighlightsGenerator, inp: torch.Tensor, target: torch.Tensor, step: int):
        out = model.forward_raw(inp)  # (B, 3, P, P)
        content = F.l1_loss(out, target)
        total, logs = content, {"l1": float(content.detach())}
        if self.adversarial(step):
            critic = self.critic.to(inp.device).requires_grad_(False)
            fake = critic.features(inp, out.clamp(0, 1))
            with torch.no_grad():
                real = critic.features(inp, target)
            fooling = generator_lsgan_loss(critic.head(fake[-1]))
            perceptual = sum(F.l1_loss(f, r) for f, r in zip(fake, real)) / len(fake)
            critic.requires_grad_(True)
            total = total + self.adversarial_weight * fooling + self.perceptual_weight * perceptual
            logs |= {"adv": float(fooling.detach()), "perceptual": float(perceptual.detach())}
        self._last_output = out.detach().clamp(0, 1)
        return total, logs

    def after_step(self, model: HighlightsGenerator, inp: torch.Tensor, target: torch.Tensor, step: int):
        if not self.adversarial(step):
            return {}
        critic = self.critic.to(inp.device)
        return critic_lsgan_step(self.critic_optimiser, critic(inp, target), critic(inp, self._last_output))


ARCHITECTURE = Architecture(
    name="highlights",
    description="pix2pix-style U-Net with noise injection for blown highlights (after Le Jeune 2019)",
    build=build,
    encoding="srgb",
    learned=True,
    receptive_field=RECEPTIVE_FIELD,
    multiple_of=2**DEPTH,
    tile_align=NOISE_PERIOD,
    supports_half=False,
    recipe=HighlightsRecipe,
    pairs=highlight_pair,
    pair_settings=("well_share",),
    defaults={**DEFAULTS, **TRAINING_DEFAULTS},
    adapt_weights=adapt_weights,
    takes_context=True,
)
