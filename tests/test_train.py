"""The training loop on a tiny model and a handful of tiny photos: the loss falls, checkpoints resume exactly,
the export and the profile file's sha256 are right. No real training happens here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.checkpoint import canonical_safetensors, update_profile_sha256
from xfix.data.dataset import is_validation
from xfix.errors import ProfileError, UsageError
from xfix.train import TrainConfig, run_training

REPO = Path(__file__).resolve().parents[1]


class Tiny(nn.Module):
    """Starts as the identity; learns a global exposure gain and a local 3x3 correction."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.local = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1)
        )
        nn.init.zeros_(self.local[2].weight)
        nn.init.zeros_(self.local[2].bias)
        self.gain = nn.Linear(1, 1)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.gain.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W)
        level = self.gain(x.mean(dim=(1, 2, 3))[:, None])[:, :, None, None]  # (B, 1, 1, 1)
        return x * torch.exp(level) + self.local(x)


class TinyRecipe:
    """L1 plus a side module with its own optimiser, as an adversarial recipe has."""

    def __init__(self, model: nn.Module, settings):
        self.critic = nn.Linear(3, 1)
        self.critic_optimiser = torch.optim.SGD(self.critic.parameters(), lr=0.01, momentum=0.9)

    def loss(self, model, inp, target, step):
        loss = F.l1_loss(model(inp), target)
        return loss, {"l1": float(loss.detach())}

    def after_step(self, model, inp, target, step):
        score = self.critic(target.mean(dim=(2, 3))).pow(2).mean()
        self.critic_optimiser.zero_grad()
        score.backward()
        self.critic_optimiser.step()
        return {"critic": float(score.detach())}

    def extra_modules(self):
        return {"critic": self.critic}

    def extra_optimisers(self):
        return {"critic": self.critic_optimiser}


TINY = Architecture(name="tiny", description="test network", build=lambda settings: Tiny(), recipe=TinyRecipe)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six 64x48 JPEGs of scikit-image's sample photos (public domain), two in the validation split."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.astronaut()[::-1],
               data.coffee()]
    val = [n for n in (f"v{i}.jpg" for i in range(500)) if is_validation(n)][:2]
    train = [n for n in (f"t{i}.jpg" for i in range(500)) if not is_validation(n)][:4]
    for name, pixels in zip(train + val, sources, strict=True):
        Image.fromarray(pixels).resize((64, 48)).save(folder / name, quality=95)
    return folder


def _config(photos: Path, tmp: Path, **kw) -> TrainConfig:
    base = dict(profile="tiny", data=photos, steps=30, architecture=TINY, out=tmp / "models",
                checkpoints=tmp / "ck", patches=(32, 48), batch_size=8, workers=0, lr=0.02, warmup_steps=3,
                log_every=5, sample_every=10, eval_limit=0, device="cpu")
    return TrainConfig(**{**base, **kw})


def _losses(csv_path: Path) -> list[float]:
    import csv

    with open(csv_path, newline="") as handle:
        return [float(row["l1"]) for row in csv.DictReader(handle)]


def test_loss_falls_and_exports_ema_weights(photos, tmp_path):
    from safetensors.torch import load_file

    result = run_training(_config(photos, tmp_path, eval_limit=2, eval_max_side=48))
    losses = _losses(result.log_path)
    assert result.steps == 30 and len(losses) == 6
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])

    weights = load_file(str(result.weights))
    assert set(weights) == set(Tiny().state_dict())
    assert result.sha256 and len(result.sha256) == 64
    model = Tiny()
    model.load_state_dict(weights)
    assert float(model.gain.bias.detach().abs()) > 0  # trained, not the identity init

    card = result.model_card.read_text()
    assert "parameters" in card and f"{sum(p.numel() for p in Tiny().parameters()):,}" in card
    assert "xfix train tiny --data" in card and "Seed 0" in card and result.sha256 in card
    assert "4 training and 2 validation photos" in card
    assert "| synthetic | identity | under |" in card and "| synthetic | tiny | all |" in card
    assert sorted(p.name for p in (result.checkpoint_dir / "samples").iterdir())[-1] == "step_0000030.png"


