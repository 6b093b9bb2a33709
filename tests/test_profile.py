"""Profiles: files, weights with sha256, the Corrector's conversions, modes, out-of-memory retry, devices."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import fixtures
import numpy as np
import pytest
import skimage.data
import torch
from safetensors.torch import save_file
from torch import nn

from xfix import tonecurve
from xfix.archs import Architecture
from xfix.colour import from_working, to_working
from xfix.devices import select_device
from xfix.errors import ProfileError, UsageError
from xfix.frame import Frame, SourceInfo
from xfix.profile import (
    Corrector,
    check_weights,
    load_profile,
    load_weights,
    profile_search_path,
    read_profile,
)

# ---------------------------------------------------------------- a tiny convolutional test architecture


class TinyConv(nn.Module):
    """Two 3x3 convolutions (receptive field 2) around an identity skip: output = input + small residual."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return x + 0.1 * torch.tanh(self.b(torch.relu(self.a(x))))


TINY = Architecture(name="tiny-conv", description="test only", build=lambda settings: TinyConv(),
                    encoding="srgb", receptive_field=2, multiple_of=4)  # fmt: skip


def tiny_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in TinyConv().state_dict().items()}


def write_profile(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    return path


def tiny_profile(folder: Path, *, sha256: str | None = None, mode: str = "whole", weights=None) -> Path:
    """tiny.toml + tiny.safetensors in `folder`; weights={} writes a profile without a weights file."""
    weights = tiny_weights() if weights is None else weights
    if weights:
        save_file(weights, str(folder / "tiny.safetensors"))
        sha256 = sha256 or hashlib.sha256((folder / "tiny.safetensors").read_bytes()).hexdigest()
    return write_profile(folder, "tiny", f"""
name = "tiny"
description = "tiny test"
architecture = "tiny-conv"
encoding = "srgb"
weights = "{'tiny.safetensors' if weights else ''}"
sha256 = "{sha256 or ''}"
[inference]
mode = "{mode}"
tile_size = 64
tile_overlap = 2
work_size = 48
""")


def frame(pixels: np.ndarray, fmt: str = "jpeg", alpha=None, input_space: str = "srgb") -> Frame:
    h, w = pixels.shape[:2]
    source = SourceInfo(Path(f"photo.{fmt}"), fmt, 8, w, h, 3 if alpha is None else 4)
    return Frame(pixels.astype(np.float32), source, input_space=input_space, alpha=alpha)


def photo_frame(ev: float = 0.0, size: int = 256) -> Frame:
    image = skimage.data.astronaut()[::512 // size, ::512 // size]
    return frame(to_working(np.ascontiguousarray(image), "srgb") * np.float32(2.0**ev))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


# ---------------------------------------------------------------- profile files


def test_classic_profile_loads_from_the_repo():
    profile = load_profile("classic")
    assert profile.path == Path(__file__).resolve().parents[1] / "profiles" / "classic.toml"
    assert (profile.architecture, profile.encoding, profile.weights) == ("classic", "srgb", None)
    assert profile.inference.mode == "guided" and profile.inference.work_size == 1024
    assert profile.settings["knee"] == 0.8


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ProfileError, match="unknown profile 'nope'.*classic"):
        load_profile("nope")


def test_search_path_puts_the_environment_first(tmp_path, monkeypatch):
    write_profile(tmp_path, "classic", load_profile("classic").path.read_text().replace("Histogram", "Mine"))
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(tmp_path))
    assert profile_search_path()[0] == tmp_path
    assert load_profile("classic").description.startswith("Mine")


KEYS = 'description = "x"\narchitecture = "classic"\n'
SRGB = KEYS + 'encoding = "srgb"\n'
WHOLE = '[inference]\nmode = "whole"\n'


