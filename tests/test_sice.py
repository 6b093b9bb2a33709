"""The sice profile: its patch SSIM loss against a reference implementation and by hand, the network's
decomposition and identity at initialisation, the fused-stack training pairs, the eval against fused
references, and the shipped weights on a synthetic badly exposed photo."""

from __future__ import annotations

import math

import fixtures
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.metrics import structural_similarity

from xfix.archs import get_architecture
from xfix.archs.sice import SICE, build, decompose, patch_ssim
from xfix.colour import WORKING_SPACE, from_working
from xfix.data.curves import draw_curve, tone_curve
from xfix.data.dataset import is_validation
from xfix.data.sice import STACK_EVS, exposure_stack, fused_reference, sice_pair
from xfix.data.synthesis import render_exposure
from xfix.evaluate import EvalConfig, Method, run_eval
from xfix.metrics import ssim
from xfix.profile import Corrector, load_profile

TINY = {"levels": 3, "luminance_width": 4, "luminance_depth": 2, "detail_width": 4, "detail_depth": 1,
        "fusion_width": 4, "fusion_depth": 1}


# ---------------------------------------------------------------- the loss


def test_patch_ssim_equals_skimage_on_sliding_windows():
    rng = np.random.default_rng(0)
    a = rng.random((40, 36, 3)).astype(np.float32)
    b = np.clip(a * 0.7 + 0.2 * rng.random((40, 36, 3)), 0, 1).astype(np.float32)
    expected = structural_similarity(a, b, win_size=7, K1=0.01, K2=math.sqrt(1e-3), data_range=1.0,
                                     use_sample_covariance=False, channel_axis=-1)
    tensor = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None]  # noqa: E731  (1, 3, H, W)
    got = patch_ssim(tensor(a), tensor(b), window=7, stride=1, c1=1e-4, c2=1e-3)
    assert got.item() == pytest.approx(expected, abs=1e-5)


def test_patch_ssim_on_8x8_patches_by_hand():
    x = torch.zeros(1, 1, 8, 16)
    x[..., :, 8:] = torch.arange(64, dtype=torch.float32).view(8, 8) / 63  # right patch: a ramp
    y = x.clone()
    y[..., :, :8] = 0.5  # left patch: flat 0 vs flat 0.5 -> only the luminance term differs
    y[..., :, 8:] = 1 - x[..., :, 8:]  # right patch: the inverted ramp, same mean and variance
    c1, c2 = 1e-4, 1e-3
    left = (2 * 0 * 0.5 + c1) / (0 + 0.25 + c1) * (c2 / c2)
    ramp = x[..., :, 8:].flatten()
    var = ramp.var(unbiased=False).item()
    right = 1.0 * (-2 * var + c2) / (2 * var + c2)  # equal means 0.5; covariance = -variance
    assert patch_ssim(x, y).item() == pytest.approx((left + right) / 2, abs=1e-6)
    assert patch_ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)


def test_recipe_loss_is_zero_for_a_perfect_output_and_learns():
    arch = get_architecture("sice")
    settings = {**arch.defaults, **TINY}
    model = build(settings)
    recipe = arch.recipe(model, settings)
    x = torch.rand(2, 3, 32, 32)
    loss, logs = recipe.loss(model, x, x, step=0)  # the untrained network returns its input
    assert loss.item() == pytest.approx(0.0, abs=1e-5) and set(logs) == {"ssim", "l1", "components"}
    target = (x * 0.6 + 0.3).clamp(0, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = recipe.loss(model, x, target, 0)[0].item()
    for step in range(30):
        loss = recipe.loss(model, x, target, step)[0]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.5 * first


# ---------------------------------------------------------------- the network


def test_decomposition_is_exact_and_the_untrained_network_is_identity():
    x = torch.rand(1, 3, 45, 61)
    smooth, detail, coarse = decompose(x, 4)
    assert torch.allclose(smooth + detail, x) and coarse.shape[-2:] == (6, 8)
    assert smooth.std() < x.std() and abs(smooth.mean() - x.mean()) < 0.02
    model = build(TINY).eval()
    assert torch.allclose(model(x), x, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 45, 61))


