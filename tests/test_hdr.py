"""xfix hdr: the mask and blend formulas, the gamma control, the network's receptive field and tiling, EXR
round-trips, input planning (natural frame order, video), the shipped weights, and the command end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xfix.archs.hdrcnn import EPS, RECEPTIVE_FIELD, blend, build, saturation_mask
from xfix.cli import app
from xfix.colour import srgb_decode, srgb_encode
from xfix.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def _write_png(path: Path, image: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
    return path


def _sun_image(h: int = 64, w: int = 96) -> np.ndarray:
    """uint8 sRGB: a sky gradient with a clipped sun disc in it."""
    y, x = np.mgrid[0:h, 0:w]
    sky = np.stack([0.35 + 0.3 * x / w, 0.5 + 0.2 * y / h, 0.8 * np.ones_like(x, float)], axis=-1)
    sun = ((y - h / 2) ** 2 + (x - w / 2) ** 2) < (h / 5) ** 2
    sky[sun] = 1.0
    return np.round(np.clip(sky, 0, 1) * 255).astype(np.uint8)


def _random_model(gamma: float = 1.0, tau: float = 0.95):
    torch.manual_seed(0)
    model = build({"gamma": gamma, "tau": tau}).eval()
    torch.nn.init.normal_(model.out.weight, std=0.2)
    return model


# ---------------------------------------------------------------- formulas


def test_mask_matches_numpy_reference():
    rng = np.random.default_rng(0)
    display = rng.random((2, 3, 8, 8)).astype(np.float32)
    display[0, 1, :2] = 1.0
    for tau in (0.0, 0.5, 0.95):
        reference = np.maximum(0.0, display.max(axis=1, keepdims=True) - tau) / (1.0 - tau)
        got = saturation_mask(torch.from_numpy(display), tau).numpy()
        np.testing.assert_allclose(got, reference, atol=1e-6)
    assert saturation_mask(torch.full((1, 3, 2, 2), 0.9), 0.95).max() == 0.0
    assert saturation_mask(torch.ones(1, 3, 2, 2), 0.95).min() == 1.0


def test_blend_matches_numpy_reference():
    rng = np.random.default_rng(1)
    linear = rng.random((1, 3, 5, 7)).astype(np.float32)
    log_y = rng.normal(1.0, 1.0, (1, 3, 5, 7)).astype(np.float32)
    mask = rng.random((1, 1, 5, 7)).astype(np.float32)
    reference = (1 - mask) * linear + mask * (np.exp(log_y) - EPS)
    got = blend(*(torch.from_numpy(a) for a in (linear, log_y, mask))).numpy()
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_forward_is_the_paper_formula_never_below_the_input():
    """H = (1 - a) f^-1(D) + a max(exp(y(D)), f^-1(D)), with D the display values of the linear input."""
    model = _random_model()
    x = torch.from_numpy(srgb_decode(_sun_image().astype(np.float32) / 255)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        out = model(x).numpy()
        d = srgb_encode(x.numpy())
        log_y = model.predict_log(torch.from_numpy(d)).numpy()
    a = np.maximum(0, d.max(axis=1, keepdims=True) - 0.95) / 0.05
    reference = (1 - a) * srgb_decode(d) + a * np.maximum(np.exp(log_y) - EPS, srgb_decode(d))
    assert (np.exp(log_y) - EPS < srgb_decode(d) - 0.01)[:, :, a[0, 0] > 0].any()  # the floor is tested
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-5)
    unsaturated = a[0, 0] == 0
    np.testing.assert_allclose(out[0][:, unsaturated], x.numpy()[0][:, unsaturated], atol=1e-6)


def test_untrained_network_is_the_naive_reconstruction():
    model = build({}).eval()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x, atol=1e-5, rtol=1e-5)


def test_gamma_one_is_the_identity_and_gamma_above_one_brightens():
    x = torch.from_numpy(srgb_decode(_sun_image().astype(np.float32) / 255)).permute(2, 0, 1)[None].float()
    plain, g1 = _random_model(), _random_model(gamma=1.0)
    g1.gamma = 1.0 + 1e-9  # forces the y = f(x^(1/g))^g path
    with torch.no_grad():
        torch.testing.assert_close(g1(x), plain(x), atol=1e-4, rtol=1e-4)
        bright = _random_model(gamma=1.3)
        for model in (plain, bright):
            torch.nn.init.zeros_(model.out.weight)
            torch.nn.init.constant_(model.out.bias, 1.0)  # the network says: e times brighter than clipped
        sun = x.amin(dim=1)[0] >= 1.0
        assert (bright(x)[0][:, sun] > plain(x)[0][:, sun] * 1.05).all()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="tau"):
        saturation_mask(torch.ones(1, 3, 2, 2), 1.0)
    with pytest.raises(ValueError, match="gamma"):
        build({"gamma": 0.0})
    with pytest.raises(ValueError, match="multiples"):
        build({}).residual(torch.rand(1, 3, 30, 32))


# ---------------------------------------------------------------- receptive field and tiling


def test_receptive_field_covers_the_measured_one():
    model = _random_model()
    d = (torch.rand(1, 3, 576, 576) * 0.3 + 0.7).requires_grad_(True)
    model.residual(d)[0, :, 288, 288].sum().backward()
    ys, xs = torch.nonzero(d.grad.abs().amax(dim=(0, 1)) > 0, as_tuple=True)
    reach = max(288 - int(ys.min()), int(ys.max()) - 288, 288 - int(xs.min()), int(xs.max()) - 288)
    assert 150 < reach <= RECEPTIVE_FIELD


def test_tiled_run_equals_whole_run():
    from xfix.profile import Corrector, Profile

    model = _random_model()
    arch = __import__("xfix.archs.hdrcnn", fromlist=["ARCHITECTURE"]).ARCHITECTURE
    profile = Profile("t", "t", "hdrcnn", "linear-srgb", REPO)
    runner = Corrector(profile, arch, model, torch.device("cpu"), {}, profile.inference)
    rng = np.random.default_rng(0)
    image = np.clip(rng.random((800, 832, 3), dtype=np.float32) * 1.3, 0, 1)
    with torch.inference_mode():
        whole = runner._run_whole(image)
        tiled = runner._run_tiled(image, 768)
    np.testing.assert_allclose(tiled, whole, atol=2e-4, rtol=1e-4)


# ---------------------------------------------------------------- EXR


@pytest.mark.parametrize("half", [True, False])
@pytest.mark.parametrize("compression", ["zip", "piz", "dwaa", "none"])
def test_exr_round_trip_keeps_values_above_one(tmp_path, half, compression):
    from xfix.exr import read_exr, write_exr

    rng = np.random.default_rng(0)
    pixels = (rng.random((16, 24, 3)) * 4).astype(np.float32)
    pixels[0, 0] = (1000.5, 2.0, 70000.0)
    path = tmp_path / "x.exr"
    attributes = {"expTime": 0.01, "capDate": "2024"}
    write_exr(path, pixels, half=half, compression=compression, attributes=attributes)
    back, header = read_exr(path)
    expected = np.minimum(pixels, 65504.0) if half else pixels
    if compression == "dwaa":  # lossy: small relative errors, large values still large
        relative = np.abs(back - expected) / np.maximum(expected, 0.01)
        assert np.median(relative) < 0.01 and back[0, 0, 0] > 900
    else:
        np.testing.assert_allclose(back, expected, rtol=2e-3 if half else 0)
        assert back[0, 0, 0] > 999
    assert header["expTime"] == pytest.approx(0.01)
    assert header["chromaticities"][:2] == pytest.approx((0.64, 0.33))


def test_exr_refuses_an_existing_file_and_leaves_no_temporary(tmp_path):
    from xfix.errors import WriteError
    from xfix.exr import write_exr

    path = tmp_path / "x.exr"
    write_exr(path, np.ones((4, 4, 3), np.float32))
    with pytest.raises(WriteError, match="exists"):
        write_exr(path, np.ones((4, 4, 3), np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["x.exr"]


def test_exr_of_other_primaries_is_converted(tmp_path):
    import OpenEXR

    from xfix.exr import read_exr

    grey = np.full((4, 4, 3), 2.0, np.float16)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
              "chromaticities": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)}  # ACES AP0
    with OpenEXR.File(header, {"RGB": grey}) as handle:
        handle.write(str(tmp_path / "aces.exr"))
    back, _ = read_exr(tmp_path / "aces.exr")
    np.testing.assert_allclose(back, 2.0, rtol=2e-2)  # neutral stays neutral


def test_exif_attributes():
    from xfix.exr import exif_attributes

    got = exif_attributes({"exposure_time": 0.008, "f_number": 2.8, "iso": 400,
                           "datetime": "2024:06:01 12:00:00", "camera": None})
    assert got == {"expTime": 0.008, "aperture": 2.8, "isoSpeed": 400.0, "capDate": "2024:06:01 12:00:00"}


# ---------------------------------------------------------------- inputs


def test_frames_of_a_folder_come_in_natural_order(tmp_path):
    from xfix.hdr import plan

    for name in ("frame_10.png", "frame_2.png", "frame_1.png", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    items, warnings = plan((tmp_path,))
    assert [i.path.name for i in items] == ["frame_1.png", "frame_2.png", "frame_10.png"]
    assert [str(i.output) for i in items] == ["frame_1.exr", "frame_2.exr", "frame_10.exr"]
    assert warnings == [f"{tmp_path}: skipped 1 file(s) that are not images (.txt)"]


def test_plan_keeps_missing_inputs_as_problems(tmp_path):
    from xfix.hdr import HdrConfig, plan

    (missing,), _ = plan((tmp_path / "nope.jpg",))
    assert missing.problem == "file not found"
    with pytest.raises(UsageError, match="gamma"):
        HdrConfig(inputs=(tmp_path,), out_dir=tmp_path, gamma=0.0)


@pytest.mark.parametrize("single", ["sun.png", Path("sun.png")])
def test_config_takes_a_single_path_as_one_input(tmp_path, single):
    from xfix.hdr import HdrConfig

    assert HdrConfig(inputs=single, out_dir=tmp_path).inputs == (Path("sun.png"),)


# ---------------------------------------------------------------- the shipped weights and the command


def _shipped(weights: str):
    from xfix.hdr import load_reconstructor

    return load_reconstructor(weights, device="cpu")


@pytest.mark.parametrize("weights", ["default", "compressed", "video"])
def test_shipped_weights_fill_in_a_clipped_highlight(weights):
    """A clipped region of a held-out-like scene comes back above the clipping level, the rest unchanged."""
    from xfix.hdr import reconstruct

    image = _sun_image(96, 128)
    linear = srgb_decode(image.astype(np.float32) / 255).astype(np.float32)
    out = reconstruct(_shipped(weights), linear)
    sun = image.min(axis=2) == 255
    assert out[sun].mean() > 1.1  # an untrained network gives 1.0 (the naive reconstruction)
    np.testing.assert_allclose(out[image.max(axis=2) < 240], linear[image.max(axis=2) < 240], atol=1e-5)


def test_no_gamma_darkens_clipped_pixels():
    """Shipped weights, a clipped sun: at every gamma the reconstruction is at least the input there (at 5
    the paper's y = f(x^(1/g))^g without the floor gave nearly all of them darker)."""
    from xfix.hdr import load_reconstructor, reconstruct

    image = _sun_image(96, 128)
    linear = srgb_decode(image.astype(np.float32) / 255).astype(np.float32)
    clipped = image.max(axis=2) == 255
    for gamma in (0.5, 1.0, 1.2, 2.0, 5.0):
        out = reconstruct(load_reconstructor("default", gamma=gamma, device="cpu"), linear)
        assert (out[clipped] >= linear[clipped] - 1e-5).all(), gamma


def test_cli_end_to_end(tmp_path):
    from xfix.exr import read_exr

    _write_png(tmp_path / "sun.png", _sun_image())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["hdr", str(tmp_path / "sun.png"), "-o", str(out), "--gamma", "1.2",
                                      "--preview", "--exr-compression", "piz", "--float"])
    assert result.exit_code == 0, result.output
    pixels, header = read_exr(out / "sun.exr")
    assert pixels.shape == (64, 96, 3) and pixels.max() > 1.1
    assert header["xfixGamma"] == pytest.approx(1.2) and header["xfixWeights"] == "default"
    assert (out / "sun.png").is_file()
    again = CliRunner().invoke(app, ["hdr", str(tmp_path / "sun.png"), "-o", str(out), "--video"])
    assert again.exit_code == 0 and "skipped" in again.output


