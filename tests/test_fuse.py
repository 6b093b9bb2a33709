"""`xfix fuse`: Mertens weights and pyramid blending on hand-computed cases, exposure order, alignment,
deghosting, grouping of a shoot into brackets, EXIF from the middle exposure, and failures that write
nothing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.fixtures import make_jpeg, make_truncated, write_tags
from xfix.bracket import FuseConfig, group_by_count, group_by_time, run_fuse
from xfix.cli import app
from xfix.data.curves import tone_curve
from xfix.data.sice import exposure_stack
from xfix.errors import UsageError
from xfix.fuse import alignment_bits, estimate_shift, exposure_order, fuse, ghost_weights, shift_image
from xfix.fusion import mertens_weights, pyramid_blend
from xfix.metrics import psnr, ssim


def textured(h: int = 64, w: int = 96) -> np.ndarray:
    """A mid-tone photo-like image: colour ramps with a sine texture, (H, W, 3) float32 in [0.2, 0.8]."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    texture = np.sin(x * 40) * np.sin(y * 30)
    base = np.stack([0.55 + 0.15 * x, 0.45 + 0.1 * y, 0.5 - 0.1 * x], -1) + 0.15 * texture[..., None]
    return np.clip(base, 0.0, 1.0).astype(np.float32)


def random_scene(size: int = 128, seed: int = 0) -> np.ndarray:
    """Blurred noise in [0.2, 0.8]: texture at every scale, for the bitmap alignment."""
    import cv2

    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    grey = cv2.GaussianBlur(noise, (0, 0), 2.0)
    grey = 0.2 + 0.6 * (grey - grey.min()) / (grey.max() - grey.min())
    return np.repeat(grey[..., None], 3, axis=2) * np.float32([1.0, 0.9, 0.8])


# ---------------------------------------------------------------- weights and blending


def test_mertens_weight_of_one_pixel_by_hand():
    image = np.full((3, 3, 3), 0.4, np.float32)
    image[1, 1] = (0.7, 0.5, 0.3)  # grey 0.5 among grey 0.4 neighbours
    weights = mertens_weights(torch.from_numpy(image).permute(2, 0, 1)[None])  # (1, 1, 3, 3)
    contrast = abs(4 * 0.4 - 4 * 0.5)
    saturation = math.sqrt((0.2**2 + 0 + 0.2**2) / 3)
    exposedness = math.exp(-(0.2**2) / (2 * 0.2**2)) ** 2  # 0.7 and 0.3 each 0.2 from 0.5; 0.5 gives 1
    assert weights[0, 0, 1, 1].item() == pytest.approx(contrast * saturation * exposedness, rel=1e-5)
    assert weights[0, 0, 0, 0].item() == 0.0  # a grey pixel has no saturation


def test_pyramid_blend_of_constant_images_is_their_weighted_mean():
    images = torch.stack([torch.full((3, 20, 30), 0.2), torch.full((3, 20, 30), 0.6)])  # (2, 3, H, W)
    weights = torch.stack([torch.full((1, 20, 30), 1.0), torch.full((1, 20, 30), 3.0)])
    blended = pyramid_blend(images, weights, levels=4)
    assert torch.allclose(blended, torch.full_like(blended, (0.2 * 1 + 0.6 * 3) / 4), atol=1e-6)


def test_pyramid_blend_with_one_hot_weights_returns_that_image():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((3, 3, 33, 47), dtype=np.float32))
    weights = torch.zeros(3, 1, 33, 47)
    weights[1] = 1.0
    assert torch.allclose(pyramid_blend(images, weights, levels=5)[0], images[1], atol=1e-5)


def test_synthetic_bracket_fuses_closer_to_the_original_than_any_frame():
    photo = textured()
    stack = exposure_stack(photo, tone_curve("srgb"), (-2.0, -1.0, 1.0, 2.0))
    fused = fuse(list(stack), align=False, deghost=False).image
    assert psnr(fused, photo) > max(psnr(frame, photo) for frame in stack) + 6.0
    assert ssim(fused, photo) > max(ssim(frame, photo) for frame in stack)