def test_default_network_is_small():
    model = build(get_architecture("sice").defaults)
    assert isinstance(model, SICE) and 100_000 < sum(p.numel() for p in model.parameters()) < 700_000


# ---------------------------------------------------------------- training pairs


def test_sice_pair_targets_the_fused_stack_of_the_same_scene():
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((64, 64)), np.float32) / 255.0
    inp, target = sice_pair(photo, np.random.default_rng(3), "srgb", (-2.0, 2.0))
    curve = draw_curve(np.random.default_rng(3))  # the pair's first draw is its camera curve
    assert np.allclose(target, fused_reference(photo, curve), atol=1e-6)
    assert inp.shape == target.shape == photo.shape and inp.dtype == target.dtype == np.float32
    stack = exposure_stack(photo, curve)
    assert len(stack) == len(STACK_EVS) and np.abs(stack[STACK_EVS.index(0.0)] - photo).max() < 1e-3
    assert stack[0].mean() < photo.mean() < stack[-1].mean()
    with pytest.raises(ValueError, match="srgb"):
        sice_pair(photo, np.random.default_rng(0), "linear-prophoto")


# ---------------------------------------------------------------- eval against fused references


def test_eval_scores_against_fused_references_and_bracket_fusions(tmp_path):
    names = [n for n in (f"val{i}.jpg" for i in range(1000)) if is_validation(n)][:2]
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(data.astronaut()[i * 64 : i * 64 + 48, 100:164]).save(photos / name, quality=95)
    scene = tmp_path / "brackets" / "scene"
    scene.mkdir(parents=True)
    photo = np.asarray(data.astronaut()[::8, ::8], np.float32) / 255.0
    for k, frame in enumerate(exposure_stack(photo, tone_curve("srgb"), (-1.0, 0.0, 1.0))):
        Image.fromarray(np.round(frame * 255).astype(np.uint8)).save(scene / f"f{k}.png")
    config = EvalConfig(profile="identity", data=photos, brackets=tmp_path / "brackets",
                        baselines=("identity",), fused_reference=True)
    report = run_eval(config, methods=[Method("identity", lambda image: image)])
    rows = {(r["set"], r["group"]): r for r in report.table()}
    assert {("fused", g) for g in ("under", "normal", "over", "all")} <= set(rows)
    assert rows["fused", "all"]["n"] == 2 * 5
    # the fused reference is not the photo: the identity of a normal exposure scores lower against it
    assert rows["fused", "normal"]["psnr"] < rows["synthetic", "normal"]["psnr"]
    assert 0.3 < rows["brackets", "all"]["ssim"] < 0.999 and rows["brackets", "all"]["psnr"] > 10


# ---------------------------------------------------------------- shipped weights


@pytest.mark.parametrize("ev", [-1.5, 1.5])
def test_shipped_weights_move_a_bad_exposure_towards_its_fused_reference(ev):
    """The committed models/sice.safetensors bring a synthetic under- and over-exposed photo closer (SSIM) to
    the fusion of its exposure stack than the input was."""
    corrector = Corrector.load(load_profile("sice"), device="cpu")
    photo = np.asarray(data.astronaut()[::2, ::2], dtype=np.float32) / 255.0  # (256, 256, 3) display
    curve = tone_curve("srgb")
    bad = render_exposure(photo, ev, np.random.default_rng(7), curve=curve, noise=False, jpeg=False)
    out = corrector.apply(fixtures.display_frame(bad))
    corrected = np.clip(from_working(out.pixels, "srgb"), 0.0, 1.0)
    reference = fused_reference(photo, curve)
    assert out.space == WORKING_SPACE
    assert ssim(corrected, reference) > ssim(bad, reference) + 0.02
