"""Unpaired style learning for `whitebox` (`xfix train whitebox --style DIR`), the point of Hu et al. 2018.

A folder of photos in the look a photographer likes has no before/after pairs, so the edit is pulled towards
it by a critic: a small convolutional network that learns to tell 64 x 64 thumbnails of the style photos from
thumbnails of whitebox's outputs (Wasserstein loss with gradient penalty, Gulrajani et al. 2017). The edit
only ever sees global operations, so a thumbnail holds everything the critic needs (colour balance, tone,
contrast). The generator's loss adds `style_weight` x the critic's verdict to the supervised loss on
synthesized pairs (`content_weight` x L1), which keeps exposure correction working while the look moves. Only
the sRGB encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

THUMB = 64
GRADIENT_PENALTY = 10.0


class StyleCritic(nn.Module):
    """(B, 3, 64, 64) sRGB [0, 1] -> (B,) scores; higher means "looks like the style folder"."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.out = nn.Linear(4 * width + 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)  # (B, 6) colour and contrast
        features = self.net(x * 2 - 1).mean(dim=(2, 3))  # (B, 4w)
        return self.out(torch.cat([features, stats], dim=1))[:, 0]


def thumbnail(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(THUMB, THUMB), mode="area")


class StyleTerm:
    """The critic, its optimiser and the style photos; `generator_loss` and `critic_step` for the recipe."""

    def __init__(self, folder: str, seed: int = 0, max_side: int = 256):
        from xfix.colour import to_float
        from xfix.data.dataset import list_photos, load_photos

        self.photos = [to_float(p) for p in load_photos(list_photos(Path(folder)), max_side)]
        self.critic = StyleCritic()
        self.optimiser = torch.optim.Adam(self.critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
        self.rng = np.random.default_rng(seed)

    def real_batch(self, count: int, device: Any) -> torch.Tensor:
        """(count, 3, 64, 64) random crops (half to all of the short side) of style photos."""
        from xfix.data.dataset import random_crop

        crops = [random_crop(self.photos[int(self.rng.integers(len(self.photos)))], THUMB, self.rng)
                 for _ in range(count)]
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).to(device)

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        critic = self.critic.to(fake.device).requires_grad_(False)
        loss = -critic(fake).mean()
        critic.requires_grad_(True)
        return loss

    def critic_step(self, fake: torch.Tensor) -> dict[str, float]:
        critic = self.critic.to(fake.device)
        real = self.real_batch(fake.shape[0], fake.device)
        fake = fake.detach()
        mix = torch.rand(fake.shape[0], 1, 1, 1, device=fake.device)
        between = (mix * real + (1 - mix) * fake).requires_grad_(True)
        grad = torch.autograd.grad(critic(between).sum(), between, create_graph=True)[0]
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        distance = critic(real).mean() - critic(fake).mean()
        loss = -distance + GRADIENT_PENALTY * penalty
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return {"wasserstein": float(distance.detach()), "gp": float(penalty.detach())}
