"""Global statistics of a display-referred photo, the evidence a network needs to judge its exposure.

Whether highlights reach white or pile up clipped, and where the histogram sits, is what tells an under- or
over-exposed photo from a dark or bright scene; a convolutional network sees it only through a mean of local
features, which captures it poorly. Architectures feed this vector to a small MLP whose last layer starts at
zero, so weights trained without it keep their output (`with_initial_weights`).
"""

from __future__ import annotations

import torch

from xfix.filters import luma_tensor

HISTOGRAM_BINS = 16
QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999)
STATS_FEATURES = HISTOGRAM_BINS + 3 * len(QUANTILES) + 3 + 1


def exposure_statistics(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB [0, 1] -> (B, STATS_FEATURES): the luminance histogram (soft, 16 bins), per-channel
    percentiles, the per-channel fraction at the top of the range, and the fine-detail energy (noise grows as
    an exposure is pushed up). Computed on at most ~65k pixels, so it costs the same at any working size."""
    step = max(1, int((x.shape[-2] * x.shape[-1] / 65536) ** 0.5))
    x = x[..., ::step, ::step].clamp(0.0, 1.0)
    flat = x.flatten(2)  # (B, 3, N)
    luma = (flat * luma_tensor("srgb", flat.device).to(flat.dtype).reshape(3, 1)).sum(1)  # (B, N)
    centres = torch.linspace(0.0, 1.0, HISTOGRAM_BINS, device=x.device, dtype=x.dtype)
    weights = (1.0 - (luma[:, None] - centres[:, None]).abs() * (HISTOGRAM_BINS - 1)).clamp(min=0.0)
    histogram = weights.mean(-1)  # (B, bins), sums to 1
    quantiles = torch.quantile(flat, flat.new_tensor(QUANTILES), dim=-1)  # (q, B, 3)
    quantiles = quantiles.permute(1, 0, 2).flatten(1)  # (B, q * 3), percentile-major
    clipped = (flat > 0.98).float().mean(-1)  # (B, 3)
    return torch.cat([histogram * 4.0, quantiles, clipped, _detail_energy(x)], dim=1)


def _detail_energy(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1): ten times the mean absolute step between vertical neighbours; between
    horizontal ones for a photo one pixel high (an empty mean would make the statistics NaN), 0 for one
    pixel."""
    if x.shape[-2] > 1:
        steps = x[..., 1:, :] - x[..., :-1, :]
    elif x.shape[-1] > 1:
        steps = x[..., 1:] - x[..., :-1]
    else:
        return x.new_zeros(x.shape[0], 1)
    return steps.abs().mean(dim=(1, 2, 3))[:, None] * 10.0


def statistics_branch(out_features: int) -> torch.nn.Sequential:
    """An MLP (B, STATS_FEATURES) -> (B, out_features) whose last layer starts at zero: added to a network's
    features, it changes nothing until trained, so weights trained without statistics keep their output."""
    branch = torch.nn.Sequential(
        torch.nn.Linear(STATS_FEATURES, 64), torch.nn.LeakyReLU(0.2), torch.nn.Linear(64, out_features)
    )
    torch.nn.init.zeros_(branch[-1].weight)
    torch.nn.init.zeros_(branch[-1].bias)
    return branch


def with_initial_weights(
    state: dict[str, torch.Tensor], model: torch.nn.Module, *prefixes: str
) -> dict[str, torch.Tensor]:
    """`state` completed with `model`'s own (initial) values for the keys under any of `prefixes` it lacks:
    weights saved before a statistics branch existed load into a model that has one, and the branch starts
    silent."""
    return {**{k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}, **state}
