"""The batch pipeline through the library API, end to end on small generated files, classic profile."""

from __future__ import annotations

from pathlib import Path

import fixtures
import numpy as np
import pytest

from xfix import pipeline, profile_choice
from xfix.discover import Job
from xfix.errors import DecodeError, ProfileError, UsageError
from xfix.pipeline import CorrectConfig, FileResult, correct, correct_file

JSON_KEYS = fixtures.RESULT_JSON_KEYS


def read_pixels(path: Path) -> np.ndarray:
    """Samples as stored, dtype kept: (H, W, C)."""
    import cv2
    import tifffile

    if path.suffix == ".tif":
        return tifffile.imread(path)
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return pixels[..., ::-1] if pixels.ndim == 3 else pixels  # BGR -> RGB


def read_tags(path: Path) -> tuple[dict, bytes]:
    """(EXIF dict, ICC profile bytes) of a written file."""
    import pyexiv2

    with pyexiv2.Image(str(path)) as image:
        return image.read_exif(), image.read_icc()


def run(jobs, out: Path, **options) -> pipeline.Summary:
    options.setdefault("profile", "classic")
    return correct(CorrectConfig(jobs=tuple(jobs), out_dir=out, **options))


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return {
        "jpeg": fixtures.make_jpeg(folder / "photo.jpg"),
        "tiff": fixtures.make_tiff16(folder / "prophoto.tif", "prophoto"),
        "png": fixtures.make_png16(folder / "image16.png"),
        "dng": fixtures.make_dng(folder / "raw.dng"),
    }


def test_every_format_end_to_end(sources, tmp_path):
    from xfix.icc import identify_space

    out = tmp_path / "out"
    summary = run(sources.values(), out)
    assert [r.status for r in summary.results] == ["done"] * 4, [r.error for r in summary.results]
    expected = {  # output name, dtype, (H, W) after orientation
        "jpeg": ("photo.jpg", np.uint8, (64, 48)),  # stored 48x64 with Orientation 6: rotated
        "tiff": ("prophoto.tif", np.uint16, fixtures.TIFF_SIZE),
        "png": ("image16.png", np.uint16, fixtures.TIFF_SIZE),
        "dng": ("raw.tif", np.uint16, fixtures.DNG_SIZE),  # RAW -> 16-bit TIFF
    }
    for kind, (name, dtype, size) in expected.items():
        path = out / name
        pixels = read_pixels(path)
        assert pixels.dtype == dtype and pixels.shape == (*size, 3), (kind, pixels.dtype, pixels.shape)
        exif, icc = read_tags(path)
        assert identify_space(icc) == "srgb", kind
        if kind != "png":  # the PNG fixture carries no EXIF
            assert exif["Exif.Image.Make"] == "XfixCam", kind
            assert exif.get("Exif.Image.Orientation", "1") == "1", kind
    # The red MARK block stored top-left is top-right after the 90 degree turn of Orientation 6.
    mark = read_pixels(out / "photo.jpg")[:8, -8:].reshape(-1, 3).mean(axis=0)
    assert mark[0] > mark[1] + 60 and mark[0] > mark[2] + 60
    # The DNG's grey patch stays neutral through white balance, colour conversion and correction.
    rows, cols = fixtures.patch_centre("grey50")
    grey = read_pixels(out / "raw.tif")[rows, cols].reshape(-1, 3).mean(axis=0)
    assert np.ptp(grey) < 0.04 * grey.mean(), grey


def test_results_and_summary(sources, tmp_path):
    missing = Job(tmp_path / "gone.jpg", problem="no such file or directory")
    summary = run([sources["jpeg"], missing], tmp_path / "out")
    done, failed = summary.results
    assert (summary.done, summary.failed, summary.skipped) == (1, 1, 0)
    assert set(done.to_json()) == JSON_KEYS
    assert done.to_json()["output"] == str(tmp_path / "out" / "photo.jpg") and done.profile == "classic"
    assert done.device in ("cpu", "cuda", "mps") and done.seconds > 0
    assert done.megapixels == pytest.approx(64 * 48 / 1e6)
    assert done.to_json()["strength"] == 1.0  # classic leaves nothing alone
    failure = failed.to_json()
    assert (failure["status"], failure["output"], failure["error"], failure["strength"]) == (
        "failed",
        None,
        "no such file or directory",
        None,
    )
    assert summary.seconds >= done.seconds


def test_existing_output_is_skipped_unless_overwrite(sources, tmp_path):
    out = tmp_path / "out"
    run([sources["jpeg"]], out)
    target = out / "photo.jpg"
    before = (target.stat().st_mtime_ns, target.read_bytes())
    again = run([sources["jpeg"]], out)
    assert again.results[0].status == "skipped" and again.skipped == 1
    assert (target.stat().st_mtime_ns, target.read_bytes()) == before
    forced = run([sources["jpeg"]], out, overwrite=True)
    assert forced.results[0].status == "done" and target.stat().st_mtime_ns != before[0]


