"""leave_alone: corrections that barely move a photo's brightness fade out, large ones stay whole, and the
float and 8-bit routes fade a photo alike; brighten_limit and second_opinion weigh the fade."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from xfix import encode, linearize
from xfix.archs import Architecture
from xfix.colour import srgb_decode, srgb_encode
from xfix.errors import ProfileError, UsageError
from xfix.frame import Decoded, SourceInfo
from xfix.profile import Corrector, Profile, load_profile, read_profile
from xfix.restraint import (
    agreed_change,
    brightness_change,
    headroom_weight,
    highlight_headroom,
    restraint_weight,
)
from xfix.tonecurve import srgb_decode as srgb_decode_t
from xfix.tonecurve import srgb_encode as srgb_encode_t


def test_weight_fades_small_corrections_and_keeps_large_ones():
    assert restraint_weight(0.0, 0.25) == 0.0
    assert restraint_weight(0.125, 0.25) == pytest.approx(1 - math.exp(-1 / 16))  # half the stops: 6%
    assert restraint_weight(-0.25, 0.25) == pytest.approx(1 - math.exp(-1))  # symmetric
    assert restraint_weight(0.5, 0.25) > 0.9999 and restraint_weight(-1.0, 0.25) == 1.0
    weights = [restraint_weight(c, 0.25) for c in np.linspace(0, 1, 50)]
    assert all(b >= a for a, b in zip(weights, weights[1:]))  # no step where a shoot would split
    assert restraint_weight(0.01, 0.0) == 1.0  # 0: off
    assert restraint_weight(float("nan"), 0.25) == 1.0  # a number to write into --json, not NaN


def test_brightness_change_counts_stops_of_linear_light():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.0, 0.6, (40, 50, 3)).astype(np.float32)  # sRGB, room for a stop brighter
    brighter = srgb_encode(srgb_decode(image) * 2.0)
    assert brightness_change(image, brighter, "srgb") == pytest.approx(1.0, abs=1e-3)
    assert brightness_change(brighter, image, "srgb") == pytest.approx(-1.0, abs=1e-3)
    assert brightness_change(image, image * 0.25, "linear-srgb") == pytest.approx(-2.0, abs=1e-4)
    black = np.zeros_like(image)
    assert math.isfinite(brightness_change(black, image, "srgb"))


class Gain(nn.Module):
    """Multiplies linear light by a fixed gain (sRGB in, sRGB out): a correction of log2(gain) stops."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = gain

    def forward(self, x):
        return srgb_encode_t(srgb_decode_t(x) * self.gain).clamp(0, 1)


def gain_corrector(
    tmp_path: Path, stops: float, *, table: bool, leave_alone: float = 0.25,
    brighten_limit: float | None = None, second_opinion: Corrector | None = None,
) -> Corrector:
    """A Corrector of a `stops` gain: applied as a 3D table on the 8-bit route (table) or guided (not);
    `second_opinion`: a Corrector whose brightness change the fade also weighs."""
    model = Gain(2.0**stops)
    arch = Architecture(
        name="gain", description="test", build=lambda settings: model, learned=False,
        colour_map=(lambda m, shrink: m) if table else None,
    )  # fmt: skip
    (tmp_path / "gain.toml").write_text(
        'name = "gain"\ndescription = "test"\narchitecture = "gain"\nencoding = "srgb"\n'
        f'[inference]\nmode = "{"whole" if table else "guided"}"\nwork_size = 96\nleave_alone = {leave_alone}\n'
        + (f"brighten_limit = {brighten_limit}\n" if brighten_limit is not None else "")
    )
    profile = read_profile(tmp_path / "gain.toml")
    return Corrector(profile, arch, model, torch.device("cpu"), {}, profile.inference, second_opinion)


def photo(scale: float = 0.7) -> Decoded:
    """The astronaut at 256 x 256, its sRGB values scaled by `scale` (0.7: room to brighten)."""
    samples = (skimage.data.astronaut()[::2, ::2] * scale).astype(np.uint8)
    return Decoded(pixels=samples, source=SourceInfo(Path("p.jpg"), "jpeg", 8, 256, 256, 3))