@pytest.mark.parametrize(
    "body, message",
    [
        ('name = "bad"\ndescription = [unclosed', "invalid TOML"),
        ('name = "bad"\n' + KEYS + WHOLE, "missing key 'encoding'"),
        ('name = "other"\n' + SRGB + WHOLE, "does not match the file"),
        ('name = "bad"\n' + SRGB + '[inference]\nmode = "fast"', "mode 'fast' unknown"),
        ('name = "bad"\n' + SRGB + WHOLE + "tile_size = 2", "tile_size"),
        ('name = "bad"\n' + SRGB + 'weigths = "a"\n' + WHOLE, "unknown key"),
        ('name = "bad"\n' + KEYS + 'encoding = "xyz"\n' + WHOLE, "encoding 'xyz' unknown"),
        ('name = "bad"\n' + SRGB + 'weights = "w.safetensors"\n' + WHOLE, "sha256"),
        ('name = "bad"\n' + SRGB, "missing \\[inference\\]"),
    ],
)
def test_bad_profile_files_name_the_file_and_the_problem(tmp_path, body, message):
    path = write_profile(tmp_path, "bad", body)
    with pytest.raises(ProfileError, match=message) as info:
        read_profile(path)
    assert info.value.path == path and "bad.toml" in str(info.value)


def test_unknown_architecture_lists_the_registry(tmp_path, monkeypatch):
    tiny_profile(tmp_path)
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(tmp_path))
    with pytest.raises(ProfileError, match="unknown architecture 'tiny-conv'; valid: .*classic"):
        load_profile("tiny")


# ---------------------------------------------------------------- weights


def test_weights_load_after_the_sha256_check(tmp_path):
    profile = read_profile(tiny_profile(tmp_path))
    assert profile.weights == tmp_path / "tiny.safetensors"
    assert torch.equal(load_weights(profile)["a.weight"], tiny_weights()["a.weight"])
    corrector = Corrector.load(profile, device="cpu", architecture=TINY)
    assert corrector.describe()["parameters"] == sum(v.numel() for v in tiny_weights().values())


def test_sha256_mismatch_is_refused(tmp_path):
    profile = read_profile(tiny_profile(tmp_path, sha256="0" * 64))
    with pytest.raises(ProfileError, match="sha256 mismatch"):
        Corrector.load(profile, device="cpu", architecture=TINY)


def test_checked_weights_are_not_hashed_again_while_unchanged(tmp_path, monkeypatch):
    """check_weights (the default profile's check) marks the profile; loading it then skips the hash, unless
    the file changed since."""
    import xfix.profile

    hashed = []
    monkeypatch.setattr(xfix.profile, "file_sha256", lambda path: hashed.append(path) or _sha(path))
    checked = check_weights(read_profile(tiny_profile(tmp_path)))
    load_weights(checked)
    assert len(hashed) == 1
    save_file({k: v + 1 for k, v in tiny_weights().items()}, str(tmp_path / "tiny.safetensors"))
    with pytest.raises(ProfileError, match="sha256 mismatch"):
        load_weights(checked)
    (tmp_path / "tiny.safetensors").unlink()
    with pytest.raises(ProfileError, match="not found"):
        check_weights(checked)


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_weights_must_fit_the_architecture_strictly(tmp_path):
    partial = {k: v for k, v in tiny_weights().items() if k != "b.bias"}
    profile = read_profile(tiny_profile(tmp_path, weights=partial))
    with pytest.raises(ProfileError, match="weights do not fit tiny-conv"):
        Corrector.load(profile, device="cpu", architecture=TINY)


def test_a_learned_architecture_needs_weights(tmp_path):
    profile = read_profile(tiny_profile(tmp_path, weights={}))
    with pytest.raises(ProfileError, match="names no weights"):
        Corrector.load(profile, device="cpu", architecture=TINY)


def test_settings_overrides_are_checked_against_the_architecture():
    # the overrides come from the command line (--set, --fusion...): a usage error, exit code 2
    with pytest.raises(UsageError, match="unknown setting.*kne\\b"):
        Corrector.load("classic", device="cpu", settings_overrides={"kne": 0.5})
    with pytest.raises(UsageError, match="fusion of classic takes a number .*got True"):
        Corrector.load("classic", device="cpu", settings_overrides={"fusion": True})  # msec's --fusion
    with pytest.raises(UsageError, match="pyramid_scale needs 4 values, got 9"):
        Corrector.load("msec", device="cpu", settings_overrides={"pyramid_scale": [1.0] * 9})
    corrector = Corrector.load("classic", device="cpu", settings_overrides={"fusion": 0.0})
    assert corrector.settings["fusion"] == 0.0 and corrector.model.settings["fusion"] == 0.0


