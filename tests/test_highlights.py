"""The highlights profile: generator structure, receptive field, seam-free tiling, noise determinism, the
seed's clipping and trivial inverse, the training pairs, the eval scores, and the shipped weights."""

from __future__ import annotations

import fixtures
import numpy as np
import pytest
import torch
from skimage import data

from xfix.archs.highlights import (
    ARCHITECTURE,
    DEPTH,
    NOISE_PERIOD,
    RECEPTIVE_FIELD,
    HighlightsRecipe,
    NoiseInjection,
    PatchCritic,
    build,
)
from xfix.colour import from_working
from xfix.data.curves import tone_curve
from xfix.data.highlights import SHARES, highlight_pair, simple_overexpose, trivial_inverse
from xfix.data.synthesis import render_exposure
from xfix.metrics import clipped_error, exposure_similarities, psnr
from xfix.tiling import run_tiled, tile_boxes


def random_model(width: int = 2, noise_seed: int = 0, noise: float = 0.1):
    """A generator with random weights, a non-zero output layer and noise scales, in eval mode."""
    torch.manual_seed(0)
    model = build({"width": width, "noise_seed": noise_seed})
    torch.nn.init.normal_(model.out.weight, std=0.2)
    for module in model.modules():
        if isinstance(module, NoiseInjection):
            torch.nn.init.constant_(module.scale, noise)
    return model.eval()