def float_route(corrector: Corrector, image: Decoded):
    frame = corrector.apply(linearize.linearize(image))
    codes = encode.quantize(frame, bits=8, output_space="srgb", grey=False, dither_seed=None).astype(int)
    return codes, frame


@pytest.mark.parametrize("table", [True, False])
def test_a_small_correction_fades_out_and_a_large_one_stays_whole(tmp_path, table):
    image = photo()
    samples = image.pixels.astype(int)
    small, small_frame = float_route(gain_corrector(tmp_path, 0.05, table=table), image)
    assert np.abs(small - samples).max() <= 1  # left alone
    assert small_frame.strength < 0.01 and any("judged well exposed" in n for n in small_frame.notes)
    large, large_frame = float_route(gain_corrector(tmp_path, 1.0, table=table), image)
    full, _ = float_route(gain_corrector(tmp_path, 1.0, table=table, leave_alone=0.0), image)
    assert np.abs(large - full).max() <= 1 and np.abs(large - samples).mean() > 20  # a stop, whole
    assert large_frame.strength > 0.999 and not large_frame.notes


@pytest.mark.parametrize("table", [True, False])
def test_both_routes_fade_a_photo_alike(tmp_path, table):
    """At a quarter stop the weight is 0.63 and changes fastest: a different measurement would show."""
    corrector = gain_corrector(tmp_path, 0.25, table=table)
    image = photo()
    slow, frame = float_route(corrector, image)
    fast_frame = corrector.apply_display(linearize.keep_display(image, "srgb"), dither_seed=None)
    fast = fast_frame.samples.astype(int)
    assert 0.5 < frame.strength < 0.75 and fast_frame.strength == pytest.approx(frame.strength, abs=0.01)
    assert np.abs(fast - slow).max() <= 1 and np.mean(fast != slow) < 0.1
    assert np.abs(fast - image.pixels.astype(int)).mean() > 3  # part of the correction is kept


def test_strength_and_leave_alone_multiply(tmp_path):
    corrector = gain_corrector(tmp_path, 0.25, table=True)
    frame = corrector.apply(linearize.linearize(photo()), strength=0.5)
    alone = corrector.apply(linearize.linearize(photo()))
    assert frame.strength == pytest.approx(0.5 * alone.strength)


@pytest.mark.parametrize("key", ["leave_alone", "brighten_limit"])
@pytest.mark.parametrize("value", [-0.1, 2.5, True, "0.3"])
def test_bad_restraint_values_are_refused(tmp_path, key, value):
    corrector = gain_corrector(tmp_path, 1.0, table=True)
    with pytest.raises(UsageError, match=key):
        Corrector.load(
            corrector.profile,
            device="cpu",
            architecture=corrector.architecture,
            inference_overrides={key: value},
        )


def test_headroom_weight_keeps_what_fits_in_the_highlights_room():
    assert headroom_weight(2.0, 1.0, 0.0) == pytest.approx(0.5)  # half of it fits
    assert headroom_weight(2.0, 1.0, 0.5) == pytest.approx(0.75)  # the limit adds room
    assert headroom_weight(0.8, 1.0, 0.0) == 1.0  # fits whole
    assert headroom_weight(1.0, -0.2, 0.0) == 0.0  # highlights already past the target: no brightening
    assert headroom_weight(-1.5, -0.2, 0.0) == 1.0  # darkening is never limited
    assert headroom_weight(3.0, 0.0, None) == 1.0  # None: off
    assert headroom_weight(float("nan"), 0.0, 0.0) == 1.0


def test_highlight_headroom_measures_stops_to_the_target_from_the_brightest_percent():
    image = np.full((64, 64, 3), 0.1, np.float32)
    image[:, :2, 0] = 0.45  # 3% of pixels have a channel at 0.45 (linear): a stop below 0.9
    assert highlight_headroom(image, "linear-srgb") == pytest.approx(1.0, abs=1e-3)
    assert highlight_headroom(srgb_encode(image), "srgb") == pytest.approx(1.0, abs=1e-3)
    assert highlight_headroom(np.ones_like(image), "srgb") == pytest.approx(math.log2(0.9))  # at white


