"""The msec network: structure, controls, and the shipped weights on synthetic badly exposed photos."""

from __future__ import annotations

import fixtures
import numpy as np
import pytest
import torch
from skimage import data

from xfix.archs.msec import MSECRecipe, build, stretch_histogram
from xfix.colour import WORKING_SPACE, from_working
from xfix.data.curves import tone_curve
from xfix.data.synthesis import render_exposure
from xfix.metrics import psnr
from xfix.profile import Corrector, load_profile

SMALL = {"coarse_width": 8, "fine_width": 4}


def test_untrained_network_returns_its_input():
    """Every sub-network predicts a zero residual at initialisation, so the pyramid collapses to the input."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 70, 93)
    with torch.no_grad():
        assert torch.allclose(build(SMALL)(x), x, atol=1e-5)


def test_affine_coarse_output_starts_as_identity_and_carries_its_gain_to_every_band():
    """A uniform gain predicted at the coarsest level must brighten the detail bands too, so the whole image is
    scaled, not only its low frequencies."""
    torch.manual_seed(0)
    model = build({**SMALL, "coarse_output": "affine"})
    x = torch.rand(1, 3, 64, 96) * 0.4
    with torch.no_grad():
        assert torch.allclose(model(x), x, atol=1e-5)
        model.coarse.out.bias[[0, 4, 8]] = 0.5  # matrix I + 0.5 I: a gain of 1.5 on every channel
        assert torch.allclose(model(x), 1.5 * x, atol=1e-4)
    with pytest.raises(ValueError, match="coarse_output"):
        build({**SMALL, "coarse_output": "curve"})


def test_residual_weights_start_an_affine_network_that_computes_the_same():
    from xfix.archs.msec import residual_to_affine

    torch.manual_seed(0)
    residual = build(SMALL)
    with torch.no_grad():
        residual.coarse.out.weight.normal_(0, 0.1)  # a trained-looking residual
        affine = build({**SMALL, "coarse_output": "affine"})
        affine.load_state_dict(residual_to_affine(residual.state_dict(), affine))
        x = torch.rand(1, 3, 64, 96)
        assert not torch.allclose(residual(x), x, atol=1e-3)
        assert torch.allclose(affine(x), residual(x), atol=1e-6)


def test_exposure_statistics_tell_an_under_exposed_photo_from_a_dark_scene():
    """The statistics the coarse level sees: a histogram that sums to one, percentiles in order, and the clipped
    fraction; an exposure pushed down lowers the top percentile, which is the cue a mean of features lacks."""
    from xfix.archs.statistics import HISTOGRAM_BINS, QUANTILES, STATS_FEATURES, exposure_statistics

    torch.manual_seed(0)
    x = torch.rand(2, 3, 300, 400) ** 2
    x[1] = (x[1] * 1.6).clamp(max=1.0)  # the second photo over-exposed: part of it clipped
    stats = exposure_statistics(x)
    assert stats.shape == (2, STATS_FEATURES)
    assert torch.allclose(stats[:, :HISTOGRAM_BINS].sum(1) / 4.0, torch.ones(2), atol=1e-5)
    q = len(QUANTILES)
    quantiles = stats[:, HISTOGRAM_BINS : HISTOGRAM_BINS + 3 * q].reshape(2, q, 3)
    assert (quantiles.diff(dim=1) >= 0).all()
    clipped = stats[:, HISTOGRAM_BINS + 3 * q : HISTOGRAM_BINS + 3 * q + 3]
    assert clipped[0].max() < 0.02 and clipped[1].min() > 0.2  # 1 - sqrt(0.98 / 1.6) = 0.22
    darker = exposure_statistics(x[:1] * 0.5)
    top = HISTOGRAM_BINS + 3 * (q - 1)  # red's 99.9th percentile
    assert darker[0, top] < stats[0, top] * 0.6


def test_statistics_branch_starts_silent_so_earlier_weights_keep_their_output():
    from xfix.archs.msec import adapt_weights

    torch.manual_seed(0)
    plain = build({**SMALL, "coarse_output": "affine"})
    with torch.no_grad():
        plain.coarse.out.weight.normal_(0, 0.1)
        with_stats = build({**SMALL, "coarse_output": "affine", "global_stats": True})
        with_stats.load_state_dict(adapt_weights(plain.state_dict(), with_stats))
        x = torch.rand(1, 3, 64, 96)
        assert torch.allclose(with_stats(x), plain(x), atol=1e-6)
        with_stats.coarse.stats[-1].bias.fill_(5.0)  # once trained, the statistics change the correction
        assert not torch.allclose(with_stats(x), plain(x), atol=1e-3)


def test_coarse_only_training_trains_the_coarse_level_alone():
    model = build({**SMALL, "coarse_output": "affine", "global_stats": True})
    recipe = MSECRecipe(model, {"coarse_only": True, "adversarial_after": 0, "adversarial_weight": 0.01})
    with torch.no_grad():
        model.coarse.out.weight.normal_(0, 0.1)  # past initialisation, so gradients reach the branch
    x, t = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    loss, logs = recipe.loss(model, x, t, step=10)
    assert set(logs) == {"coarse"}  # no adversarial term and no full-resolution loss
    loss.backward()
    assert model.coarse.stats[-1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.refiners.parameters())
    with torch.no_grad():
        assert torch.allclose(model.forward_coarse(x), model.forward_levels(x)[0])


def test_refiners_only_training_keeps_the_coarse_level():
    model = build({**SMALL, "coarse_output": "affine", "global_stats": True})
    recipe = MSECRecipe(model, {"refiners_only": True})
    x, t = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    loss, _ = recipe.loss(model, x, t, step=10)
    loss.backward()
    assert all(p.grad is None for p in model.coarse.parameters())
    assert sum(p.grad.abs().sum() for p in model.refiners.parameters()) > 0
    with pytest.raises(ValueError, match="exclude"):
        MSECRecipe(model, {"refiners_only": True, "coarse_only": True})


def test_levels_come_coarsest_first_at_pyramid_sizes():
    levels = build(SMALL).forward_levels(torch.rand(1, 3, 64, 96))
    assert [tuple(level.shape[-2:]) for level in levels] == [(8, 12), (16, 24), (32, 48), (64, 96)]


def test_pyramid_scale_changes_detail_and_needs_one_value_per_level():
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        sharper = build({**SMALL, "pyramid_scale": [2.0, 1.0, 1.0, 1.0]})(x * 0.5 + 0.25)
    assert not torch.allclose(sharper, x * 0.5 + 0.25, atol=1e-3)
    with pytest.raises(ValueError, match="4 values"):
        build({**SMALL, "pyramid_scale": [1.0, 1.0]})


def test_histogram_stretch_reaches_black_and_white_with_capped_gain():
    y = torch.linspace(0.08, 0.97, 1000).reshape(1, 1, 10, 100).expand(1, 3, 10, 100)
    stretched = stretch_histogram(y)
    assert stretched.min() < 0.01 and stretched.max() > 0.99
    narrow = torch.linspace(0.3, 0.5, 1000).reshape(1, 1, 10, 100).expand(1, 3, 10, 100)
    spread = stretch_histogram(narrow)
    assert spread.max() - spread.min() == pytest.approx(0.2 * 1.25, abs=0.01)  # gain capped at 1.25


def test_recipe_adds_the_adversarial_term_only_after_its_step():
    model = build(SMALL)
    recipe = MSECRecipe(model, {"adversarial_after": 5, "adversarial_weight": 0.01})
    x, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert "adv" not in recipe.loss(model, x, t, step=4)[1]
    loss, logs = recipe.loss(model, x, t, step=5)
    assert "adv" in logs and loss.requires_grad
    assert "critic" in recipe.after_step(model, x, t, step=5)


@pytest.mark.parametrize("ev", [-1.5, 1.5])
def test_shipped_weights_lower_the_error_of_badly_exposed_photos(ev):
    """The committed models/msec.safetensors must bring a synthetic under- and over-exposed photo closer to
    the original than the input was."""
    corrector = Corrector.load(load_profile("msec"), device="cpu")
    photo = np.asarray(data.astronaut()[::2, ::2], dtype=np.float32) / 255.0  # (256, 256, 3) display
    rng = np.random.default_rng(7)
    bad = render_exposure(photo, ev, rng, curve=tone_curve("srgb"), noise=False, jpeg=False)
    out = corrector.apply(fixtures.display_frame(bad))
    corrected = np.clip(from_working(out.pixels, "srgb"), 0.0, 1.0)
    assert out.space == WORKING_SPACE
    assert psnr(corrected, photo) > psnr(bad, photo) + 3.0