def test_resume_after_interrupt_matches_an_uninterrupted_run(photos, tmp_path):
    from safetensors.torch import load_file

    straight = run_training(_config(photos, tmp_path / "a", steps=16))

    def interrupt(row):
        if row["step"] == 10:
            raise KeyboardInterrupt

    config = _config(photos, tmp_path / "b", steps=16)
    with pytest.raises(KeyboardInterrupt):
        run_training(config, on_progress=interrupt)
    meta = json.loads((config.checkpoints / "checkpoint.json").read_text())
    assert meta["step"] == 10 and set(meta["optimisers"]) == {"main", "critic"}
    tensors = load_file(str(config.checkpoints / "checkpoint.safetensors"))
    assert any(k.startswith("extra/critic/") for k in tensors)
    assert any(k.startswith("optim/critic/") for k in tensors)

    resumed = run_training(replace(config, resume=True))
    assert resumed.steps == 16
    a, b = load_file(str(straight.weights)), load_file(str(resumed.weights))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert [int(float(s)) for s in _csv_column(resumed.log_path, "step")] == [5, 10, 15, 16]


def _csv_column(path: Path, column: str) -> list[str]:
    import csv

    with open(path, newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def test_resume_needs_a_checkpoint_and_config_checks(photos, tmp_path):
    with pytest.raises(UsageError, match="no checkpoint"):
        run_training(_config(photos, tmp_path, resume=True))
    with pytest.raises(UsageError, match="exactly one"):
        _config(photos, tmp_path, minutes=1.0)
    with pytest.raises(UsageError, match="exactly one"):
        _config(photos, tmp_path, steps=None)
    with pytest.raises(UsageError, match="patch fraction"):
        _config(photos, tmp_path, patch_fractions=(1.0,))
    with pytest.raises(UsageError, match="whole-frames"):
        _config(photos, tmp_path, whole_frames=1.5)
    assert TrainConfig(profile="msec", data=photos, steps=1).checkpoints == Path("checkpoints/msec")


def test_minutes_budget_stops(photos, tmp_path):
    result = run_training(_config(photos, tmp_path, steps=None, minutes=0.02, export=False))
    assert result.steps > 0 and 1.0 <= result.elapsed_s < 10 and result.weights is None


@dataclass
class _FakeProfile:
    path: Path


def test_exported_weights_are_the_same_bytes_every_time(tmp_path):
    """safetensors writes its metadata in hash-map order: without sorting, one set of weights got a new
    sha256 at every export, so a reproduced training run could not be checked against the committed file."""
    from safetensors import safe_open
    from safetensors.torch import save

    tensors = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(5)}
    metadata = {key: f"value {key}" for key in ("architecture", "profile", "steps", "seed", "settings")}
    assert len({save(tensors, metadata=metadata) for _ in range(8)}) > 1  # the problem is real
    exports = {canonical_safetensors(save(tensors, metadata=metadata)) for _ in range(8)}
    assert len(exports) == 1
    path = tmp_path / "w.safetensors"
    path.write_bytes(exports.pop())
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata() == metadata
        assert all(torch.equal(handle.get_tensor(k), v) for k, v in tensors.items())


def test_update_profile_sha256_changes_only_its_lines(tmp_path):
    weights = tmp_path / "models" / "p.safetensors"
    path = tmp_path / "profiles" / "p.toml"
    path.parent.mkdir()
    text = 'name = "p"\n# a comment\nweights = "../models/p.safetensors"\nsha256 = "old"\n[settings]\n'
    path.write_text(text)
    assert update_profile_sha256(_FakeProfile(path), weights, "ab" * 32) == []
    assert path.read_text() == text.replace('sha256 = "old"', f'sha256 = "{"ab" * 32}"')

    path.write_text('name = "p"\nweights = ""  # filled by xfix train\n[settings]\n')
    assert update_profile_sha256(_FakeProfile(path), weights, "cd" * 32) == []
    expected = 'name = "p"\nweights = "../models/p.safetensors"  # filled by xfix train\n'
    expected += f'sha256 = "{"cd" * 32}"\n'
    assert path.read_text() == expected + "[settings]\n"

    other = 'name = "p"\nweights = "other.safetensors"\nsha256 = "ef"\n'
    path.write_text(other)
    warnings = update_profile_sha256(_FakeProfile(path), weights, "cd" * 32)
    assert path.read_text() == other and "other.safetensors" in warnings[0]