def test_cli_corrupt_input_is_a_clear_error_without_partial_output(tmp_path):
    _write_png(tmp_path / "good.png", _sun_image())
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    out = tmp_path / "out"
    args = ["hdr", str(tmp_path / "bad.jpg"), str(tmp_path / "good.png"), "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "bad.jpg" in result.output and "corrupt" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["good.exr"]  # no bad.exr, no temporary file


def test_cli_goes_on_past_a_missing_input(tmp_path):
    import json

    _write_png(tmp_path / "sun.png", _sun_image())
    out = tmp_path / "out"
    args = ["hdr", str(tmp_path / "sun.png"), str(tmp_path / "nosuch.png"), "-o", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = [(Path(r["source"]).name, r["status"]) for r in lines]
    assert statuses == [("sun.png", "done"), ("nosuch.png", "failed")]
    assert lines[1]["message"] == "file not found"
    assert sorted(p.name for p in out.iterdir()) == ["sun.exr"]


def test_cli_without_inputs_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["hdr", str(tmp_path / "empty"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no inputs" in result.output and "no images in this folder" in result.output


def test_cli_warns_about_the_files_of_a_folder_it_skips(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    _write_png(frames / "a.png", _sun_image())
    for name in ("b.webp", "c.bmp", "notes.txt"):
        (frames / name).write_bytes(b"x")
    result = CliRunner().invoke(app, ["hdr", str(frames), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "skipped 3 file(s) that are not images (.bmp, .txt, .webp)" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.exr"]


def test_cli_refuses_an_output_that_would_replace_its_input(tmp_path):
    """hdr folder/sun.png -o folder --preview: the preview PNG is the source itself; --overwrite or not."""
    folder = tmp_path / "inplace"
    folder.mkdir()
    source = _write_png(folder / "sun.png", _sun_image())
    before = source.read_bytes()
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(app, ["hdr", str(source), "-o", str(folder), "--preview", *extra])
        assert result.exit_code == 1 and "would replace the input" in result.output
        assert source.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["sun.png"]  # no EXR without its preview


def test_cli_writes_a_frame_whole_or_not_at_all(tmp_path):
    """An existing preview (here someone else's file of that name) skips the frame: no EXR without it."""
    _write_png(tmp_path / "sun.png", _sun_image())
    out = tmp_path / "out"
    out.mkdir()
    (out / "sun.png").write_bytes(b"someone else's file")
    result = CliRunner().invoke(app, ["hdr", str(tmp_path / "sun.png"), "-o", str(out), "--preview"])
    assert result.exit_code == 0 and "skipped" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["sun.png"]
    assert (out / "sun.png").read_bytes() == b"someone else's file"


def test_a_failed_preview_write_takes_the_frame_s_exr_back(tmp_path, monkeypatch):
    from xfix import write
    from xfix.errors import WriteError
    from xfix.hdr import HdrConfig, run_hdr

    real = write.write_atomic

    def failing_png(path, data, *, overwrite):
        if Path(path).suffix == ".png":
            raise WriteError("no space left on device", path)
        real(path, data, overwrite=overwrite)

    monkeypatch.setattr(write, "write_atomic", failing_png)
    _write_png(tmp_path / "sun.png", _sun_image())
    out = tmp_path / "out"
    summary = run_hdr(HdrConfig(inputs=(tmp_path / "sun.png",), out_dir=out, preview=True))
    assert summary.failed == 1 and "no space" in summary.results[0].message
    assert list(out.iterdir()) == []


def test_a_corrupt_video_is_one_failure(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from xfix.hdr import HdrConfig, run_hdr

    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    summary = run_hdr(HdrConfig(inputs=(tmp_path / "bad.mp4",), out_dir=tmp_path / "out"))
    assert [(Path(r.source).name, r.status) for r in summary.results] == [("bad.mp4", "failed")]
    assert "cannot read video" in summary.results[0].message


def test_cli_video_and_weights_conflict(tmp_path):
    result = CliRunner().invoke(app, ["hdr", str(tmp_path), "--video", "--weights", "compressed"])
    assert result.exit_code == 2 and "--video" in result.output


def _write_video(path: Path, shift: int = 3) -> Path:
    """A 3-frame H.264 MP4 of the sun image moving `shift` px a frame."""
    pytest.importorskip("imageio_ffmpeg")
    import imageio

    with imageio.get_writer(str(path), format="FFMPEG", fps=10, codec="libx264", quality=9,
                            macro_block_size=16) as writer:
        for k in range(3):
            writer.append_data(np.roll(_sun_image(64, 96), shift * k, axis=1))
    return path


def test_video_input_gives_numbered_frames(tmp_path):
    from xfix.exr import read_exr
    from xfix.hdr import HdrConfig, run_hdr

    _write_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    summary = run_hdr(HdrConfig(inputs=(tmp_path / "clip.mp4",), out_dir=out, weights="video", preview=True))
    assert summary.failed == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["clip_preview.mp4", "frame_000001.exr", "frame_000001.png", "frame_000002.exr",
                     "frame_000002.png", "frame_000003.exr", "frame_000003.png"]
    assert read_exr(out / "frame_000002.exr")[0].shape == (64, 96, 3)


def test_an_existing_preview_video_is_skipped_unless_overwrite(tmp_path):
    """A preview MP4 already there (an earlier, partial run's) is checked before encoding: the line says
    skipped, not failed, and the file is kept; --overwrite replaces it."""
    from xfix.hdr import HdrConfig, run_hdr

    _write_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip_preview.mp4").write_bytes(b"an earlier run's preview")
    config = HdrConfig(inputs=(tmp_path / "clip.mp4",), out_dir=out, weights="video", preview=True)
    summary = run_hdr(config)
    assert summary.failed == 0
    assert [(r.source, r.status) for r in summary.results][-1] == (f"{tmp_path / 'clip.mp4'} (preview video)",
                                                                    "skipped")
    assert "exists" in summary.results[-1].message
    assert (out / "clip_preview.mp4").read_bytes() == b"an earlier run's preview"
    assert run_hdr(replace(config, overwrite=True)).failed == 0
    assert (out / "clip_preview.mp4").read_bytes() != b"an earlier run's preview"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_cli_fails_the_later_of_two_videos_with_one_output_folder(tmp_path, overwrite):
    """va/clip.mp4 and vb/clip.mp4 would both write out/clip/: vb fails as a whole, va's frames stay va's."""
    from xfix.exr import read_exr

    for folder, shift in (("va", 3), ("vb", 7)):
        (tmp_path / folder).mkdir()
        _write_video(tmp_path / folder / "clip.mp4", shift)
    out = tmp_path / "out"
    args = ["hdr", str(tmp_path / "va" / "clip.mp4"), str(tmp_path / "vb" / "clip.mp4"), "-o", str(out)]
    result = CliRunner().invoke(app, args + overwrite)
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "vb" in failed[0] and "also the output of" in failed[0]
    assert sorted(p.name for p in (out / "clip").iterdir()) == [f"frame_00000{k}.exr" for k in (1, 2, 3)]
    assert not any(line.startswith("skipped") for line in result.output.splitlines())
    alone = CliRunner().invoke(app, ["hdr", str(tmp_path / "va" / "clip.mp4"), "-o", str(tmp_path / "alone")])
    assert alone.exit_code == 0
    for k in (1, 2, 3):  # va's frames, not vb's (moved further) written over them
        name = f"frame_00000{k}.exr"
        written, reference = read_exr(out / "clip" / name)[0], read_exr(tmp_path / "alone" / name)[0]
        np.testing.assert_array_equal(written, reference)


def test_cli_fails_the_later_of_two_images_with_one_name(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _write_png(tmp_path / folder / "x.png", _sun_image())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["hdr", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)])
    assert result.exit_code == 1
    assert f"failed {tmp_path / 'b' / 'x.png'}" in result.output and "also the output of" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["x.exr"]


def test_an_image_refused_for_its_preview_keeps_no_claim_on_its_exr(tmp_path):
    """b.jpg's preview b.png is an input: b.jpg is refused, and b.png must be refused for its own reason
    (its preview is itself), not as 'also the output of b.jpg', which wrote nothing."""
    from PIL import Image

    Image.fromarray(_sun_image()).save(tmp_path / "b.jpg", quality=95)
    _write_png(tmp_path / "b.png", _sun_image())
    args = ["hdr", str(tmp_path / "b.jpg"), str(tmp_path / "b.png"), "-o", str(tmp_path), "--preview",
            "--overwrite"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "also the output of" not in result.output
    assert result.output.count("would replace the input") == 2
