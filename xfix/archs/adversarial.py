"""Least-squares GAN terms (Mao et al. 2017) shared by the recipes that train a critic beside their network."""

from __future__ import annotations

import torch


def generator_lsgan_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """How far the critic is from calling the network's output real (target score 1)."""
    return ((fake_scores - 1) ** 2).mean()


def critic_lsgan_step(
    optimiser: torch.optim.Optimizer, real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> dict[str, float]:
    """One critic update towards real -> 1, fake -> 0; returns its loss for the training log."""
    loss = 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return {"critic": float(loss.detach())}