def smooth_image(h: int, w: int, seed: int = 1) -> torch.Tensor:
    """(1, 3, h, w) smooth colours with a blown (all 1) rectangle."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, h // 32 + 2, w // 32 + 2, generator=g), size=(h, w),
                                        mode="bicubic").clamp(0, 1)
    x[:, :, h // 3 : h // 2, w // 4 : w // 2] = 1.0
    return x


def test_untrained_generator_returns_its_input():
    x = torch.rand(2, 3, 64, 80)
    with torch.no_grad():
        assert torch.allclose(build({"width": 4}).eval()(x), x, atol=1e-6)


def test_input_sides_must_be_multiples_of_the_pooling():
    with pytest.raises(ValueError, match="multiples of 16"):
        build({"width": 4})(torch.rand(1, 3, 64, 70))


def test_receptive_field_bounds_the_dependence_of_an_output_pixel():
    """The gradient of one output pixel reaches at most RECEPTIVE_FIELD px from it, wherever it sits on the
    pooling grid; the bound is not loose by more than a few pooling cells."""
    model = random_model()
    size, reach = 2 * RECEPTIVE_FIELD + 64, 0
    for offset in (0, 9):
        x = torch.rand(1, 3, size, size, requires_grad=True)
        centre = RECEPTIVE_FIELD + offset
        model.forward_raw(x)[0, :, centre, centre].sum().backward()
        rows, cols = torch.nonzero(x.grad.abs().sum((0, 1)), as_tuple=True)
        reach = max(reach, centre - rows.min().item(), rows.max().item() - centre,
                    centre - cols.min().item(), cols.max().item() - centre)
    assert RECEPTIVE_FIELD - 16 < reach <= RECEPTIVE_FIELD


def test_aligned_tile_boxes_start_on_the_alignment_and_cover_the_image():
    boxes = tile_boxes(1000, 1100, 640, 128, align=128)
    assert all(top % 128 == 0 and left % 128 == 0 for top, _, left, _ in boxes)
    covered = torch.zeros(1000, 1100)
    for top, bottom, left, right in boxes:
        assert bottom - top <= 640 and right - left <= 640
        covered[top:bottom, left:right] += 1
    assert covered.min() >= 1


def test_tiled_equals_whole_on_a_megapixel_image():
    """With tiles aligned to the noise period and the overlap at the receptive field, a tiled run of a 1 MP
    image (sides not multiples of 16) equals the whole-image run, noise included: no seams."""
    model = random_model()
    x = smooth_image(1008, 1000)
    with torch.inference_mode():
        whole = model(torch.nn.functional.pad(x, (0, 8, 0, 0), mode="reflect"))[:, :, :, :1000]
        tiled = run_tiled(model, x, 768, RECEPTIVE_FIELD, 2**DEPTH, ARCHITECTURE.tile_align)  # 4 tiles
    assert ARCHITECTURE.tile_align == NOISE_PERIOD and ARCHITECTURE.receptive_field == RECEPTIVE_FIELD
    assert (tiled - whole).abs().max() < 1e-4


def test_tiles_off_the_noise_grid_show_seams():
    """The same comparison fails without the alignment: the check above can fail."""
    model = random_model()
    x = smooth_image(400, 400)
    with torch.inference_mode():
        whole = model(x)
        tiled = run_tiled(model, x, 336, 64, 2**DEPTH)  # starts at 0 and 64: half a noise period
    assert (tiled - whole).abs().max() > 1e-3


def stats_model() -> torch.nn.Module:
    """`random_model` with a statistics branch whose output layer is non-zero."""
    model = random_model()
    with_stats = build({"width": 2, "global_stats": True})
    with_stats.load_state_dict(ARCHITECTURE.adapt_weights(model.state_dict(), with_stats))
    torch.nn.init.normal_(with_stats.stats[-1].weight, std=20.0)  # a bold branch: its effect is plain
    return with_stats.eval()


def test_statistics_branch_starts_silent_so_earlier_weights_keep_their_output():
    model = random_model()
    with_stats = build({"width": 2, "global_stats": True}).eval()
    with_stats.load_state_dict(ARCHITECTURE.adapt_weights(model.state_dict(), with_stats))
    x = smooth_image(128, 160)
    with torch.inference_mode():
        assert torch.equal(with_stats(x), model(x))
        assert not torch.allclose(stats_model()(x), model(x), atol=1e-3)


def test_tiles_given_the_whole_photo_statistics_match_the_whole_run():
    """Every tile gets the statistics of the whole photo, so tiling stays seam-free; tiles that judged
    themselves alone would not match (the check can fail)."""
    model = stats_model()
    x = smooth_image(640, 640)
    x[:, :, 320:, :] *= 0.3  # the tiles differ in brightness, so their own statistics differ
    with torch.inference_mode():
        context = model.global_context(x)
        whole = model(x, context)
        assert torch.equal(whole, model(x))  # without a context the model computes the same one
        tiled = run_tiled(lambda t: model(t, context), x, 512, RECEPTIVE_FIELD, 2**DEPTH, NOISE_PERIOD)
        alone = run_tiled(model, x, 512, RECEPTIVE_FIELD, 2**DEPTH, NOISE_PERIOD)
    assert (tiled - whole).abs().max() < 1e-4
    assert (alone - whole).abs().max() > 1e-3


def test_residual_gate_starts_at_one_and_can_leave_a_photo_untouched():
    model = stats_model()
    gated = build({"width": 2, "global_stats": True, "residual_gate": True}).eval()
    gated.load_state_dict(ARCHITECTURE.adapt_weights(model.state_dict(), gated))
    x = smooth_image(128, 160)
    with torch.inference_mode():
        assert torch.equal(gated(x), model(x))  # a silent gate: earlier weights keep their output
        assert not torch.allclose(model(x), x, atol=1e-3)
        torch.nn.init.constant_(gated.gate[-1].bias, -30.0)  # a closed gate: the residual is gone
        assert torch.allclose(gated(x), x.clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match="global_stats"):
        build({"width": 2, "residual_gate": True})


def test_fixed_seed_is_deterministic_and_other_seeds_are_variants():
    x = smooth_image(128, 160)
    with torch.inference_mode():
        first, again = random_model(noise_seed=3)(x), random_model(noise_seed=3)(x)
        other = random_model(noise_seed=4)(x)
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 1e-3


def test_training_mode_draws_fresh_noise():
    model = random_model().train()
    x = smooth_image(64, 64)
    with torch.no_grad():
        assert not torch.equal(model.forward_raw(x), model.forward_raw(x))


def test_critic_sees_142_px_and_scores_patches():
    critic = PatchCritic(4)
    inp = torch.rand(1, 3, 256, 256, requires_grad=True)
    scores = critic(inp, torch.rand(1, 3, 256, 256))
    assert scores.shape == (1, 1, 14, 14)
    scores[0, 0, 7, 7].backward()
    rows = torch.nonzero(inp.grad.abs().sum((0, 1)).sum(1), as_tuple=True)[0]
    assert rows.max().item() - rows.min().item() + 1 <= 142


def test_recipe_adds_adversarial_and_perceptual_terms_after_their_step():
    model = build({"width": 4}).train()
    recipe = HighlightsRecipe(model, {"adversarial_after": 3, "critic_width": 4})
    x, t = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert set(recipe.loss(model, x, t, step=2)[1]) == {"l1"}
    loss, logs = recipe.loss(model, x, t, step=3)
    assert {"adv", "perceptual"} <= set(logs) and loss.requires_grad
    loss.backward()
    assert model.out.weight.grad is not None and all(p.grad is None for p in recipe.critic.parameters())
    assert "critic" in recipe.after_step(model, x, t, step=3)


# ---------------------------------------------------------------- the seed's simulation and training pairs


def test_simple_overexposure_is_a_clip_in_gamma_space():
    """Reference: to linear light with gamma 2.2, expose by threshold ** -2.2, clip, back to gamma space."""
    photo = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    for threshold in (0.5, 0.8):
        reference = np.clip(photo**2.2 / threshold**2.2, 0, 1) ** (1 / 2.2)
        assert np.allclose(simple_overexpose(photo, threshold), reference, atol=1e-5)
    assert simple_overexpose(np.array([[[0.25, 0.5, 0.9]]]), 0.5).tolist() == [[[0.5, 1.0, 1.0]]]


def test_trivial_inverse_undoes_the_clip_where_it_can():
    photo = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    restored = trivial_inverse(simple_overexpose(photo))
    below = photo < 0.5
    assert np.allclose(restored[below], photo[below], atol=1e-6)
    assert np.allclose(restored[~below], 0.5)  # clipped: the least value the truth can have had


def test_training_pairs_mix_the_four_kinds():
    photo = np.asarray(data.astronaut()[::8, ::8], dtype=np.float32) / 255.0  # (64, 64, 3)
    rng = np.random.default_rng(0)
    kinds = {"identity": 0, "darker": 0, "brighter": 0}
    for _ in range(200):
        inp, target = highlight_pair(photo, rng, "srgb")
        assert inp.shape == target.shape == photo.shape and inp.dtype == np.float32
        if np.array_equal(inp, target):
            kinds["identity"] += 1  # the under-exposed inputs to leave alone
        elif inp.mean() > photo.mean() + 0.03:
            kinds["brighter"] += 1
        else:
            kinds["darker"] += 1
    assert abs(kinds["identity"] / 200 - SHARES["under"]) < 0.06
    assert kinds["brighter"] / 200 > 0.55  # simple + realistic over-exposure, minus the mildest
    with pytest.raises(ValueError, match="display sRGB"):
        highlight_pair(photo, rng, "linear-prophoto")


def test_well_share_setting_reaches_the_training_pairs(tmp_path):
    from xfix.train import TrainConfig, _pair_function, _resolve

    photo = np.asarray(data.astronaut()[::8, ::8], dtype=np.float32) / 255.0
    setup = _resolve(TrainConfig(profile="highlights", data=tmp_path, steps=1, settings={"well_share": 1.0}))
    pair = _pair_function(setup)
    rng = np.random.default_rng(0)
    for _ in range(20):  # every pair a nearly well-exposed rendering of the photo, the photo its target
        inp, target = pair(photo, rng, "srgb", (-3.0, 3.0))
        assert np.array_equal(target, photo)
        assert np.abs(inp - photo).mean() < 0.1
    none_well = _pair_function(_resolve(TrainConfig(profile="highlights", data=tmp_path, steps=1,
                                                          settings={"well_share": 0.0})))
    inputs = [none_well(photo, rng, "srgb", (-3.0, 3.0))[0] for _ in range(50)]
    brighter = sum(inp.mean() > photo.mean() + 0.03 for inp in inputs)
    assert brighter > 40  # over-exposures take the well share's place


def test_architecture_trains_on_its_own_pairs():
    from xfix.data.dataset import Stage, make_batch

    photos = [np.asarray(data.astronaut()[::4, ::4])]
    inputs, targets = make_batch(photos, Stage(32, 6), np.random.default_rng(0), "srgb",
                                 pair_fn=ARCHITECTURE.pairs)
    assert inputs.shape == targets.shape == (6, 3, 32, 32)


# ---------------------------------------------------------------- eval scores


def test_similarities_and_clipped_error_known_values():
    image = np.random.default_rng(2).random((32, 32, 3)).astype(np.float32)
    assert exposure_similarities(image, image) == pytest.approx(
        {"luminance": 100.0, "contrast": 100.0, "saturation": 100.0})
    darker = exposure_similarities(image * 0.5, image)
    assert darker["luminance"] < 90 and darker["saturation"] == pytest.approx(100.0, abs=0.1)
    grey = exposure_similarities(np.repeat(image.mean(2, keepdims=True), 3, axis=2), image)
    assert grey["saturation"] < 50
    blown = np.ones((8, 8, 3), np.float32)
    target = np.full((8, 8, 3), 0.6, np.float32)
    assert clipped_error(blown, target - 0.1, target) == pytest.approx(25.5, abs=1e-3)
    assert clipped_error(target, target, target) is None  # nothing clipped


def test_eval_reports_highlight_scores_and_the_trivial_inverse(tmp_path):
    from PIL import Image

    from xfix.data.dataset import is_validation
    from xfix.evaluate import EvalConfig, report_table, run_eval

    folder = tmp_path / "photos"
    folder.mkdir()
    name = next(f"v{i}.png" for i in range(1000) if is_validation(f"v{i}.png"))
    Image.fromarray(np.asarray(data.astronaut()[::8, ::8])).save(folder / name)
    config = EvalConfig("identity", data=folder, baselines=("identity", "trivial-inverse"), highlights=True)
    rows = {(r["set"], r["method"], r["group"]): r for r in run_eval(config).table()}
    assert rows[("synthetic", "identity", "normal")]["lum_sim"] > 95
    assert rows[("synthetic", "identity", "over")]["clip_err"] > 0
    clip = rows[("clipping", "trivial-inverse", "clip 0.5")]
    assert clip["psnr"] > rows[("clipping", "identity", "clip 0.5")]["psnr"]
    assert report_table(run_eval(config)).columns[-1].header == "clipped err"


# ---------------------------------------------------------------- the shipped weights


@pytest.fixture(scope="module")
def shipped():
    from xfix.profile import Corrector, load_profile

    return Corrector.load(load_profile("highlights"), device="cpu")


def test_shipped_weights_lower_the_error_of_an_overexposed_photo(shipped):
    photo = np.asarray(data.astronaut()[::2, ::2], dtype=np.float32) / 255.0  # (256, 256, 3)
    bright = render_exposure(photo, 1.5, np.random.default_rng(7), curve=tone_curve("srgb"), noise=False,
                             jpeg=False)
    corrected = np.clip(from_working(shipped.apply(fixtures.display_frame(bright)).pixels, "srgb"), 0.0, 1.0)
    assert psnr(corrected, photo) > psnr(bright, photo) + 3.0
    assert clipped_error(bright, corrected, photo) < clipped_error(bright, bright, photo)


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_shipped_weights_leave_a_well_exposed_photo_nearly_unchanged(shipped, name):
    photo = np.asarray(getattr(data, name)()[::2, ::2], dtype=np.float32) / 255.0
    photo = photo[: photo.shape[0] // 16 * 16, : photo.shape[1] // 16 * 16]
    corrected = np.clip(from_working(shipped.apply(fixtures.display_frame(photo)).pixels, "srgb"), 0.0, 1.0)
    assert psnr(corrected, photo) > 40.0  # a tenth of a stop darker scores 35-36 dB on these photos


def test_shipped_profile_runs_tiled_like_whole():
    """Through the Corrector: tiled inference (512 px tiles on a 600 x 520 photo) equals the whole run."""
    from xfix.profile import Corrector

    photo = np.asarray(data.coffee()[:520, :600], dtype=np.float32) / 255.0
    tiled = Corrector.load("highlights", device="cpu",
                           inference_overrides={"mode": "tiled", "tile_size": 512})
    whole = Corrector.load("highlights", device="cpu", inference_overrides={"mode": "whole"})
    assert len(tile_boxes(520, 600, 512, tiled.overlap, NOISE_PERIOD)) > 1
    assert np.abs(tiled.run(photo).pixels - whole.run(photo).pixels).max() < 1e-4