# ---------------------------------------------------------------- order, alignment, deghosting


def test_exposure_order_uses_exif_exposure_when_every_frame_has_it():
    frames = [np.full((4, 4, 3), v, np.float32) for v in (0.5, 0.2, 0.8)]
    assert exposure_order(frames) == [1, 0, 2]
    assert exposure_order(frames, exposures=[1 / 30, 1 / 500, 1 / 125]) == [1, 2, 0]
    assert exposure_order(frames, exposures=[1 / 30, None, 1 / 125]) == [1, 0, 2]  # incomplete EXIF: means


def test_alignment_finds_a_shift_between_different_exposures():
    scene = random_scene()
    bright = exposure_stack(scene, tone_curve("srgb"), (1.0,))[0]
    moved = shift_image(bright, 3, -2)
    assert estimate_shift(scene, moved, max_bits=4) == (-3, 2)
    assert alignment_bits(720, 1080) == 3 and alignment_bits(4000, 6000) == 5 and alignment_bits(40, 40) == 1


def test_deghosting_keeps_a_moving_object_from_the_reference_only():
    scene = textured(96, 96)
    stack = exposure_stack(scene, tone_curve("srgb"), (-1.0, 0.0, 1.0))
    ghosty = stack.copy()
    ghosty[2, 30:50, 30:50] = (0.1, 0.1, 0.9)  # something blue passed through the bright frame only
    ghost = ghost_weights(list(ghosty), reference=1)
    assert ghost[2, 35:45, 35:45].max() < 0.05 and ghost[1].min() == 1.0
    assert ghost[2, :20, :20].min() > 0.9 and ghost[0].min() > 0.9  # elsewhere the frames agree
    clean = fuse(list(stack), align=False, deghost=False).image
    with_ghost = fuse(list(ghosty), align=False, deghost=False).image
    deghosted = fuse(list(ghosty), align=False, deghost=True).image
    # the blue cast of the square region: a ghost adds it; deghosted, the region is as blue as the scene (a
    # little darker than the clean three-frame fusion there, as the bright frame no longer contributes)
    blue = lambda image: float((image[30:50, 30:50, 2] - image[30:50, 30:50, 0]).mean())  # noqa: E731
    assert blue(with_ghost) - blue(clean) > 0.15
    assert abs(blue(deghosted) - blue(clean)) < 0.05


# ---------------------------------------------------------------- grouping