def _profile_toml(folder: Path, name: str, architecture: str, settings: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\ndescription = "test"\narchitecture = "{architecture}"\n'
                    'encoding = "srgb"\nweights = ""\nsha256 = ""\n\n[inference]\nmode = "whole"\n\n'
                    f"[settings]\n{settings}")
    return path


def test_profile_file_gets_weights_and_loads_through_corrector(photos, tmp_path, monkeypatch):
    """A profile file on $XFIX_PROFILE_PATH, trained with the tiny architecture in place of the registry's:
    the file then names the export and its sha256, and Corrector.load checks and loads it."""
    from xfix.frame import Frame, SourceInfo
    from xfix.profile import Corrector, load_profile, profile_files, read_profile

    path = _profile_toml(tmp_path / "profiles", "tinyp", "tiny")
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(path.parent))
    assert "tinyp" in profile_files()
    result = run_training(_config(photos, tmp_path, profile="tinyp", steps=6, eval_limit=1, eval_max_side=48))
    profile = read_profile(path)
    assert profile.sha256 == result.sha256 and profile.weights == result.weights.resolve()
    assert {r["method"] for r in result.eval.table()} == {"tinyp", "identity", "classic"}

    corrector = Corrector.load(profile, device="cpu", architecture=TINY)
    pixels = np.full((24, 32, 3), 0.05, np.float32)
    frame = Frame(pixels=pixels, source=SourceInfo(Path("x.png"), "png", 8, 32, 24, 3), input_space="srgb")
    out = corrector.apply(frame).pixels
    assert out.shape == pixels.shape and not np.allclose(out, pixels)  # the trained gain changes exposure
    with pytest.raises(ProfileError, match="tiny"):
        load_profile("tinyp")  # by name alone the registry does not know the test architecture


def test_card_scores_the_exported_weights_when_the_profile_names_others(photos, tmp_path, monkeypatch):
    """A run exported away from the weights its profile names (the profile is left alone) is still the one
    its model card scores."""
    from xfix.evaluate import EvalConfig, corrector_method, run_eval
    from xfix.profile import read_profile

    path = _profile_toml(tmp_path / "profiles", "tinyo", "tiny")
    path.write_text(path.read_text().replace('weights = ""\nsha256 = ""',
                                             f'weights = "kept.safetensors"\nsha256 = "{"0" * 64}"'))
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(path.parent))
    result = run_training(_config(photos, tmp_path, profile="tinyo", steps=6, eval_limit=1, eval_max_side=48))
    assert any("left unchanged" in w for w in result.warnings) and result.eval is not None
    exported = replace(read_profile(path), weights=result.weights.resolve(), sha256=result.sha256)
    direct = run_eval(EvalConfig(profile="tinyo", data=photos, device="cpu", limit=1, max_side=48, seed=0),
                      methods=[corrector_method(exported, "cpu", architecture=TINY)])
    card_rows = {(r["group"], r["psnr"]) for r in result.eval.table() if r["method"] == "tinyo"}
    assert card_rows == {(r["group"], r["psnr"]) for r in direct.table() if r["method"] == "tinyo"}


def test_trained_msec_profile_loads_by_name(photos, tmp_path, monkeypatch):
    """The shipped way: a profile naming a registered architecture, trained and loaded by name only."""
    from xfix.archs import architecture_names
    from xfix.profile import Corrector, load_profile

    if "msec" not in architecture_names():
        pytest.skip("msec is not in the architecture registry yet")
    settings = "levels = 2\ncoarse_width = 4\nfine_width = 4\ncoarse_depth = 1\nfine_depth = 1\n"
    settings += "pyramid_scale = [1.0, 1.0]\n"
    _profile_toml(tmp_path / "profiles", "tinymsec", "msec", settings)
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(tmp_path / "profiles"))
    config = _config(photos, tmp_path, profile="tinymsec", architecture=None, steps=3, patches=(32,),
                     batch_size=2)
    result = run_training(config)
    corrector = Corrector.load(load_profile("tinymsec"), device="cpu")
    assert corrector.profile.sha256 == result.sha256


