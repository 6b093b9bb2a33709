"""The whitebox profile: each editing operation against its numpy reference, gradients, the Edit record
(lookup tables, JSON), the XMP sidecar, the `xfix correct --edits/--xmp/--steps` -> `xfix apply` round trip,
variants, and the shipped weights on synthetic badly exposed photos."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import cv2
import fixtures
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from xfix.archs.whitebox import ORDER, build
from xfix.cli import app
from xfix.edit import Edit, Step
from xfix.errors import InputError
from xfix.filters import OPERATIONS, luma_tensor, np_to_display, np_to_linear, run_linear
from xfix.xmp import read_xmp, temperature_tint, to_xmp

LUMA = luma_tensor("srgb")


def _values(op, seed: int, batch: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return op.from_raw(torch.randn(batch, op.raw_size, generator=generator) * 1.5)


def _numpy_args(values, b: int = 0):
    return {k: (v[b].numpy().astype(np.float64) if v[b].numel() > 1 else float(v[b]))
            for k, v in values.items()}


@pytest.mark.parametrize("name", list(OPERATIONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_operation_matches_its_numpy_reference(name, seed):
    op = OPERATIONS[name]
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.0, 1.0, (3, 9, 11))  # in the operation's domain
    values = _values(op, seed)
    x = torch.from_numpy(image).float()[None]
    got = (op.torch(x, **values, luma=LUMA) if op.needs_luma else op.torch(x, **values))[0].numpy()
    args = _numpy_args(values)
    if op.needs_luma:
        args["luma"] = LUMA.numpy().astype(np.float64)
    want = op.numpy(image, **args)
    np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_zero_network_outputs_are_the_identity(name):
    op = OPERATIONS[name]
    values = op.from_raw(torch.zeros(1, op.raw_size))
    for key, value in op.identity.items():
        np.testing.assert_allclose(values[key][0].numpy(), np.asarray(value, np.float32).reshape(-1)
                                   if np.ndim(value) else value, atol=1e-6)
    x = torch.rand(1, 3, 6, 7)
    np.testing.assert_allclose(run_linear(op, x, values, LUMA).numpy(), x.numpy(), atol=2e-5)


def test_display_conversions_are_inverse():
    u = np.linspace(0, 1, 101)
    np.testing.assert_allclose(np_to_display(np_to_linear(u)), u, atol=1e-9)
    assert np_to_display(np.array([0.18]))[0] == pytest.approx(0.46135, abs=1e-4)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_gradients_reach_every_parameter(name):
    op = OPERATIONS[name]
    raw = (torch.randn(2, op.raw_size, generator=torch.Generator().manual_seed(3)) * 0.3).requires_grad_()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 0.9 + 0.05
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    (run_linear(op, x, op.from_raw(raw), LUMA) - target).abs().mean().backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
    assert (raw.grad.abs().sum(dim=0) > 0).all(), f"{name}: some parameter gets no gradient"


def test_network_gradients_flow_and_untrained_network_is_identity():
    model = build({"width": 8, "hidden": 16}).train()
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), x, atol=1e-5)
    assert model.last_edits[0].steps == ()
    model.train()
    out = model.render(x, model.values(model.raw(x)))
    (out - x.flip(0)).abs().mean().backward()
    assert model.head[-1].weight.grad.abs().sum() > 0
    assert model.features[0][0].weight.grad is None or torch.isfinite(model.features[0][0].weight.grad).all()


def test_statistics_branch_starts_silent_and_learns():
    from xfix.archs.whitebox import adapt_weights

    torch.manual_seed(0)
    plain = build({"width": 8, "hidden": 16})
    torch.nn.init.normal_(plain.head[-1].weight, std=0.1)  # a "trained" head, so outputs are not all zero
    with_stats = build({"width": 8, "hidden": 16, "global_stats": True})
    with_stats.load_state_dict(adapt_weights(plain.state_dict(), with_stats), strict=True)
    x = torch.rand(2, 3, 40, 56)
    plain.eval(), with_stats.eval()
    assert torch.equal(with_stats.raw(x), plain.raw(x))  # the branch adds nothing until trained
    with_stats.train()
    with_stats.raw(x).square().sum().backward()
    assert with_stats.stats[-1].weight.grad.abs().sum() > 0


def _random_edit(seed: int = 0, order=ORDER) -> Edit:
    steps = []
    for name in order:
        values = _values(OPERATIONS[name], seed)
        steps.append(Step(name, {k: (v[0].tolist() if v[0].numel() > 1 else float(v[0]))
                                 for k, v in values.items()}))
    return Edit("srgb", tuple(steps))


@pytest.mark.parametrize("order", [ORDER, ("saturation", "exposure", "tone_curve", "saturation", "gamma")])
def test_lookup_tables_match_the_direct_computation(order):
    edit = _random_edit(1, order)
    x = torch.rand(1, 3, 300, 70, generator=torch.Generator().manual_seed(0))  # > one row chunk
    np.testing.assert_allclose(edit.apply(x).numpy(), edit.apply_exact(x).numpy(), atol=2e-3)


def test_network_output_is_its_edit():
    torch.manual_seed(0)
    model = build({"width": 8, "hidden": 16})
    torch.nn.init.normal_(model.head[-1].weight, std=0.3)
    model.eval()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        out = model(x)
        direct = model.render(x, model.values(model.raw(x)))
    assert len(model.last_edits[0].steps) > 3
    np.testing.assert_allclose(out.numpy(), direct.numpy(), atol=2e-3)


def test_edit_json_round_trip_and_validation(tmp_path):
    edit = _random_edit(2)
    path = edit.save(tmp_path / "a.xfix.json")
    data = json.loads(path.read_text())
    assert [op["op"] for op in data["operations"]] == list(ORDER)
    assert Edit.load(path) == edit
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(Edit.load(path).apply(x), edit.apply(x))
    with pytest.raises(ValueError, match="unknown operation 'blur'"):
        Edit.from_json({"xfix_edit": 1, "operations": [{"op": "blur"}]})
    with pytest.raises(ValueError, match="tone_curve.slopes needs a list of 8"):
        Step("tone_curve", {"slopes": [1.0, 2.0]})
    with pytest.raises(ValueError, match="exposure takes ev"):
        Step("exposure", {"stops": 1.0})
    (tmp_path / "bad.xfix.json").write_text("{not json")
    with pytest.raises(InputError, match="not a valid edit"):
        Edit.load(tmp_path / "bad.xfix.json")


def test_xmp_is_well_formed_and_carries_the_values():
    edit = Edit("srgb", (
        Step("white_balance", {"gains": [1.3, 1.0, 0.8]}),
        Step("exposure", {"ev": 1.25}),
        Step("contrast", {"amount": 0.2}),
        Step("tone_curve", {"slopes": [2, 2, 1.5, 1, 1, 0.8, 0.6, 0.5]}),
        Step("saturation", {"amount": 1.1}),
    ))  # fmt: skip
    data = to_xmp(edit)
    root = ET.fromstring(data)  # well-formed
    assert root.tag == "{adobe:ns:meta/}xmpmeta"
    attributes, curves = read_xmp(data)
    assert attributes["Exposure2012"] == "+1.25"
    assert attributes["Contrast2012"] == "+20"
    assert attributes["Saturation"] == "+10"
    assert attributes["WhiteBalance"] == "Custom" and int(attributes["Temperature"]) > 6600  # warmer
    points = curves["ToneCurvePV2012"]
    assert len(points) == 17 and points[0] == (0, 0) and points[-1] == (255, 255)
    assert all(b[1] >= a[1] for a, b in zip(points, points[1:]))
    assert points[4][1] > points[4][0]  # the curve lifts the shadows
    assert "ToneCurvePV2012Red" not in curves


def test_temperature_of_neutral_gains_is_d65():
    kelvin, tint = temperature_tint([1.0, 1.0, 1.0])
    assert abs(kelvin - 6505) < 15 and tint == 0
    assert temperature_tint([0.8, 1.0, 1.3])[0] < 6000  # cooling the photo: it was lit by warmer light
    assert temperature_tint([1.0, 1.2, 1.0])[1] < 0  # adding green: Tint towards green


# ---------------------------------------------------------------- command line


@pytest.fixture
def random_profile(tmp_path, monkeypatch):
    """A whitebox profile with small random weights (a non-trivial edit) on XFIX_PROFILE_PATH."""
    from safetensors.torch import save_file

    from xfix.profile import file_sha256

    torch.manual_seed(1)
    model = build({"width": 8, "hidden": 16})
    torch.nn.init.normal_(model.head[-1].weight, std=0.2)
    folder = tmp_path / "profiles"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "wbtest.safetensors"))
    (folder / "wbtest.toml").write_text(
        'name = "wbtest"\ndescription = "test"\narchitecture = "whitebox"\nencoding = "srgb"\n'
        f'weights = "wbtest.safetensors"\nsha256 = "{file_sha256(folder / "wbtest.safetensors")}"\n'
        '[inference]\nmode = "whole"\n[settings]\nwidth = 8\nhidden = 16\n'
    )
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(folder))
    return "wbtest"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_correct_writes_sidecars_and_apply_reproduces_the_pixels(tmp_path, random_profile):
    photo = fixtures.make_png16(tmp_path / "in.png")
    result = _invoke("correct", photo, "-o", tmp_path / "out", "--profile", random_profile, "--edits",
                     "--xmp", "--steps", "--format", "png")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    edit = Edit.load(out / "in.xfix.json")
    assert edit.source == "in.png" and len(edit.steps) > 0
    ET.fromstring((out / "in.xmp").read_bytes())
    strip = Image.open(out / "in.steps.jpg")
    assert strip.width > strip.height * len(edit.steps)
    again = _invoke("apply", out / "in.xfix.json", photo, "-o", tmp_path / "applied", "--format", "png")
    assert again.exit_code == 0, again.output
    first = cv2.imread(str(out / "in.png"), cv2.IMREAD_UNCHANGED)
    second = cv2.imread(str(tmp_path / "applied" / "in.png"), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint16 and np.array_equal(first, second)
    original = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    assert np.abs(first.astype(int) - original.astype(int)).max() > 1000  # the edit did something


def test_apply_reproduces_an_8bit_photo_written_at_8_bits(tmp_path, random_profile):
    """An 8-bit JPEG written at 8 bits would take the 8-bit route, which tabulates an edit (and crashed on
    a saved one); apply runs the edit exactly, as `correct --edits` does."""
    photo = fixtures.make_jpeg(tmp_path / "in.jpg", exif=False)
    eight_bit_png = ("--format", "png", "--bits", "8")  # lossless, so the two runs compare exactly
    result = _invoke("correct", photo, "-o", tmp_path / "out", "--profile", random_profile, "--edits",
                     *eight_bit_png)
    assert result.exit_code == 0, result.output
    again = _invoke("apply", tmp_path / "out" / "in.xfix.json", photo, "-o", tmp_path / "applied",
                    *eight_bit_png)
    assert again.exit_code == 0, again.output
    first, second = (np.asarray(Image.open(p / "in.png")).astype(int) for p in (tmp_path / "out",
                                                                             tmp_path / "applied"))
    assert np.array_equal(first, second)
    assert np.abs(first - np.asarray(Image.open(photo)).astype(int)).mean() > 2  # the edit did something


def test_a_job_whose_side_file_fails_leaves_none_of_its_files(tmp_path, random_profile, monkeypatch):
    """Image and side files are written all or none: an image without its strip would make a rerun skip the
    photo (the image exists) and never write the strip."""
    import xfix.sidecars

    photo = fixtures.make_png16(tmp_path / "in.png")
    args = ("correct", photo, "-o", tmp_path / "out", "--profile", random_profile, "--edits", "--xmp",
            "--steps", "--format", "png")

    def broken_strip(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xfix.sidecars, "steps_strip", broken_strip)
    assert _invoke(*args).exit_code == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    monkeypatch.undo()  # which also drops the fixture's profile path
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(tmp_path / "profiles"))
    assert _invoke(*args).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["in.png", "in.steps.jpg", "in.xfix.json",
                                                                     "in.xmp"]


def test_a_faded_edit_records_its_strength_and_apply_reproduces_the_pixels(tmp_path, random_profile):
    """--leave-alone fades the edit; the saved edit carries the share kept, so `xfix apply` makes the same."""
    photo = fixtures.make_png16(tmp_path / "in.png")
    result = _invoke("correct", photo, "-o", tmp_path / "out", "--profile", random_profile, "--edits",
                     "--format", "png", "--leave-alone", "0.06", "--json")
    assert result.exit_code == 0, result.output
    strength = Edit.load(tmp_path / "out" / "in.xfix.json").extra["strength"]
    assert 0.05 < strength < 0.95
    assert json.loads(result.stdout.splitlines()[0])["strength"] == pytest.approx(strength, abs=1e-4)
    again = _invoke("apply", tmp_path / "out" / "in.xfix.json", photo, "-o", tmp_path / "applied",
                    "--format", "png")
    assert again.exit_code == 0, again.output
    first, second = (cv2.imread(str(p / "in.png"), cv2.IMREAD_UNCHANGED) for p in (tmp_path / "out",
                                                                                 tmp_path / "applied"))
    assert np.array_equal(first, second)


def test_variants_are_written_with_numbered_names_and_differ(tmp_path, random_profile):
    photo = fixtures.make_png16(tmp_path / "in.png")
    result = _invoke("correct", photo, "-o", tmp_path / "out", "--profile", random_profile, "--variants", "2",
                     "--edits", "--format", "png")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    images = [cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED) for name in ("in.png", "in.v1.png", "in.v2.png")]
    assert not np.array_equal(images[1], images[2]) and not np.array_equal(images[0], images[1])
    edit = Edit.load(out / "in.v2.xfix.json")
    assert edit.extra["variant"] == 2
    again = _invoke("apply", out / "in.v2.xfix.json", photo, "-o", tmp_path / "applied", "--format", "png")
    assert again.exit_code == 0, again.output
    assert np.array_equal(cv2.imread(str(tmp_path / "applied" / "in.png"), cv2.IMREAD_UNCHANGED), images[2])


def test_a_side_file_that_exists_is_kept_unless_overwrite(tmp_path, random_profile):
    """NAME.xmp may be the photographer's Lightroom or darktable sidecar: the image's rule applies to it."""
    photo = fixtures.make_jpeg(tmp_path / "IMG.jpg")
    mine = tmp_path / "IMG.xmp"
    mine.write_text("mine\n")
    args = ("correct", photo, "-o", tmp_path, "--format", "png", "--profile", random_profile, "--xmp",
            "--json")
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "skipped" and f"{mine} exists" in result.output
    assert mine.read_text() == "mine\n" and not (tmp_path / "IMG.png").exists()
    forced = _invoke(*args, "--overwrite")
    assert forced.exit_code == 0, forced.output
    ET.fromstring(mine.read_bytes())  # asked for: replaced by the edit's Camera Raw settings


def test_side_files_take_part_in_the_batch_collision_checks(tmp_path, random_profile):
    a_jpg, a_png = fixtures.make_jpeg(tmp_path / "a.jpg"), fixtures.make_png16(tmp_path / "a.png")
    b_png = fixtures.make_png16(tmp_path / "b.png")
    result = _invoke("correct", a_jpg, a_png, b_png, "-o", tmp_path / "out", "--profile", random_profile,
                     "--edits", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["done", "failed", "done"]
    assert f"a.xfix.json is also the output of {a_jpg}" in lines[1]["error"]
    assert Edit.load(tmp_path / "out" / "a.xfix.json").source == "a.jpg"
    # A side file never replaces an input, --overwrite or not: b.png's strip would be the input b.steps.jpg.
    strip = fixtures.make_jpeg(tmp_path / "b.steps.jpg")
    original = strip.read_bytes()
    result = _invoke("correct", b_png, strip, "-o", tmp_path, "--format", "jpeg", "--profile", random_profile,
                     "--steps", "--overwrite", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["status"] == "failed" and f"would replace the input {strip}" in lines[0]["error"]
    assert strip.read_bytes() == original


def test_dry_run_lists_the_side_files(tmp_path, random_profile):
    photo = fixtures.make_jpeg(tmp_path / "IMG.jpg")
    result = _invoke("correct", photo, "-o", tmp_path / "out", "--profile", random_profile, "--dry-run",
                     "--edits", "--xmp", "--variants", "1")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    for name in ("IMG.jpg", "IMG.xfix.json", "IMG.xmp", "IMG.v1.jpg", "IMG.v1.xfix.json", "IMG.v1.xmp"):
        assert f"write {out / name}" in result.output.replace("\n", ""), name
    assert not out.exists()


def test_edits_need_a_profile_that_predicts_edits(tmp_path):
    photo = fixtures.make_png16(tmp_path / "in.png")
    result = _invoke("correct", photo, "-o", tmp_path / "out", "--profile", "classic", "--edits")
    assert result.exit_code == 2
    assert "needs a profile that predicts an edit" in result.output


def test_apply_rejects_a_file_that_is_not_an_edit(tmp_path):
    photo = fixtures.make_png16(tmp_path / "in.png")
    (tmp_path / "x.xfix.json").write_text('{"hello": 1}')
    result = _invoke("apply", tmp_path / "x.xfix.json", photo, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "not a valid edit" in result.output


def test_variants_differ_and_repeat_for_a_seed():
    torch.manual_seed(0)
    model = build({"width": 8, "hidden": 16})
    torch.nn.init.normal_(model.head[-1].weight, std=0.3)
    model.eval()
    x = torch.rand(1, 3, 32, 32)
    draws = model.sample(x, 3, seed=5)
    assert draws == model.sample(x, 3, seed=5)
    assert draws[0][0] != draws[1][0]
    with torch.no_grad():
        model(x)
    assert model.last_edits[0] == model.edits(model.values(model.raw(x)), 1)[0]  # eval stays deterministic


# ---------------------------------------------------------------- shipped weights


@pytest.mark.parametrize("ev", [-1.5, 1.5])
def test_shipped_weights_lower_the_error_of_badly_exposed_photos(ev):
    from skimage import data

    from xfix.colour import from_working
    from xfix.data.curves import tone_curve
    from xfix.data.synthesis import render_exposure
    from xfix.metrics import psnr
    from xfix.profile import Corrector, load_profile

    corrector = Corrector.load(load_profile("whitebox"), device="cpu")
    photo = np.asarray(data.astronaut()[::2, ::2], dtype=np.float32) / 255.0
    rng = np.random.default_rng(7)
    bad = render_exposure(photo, ev, rng, curve=tone_curve("srgb"), noise=False, jpeg=False)
    corrected = np.clip(from_working(corrector.apply(fixtures.display_frame(bad)).pixels, "srgb"), 0.0, 1.0)
    assert psnr(corrected, photo) > psnr(bad, photo) + 3.0
    ev_step = corrector.model.last_edits[0].value("exposure", "ev", 0.0)
    assert np.sign(ev_step) == -np.sign(ev)  # the edit reads as the photographer would expect


def test_linear_encoding_edits_apply_to_linear_light():
    """The same operations on a RAW-like (linear ProPhoto) model encoding: no sRGB transfer in or out."""
    edit = Edit("linear-prophoto", _random_edit(3).steps)
    x = torch.rand(1, 3, 40, 30, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(edit.apply(x).numpy(), edit.apply_exact(x).numpy(), atol=2e-3)
    exposure_only = Edit("linear-prophoto", (Step("exposure", {"ev": 1.0}),))
    dark = torch.full((1, 3, 2, 2), 0.1)
    assert torch.allclose(exposure_only.apply_exact(dark), dark * 2, atol=1e-6)  # below the shoulder: x 2**ev


def test_style_recipe_trains_a_critic_against_style_photos(tmp_path):
    """--style: the generator loss carries the critic's verdict, and the critic's step separates the style
    photos (warm) from the outputs."""
    from xfix.archs.whitebox import WhiteBoxRecipe

    rng = np.random.default_rng(0)
    for k in range(3):
        warm = rng.uniform(0.2, 0.8, (40, 48, 3)) * np.array([1.0, 0.8, 0.5])
        Image.fromarray((warm * 255).astype(np.uint8)).save(tmp_path / f"s{k}.png")
    torch.manual_seed(0)
    model = build({"width": 8, "hidden": 16}).train()
    recipe = WhiteBoxRecipe(model, {"style": str(tmp_path), "style_weight": 1.0})
    assert set(recipe.extra_modules()) == {"critic"}
    inp = torch.rand(4, 3, 64, 64)
    loss, logs = recipe.loss(model, inp, inp, 0)
    loss.backward()
    assert "adv" in logs and model.head[-1].weight.grad.abs().sum() > 0
    for step in range(20):
        logs = recipe.after_step(model, inp, inp, step)
    assert logs["wasserstein"] > 0  # the critic tells the warm style photos from the outputs


def test_style_needs_the_srgb_encoding(tmp_path):
    from xfix.archs.whitebox import WhiteBox, WhiteBoxRecipe
    from xfix.errors import UsageError

    model = WhiteBox("linear-prophoto", ORDER, 64, 8, 16, 0.0)
    with pytest.raises(UsageError, match="srgb"):
        WhiteBoxRecipe(model, {"style": str(tmp_path)})



# ---------------------------------------------------------------- the RAW-like model (whitebox-raw)


def test_raw_architecture_is_whitebox_on_linear_prophoto():
    from xfix.archs import get_architecture

    arch = get_architecture("whitebox-raw")
    assert arch.encoding == "linear-prophoto" and arch.defaults == get_architecture("whitebox").defaults
    model = arch.build({"width": 8, "hidden": 16}).eval()
    assert model.encoding == "linear-prophoto"
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():
        assert torch.allclose(model(x), x, atol=2e-3)  # untrained: the identity edit, on linear light


@pytest.mark.parametrize("ev", [-1.5, 1.5])
def test_shipped_raw_weights_lower_the_error_of_badly_exposed_raw_photos(ev):
    from skimage import data

    from xfix.colour import from_working
    from xfix.data.curves import tone_curve
    from xfix.data.synthesis import unprocess
    from xfix.metrics import psnr
    from xfix.profile import Corrector
    from xfix.restraint import brightness_change

    def display(linear: np.ndarray) -> np.ndarray:
        return np.clip(from_working(linear, "srgb"), 0.0, 1.0)

    corrector = Corrector.load("whitebox-raw", device="cpu")
    photo = np.asarray(data.astronaut()[::2, ::2], dtype=np.float32) / 255.0
    bad, target, _ = unprocess(photo, np.random.default_rng(7), ev=ev, curve=tone_curve("srgb"), noise=False)
    corrected = corrector.apply(fixtures.raw_frame(bad)).pixels
    assert psnr(display(corrected), display(target)) > psnr(display(bad), display(target)) + 3.0
    # it brightens through its tone curve as much as through exposure: judge the light, not one slider
    assert brightness_change(bad, corrected, "linear-prophoto") * ev < -0.5


def test_raw_profile_corrects_a_dng_and_apply_reproduces_it(tmp_path, dng_file):
    result = _invoke("correct", dng_file, "-o", tmp_path / "out", "--profile", "whitebox-raw", "--edits",
                     "--format", "tiff")
    assert result.exit_code == 0, result.output
    edit = Edit.load(tmp_path / "out" / "raw.xfix.json")
    assert edit.encoding == "linear-prophoto" and edit.profile == "whitebox-raw"
    again = _invoke("apply", tmp_path / "out" / "raw.xfix.json", dng_file, "-o", tmp_path / "applied",
                    "--format", "tiff")
    assert again.exit_code == 0, again.output
    first, second = (cv2.imread(str(p / "raw.tif"), cv2.IMREAD_UNCHANGED) for p in (tmp_path / "out",
                                                                                  tmp_path / "applied"))
    assert first.dtype == np.uint16 and np.array_equal(first, second)
