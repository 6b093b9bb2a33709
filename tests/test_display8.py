"""The 8-bit display route: its kernels against the float code they replace, the Corrector's 8-bit path
against its float path, and the pipeline choosing the route only where it gives the same pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import fixtures
import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from xfix import decode, display8, encode, linearize
from xfix.frame import Decoded, SourceInfo
from xfix.guided import block_grid_table, fit_grid, slice_grid, with_strength
from xfix.pipeline import CorrectConfig, correct
from xfix.profile import Corrector


def photo(scale: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8: scikit-image's coffee, resized by `scale`."""
    image = skimage.data.coffee()
    if scale == 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def identity_table(n: int) -> np.ndarray:
    axis = np.linspace(0.0, 1.0, n, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)


def decoded(samples: np.ndarray) -> Decoded:
    h, w = samples.shape[:2]
    return Decoded(pixels=samples, source=SourceInfo(Path("photo.jpg"), "jpeg", 8, w, h, 3))


# ---------------------------------------------------------------- kernels


def test_identity_table_without_dither_returns_the_samples():
    samples = photo()
    assert np.array_equal(display8.apply_lut_u8(samples, identity_table(17), dither_seed=None), samples)


def test_dither_moves_codes_by_at_most_one_keeps_the_mean_and_spares_black_and_white():
    samples = np.tile(np.arange(256, dtype=np.uint8), (400, 1))[..., None].repeat(3, axis=2)  # every code
    out = display8.apply_lut_u8(samples, identity_table(9), dither_seed=3).astype(int)
    diff = out - samples
    assert np.abs(diff).max() == 1 and 0.2 < np.mean(diff != 0) < 0.3  # a +-1 LSB triangular dither
    assert abs(diff.mean()) < 2e-3  # unbiased
    assert (out[samples == 0] == 0).all() and (out[samples == 255] == 255).all()
    again = display8.apply_lut_u8(samples, identity_table(9), dither_seed=3)
    other = display8.apply_lut_u8(samples, identity_table(9), dither_seed=4)
    assert np.array_equal(again, out) and not np.array_equal(other, out)  # reproducible for a seed


def test_table_interpolates_a_colour_transform_and_clips():
    samples = photo(0.25)
    matrix = np.array([[1.2, 0.1, 0.0], [0.0, 0.9, 0.2], [0.1, 0.0, 1.4]], np.float32)
    table = identity_table(5) @ matrix.T  # linear in RGB: trilinear interpolation is exact
    out = display8.apply_lut_u8(samples, table, dither_seed=None).astype(int)
    expected = np.clip(np.rint(samples.astype(np.float32) @ matrix.T), 0, 255)
    assert np.abs(out - expected).max() <= 1 and out.max() == 255  # clipped, not wrapped