@pytest.mark.parametrize("profile", ["whitebox", "msec"])
def test_exposure_settings_reach_the_training_pairs(tmp_path, profile):
    from skimage import data

    from xfix.train import TrainConfig, _pair_function, _resolve

    photo = np.asarray(data.astronaut()[::8, ::8], dtype=np.float32) / 255.0

    def exposure_errors(share: float, encoding: str, gap: float = 0.0) -> np.ndarray:
        """|log2| brightness of 12 inputs against their targets, with `share` of pairs nearly well exposed
        and the others at least `gap` stops off."""
        settings = {"well_share": share, "min_misexposure": gap}
        config = TrainConfig(profile=profile, data=tmp_path, steps=1, settings=settings)
        pair, rng = _pair_function(_resolve(config)), np.random.default_rng(0)
        pairs = [pair(photo, rng, encoding, (-3.0, 3.0)) for _ in range(12)]
        return np.array([abs(np.log2((i.mean() + 1e-3) / (t.mean() + 1e-3))) for i, t in pairs])

    for encoding in ("srgb", "linear-prophoto"):
        assert np.median(exposure_errors(1.0, encoding)) < 0.3 < np.median(exposure_errors(0.0, encoding))
    # every pair at least 2 stops off (less in display brightness: the tone curve and clipping compress it)
    assert exposure_errors(0.0, "srgb", gap=2.0).min() > 0.45 > exposure_errors(0.0, "srgb").min()


def _train_cli(*args):
    from typer.testing import CliRunner

    from xfix.cli import app

    return CliRunner().invoke(app, ["train", *[str(a) for a in args]])