def test_group_by_count_uses_natural_name_order():
    names = [Path(f"IMG_{i}.jpg") for i in (10, 2, 1, 11, 3, 12)]
    groups = group_by_count(names, 3)
    assert [[p.name for p in g] for g in groups] == [
        ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"], ["IMG_10.jpg", "IMG_11.jpg", "IMG_12.jpg"]]
    with pytest.raises(UsageError, match="do not split"):
        group_by_count(names[:5], 3)


def test_group_by_time_splits_at_gaps():
    times = {"a.jpg": 0.0, "b.jpg": 1.0, "c.jpg": 2.5, "d.jpg": 30.0, "e.jpg": 31.0, "f.jpg": 31.2}
    paths = [Path(n) for n in ("f.jpg", "a.jpg", "d.jpg", "b.jpg", "e.jpg", "c.jpg")]
    groups = group_by_time(paths, 5.0, times=lambda p: times[p.name])
    assert [[p.name for p in g] for g in groups] == [["a.jpg", "b.jpg", "c.jpg"], ["d.jpg", "e.jpg", "f.jpg"]]
    assert len(group_by_time(paths, 1.2, times=lambda p: times[p.name])) == 3  # 1.0 -> 2.5 is a gap too


def test_group_by_time_reads_exif_capture_times(tmp_path):
    paths = []
    for i, stamp in enumerate(("10:00:00", "10:00:01", "10:00:02", "10:05:00", "10:05:01", "10:05:02")):
        path = make_jpeg(tmp_path / f"f{i}.jpg", exif=False)
        write_tags(path, {"Exif.Photo.DateTimeOriginal": f"2024:05:01 {stamp}"})
        paths.append(path)
    assert [len(g) for g in group_by_time(paths, 10.0)] == [3, 3]


# ---------------------------------------------------------------- files in, file out


def bracket_files(folder: Path, order=(2, 0, 1)) -> list[Path]:
    """Three JPEGs of one scene at EV -1, 0, +1 with matching EXIF exposure times, written in `order`."""
    folder.mkdir(parents=True, exist_ok=True)
    stack = exposure_stack(textured(48, 64), tone_curve("srgb"), (-1.0, 0.0, 1.0))
    times = ("1/250", "1/125", "1/60")
    paths = []
    for i in order:
        pixels = np.round(stack[i] * 255).astype(np.uint8)
        path = make_jpeg(folder / f"frame_{len(paths)}.jpg", pixels, exif=False)
        write_tags(path, {"Exif.Image.Model": "Bracket Cam", "Exif.Photo.ExposureTime": times[i],
                          "Exif.Photo.FNumber": "8/1", "Exif.Photo.ISOSpeedRatings": "100"})
        paths.append(path)
    return paths


def read_exif(path: Path) -> dict:
    import pyexiv2

    with pyexiv2.Image(str(path)) as image:
        return image.read_exif()


def test_fused_file_carries_the_middle_exposure_exif(tmp_path):
    paths = bracket_files(tmp_path / "in")
    out = tmp_path / "out" / "fused.jpg"
    [result] = run_fuse(FuseConfig(brackets=(tuple(paths),), out=out))
    assert result.status == "done" and result.output == out
    assert result.reference == paths[2]  # written third, exposed in the middle
    exif = read_exif(out)
    assert exif["Exif.Photo.ExposureTime"] == "1/125" and exif["Exif.Image.Model"] == "Bracket Cam"
    assert "fuse" in exif["Exif.Image.Software"]


def test_cli_fuses_folders_and_a_corrupt_frame_fails_without_output(tmp_path):
    good = bracket_files(tmp_path / "good")
    bad = bracket_files(tmp_path / "bad")
    make_truncated(bad[1], bad[1], keep=0.3)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["fuse", str(tmp_path / "good"), str(tmp_path / "bad"), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "frame_1.jpg" in result.output
    assert sorted(p.name for p in out.iterdir()) == [f"{good[2].stem}_fused.jpg"]  # no partial or temp file


def test_cli_groups_a_shoot_by_count(tmp_path):
    paths = bracket_files(tmp_path / "shoot", order=(0, 1, 2))
    more = bracket_files(tmp_path / "more", order=(0, 1, 2))
    for i, path in enumerate(more):
        path.rename(tmp_path / "shoot" / f"frame_{3 + i}.jpg")
    out = tmp_path / "out"
    args = ["fuse", str(tmp_path / "shoot"), "--groups", "3", "-o", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["frame_1_fused.jpg", "frame_4_fused.jpg"]
    bad = CliRunner().invoke(app, ["fuse", str(tmp_path / "shoot"), "--groups", "4", "-o", str(out)])
    assert bad.exit_code == 2 and "do not split" in bad.output
    assert paths  # the first bracket stayed in place


def test_config_refuses_a_file_output_for_several_brackets_and_bad_sizes(tmp_path):
    two = ((Path("a1.jpg"), Path("a2.jpg")), (Path("b1.jpg"), Path("b2.jpg")))
    with pytest.raises(UsageError, match="give a folder"):
        FuseConfig(brackets=two, out=tmp_path / "fused.jpg")
    with pytest.raises(UsageError, match="2-9 frames"):
        FuseConfig(brackets=((Path("only.jpg"),),), out=tmp_path)
    assert FuseConfig(brackets=two, out=tmp_path).output_for(two[0], Path("a2.jpg")) == tmp_path / "a2_fused.jpg"