def test_a_global_architecture_cannot_run_tiled():
    with pytest.raises(ProfileError, match="cannot run tiled"):
        Corrector.load("classic", device="cpu", inference_overrides={"mode": "tiled"})
    with pytest.raises(UsageError, match="mode 'huge' unknown"):
        Corrector.load("classic", device="cpu", inference_overrides={"mode": "huge"})


# ---------------------------------------------------------------- applying a profile to a Frame


def test_strength_zero_returns_the_input_and_keeps_alpha_and_source():
    corrector = Corrector.load("classic", device="cpu")
    alpha = np.linspace(0, 1, 256 * 256, dtype=np.float32).reshape(256, 256)
    dark = photo_frame(-1.5)
    dark = Frame(dark.pixels, dark.source, input_space="srgb", alpha=alpha)
    same = corrector.apply(dark, strength=0.0)
    assert np.abs(same.pixels - dark.pixels).max() < 1e-5
    out = corrector.apply(dark)
    assert out.pixels.shape == dark.pixels.shape and out.pixels.dtype == np.float32
    assert out.alpha is alpha and out.source is dark.source and out.space == "linear-prophoto"
    assert out.pixels.mean() > 2 * dark.pixels.mean()


def test_apply_takes_a_frame_and_says_how_to_make_one():
    corrector = Corrector.load("classic", device="cpu")
    with pytest.raises(TypeError, match="takes an xfix.frame.Frame, got ndarray.*linearize"):
        corrector.apply(np.zeros((8, 8, 3), np.float32))


def test_strength_blends_in_the_model_encoding():
    corrector = Corrector.load("classic", device="cpu")
    dark = photo_frame(-1.5)
    enc = lambda f: np.clip(from_working(f.pixels, "srgb"), 0, 1)  # noqa: E731
    full, half = enc(corrector.apply(dark)), enc(corrector.apply(dark, strength=0.5))
    assert np.abs(half - (enc(dark) + full) / 2).max() < 1e-4
    with pytest.raises(UsageError, match="strength"):
        corrector.apply(dark, strength=1.5)


def test_classic_guided_is_close_to_whole():
    dark = photo_frame(-1.5, size=512)
    whole = Corrector.load("classic", device="cpu", inference_overrides={"mode": "whole"}).apply(dark)
    guided = Corrector.load("classic", device="cpu", inference_overrides={"work_size": 256}).apply(dark)
    enc = lambda f: np.clip(from_working(f.pixels, "srgb"), 0, 1)  # noqa: E731
    assert psnr(enc(guided), enc(whole)) > 32


def test_raw_sources_get_the_neutral_base_rendering():
    """A display-referred profile given a RAW: strength 0 gives the camera-like rendering, not raw light."""
    grey = np.full((8, 8, 3), 0.125, np.float32)  # a grey card in linear raw light
    out = Corrector.load("classic", device="cpu").apply(frame(grey, fmt="raw", input_space="linear-prophoto"),
                                                        strength=0.0)  # fmt: skip
    expected = float(tonecurve.base_rendering(np.float32(0.125)))
    assert np.allclose(out.pixels, expected, atol=1e-4)
    assert np.allclose(from_working(out.pixels, "srgb"), 0.4613, atol=0.01)


def test_tiled_equals_whole_for_a_convolutional_profile(tmp_path):
    image = photo_frame(size=128)
    profile = read_profile(tiny_profile(tmp_path))
    whole = Corrector.load(profile, device="cpu", architecture=TINY).apply(image)
    tiled = Corrector.load(profile, device="cpu", architecture=TINY,
                           inference_overrides={"mode": "tiled", "tile_size": 40}).apply(image)  # fmt: skip
    assert np.abs(whole.pixels - tiled.pixels).max() < 1e-4
    assert np.abs(whole.pixels - image.pixels).max() > 1e-3  # the model does change the image


