"""The classic profile's model and the shared tone curves, on real photos (scikit-image's sample photos)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from xfix import tonecurve
from xfix.archs import get_architecture
from xfix.archs.classic import DEFAULTS, build, estimate_ev
from xfix.colour import srgb_decode, srgb_encode
from xfix.fusion import mertens_fusion

# skimage's `rocket` is left out on purpose: a dark night scene whose +1.5 EV version clips only 3 % of its
# pixels, which a histogram cannot tell from a normal exposure (classic leaves it unchanged).
PHOTOS = ("astronaut", "coffee", "chelsea")


def photo(name: str) -> np.ndarray:
    """A well-exposed sample photo, halved (area average) for speed: sRGB float32 (H, W, 3) in [0, 1]."""
    image = getattr(skimage.data, name)().astype(np.float32) / 255
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


def exposed(target: np.ndarray, ev: float) -> np.ndarray:
    """The same scene `ev` stops brighter: scale linear light, clip, re-encode, quantize to 8 bit."""
    linear = np.clip(srgb_decode(target) * 2.0**ev, 0, 1)
    return np.round(srgb_encode(linear) * 255).astype(np.float32) / 255


def run(x: np.ndarray, **settings) -> np.ndarray:
    model = build(settings)
    with torch.inference_mode():
        y = model(torch.from_numpy(x).permute(2, 0, 1)[None])
    return y[0].permute(1, 2, 0).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 10 * np.log10(1 / mse) if mse > 0 else float("inf")


@pytest.mark.parametrize("name", PHOTOS)
def test_under_and_over_exposed_photos_get_closer_to_the_original(name):
    target = photo(name)
    for ev in (-1.5, 1.5):
        degraded = exposed(target, ev)
        before, after = psnr(degraded, target), psnr(run(degraded), target)
        assert after > before + 3, f"{name} at {ev:+} EV: {before:.1f} dB -> {after:.1f} dB"


@pytest.mark.parametrize("name", PHOTOS)
def test_well_exposed_photo_passes_through(name):
    target = photo(name)
    assert psnr(run(target), target) > 30


def test_exposure_estimate_has_the_right_sign_and_a_dead_zone():
    target = photo("coffee")
    linear = lambda x: torch.from_numpy(srgb_decode(x)).permute(2, 0, 1)  # noqa: E731
    assert estimate_ev(linear(exposed(target, -1.5)), DEFAULTS) > 0.8
    assert estimate_ev(linear(exposed(target, 1.5)), DEFAULTS) < -0.8
    assert estimate_ev(linear(target), DEFAULTS) == 0.0
    assert estimate_ev(linear(exposed(target, -4.0)), DEFAULTS) <= DEFAULTS["max_up_ev"]


def test_dark_photo_is_brightened_without_blowing_highlights():
    """Highlight protection: brightening never pushes the 99th percentile past white."""
    dark = exposed(photo("astronaut"), -2.5)
    out = run(dark)
    assert out.mean() > dark.mean() + 0.1
    assert np.percentile(out.max(axis=2), 99) < 0.995


def test_fusion_of_identical_images_is_that_image_and_detail_levels_keep_the_base():
    rng = torch.Generator().manual_seed(0)
    image = torch.rand((1, 3, 40, 56), generator=rng)
    assert torch.allclose(mertens_fusion(image.expand(3, -1, -1, -1), 4), image, atol=1e-5)
    stack = torch.rand((3, 3, 40, 56), generator=rng)
    assert torch.allclose(mertens_fusion(stack, 4, detail_levels=0, base=1), stack[1:2], atol=1e-5)
    assert not torch.allclose(mertens_fusion(stack, 4), stack[1:2], atol=1e-2)


def test_fusion_setting_changes_the_result_and_zero_disables_it():
    under = exposed(photo("chelsea"), -1.5)
    plain, fused = run(under, fusion=0.0), run(under, fusion=1.0, fusion_detail_levels=0)
    assert np.abs(plain - fused).mean() > 1e-3


def test_model_has_no_parameters_and_checks_its_input_shape():
    arch = get_architecture("classic")
    model = arch.build(DEFAULTS)
    assert arch.encoding == "srgb" and not arch.learned and sum(1 for _ in model.parameters()) == 0
    with pytest.raises(ValueError, match="\\(B, 3, H, W\\)"):
        model(torch.zeros(3, 8, 8))


def test_batch_images_are_corrected_independently():
    a, b = exposed(photo("coffee"), -1.5), photo("coffee")
    both = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        out = build({})(both)
    assert torch.allclose(out[1], both[1]) and not torch.allclose(out[0], both[0], atol=0.05)


# ---------------------------------------------------------------- tone curves (xfix.tonecurve)


def test_filmic_known_values_and_inverse():
    x = np.array([0.0, 0.18, 1.0, 3.0, 5.0], np.float32)
    y = tonecurve.filmic(x, knee=0.6, white=3.0)
    assert np.allclose(y, [0.0, 0.18, 0.8660, 1.0, 1.0], atol=1e-4)
    assert np.allclose(tonecurve.filmic_inverse(y[:3], knee=0.6, white=3.0), x[:3], atol=1e-4)
    assert np.all(np.diff(tonecurve.filmic(np.linspace(0, 4, 1000, dtype=np.float32))) >= 0)


def test_tone_curves_run_on_torch_and_numpy_alike():
    x = np.linspace(-0.1, 2.0, 101, dtype=np.float32)
    for fn in (tonecurve.base_rendering, tonecurve.srgb_encode, tonecurve.filmic):
        assert np.allclose(fn(torch.from_numpy(x)).numpy(), fn(x), atol=1e-6)
    assert np.allclose(tonecurve.srgb_encode(x), srgb_encode(x), atol=1e-6)
    assert np.allclose(tonecurve.srgb_decode(x), srgb_decode(x), atol=1e-6)


def test_base_rendering_known_values():
    y = tonecurve.base_rendering(np.array([0.0, 0.125, 1.0, 2.0], np.float32))
    assert np.allclose(y, [0.0, 0.17678, 1.0, 1.0], atol=1e-4)
    assert abs(float(tonecurve.srgb_encode(y[1:2])[0]) - 0.46) < 0.01  # mid-grey card -> sRGB 0.46


def test_filmic_rejects_bad_parameters():
    with pytest.raises(ValueError, match="knee"):
        tonecurve.filmic(np.zeros(3, np.float32), knee=1.2, white=3.0)