def test_output_equal_to_input_is_refused(sources):
    source = sources["jpeg"]
    original = source.read_bytes()
    result = run([source], source.parent).results[0]
    assert result.status == "failed" and "replace the input" in result.error
    assert source.read_bytes() == original


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_output_that_is_another_input_of_the_batch_is_refused_even_with_overwrite(tmp_path, dry_run):
    png = fixtures.make_png16(tmp_path / "a.png")
    jpeg = fixtures.make_jpeg(tmp_path / "a.jpg")
    original = jpeg.read_bytes()
    results = run([png, jpeg], tmp_path, fmt="jpeg", overwrite=True, dry_run=dry_run).results
    assert [r.status for r in results] == ["failed", "failed"]
    assert f"would replace the input {jpeg}" in results[0].error
    assert "the output would replace the input" in results[1].error
    assert jpeg.read_bytes() == original


def test_outputs_that_collide_fail_the_later_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = fixtures.make_jpeg(tmp_path / "a" / "x.jpg")
    b = fixtures.make_jpeg(tmp_path / "b" / "x.jpg")
    first, second = run([a, b], tmp_path / "out").results
    assert first.status == "done" and second.status == "failed"
    assert str(a) in second.error and "--suffix" in second.error
    # Sub-folders from -r keep them apart.
    jobs = [Job(a, Path("a")), Job(b, Path("b"))]
    assert [r.status for r in run(jobs, tmp_path / "out2").results] == ["done", "done"]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_suffix_too_long_for_the_file_system_fails_that_file_clearly(sources, tmp_path, dry_run):
    result = run([sources["jpeg"]], tmp_path / "out", suffix="a" * 300, dry_run=dry_run).results[0]
    assert result.status == "failed" and "file name too long" in result.error
    assert "internal error" not in result.error and not (tmp_path / "out").exists()


def test_format_same_follows_the_file_name_even_for_a_misnamed_file(sources, tmp_path):
    misnamed = tmp_path / "really_a_jpeg.png"
    misnamed.write_bytes(sources["jpeg"].read_bytes())
    result = run([misnamed], tmp_path / "out").results[0]
    assert result.status == "done" and result.output == tmp_path / "out" / "really_a_jpeg.png"
    assert result.output.read_bytes().startswith(b"\x89PNG")  # the contents match the name


def test_dry_run_writes_nothing_and_loads_no_model(sources, tmp_path, monkeypatch):
    import xfix.profile

    def no_model(*args, **kwargs):
        raise AssertionError("a dry run must not load the model")

    monkeypatch.setattr(xfix.profile.Corrector, "load", no_model)
    out = tmp_path / "out"
    summary = run(sources.values(), out, dry_run=True)
    assert [r.status for r in summary.results] == ["dry-run"] * 4
    assert summary.results[3].output == out / "raw.tif"
    assert not out.exists()


def test_format_bits_suffix_and_output_space(sources, tmp_path):
    from xfix.icc import identify_space

    out = tmp_path / "out"
    summary = run([sources["tiff"], sources["jpeg"]], out, bits=8, suffix="_fixed", output_space="prophoto")
    assert summary.done == 2
    assert read_pixels(out / "prophoto_fixed.tif").dtype == np.uint8
    assert identify_space(read_tags(out / "photo_fixed.jpg")[1]) == "prophoto"
    png = run([sources["jpeg"]], out, fmt="png").results[0]
    assert png.output == out / "photo.png" and read_pixels(png.output).dtype == np.uint16  # PNG default 16


def test_strip_gps_reaches_the_metadata_stage(sources, tmp_path):
    kept = run([sources["jpeg"]], tmp_path / "kept").results[0]
    stripped = run([sources["jpeg"]], tmp_path / "stripped", strip_gps=True).results[0]
    assert any(k.startswith("Exif.GPSInfo.GPSLatitude") for k in read_tags(kept.output)[0])
    assert not any(k.startswith("Exif.GPSInfo.GPSLatitude") for k in read_tags(stripped.output)[0])


def test_a_bug_in_one_file_is_reported_and_the_batch_goes_on(sources, tmp_path, monkeypatch):
    import xfix.encode

    real = xfix.encode.encode
    calls = []

    def flaky(frame, **kwargs):
        calls.append(frame.source.path)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(frame, **kwargs)

    monkeypatch.setattr(xfix.encode, "encode", flaky)
    first, second = run([sources["jpeg"], sources["png"]], tmp_path / "out").results
    assert first.status == "failed" and "RuntimeError: boom" in first.error
    assert second.status == "done" and second.output.exists()


def test_keyboard_interrupt_propagates(sources, tmp_path, monkeypatch):
    import xfix.linearize

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xfix.linearize, "linearize", interrupted)
    seen: list[FileResult] = []
    with pytest.raises(KeyboardInterrupt):
        correct(
            CorrectConfig(jobs=(sources["jpeg"],), out_dir=tmp_path / "out", profile="classic"),
            on_result=seen.append,
        )
    assert seen == []