class ReturnsNaN(nn.Module):
    def forward(self, x):
        return x * float("nan")


def test_a_model_returning_nan_fails_instead_of_writing_black(tmp_path):
    nan_model = dataclasses.replace(TINY, build=lambda settings: ReturnsNaN(), learned=False)
    corrector = Corrector.load(read_profile(tiny_profile(tmp_path, weights={})), device="cpu",
                               architecture=nan_model)
    with pytest.raises(ProfileError, match="non-finite"):
        corrector.apply(photo_frame(size=16))


@pytest.mark.parametrize("name", ["msec", "bgrid", "whitebox", "highlights", "sice"])
@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (1, 1)])
def test_shipped_profiles_correct_photos_one_pixel_high_or_wide(name, shape):
    """The statistics' detail energy once took an empty mean on a photo one pixel high: NaN, black output."""
    grey = np.full((*shape, 3), 0.4, np.float32)
    out = Corrector.load(name, device="cpu").apply(fixtures.display_frame(grey))
    display = from_working(out.pixels, "srgb")
    assert np.isfinite(display).all() and 0.05 < display.mean() < 0.95


class RunsOutOfMemory(nn.Module):
    """Identity that raises CUDA's out-of-memory error for inputs larger than `limit` pixels."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.calls = limit, []

    def forward(self, x):
        self.calls.append(tuple(x.shape[-2:]))
        if x.shape[-1] * x.shape[-2] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x


@pytest.mark.parametrize("receptive_field, limit", [(2, 40 * 40), (0, 40 * 40), (2, 10)])
def test_out_of_memory_retries_tiled_at_half_size_or_fails_clearly(tmp_path, receptive_field, limit):
    model = RunsOutOfMemory(limit)
    arch = Architecture(name="tiny-conv", description="", build=lambda s: model, learned=False,
                        receptive_field=receptive_field)  # fmt: skip
    profile = read_profile(tiny_profile(tmp_path, weights={}))
    corrector = Corrector.load(profile, device="cpu", architecture=arch)
    image = photo_frame(size=128)
    if receptive_field and limit > 32 * 32:
        out = corrector.apply(image)
        assert np.abs(out.pixels - image.pixels).max() < 1e-4
        assert model.calls[0] == (128, 128) and max(h for h, _ in model.calls[1:]) <= 32
    else:
        with pytest.raises(ProfileError, match="out of memory"):
            corrector.apply(image)


@pytest.mark.parametrize("receptive_field", [0, 2])
def test_full_mode_tiles_only_a_model_that_allows_it(tmp_path, receptive_field):
    """`--full-res`: the network sees every pixel; tiled when its receptive field is bounded, else whole."""
    model = RunsOutOfMemory(10**9)
    arch = Architecture(name="tiny-conv", description="", build=lambda s: model, learned=False,
                        receptive_field=receptive_field)  # fmt: skip
    profile = read_profile(tiny_profile(tmp_path, weights={}, mode="guided"))
    corrector = Corrector.load(profile, device="cpu", architecture=arch, inference_overrides={"mode": "full"})
    corrector.apply(photo_frame(size=128))
    if receptive_field:
        assert len(model.calls) > 1 and max(h for h, _ in model.calls) <= 64
    else:
        assert model.calls == [(128, 128)]


# ---------------------------------------------------------------- devices


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in {"cuda", "mps", "cpu"}
    with pytest.raises(UsageError, match="unknown device 'tpu'.*auto, cpu, cuda, mps"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="not available here; available: .*cpu"):
            select_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(tmp_path):
    dark = photo_frame(-1.5, size=512)
    for load in (lambda d: Corrector.load("classic", device=d),
                 lambda d: Corrector.load(read_profile(tiny_profile(tmp_path)), device=d, architecture=TINY)):
        cpu, cuda = load("cpu").apply(dark), load("cuda")
        assert cuda.describe()["device"].startswith("cuda")
        out = cuda.apply(dark)
        assert np.abs(out.pixels - cpu.pixels).max() < 2e-3
        assert np.abs(out.pixels - cpu.pixels).mean() < 1e-4