STOP_MID_TRAINING = """
import os, signal, sys
from xfix import train
real_step, stop = train.Trainer.train_step, getattr(signal, sys.argv[1])

def stop_after_the_third_step(self, inp, target):
    logs = real_step(self, inp, target)
    if self.step == 3:
        os.kill(os.getpid(), stop)  # as cron, systemd or `timeout` would
    return logs

train.Trainer.train_step = stop_after_the_third_step
from xfix.cli import main
sys.argv = ["xfix", *sys.argv[2:]]
main()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_saves_a_checkpoint_as_ctrl_c_does(photos, tmp_path, name):
    """A real signal in a child process, sent from inside the third training step (not after a guessed
    delay): training stops as for Ctrl-C, with a checkpoint of step 3, and exit code 128 + the signal's
    number."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    checkpoints = tmp_path / "ck"
    args = ["train", "bgrid", "--data", str(photos), "--steps", "10", "--out", str(tmp_path / "out"),
            "--checkpoints", str(checkpoints), "--device", "cpu", "--workers", "0", "--patches", "32",
            "--batch-size", "2", "--eval-limit", "0"]
    done = subprocess.run([sys.executable, "-c", STOP_MID_TRAINING, name, *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 128 + getattr(signal, name), done.stderr
    assert f"stopped by {name}" in done.stderr and "rerun with --resume" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((checkpoints / "checkpoint.json").read_text())["step"] == 3
    assert not [p for p in checkpoints.iterdir() if ".xfix-tmp-" in p.name]
    assert not (tmp_path / "out").exists()  # stopped: nothing exported


def test_unknown_profile_and_empty_data_folder_are_usage_errors(photos, tmp_path):
    unknown = _train_cli("no-such-profile", "--data", photos, "--steps", "1", "--out", tmp_path / "out",
                         "--checkpoints", tmp_path / "ck")
    assert unknown.exit_code == 2 and "unknown profile 'no-such-profile'" in unknown.stderr
    (tmp_path / "empty").mkdir()
    empty = _train_cli("bgrid", "--data", tmp_path / "empty", "--steps", "1", "--out", tmp_path / "out",
                       "--checkpoints", tmp_path / "ck")
    assert empty.exit_code == 2 and "no photos" in empty.stderr and not (tmp_path / "ck").exists()


def test_corrupt_photos_are_skipped_with_a_warning(photos, tmp_path):
    """A photo that does not decode, in the training split or in the validation split the sample grids read,
    is left out and named; a folder of nothing but such photos is a usage error."""
    import shutil

    import fixtures

    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    train_name = next(n for n in (f"bad{i}.jpg" for i in range(500)) if not is_validation(n))
    val_name = next(n for n in (f"bad{i}.jpg" for i in range(500)) if is_validation(n))
    fixtures.make_truncated(next(folder.glob("t*.jpg")), folder / train_name)
    fixtures.make_text_as_jpg(folder / val_name)
    result = run_training(_config(folder, tmp_path, steps=2, export=False))
    assert result.steps == 2
    assert {name for name in (train_name, val_name) if any(name in w for w in result.warnings)} == {
        train_name, val_name}

    broken = tmp_path / "broken"
    broken.mkdir()
    fixtures.make_text_as_jpg(broken / train_name)
    with pytest.raises(UsageError, match="no training photo decodes"):
        run_training(_config(broken, tmp_path, steps=2, export=False, checkpoints=tmp_path / "ck2"))


def test_the_cli_prints_each_warning_once(photos, tmp_path, monkeypatch):
    """A photo left out, and on --resume another data folder, are warned about once, among the run's warnings
    at the end (they were also logged as they happened, so printed twice)."""
    import shutil

    import fixtures

    profile = _profile_toml(tmp_path / "profiles", "bgridw", "bgrid")
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(profile.parent))
    folder = shutil.copytree(photos, tmp_path / "photos")
    bad = next(n for n in (f"bad{i}.jpg" for i in range(500)) if not is_validation(n))
    fixtures.make_text_as_jpg(folder / bad)
    common = ["--out", tmp_path / "out", "--checkpoints", tmp_path / "ck", "--device", "cpu",
              "--workers", "0", "--patches", "32", "--batch-size", "2", "--eval-limit", "0"]
    unwrapped = lambda text: "".join(text.split())  # noqa: E731  (the console folds long paths anywhere)
    first = _train_cli("bgridw", "--data", folder, "--steps", "1", *common)
    assert first.exit_code == 0, first.stderr
    assert unwrapped(first.stderr).count(bad) == 1, first.stderr
    moved = shutil.copytree(folder, tmp_path / "moved")
    again = _train_cli("bgridw", "--data", moved, "--steps", "2", "--resume", *common)
    assert again.exit_code == 0, again.stderr
    assert unwrapped(again.stderr).count("nowreads") == 1 and unwrapped(again.stderr).count(bad) == 1


def test_readable_photos_are_loaded_until_the_limit_and_no_further(photos, tmp_path, monkeypatch):
    """What the sample grids use so as not to decode every validation photo: the first `limit` photos that
    decode, the others passed over with their errors, and nothing read after them."""
    import fixtures

    from xfix.data import dataset

    paths = sorted(photos.iterdir())
    bad = fixtures.make_text_as_jpg(tmp_path / "notes.jpg")
    read, real = [], dataset.load_photo

    def recorded(path, max_side=None):
        read.append(path)
        return real(path, max_side)

    monkeypatch.setattr(dataset, "load_photo", recorded)
    loaded, kept, skipped = dataset.load_readable_photos([bad, *paths], max_side=16, limit=2)
    assert kept == paths[:2] and [photo.shape[:2] for photo in loaded] == [(12, 16)] * 2
    assert [error.path for error in skipped] == [bad] and "text" in str(skipped[0])
    assert sorted(read) == sorted([bad, *paths[:2]])


def test_hdr_profiles_point_to_their_own_trainer(photos, tmp_path):
    result = _train_cli("hdr-default", "--data", photos, "--steps", "1", "--out", tmp_path / "out",
                        "--checkpoints", tmp_path / "ck")
    assert result.exit_code == 2 and "python -m xfix.hdr_train hdr-default" in result.stderr
    assert not (tmp_path / "ck").exists() and not (tmp_path / "out").exists()


def test_init_from_weights_reads_the_profiles_weights_not_out(photos, tmp_path, monkeypatch):
    """A run exported to another --out starts from the weights the profile file names (with lr 0 the export
    is those weights unchanged); a profile that names none yet is refused."""
    from safetensors.torch import load_file

    path = _profile_toml(tmp_path / "profiles", "tinyi", "tiny")
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(path.parent))
    with pytest.raises(UsageError, match="names no weights"):
        run_training(_config(photos, tmp_path, profile="tinyi", steps=1, init_from_weights=True))
    first = run_training(_config(photos, tmp_path, profile="tinyi", steps=4))
    again = run_training(_config(photos, tmp_path, profile="tinyi", steps=1, lr=0.0, init_from_weights=True,
                                 out=tmp_path / "elsewhere", checkpoints=tmp_path / "ck2"))
    assert again.weights.parent == tmp_path / "elsewhere"
    a, b = load_file(str(first.weights)), load_file(str(again.weights))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_a_new_run_does_not_replace_a_checkpoint_unless_asked(photos, tmp_path, monkeypatch):
    """Without --resume, a folder holding a checkpoint is refused and left as it was (checkpoint, log,
    export); --restart, or --init-from-weights (which names its starting point), starts over."""
    first = _config(photos, tmp_path, steps=4)
    run_training(first)
    kept = {path: path.read_bytes() for path in [*first.checkpoints.iterdir(), *first.out.iterdir()]
            if path.is_file()}
    with pytest.raises(UsageError, match="--resume.*--restart"):
        run_training(replace(first, steps=2))
    assert {path: path.read_bytes() for path in kept} == kept
    with pytest.raises(UsageError, match="start over"):
        replace(first, resume=True, restart=True)
    assert run_training(replace(first, steps=2, restart=True)).steps == 2
    assert json.loads((first.checkpoints / "checkpoint.json").read_text())["step"] == 2

    path = _profile_toml(tmp_path / "profiles", "tinyc", "tiny")
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(path.parent))
    chained = replace(first, profile="tinyc", checkpoints=tmp_path / "chained")
    run_training(chained)
    assert run_training(replace(chained, steps=1, init_from_weights=True)).steps == 1

    cli = _train_cli("bgrid", "--data", photos, "--steps", "1", "--out", tmp_path / "out", "--checkpoints",
                     first.checkpoints)
    assert cli.exit_code == 2 and "--resume" in cli.stderr and not (tmp_path / "out").exists()