def test_correct_file_writes_the_named_output(sources, tmp_path):
    result = correct_file(sources["jpeg"], tmp_path / "single" / "fixed.png", profile="classic")
    assert result.status == "done" and result.output == tmp_path / "single" / "fixed.png"
    assert read_pixels(result.output).dtype == np.uint16
    bad = fixtures.make_text_as_jpg(tmp_path / "notes.jpg")
    with pytest.raises(DecodeError):
        correct_file(bad, tmp_path / "single" / "bad.jpg", profile="classic")
    with pytest.raises(UsageError):
        correct_file(sources["jpeg"], tmp_path / "single" / "fixed.gif", profile="classic")


@pytest.mark.parametrize(
    "options",
    [
        {"fmt": "gif"},
        {"bits": 12},
        {"fmt": "jpeg", "bits": 16},
        {"quality": 0},
        {"strength": 1.5},
        {"output_space": "rec2020"},
        {"input_space": "cmyk"},
        {"suffix": "a/b"},
        {"max_megapixels": 0},
    ],
)
def test_config_rejects_bad_values(options):
    with pytest.raises(UsageError):
        CorrectConfig(jobs=("a.jpg",), **options)


def test_correct_file_refuses_a_format_its_output_name_contradicts(sources, tmp_path):
    with pytest.raises(UsageError, match="the name says png but fmt='jpeg' writes jpeg"):
        correct_file(sources["jpeg"], tmp_path / "o.png", fmt="jpeg", profile="classic")
    with pytest.raises(UsageError, match="the name says jpeg but fmt='same' writes png"):
        correct_file(sources["png"], tmp_path / "o.jpg", fmt="same", profile="classic")
    assert list(tmp_path.glob("o.*")) == []
    done = correct_file(sources["png"], tmp_path / "o.jpg", profile="classic")  # the name picks the format
    assert done.status == "done" and (tmp_path / "o.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_config_takes_one_path_as_one_job():
    """Not the characters of the string as jobs."""
    assert CorrectConfig(jobs="mid.png").jobs == (Job(Path("mid.png")),)
    assert CorrectConfig(jobs=Path("mid.png")).jobs == (Job(Path("mid.png")),)


def test_config_is_frozen_and_takes_plain_paths():
    config = CorrectConfig(jobs=("a.jpg", Path("b.png")), settings={"key": 0.2})
    assert config.jobs == (Job(Path("a.jpg")), Job(Path("b.png")))
    with pytest.raises(AttributeError):
        config.overwrite = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.settings["key"] = 1  # type: ignore[index]


def test_default_profile_is_the_first_of_the_preference_list_that_loads(monkeypatch):
    assert profile_choice.default_profile().name in profile_choice.PROFILE_PREFERENCE
    monkeypatch.setattr(profile_choice, "PROFILE_PREFERENCE", ("no-such-profile", "classic"))
    assert profile_choice.default_profile().name == "classic"
    monkeypatch.setattr(profile_choice, "PROFILE_PREFERENCE", ("no-such-profile",))
    with pytest.raises(ProfileError):
        profile_choice.default_profile().name


@pytest.mark.parametrize("weights", ["missing.safetensors", "wrong.safetensors"])
def test_default_profile_falls_back_when_the_preferred_weights_do_not_load(
    sources, tmp_path, monkeypatch, caplog, weights
):
    """A msec.toml on XFIX_PROFILE_PATH whose weights are missing or wrong shadows the shipped one: the
    default is classic, with a warning saying why, instead of every file failing."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "wrong.safetensors").write_bytes(b"not the weights the sha256 names")
    shipped = (Path(pipeline.__file__).parents[1] / "profiles" / "msec.toml").read_text()
    (shadow / "msec.toml").write_text(shipped.replace("../models/msec.safetensors", weights))
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(shadow))
    with caplog.at_level("WARNING", logger="xfix"):
        summary = run([sources["jpeg"]], tmp_path / "out", profile=None)
    assert [(r.status, r.profile) for r in summary.results] == [("done", "classic")]
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "using the profile classic" in warning and "msec does not load" in warning
    assert ("not found" if weights.startswith("missing") else "sha256 mismatch") in warning


def test_an_hdr_profile_is_refused_by_correct(sources, tmp_path):
    """It would write the input back unchanged: hdr-* profiles reconstruct HDR for `xfix hdr`."""
    with pytest.raises(UsageError, match="hdr-default reconstructs HDR for `xfix hdr`.*valid: .*classic"):
        run([sources["jpeg"]], tmp_path / "out", profile="hdr-default")
    with pytest.raises(UsageError, match="xfix hdr"):
        correct_file(sources["jpeg"], tmp_path / "one.jpg", profile="hdr-video")
    assert not (tmp_path / "out").exists() and not (tmp_path / "one.jpg").exists()


def test_unknown_profile_is_a_usage_error_listing_the_valid_ones(sources, tmp_path):
    with pytest.raises(UsageError, match="classic"):
        run([sources["jpeg"]], tmp_path / "out", profile="no-such-profile")