@pytest.mark.parametrize("table", [True, False])
def test_brighten_limit_holds_back_a_photo_whose_highlights_are_at_white(tmp_path, table):
    """A stop of gain: kept whole on a photo two stops darker than it could be, dropped on one whose
    brightest pixels are already at white, with a note; off, the full stop either way."""
    dark, bright = photo(0.5), photo(1.0)
    room = [highlight_headroom(image.pixels / 255.0, "srgb") for image in (dark, bright)]
    assert room[0] > 1.5 and room[1] < 0
    limited = gain_corrector(tmp_path, 1.0, table=table, brighten_limit=0.0)
    kept, kept_frame = float_route(limited, dark)
    assert kept_frame.strength > 0.999 and not kept_frame.notes
    held, held_frame = float_route(limited, bright)
    assert held_frame.strength < 0.01 and any("brighten_limit" in n for n in held_frame.notes)
    assert np.abs(held - bright.pixels.astype(int)).max() <= 1  # left as it was
    free, free_frame = float_route(gain_corrector(tmp_path, 1.0, table=table), bright)
    assert free_frame.strength > 0.999 and np.abs(free - bright.pixels.astype(int)).mean() > 10
    darker = gain_corrector(tmp_path, -1.0, table=table, brighten_limit=0.0)
    assert float_route(darker, bright)[1].strength > 0.999  # darkening is never limited


def test_profiles_say_how_much_they_leave_alone():
    for name in ("msec", "whitebox", "highlights"):
        profile: Profile = load_profile(name)
        assert 0 < profile.inference.leave_alone <= 0.5


def test_agreed_change_is_the_smaller_move_in_a_shared_direction():
    assert agreed_change(1.0, 0.4) == pytest.approx(0.4)
    assert agreed_change(-0.3, -1.2) == pytest.approx(-0.3)
    assert agreed_change(0.8, -0.5) == 0.0 and agreed_change(-0.8, 0.0) == 0.0  # disagree: nothing agreed
    assert agreed_change(0.6, float("nan")) == 0.6  # a broken opinion is no opinion
    assert math.isnan(agreed_change(float("nan"), 0.5))  # passed on, for restraint_weight to keep whole


@pytest.mark.parametrize("table", [True, False])
def test_a_correction_the_second_opinion_does_not_share_fades_out(tmp_path, table):
    """A stop of darkening: kept whole when the second model darkens as far, faded to what it agrees with
    when it darkens a little, dropped with a note naming it when it brightens."""
    image = photo()

    def darkening(second_stops: float):
        second = gain_corrector(tmp_path / "second", second_stops, table=False)
        return float_route(gain_corrector(tmp_path, -1.0, table=table, second_opinion=second), image)

    (tmp_path / "second").mkdir()
    agreed, agreed_frame = darkening(-1.2)
    assert agreed_frame.strength > 0.999 and not agreed_frame.notes
    assert np.abs(agreed - image.pixels.astype(int)).mean() > 10
    partly = darkening(-0.25)[1].strength
    assert partly == pytest.approx(restraint_weight(-0.25, 0.25), abs=0.03)
    held, held_frame = darkening(0.3)
    assert held_frame.strength < 0.001 and np.abs(held - image.pixels.astype(int)).max() <= 1
    assert any("gain judged +0.30" in note for note in held_frame.notes)


def test_second_opinion_is_loaded_only_while_leave_alone_is_on():
    corrector = Corrector.load("whitebox", device="cpu")
    assert corrector.describe()["second_opinion"] == "bgrid"
    assert corrector.second_opinion.profile.encoding == corrector.profile.encoding
    unfaded = Corrector.load("whitebox", device="cpu", inference_overrides={"leave_alone": 0.0})
    assert unfaded.second_opinion is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [("mine", "another profile"), ("no-such-profile", "unknown profile"),
     ("hdr-default", "reads linear-srgb"), (3, "profile name"), ("", "profile name")],
)  # fmt: skip
def test_a_bad_second_opinion_is_refused(tmp_path, name, problem):
    text = load_profile("classic").path.read_text(encoding="utf-8")
    text = text.replace('name = "classic"', 'name = "mine"')
    text = text.replace("[inference]", f"[inference]\nleave_alone = 0.25\nsecond_opinion = {name!r}")
    (tmp_path / "mine.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=problem):
        Corrector.load(load_profile(str(tmp_path / "mine.toml")), device="cpu")