def test_resume_refuses_other_settings_and_warns_of_another_data_folder(photos, tmp_path):
    """Settings that change the tensors' shapes (or any other setting) are named and refused before anything
    loads; the data folder may have moved, so another one is a warning."""
    import shutil

    wide = Architecture(name="tinyw", description="test network", build=lambda s: Tiny(int(s["width"])),
                        defaults={"width": 8})
    config = _config(photos, tmp_path, architecture=wide, profile="tinyw", steps=2, export=False)
    run_training(config)
    with pytest.raises(UsageError, match="width: 8 in the checkpoint, 4 now"):
        run_training(replace(config, steps=3, resume=True, settings={"width": 4}))
    with pytest.raises(UsageError, match="extra: unset in the checkpoint, 1 now"):
        run_training(replace(config, steps=3, resume=True, settings={"extra": 1}))
    moved = shutil.copytree(photos, tmp_path / "moved")
    result = run_training(replace(config, steps=3, resume=True, data=moved))
    assert result.steps == 3 and any(f"now reads {moved}" in w for w in result.warnings)


def test_an_interrupt_before_the_first_step_says_nothing_was_saved(photos, tmp_path, monkeypatch):
    """Ctrl-C while the photos load: telling the user to --resume would send them to "no checkpoint"."""
    from typer.testing import CliRunner

    import xfix.train
    from xfix.cli import app

    def interrupted(config, on_progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(xfix.train, "run_training", interrupted)  # the command imports it when it runs
    result = CliRunner().invoke(app, ["train", "bgrid", "--data", str(photos), "--steps", "3",
                                      "--out", str(tmp_path / "out"), "--checkpoints", str(tmp_path / "ck")])
    assert result.exit_code == 130
    assert "nothing saved" in result.output and "--resume" not in result.output


def test_a_setting_the_profile_already_has_is_not_warned_about(photos, tmp_path):
    """`--set width=8` on bgrid, whose profile says width = 8, changes nothing the export could not fit."""
    def warnings_for(width: int) -> list[str]:
        config = TrainConfig(profile="bgrid", data=photos, steps=1, out=tmp_path / "out",
                             checkpoints=tmp_path / f"ck{width}", patches=(32,), batch_size=2, workers=0,
                             eval_limit=0, device="cpu", settings={"width": width})
        return [w for w in run_training(config).warnings if "are not in" in w]

    assert warnings_for(width=8) == []
    assert "'width': 4" in warnings_for(width=4)[0]
