"""Tiled inference: box geometry, feathered weights, tiled == whole with enough overlap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xfix.tiling import feather_weights, pad_to_multiple, run_tiled, tile_boxes


def conv_net(receptive_field: int, out_channels: int = 3) -> nn.Module:
    """Random 3x3 convolutions with zero padding: each layer adds 1 px of receptive field per side."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    channels = 3
    for i in range(receptive_field):
        last = i == receptive_field - 1
        layers.append(nn.Conv2d(channels, out_channels if last else 8, 3, padding=1))
        if not last:
            layers.append(nn.Tanh())
        channels = 8
    return nn.Sequential(*layers).eval()


def image(h: int, w: int) -> torch.Tensor:
    return torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(1))


def test_tile_boxes_known_example_and_coverage():
    assert tile_boxes(100, 50, 64, 8) == [(0, 64, 0, 50), (36, 100, 0, 50)]
    covered = torch.zeros(97, 131)
    for top, bottom, left, right in tile_boxes(97, 131, 40, 5):
        assert bottom - top <= 40 and right - left <= 40
        covered[top:bottom, left:right] += 1
    assert covered.min() >= 1


def test_tile_larger_than_image_is_one_box():
    assert tile_boxes(30, 17, 64, 8) == [(0, 30, 0, 17)]


def test_tile_too_small_for_overlap_is_refused():
    with pytest.raises(ValueError, match="3 \\* overlap"):
        tile_boxes(100, 100, 24, 8)


def test_feather_weights_zero_margin_then_linear_ramp_on_inner_sides_only():
    weight = feather_weights((10, 30, 0, 45), 61, 45, overlap=4)  # inner top and bottom, image left and right
    assert weight.shape == (20, 45) and torch.all(weight[:, 0] == weight[:, 22])
    expected = [0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8] + [1] * 4 + [0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0]
    assert torch.allclose(weight[:, 0], torch.tensor(expected))


def test_feather_weights_of_all_tiles_cover_every_pixel():
    h, w, overlap = 61, 45, 4
    total = torch.zeros(h, w)
    for top, bottom, left, right in tile_boxes(h, w, 24, overlap):
        total[top:bottom, left:right] += feather_weights((top, bottom, left, right), h, w, overlap)
    assert total.min() > 0


@pytest.mark.parametrize("h, w", [(37, 53), (64, 64), (29, 90)])
def test_tiled_equals_whole_when_overlap_covers_receptive_field(h, w):
    net = conv_net(3)
    x = image(h, w)
    with torch.inference_mode():
        whole = net(x)
        tiled = run_tiled(net, x, tile=20, overlap=3)
    assert tiled.shape == whole.shape
    assert torch.allclose(tiled, whole, atol=1e-4)


def test_tiled_differs_without_overlap():
    """The same comparison fails when tiles do not see enough context: the test above can fail."""
    net = conv_net(3)
    x = image(37, 53)
    with torch.inference_mode():
        error = (run_tiled(net, x, tile=20, overlap=0) - net(x)).abs().max()
    assert error > 1e-3


def test_tile_larger_than_image_equals_whole_and_channels_may_change():
    net = conv_net(2, out_channels=5)
    x = image(21, 33)
    with torch.inference_mode():
        assert torch.allclose(run_tiled(net, x, tile=64, overlap=2), net(x), atol=1e-6)


def test_tiles_are_padded_to_multiple_of():
    seen = []

    def pointwise(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return 2 * t + 1

    x = image(45, 70)
    out = run_tiled(pointwise, x, tile=32, overlap=2, multiple_of=8)
    assert all(hh % 8 == 0 and ww % 8 == 0 for hh, ww in seen)
    assert torch.allclose(out, 2 * x + 1, atol=1e-6)


def test_pad_to_multiple_reflects_and_reports_size():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 3, 5)
    padded, h, w = pad_to_multiple(x, 4)
    assert (h, w) == (3, 5) and padded.shape[-2:] == (4, 8)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]


def test_rejects_batched_input():
    with pytest.raises(ValueError, match="\\(1, C, H, W\\)"):
        run_tiled(lambda t: t, torch.zeros(2, 3, 8, 8), tile=4, overlap=0)