def test_grid_slicing_matches_the_float_slicer():
    samples = photo()
    rng = np.random.default_rng(0)
    low = cv2.resize(samples, (100, 75), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    low_out = np.clip(low ** rng.uniform(0.6, 0.9, (75, 100, 1)).astype(np.float32) * 1.1, 0, 1)
    grid = fit_grid(low, low_out, cell=8)
    block = 4
    reference = slice_grid(grid, samples.astype(np.float32) / 255, block=block)
    expected = np.rint(np.clip(reference, 0, 1) * 255)
    table = block_grid_table(grid, *samples.shape[:2], block)
    out = display8.slice_grid_u8(samples, table, block, dither_seed=None).astype(int)
    assert np.abs(out - expected).max() <= 1 and np.mean(out != expected) < 0.01


def test_non_finite_entries_give_black_or_white_not_garbage():
    samples = photo(0.25)
    table = identity_table(3)
    table[..., 0] = np.nan  # red is NaN everywhere
    table[..., 1] = np.inf
    out = display8.apply_lut_u8(samples, table, dither_seed=None)
    assert (out[..., 0] == 0).all() and (out[..., 1] == 255).all()
    grid = np.full((-(-samples.shape[0] // 4), -(-samples.shape[1] // 4), 2, 12), np.nan, np.float32)
    assert (display8.slice_grid_u8(samples, grid, 4, dither_seed=None) == 0).all()


def test_grid_at_strength_zero_is_the_identity():
    samples = photo(0.5)
    low = cv2.resize(samples, (80, 60), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    grid = with_strength(fit_grid(low, low * 0.5), 0.0)
    table = block_grid_table(grid, *samples.shape[:2], 3)
    assert np.array_equal(display8.slice_grid_u8(samples, table, 3, dither_seed=None), samples)


def test_kernels_refuse_what_they_cannot_use():
    samples = photo(0.25)
    with pytest.raises(ValueError, match="uint8"):
        display8.apply_lut_u8(samples.astype(np.uint16), identity_table(3))
    with pytest.raises(ValueError, match="N, N, N, 3"):
        display8.apply_lut_u8(samples, identity_table(3)[:2])
    with pytest.raises(ValueError, match="does not fit"):
        display8.slice_grid_u8(samples, np.zeros((2, 2, 8, 12), np.float32), 4)
    with pytest.raises(ValueError, match="shrinks"):
        display8.area_average(samples, samples.shape[0] + 1, 10)


def test_area_average_matches_opencv_and_torch_without_rounding():
    samples = photo(0.7)
    h, w = samples.shape[:2]
    as_float = samples.astype(np.float32) / 255
    exact = display8.area_average(samples, 97, 131)
    assert np.abs(exact - cv2.resize(as_float, (131, 97), interpolation=cv2.INTER_AREA)).max() < 1e-5
    adaptive = display8.area_average(samples, 64, 64, adaptive=True)
    pooled = F.interpolate(torch.from_numpy(as_float).permute(2, 0, 1)[None], size=(64, 64), mode="area")
    assert np.abs(adaptive - pooled[0].permute(1, 2, 0).numpy()).max() < 1e-5
    assert exact.dtype == np.float32 and len(np.unique(exact)) > 256  # not rounded to codes


def test_kernels_compile_without_a_writable_cache_folder(monkeypatch):
    from numba.core import caching

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])  # numba finds nowhere to cache

    @display8._compiled()
    def twice(x):
        return 2 * x

    assert twice(21) == 42


# ---------------------------------------------------------------- Corrector


@pytest.mark.parametrize("name", ["msec", "whitebox", "classic"])
@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_8bit_route_gives_the_pixels_of_the_float_route(name, strength):
    corrector = Corrector.load(name, device="cpu")
    samples = photo(2.0) // 2  # 1200x800 (above every work size), dark: every profile changes it a lot
    image = decoded(samples)
    frame8 = linearize.keep_display(image, "srgb")
    assert frame8 is not None and corrector.takes_display(frame8)
    fast = corrector.apply_display(frame8, strength=strength, dither_seed=None).samples.astype(int)
    frame = corrector.apply(linearize.linearize(image), strength=strength)
    slow = encode.quantize(frame, bits=8, output_space="srgb", grey=False, dither_seed=None).astype(int)
    assert np.abs(fast - samples).mean() > 5  # the correction did something
    # off by one code at most, on few codes and without bias: less than the dither itself adds
    assert np.abs(fast - slow).max() <= 1 and np.mean(fast != slow) < 0.1 and abs(np.mean(fast - slow)) < 0.02


def test_routes_a_corrector_does_not_take():
    msec = Corrector.load("msec", device="cpu")
    small = linearize.keep_display(decoded(photo(0.25)), "srgb")  # 150x100: no larger than the work size
    assert not msec.takes_display(small)
    assert Corrector.load("whitebox", device="cpu").takes_display(small)  # a table works at any size
    assert linearize.keep_display(decoded(photo().astype(np.uint16) * 257), "srgb") is None  # 16-bit
    assert linearize.keep_display(decoded(photo()), "srgb", input_space="adobergb") is None  # other space
    assert not Corrector.load("highlights", device="cpu").takes_display(linearize.keep_display(
        decoded(photo()), "srgb"))  # tiled, not guided


# ---------------------------------------------------------------- pipeline


@pytest.fixture
def big_jpeg(tmp_path):
    """A 900x600 sRGB JPEG, one stop dark, with the fixtures' EXIF (Orientation 1)."""
    folder = tmp_path / "in"
    folder.mkdir()
    return fixtures.make_jpeg(folder / "big.jpg", photo(1.5) // 2, orientation=1)


def run(source: Path, out: Path, **options):
    options.setdefault("profile", "msec")
    summary = correct(CorrectConfig(jobs=(source,), out_dir=out, device="cpu", **options))
    assert [r.status for r in summary.results] == ["done"], [r.error for r in summary.results]
    return summary.results[0]


def test_pipeline_takes_the_8bit_route_and_keeps_metadata(big_jpeg, tmp_path, monkeypatch):
    import pyexiv2

    from xfix.icc import identify_space

    floats = run(big_jpeg, tmp_path / "float", display_route=False).output
    monkeypatch.setattr(Corrector, "apply", lambda *a, **k: pytest.fail("the float route ran"))
    fast = run(big_jpeg, tmp_path / "fast").output
    a, b = (cv2.imread(str(p)).astype(int) for p in (fast, floats))
    assert np.abs(a - b).mean() < 1.0  # the same picture, up to dither and JPEG
    assert np.abs(a - cv2.imread(str(big_jpeg)).astype(int)).mean() > 5
    with pyexiv2.Image(str(fast)) as image:
        assert image.read_exif()["Exif.Image.Make"] == "XfixCam"
        assert identify_space(image.read_icc()) == "srgb"


@pytest.mark.parametrize(
    "options",
    [{"fmt": "png"}, {"fmt": "tiff", "bits": 16}, {"output_space": "adobergb"}, {"display_route": False}],
)
def test_pipeline_keeps_the_float_route_where_the_8bit_one_would_differ(big_jpeg, tmp_path, monkeypatch,
                                                                        options):
    monkeypatch.setattr(Corrector, "apply_display", lambda *a, **k: pytest.fail("the 8-bit route ran"))
    result = run(big_jpeg, tmp_path / "out", **options)
    assert result.output.exists()


def test_pipeline_writes_8bit_png_on_the_8bit_route(big_jpeg, tmp_path, monkeypatch):
    monkeypatch.setattr(Corrector, "apply", lambda *a, **k: pytest.fail("the float route ran"))
    result = run(big_jpeg, tmp_path / "out", fmt="png", bits=8)
    pixels = cv2.imread(str(result.output), cv2.IMREAD_UNCHANGED)
    assert pixels.dtype == np.uint8 and pixels.shape == (600, 900, 3)


def test_a_corrupt_jpeg_fails_cleanly_on_the_8bit_route(big_jpeg, tmp_path):
    broken = fixtures.make_truncated(big_jpeg, tmp_path / "broken.jpg", keep=0.3)
    summary = correct(CorrectConfig(jobs=(broken,), out_dir=tmp_path / "out", profile="msec", device="cpu"))
    assert summary.results[0].status == "failed" and summary.results[0].error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_decode_of_a_real_jpeg_feeds_the_route(big_jpeg):
    frame8 = linearize.keep_display(decode.decode(big_jpeg), "srgb")
    assert frame8 is not None and frame8.samples.shape == (600, 900, 3) and frame8.space == "srgb"
