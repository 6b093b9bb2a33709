"""The eval benchmark on a few tiny generated photos: synthetic MSEC levels, pairs and brackets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xfix.data.dataset import is_validation
from xfix.errors import InputError, UsageError
from xfix.evaluate import EvalConfig, Method, bracket_scenes, report_table, run_eval
from xfix.metrics import PSNR_CAP, psnr


def _scene(seed: int, h: int = 36, w: int = 48) -> np.ndarray:
    """uint8 (h, w, 3): smooth colour gradients with a bright patch, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    phase = rng.uniform(0, 3, 3)
    image = 0.45 + 0.3 * np.sin(4 * xx[..., None] + 3 * yy[..., None] + phase)
    image[h // 4 : h // 2, w // 4 : w // 2] = 0.9
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _save(path, pixels) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def validation_names(count: int) -> list[str]:
    """File names that fall in the validation split (sha1 of the name mod 10 == 0)."""
    names = (f"val{i}.jpg" for i in range(10_000))
    return [n for n in names if is_validation(n)][:count]


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    for i, name in enumerate(validation_names(3)):
        _save(folder / name, _scene(i))
    _save(folder / "train_only.jpg", _scene(9))  # never evaluated: not in the validation split
    assert not is_validation("train_only.jpg")
    return folder


BRIGHTEN = Method("brighten", lambda image: np.clip(image * 1.3, 0.0, 1.0))


def test_synthetic_rows_groups_and_identity(photo_folder):
    config = EvalConfig(profile="brighten", data=photo_folder, baselines=("identity",), device="cpu")
    report = run_eval(config, methods=[BRIGHTEN])
    rows = {(r["method"], r["group"]): r for r in report.table()}
    assert set(rows) == {(m, g) for m in ("brighten", "identity") for g in ("under", "normal", "over", "all")}
    assert rows["identity", "under"]["n"] == 3 * 2 and rows["identity", "normal"]["n"] == 3
    assert rows["identity", "all"]["n"] == 15
    # the identity of a normal exposure differs only by noise and JPEG; under/over are far off
    assert rows["identity", "normal"]["psnr"] > 28 > 20 > rows["identity", "under"]["psnr"]
    assert rows["identity", "normal"]["ssim"] > rows["identity", "over"]["ssim"]
    # brightening helps the under group and hurts the over group
    assert rows["brighten", "under"]["psnr"] > rows["identity", "under"]["psnr"]
    assert rows["brighten", "over"]["psnr"] < rows["identity", "over"]["psnr"]
    assert rows["identity", "all"]["consistency"] < 25 and rows["identity", "under"]["consistency"] is None
    assert {i["image"] for i in report.items} == set(validation_names(3))
    assert rows["brighten", "all"]["sec_per_mp"] > 0


def test_fixed_seed_gives_same_report_and_limit(photo_folder):
    config = EvalConfig(profile="identity", data=photo_folder, baselines=("identity",), limit=2)
    first, second = run_eval(config), run_eval(config)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "sec_per_mp"} for r in rows]  # noqa: E731
    assert strip(first.table()) == strip(second.table())
    assert first.table()[-1]["n"] == 10  # 2 photos x 5 levels


def test_json_and_rich_table(photo_folder, tmp_path):
    report = run_eval(EvalConfig(profile="identity", data=photo_folder, baselines=("identity",), limit=1))
    data = json.loads(report.to_json())
    assert data["profile"] == "identity" and data["rows"][0]["set"] == "synthetic"
    assert len(data["items"]) == 5
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(report_table(report))
    text = console.export_text()
    assert "identity" in text and "normal" in text and "PSNR" in text


def test_pairs(tmp_path):
    folder = tmp_path / "pairs"
    for i in range(2):
        target = _scene(i)
        _save(folder / "target" / f"shot{i}.png", target)
        _save(folder / "input" / f"SHOT{i}.jpg", (target * 0.5).astype(np.uint8))
    _save(folder / "input" / "unmatched.jpg", _scene(5))
    config = EvalConfig(profile="identity", pairs=folder, baselines=("identity",))
    report = run_eval(config, methods=[BRIGHTEN])
    rows = {r["method"]: r for r in report.table()}
    assert rows["identity"]["n"] == 2 and rows["identity"]["group"] == "all"
    assert rows["brighten"]["psnr"] > rows["identity"]["psnr"]
    _save(folder / "target" / "shot0.png", _scene(0, 20, 20))
    with pytest.raises(InputError, match="differ in size"):
        run_eval(EvalConfig(profile="identity", pairs=folder, baselines=("identity",)))


