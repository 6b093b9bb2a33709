"""The bgrid profile: identity at initialisation, the grid's slicing against a numpy reference, learning, and
the shipped weights on synthetic badly exposed photos."""

from __future__ import annotations

import fixtures
import numpy as np
import pytest
import torch
from skimage import data

from xfix.archs import get_architecture
from xfix.archs.bgrid import BilateralGrid, build
from xfix.colour import from_working
from xfix.data.curves import tone_curve
from xfix.data.synthesis import render_exposure
from xfix.metrics import psnr
from xfix.profile import Corrector, load_profile

TINY = {"low_size": 32, "grid_depth": 4, "width": 4, "splat_layers": 2, "global_layers": 1, "global_width": 8}


@pytest.mark.parametrize("shape", [(1, 3, 17, 23), (2, 3, 64, 48)])
def test_the_untrained_network_returns_its_input_at_any_size(shape):
    x = torch.rand(*shape)
    with torch.no_grad():
        assert torch.allclose(build(TINY)(x), x, atol=1e-5)


def _corners(position: float, size: int) -> tuple[tuple[int, float], tuple[int, float]]:
    """The two grid indices either side of `position` (in cells) with their linear weights."""
    low = int(np.floor(position))
    return (low, 1 - position % 1), (min(low + 1, size - 1), position % 1)


def _reference_slice(grid: np.ndarray, image: np.ndarray, guide: float) -> np.ndarray:
    """(12, D, GH, GW) grid applied to (H, W, 3): each pixel's 3 x 4 transform interpolated trilinearly at its
    position (grid corners on the image corners) and at `guide` along the depth."""
    _, d, gh, gw = grid.shape
    h, w, _ = image.shape
    out = np.empty_like(image)
    for y in range(h):
        for x in range(w):
            coef = np.zeros(12)
            for iz, wz in _corners(guide * (d - 1), d):
                for iy, wy in _corners(y / (h - 1) * (gh - 1), gh):
                    for ix, wx in _corners(x / (w - 1) * (gw - 1), gw):
                        coef += wz * wy * wx * grid[:, iz, iy, ix]
            affine = coef.reshape(4, 3)  # row: input feature R, G, B, 1; column: output channel
            out[y, x] = image[y, x] @ affine[:3] + affine[3]
    return out


def test_slicing_applies_the_interpolated_transform_of_each_pixel(monkeypatch):
    model = BilateralGrid(**TINY)
    rng = np.random.default_rng(0)
    grid = rng.normal(0, 0.1, (12, 4, 3, 5)) + 0.5 * np.eye(4, 3).reshape(12, 1, 1, 1)
    guide = 0.37  # the guide network made constant: its last layer silent, its bias the logit of 0.37
    with torch.no_grad():
        model.guide[-1].weight.zero_()
        model.guide[-1].bias.fill_(float(np.log(guide / (1 - guide))))
    monkeypatch.setattr(model, "grid", lambda x: torch.from_numpy(grid).float()[None])
    image = rng.random((9, 11, 3)).astype(np.float32) * 0.5
    with torch.no_grad():
        got = model(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    expected = np.clip(_reference_slice(grid, image, guide), 0, 1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_recipe_learns_a_brightening():
    from xfix.train import L1Recipe

    assert get_architecture("bgrid").recipe is None  # the trainer's default loss, L1 of the result
    torch.manual_seed(0)
    model = build(TINY)
    recipe = L1Recipe()
    x = torch.rand(4, 3, 32, 32) * 0.5
    target = (x * 1.8).clamp(0, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = recipe.loss(model, x, target, 0)[0].item()
    for step in range(40):
        loss, logs = recipe.loss(model, x, target, step)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert set(logs) == {"l1"} and loss.item() < 0.3 * first


def test_default_network_is_small():
    assert 150_000 < sum(p.numel() for p in build({}).parameters()) < 400_000


@pytest.mark.parametrize("ev", [-1.5, 1.5])
def test_shipped_weights_lower_the_error_of_a_bad_exposure(ev):
    corrector = Corrector.load(load_profile("bgrid"), device="cpu")
    photo = np.asarray(data.astronaut()[::2, ::2], dtype=np.float32) / 255.0  # (256, 256, 3) display
    bad = render_exposure(photo, ev, np.random.default_rng(3), curve=tone_curve("srgb"), noise=False,
                          jpeg=False)
    out = corrector.apply(fixtures.display_frame(bad))
    corrected = np.clip(from_working(out.pixels, "srgb"), 0.0, 1.0)
    assert psnr(corrected, photo) > psnr(bad, photo) + 3.0