def test_brackets(tmp_path):
    root = tmp_path / "brackets" / "set"
    for s in range(2):
        base = _scene(s).astype(np.float32) / 255
        for k, gain in enumerate((0.5, 1.0, 1.6)):
            frame = np.round(np.clip(base * gain, 0, 1) * 255).astype(np.uint8)
            _save(root / f"scene{s}" / f"f{k}.jpg", frame)
    assert [name for name, _ in bracket_scenes(tmp_path / "brackets")] == ["scene0", "scene1"]
    report = run_eval(EvalConfig(profile="identity", brackets=tmp_path / "brackets", baselines=("identity",)))
    rows = {(r["method"], r["group"]): r for r in report.table()}
    assert set(rows) == {("identity", "scene0"), ("identity", "scene1"), ("identity", "all")}
    assert rows["identity", "all"]["moved"] == PSNR_CAP  # identity does not move the middle frame
    from xfix.data.dataset import load_photo, to_float

    frames = [to_float(load_photo(root / "scene0" / f"f{k}.jpg", 512)) for k in range(3)]
    expected = np.mean([psnr(frames[0], frames[1]), psnr(frames[0], frames[2]), psnr(frames[1], frames[2])])
    assert rows["identity", "scene0"]["consistency"] == pytest.approx(expected, abs=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no scene"):
        bracket_scenes(tmp_path / "empty")
    with pytest.raises(InputError, match="not a folder"):
        bracket_scenes(tmp_path / "missing")


def test_config_needs_a_set():
    with pytest.raises(UsageError, match="--data"):
        EvalConfig(profile="identity")
    with pytest.raises(UsageError, match="--limit"):
        EvalConfig(profile="identity", data=".", limit=0)


def test_identity_and_classic_rows(photo_folder):
    """The default baselines: identity and the shipped classic profile, through Corrector.apply."""
    report = run_eval(EvalConfig(profile="identity", data=photo_folder, device="cpu", limit=2, max_side=48))
    methods = {r["method"] for r in report.table()}
    assert methods == {"identity", "classic"}
    rows = {(r["method"], r["group"]): r for r in report.table()}
    assert rows["classic", "under"]["psnr"] > rows["identity", "under"]["psnr"]


def test_eval_command_writes_a_json_object(photo_folder, tmp_path):
    from typer.testing import CliRunner

    from xfix.cli import app

    out = tmp_path / "report.json"
    args = ["eval", "classic", "--data", str(photo_folder), "--limit", "1", "--json", str(out), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["profile"] == "classic" and {r["method"] for r in data["rows"]} == {"classic", "identity"}


def _eval_cli(*args):
    from typer.testing import CliRunner

    from xfix.cli import app

    return CliRunner().invoke(app, ["eval", *[str(a) for a in args]])


def test_unknown_profile_baseline_or_folder_is_a_usage_error(photo_folder, tmp_path):
    """Exit 2 as for every usage error (README's exit codes), before any model loads."""
    unknown = _eval_cli("nosuch", "--data", photo_folder)
    assert unknown.exit_code == 2 and "unknown profile 'nosuch'" in unknown.stderr
    baseline = _eval_cli("classic", "--data", photo_folder, "--baselines", "identity,nosuch")
    assert baseline.exit_code == 2 and "unknown baseline 'nosuch'" in baseline.stderr
    assert all(name in baseline.stderr for name in ("identity", "trivial-inverse", "classic", "msec"))
    missing = _eval_cli("classic", "--data", tmp_path / "nosuchdir")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_hdr_profiles_are_not_evaluated_as_exposure_corrections(photo_folder):
    """They reconstruct light for `xfix hdr` (bench_hdr.py scores them); as a profile or a baseline of
    `xfix eval` they would score an unchanged photo."""
    as_profile = _eval_cli("hdr-default", "--data", photo_folder)
    assert as_profile.exit_code == 2 and "xfix hdr" in as_profile.stderr
    as_baseline = _eval_cli("classic", "--data", photo_folder, "--baselines", "hdr-default")
    assert as_baseline.exit_code == 2 and "unknown baseline 'hdr-default'" in as_baseline.stderr
    assert "hdr-video" not in as_baseline.stderr


def test_a_folder_without_validation_photos_is_refused(tmp_path):
    """Not an all-empty table that exits 0: none of the folder's photos would be scored."""
    folder = tmp_path / "train_only"
    names = [n for n in (f"train{i}.jpg" for i in range(40)) if not is_validation(n)][:2]
    for i, name in enumerate(names):
        _save(folder / name, _scene(i))
    with pytest.raises(UsageError, match="validation split.*has 2 photo"):
        run_eval(EvalConfig(profile="identity", data=folder, baselines=("identity",)))
    result = _eval_cli("classic", "--data", folder, "--limit", "2", "--device", "cpu")
    assert result.exit_code == 2 and "no photo of this folder is in the validation split" in result.stderr


def test_json_path_is_checked_before_the_evaluation_runs(photo_folder, tmp_path, monkeypatch):
    """A folder as --json is refused up front; a missing parent folder is created, as -o folders are."""
    import xfix.evaluate

    def must_not_run(*args, **kwargs):
        raise AssertionError("the evaluation ran before --json was checked")

    with monkeypatch.context() as patch:
        patch.setattr(xfix.evaluate, "run_eval", must_not_run)
        folder = _eval_cli("classic", "--data", photo_folder, "--json", tmp_path)
        assert folder.exit_code == 2 and "is a folder" in folder.stderr
    out = tmp_path / "nodir" / "deeper" / "x.json"
    made = _eval_cli("identity", "--data", photo_folder, "--baselines", "identity", "--limit", "1",
                     "--max-side", "32", "--json", out)
    assert made.exit_code == 0, made.output
    assert json.loads(out.read_text())["profile"] == "identity"
