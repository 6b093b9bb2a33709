"""The command line through Typer's CliRunner: options, stdout/stderr, exit codes, info, profiles."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import fixtures
import numpy as np
import pytest
from typer.testing import CliRunner

from xfix import __version__
from xfix.cli import app
from xfix.inspect import exposure_text, measure_exposure, verdict

REPO = Path(__file__).resolve().parents[1]
JSON_KEYS = fixtures.RESULT_JSON_KEYS
CORRECT_OPTIONS = (
    "--out", "--recursive", "--null", "--profile", "--device", "--format", "--bits", "--quality",
    "--output-space", "--input-space", "--suffix", "--overwrite", "--dry-run", "--json", "--quiet",
    "--verbose", "--strip-gps", "--max-megapixels", "--strength", "--debug",
)  # fmt: skip


def invoke(*args, input: str | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture
def shoot(tmp_path):
    """in/a.jpg, in/day1/b.jpg, in/day1/deep/c.png."""
    (tmp_path / "in" / "day1" / "deep").mkdir(parents=True)
    return [
        fixtures.make_jpeg(tmp_path / "in" / "a.jpg"),
        fixtures.make_jpeg(tmp_path / "in" / "day1" / "b.jpg", orientation=1),
        fixtures.make_png16(tmp_path / "in" / "day1" / "deep" / "c.png"),
    ]


# ---------------------------------------------------------------- start-up


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"xfix {__version__}\n"


def test_help_and_version_do_not_import_the_heavy_stack():
    code = """
import sys
from typer.testing import CliRunner
from xfix.cli import app
for args in (["--help"], ["correct", "--help"], ["info", "--help"], ["profiles", "--help"], ["--version"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
heavy = [m for m in ("torch", "rawpy", "cv2", "pyexiv2") if m in sys.modules]
assert not heavy, heavy
"""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr


def test_help_lists_the_commands_and_options():
    assert all(c in invoke("--help").stdout for c in ("correct", "info", "profiles"))
    text = invoke("correct", "--help").stdout
    for option in CORRECT_OPTIONS:
        assert option in text, option


# ---------------------------------------------------------------- correct


def test_json_lines_on_stdout_and_summary_on_stderr(shoot, tmp_path):
    result = invoke("correct", shoot[0], shoot[2], "-o", tmp_path / "out", "--json", "--profile", "classic")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [set(line) for line in lines] == [JSON_KEYS, JSON_KEYS]
    assert [line["status"] for line in lines] == ["done", "done"]
    assert lines[0]["output"] == str(tmp_path / "out" / "a.jpg") and lines[0]["profile"] == "classic"
    assert lines[1]["output"] == str(tmp_path / "out" / "c.png") and lines[1]["error"] is None
    assert "summary" in result.stderr and "done" in result.stderr
    again = json_lines(invoke("correct", shoot[0], "-o", tmp_path / "out", "--json", "--profile",
                              "classic").stdout)
    assert again[0]["status"] == "skipped" and str(tmp_path / "out" / "a.jpg") in again[0]["note"]


def test_plain_lines_without_a_terminal_and_nothing_with_quiet(shoot, tmp_path):
    result = invoke("correct", shoot[0], "-o", tmp_path / "out")
    assert result.exit_code == 0
    assert f"[1/1] done    {shoot[0]} -> {tmp_path / 'out' / 'a.jpg'}" in result.stderr
    assert result.stdout == ""  # without --json nothing goes to stdout
    quiet = invoke("correct", shoot[0], "-o", tmp_path / "out2", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""
    assert (tmp_path / "out2" / "a.jpg").exists()


def test_recursive_mirrors_sub_folders(shoot, tmp_path):
    out = tmp_path / "out"
    result = invoke("correct", "-r", tmp_path / "in", "-o", out)
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.jpg", "day1/b.jpg", "day1/deep/c.png"]


def test_without_recursive_a_folder_gives_its_own_images_only(shoot, tmp_path):
    out = tmp_path / "out"
    assert invoke("correct", tmp_path / "in", "-o", out).exit_code == 0
    assert sorted(p.name for p in out.rglob("*")) == ["a.jpg"]


def test_paths_from_stdin_lines_and_nul(shoot, tmp_path):
    result = invoke("correct", "-", "-o", tmp_path / "out", "--json", input=f"{shoot[0]}\n{shoot[1]}\n")
    assert result.exit_code == 0 and [line["status"] for line in json_lines(result.stdout)] == [
        "done",
        "done",
    ]
    result = invoke(
        "correct", "-0", "-", "-o", tmp_path / "out0", "--json", input=f"{shoot[2]}\0{shoot[0]}\0"
    )
    assert [Path(line["output"]).name for line in json_lines(result.stdout)] == ["c.png", "a.jpg"]


def test_dry_run_writes_nothing(shoot, tmp_path):
    out = tmp_path / "out"
    result = invoke("correct", *shoot, "-o", out, "--dry-run", "--json")
    assert result.exit_code == 0
    assert [line["status"] for line in json_lines(result.stdout)] == ["dry-run"] * 3
    assert "would write" in result.stderr and not out.exists()


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.parametrize(
    "args, code",
    [
        (["--set", "foo=1"], 2),
        (["--edits"], 2),  # classic predicts no edit
        (["--device", "cuda"], 2),
        (["-o", "{tmp}/a_file"], 1),  # each file fails: the output folder is a file
        (["-o", "{tmp}/a_file/sub"], 1),
    ],
)
def test_dry_run_refuses_what_the_real_run_refuses(shoot, tmp_path, args, code):
    if "cuda" in args and not _no_cuda():
        pytest.skip("CUDA is available here")
    (tmp_path / "a_file").write_text("not a folder")
    args = [a.format(tmp=tmp_path) for a in args]
    dry = invoke("correct", shoot[0], "-o", tmp_path / "out", "--profile", "classic", *args, "--dry-run")
    real = invoke("correct", shoot[0], "-o", tmp_path / "out", "--profile", "classic", *args)
    assert (dry.exit_code, real.exit_code) == (code, code), (dry.output, real.output)
    error = dry.stderr.splitlines()[0]
    assert error in real.stderr and "Traceback" not in dry.output  # the same reason, word for word
    assert not (tmp_path / "out").exists() and (tmp_path / "a_file").read_text() == "not a folder"


def test_existing_outputs_are_skipped_unless_overwrite(shoot, tmp_path):
    out = tmp_path / "out"
    invoke("correct", shoot[0], "-o", out)
    again = invoke("correct", shoot[0], "-o", out, "--json")
    assert again.exit_code == 0 and json_lines(again.stdout)[0]["status"] == "skipped"
    forced = invoke("correct", shoot[0], "-o", out, "--json", "--overwrite")
    assert forced.exit_code == 0 and json_lines(forced.stdout)[0]["status"] == "done"


def test_output_equal_to_input_is_refused(shoot):
    source = shoot[0]
    original = source.read_bytes()
    result = invoke("correct", source, "-o", source.parent)
    assert result.exit_code == 1 and "replace the input" in result.stderr
    assert source.read_bytes() == original


@pytest.mark.parametrize(
    "args",
    [
        ["--profile", "no-such-profile"],
        ["--format", "gif"],
        ["--quality", "0"],
        ["--device", "tpu"],
        ["--bits", "12"],
        ["--format", "jpeg", "--bits", "16"],
        ["--profile", "classic", "--set", "foo=bar"],
        ["--profile", "msec", "--pyramid-scale", "1,1,1,1,1,1,1,1,1"],
        ["--profile", "classic", "--fusion"],  # msec's option, refused like --edits is
        ["--profile", "classic", "--pyramid-scale", "1,1,1,1"],
    ],
)
def test_usage_errors_exit_2_without_traceback(shoot, tmp_path, args):
    result = invoke("correct", shoot[0], "-o", tmp_path / "out", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_unknown_profile_lists_the_valid_ones(shoot, tmp_path):
    result = invoke("correct", shoot[0], "-o", tmp_path / "out", "--profile", "no-such-profile")
    assert "no-such-profile" in result.stderr and "classic" in result.stderr


def test_no_inputs_exit_2(tmp_path):
    assert invoke("correct").exit_code == 2
    (tmp_path / "empty").mkdir()
    empty = invoke("correct", tmp_path / "empty", "-o", tmp_path / "out")
    assert empty.exit_code == 2 and "no images" in empty.stderr
    assert invoke("correct", "-", "-o", tmp_path / "out", input="").exit_code == 2


def test_unexpected_error_is_one_line_unless_debug(shoot, tmp_path, monkeypatch):
    import xfix.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(xfix.pipeline, "correct", broken)
    result = invoke("correct", shoot[0], "-o", tmp_path / "out")
    assert result.exit_code == 1 and "RuntimeError: kaboom" in result.stderr
    assert "Traceback" not in result.output
    debug = invoke("correct", shoot[0], "-o", tmp_path / "out", "--debug")
    assert isinstance(debug.exception, RuntimeError)


def test_unavailable_device_is_a_usage_error(shoot, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = invoke("correct", shoot[0], "-o", tmp_path / "out", "--device", "cuda")
    assert result.exit_code == 2 and "cuda" in result.stderr.lower()


# ---------------------------------------------------------------- info


def test_measures_known_values():
    from xfix import colour

    grey = np.full((8, 8, 3), 0.5, np.float32)
    facts = measure_exposure(grey, colour.to_working(grey, "srgb"))
    assert facts["mean_luminance"] == pytest.approx(0.21404, abs=1e-3)
    assert (facts["clipped"], facts["crushed"], facts["verdict"]) == (0.0, 0.0, "normal")
    half = np.zeros((8, 8, 3), np.uint8)
    half[:4] = 255  # top half clipped white, bottom half black
    facts = measure_exposure(half, colour.to_working(half, "srgb"))
    assert (facts["clipped"], facts["crushed"]) == (0.5, 0.5)
    assert facts["mean_luminance"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize(
    "mean, clipped, crushed, expected",
    [(0.01, 0, 0.9, "under"), (0.2, 0, 0, "normal"), (0.6, 0.3, 0, "over"), (0.25, 0.2, 0, "over"),
     (0.1, 0, 0.4, "under"), (0.03, 0.05, 0.2, "under"), (0.15, 0.05, 0.1, "normal")],
)  # fmt: skip
def test_verdict_thresholds(mean, clipped, crushed, expected):
    assert verdict(mean, clipped, crushed) == expected


def test_exposure_in_photographers_notation():
    exif = {"exposure_time": 0.008, "f_number": 5.6, "iso": 400, "exposure_bias": -2 / 3}
    assert exposure_text(exif) == "1/125 s, f/5.6, ISO 400, -0.67 EV"
    assert exposure_text({"exposure_time": 2.0, "exposure_bias": 0.0}) == "2 s, +0.00 EV"
    assert exposure_text({"iso": None}) == "-"


def test_info_json(tmp_path):
    dark = fixtures.make_jpeg(tmp_path / "dark.jpg", (fixtures.jpeg_pixels() * 0.15).astype(np.uint8))
    bright = fixtures.make_jpeg(tmp_path / "bright.jpg", np.full((48, 64, 3), 255, np.uint8), exif=False)
    result = invoke("info", dark, bright, "--json")
    assert result.exit_code == 0, result.output
    dark_facts, bright_facts = json_lines(result.stdout)
    assert (dark_facts["format"], dark_facts["bit_depth"], dark_facts["colour_space"]) == ("jpeg", 8, "srgb")
    assert dark_facts["exif"]["exposure_time"] == pytest.approx(1 / 125)
    assert dark_facts["exif"]["iso"] == 400 and dark_facts["exif"]["f_number"] == pytest.approx(5.6)
    assert dark_facts["verdict"] == "under" and bright_facts["verdict"] == "over"
    assert bright_facts["clipped"] > 0.9 and dark_facts["mean_luminance"] < 0.02


def test_info_table_and_a_bad_file(tmp_path):
    good = fixtures.make_jpeg(tmp_path / "good.jpg")
    bad = fixtures.make_text_as_jpg(tmp_path / "notes.jpg")
    result = invoke("info", good, bad)
    assert result.exit_code == 1
    assert "verdict" in result.stdout and "clipped highlights" in result.stdout
    failures = [line for line in result.stderr.splitlines() if str(bad) in line]
    assert len(failures) == 1 and "text" in failures[0]


def test_info_json_reports_a_bad_file_on_stdout_too(tmp_path):
    good = fixtures.make_jpeg(tmp_path / "good.jpg")
    bad = fixtures.make_text_as_jpg(tmp_path / "notes.jpg")
    result = invoke("info", good, bad, "--json")
    assert result.exit_code == 1
    good_facts, bad_facts = json_lines(result.stdout)
    assert good_facts["path"] == str(good) and "error" not in good_facts
    assert bad_facts["path"] == str(bad) and "text" in bad_facts["error"]


# ---------------------------------------------------------------- profiles


def test_profiles_json_and_table():
    result = invoke("profiles", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json_lines(result.stdout)}
    assert rows["classic"]["loads"] is True and rows["classic"]["architecture"] == "classic"
    keys = {"name", "path", "description", "architecture", "weights", "loads", "reason"}
    assert set(rows["classic"]) == keys and rows["classic"]["path"] == str(REPO / "profiles" / "classic.toml")
    table = invoke("profiles")
    assert table.exit_code == 0 and "classic" in table.stdout and "yes" in table.stdout


def test_profiles_reports_a_broken_profile_beside_the_good_ones(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text('name = "broken"\n')
    (tmp_path / "heavy.toml").write_text(
        'name = "heavy"\ndescription = "needs weights"\narchitecture = "classic"\nencoding = "srgb"\n'
        f'weights = "missing.safetensors"\nsha256 = "{"0" * 64}"\n[inference]\nmode = "whole"\n'
    )
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(tmp_path))
    result = invoke("profiles", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json_lines(result.stdout)}
    assert rows["classic"]["loads"] is True
    assert rows["broken"]["loads"] is False and "missing key" in rows["broken"]["reason"]
    assert rows["heavy"]["loads"] is False and "not found" in rows["heavy"]["reason"]
    assert rows["heavy"]["weights"].endswith("missing.safetensors")


def test_profiles_names_the_file_of_a_broken_profile_shadowing_a_shipped_one(tmp_path, monkeypatch):
    shadow = tmp_path / "classic.toml"
    shadow.write_text('name = "classic"\n')
    monkeypatch.setenv("XFIX_PROFILE_PATH", str(tmp_path))
    rows = {row["name"]: row for row in json_lines(invoke("profiles", "--json").stdout)}
    assert rows["classic"]["loads"] is False and rows["classic"]["path"] == str(shadow)
    table = CliRunner().invoke(app, ["profiles"], env={"COLUMNS": "500"})  # wide: no folded cells
    assert table.exit_code == 0 and f"no: {shadow}: missing key" in table.stdout


def test_correct_refuses_an_hdr_profile(tmp_path):
    source = fixtures.make_jpeg(tmp_path / "photo.jpg")
    result = invoke("correct", source, "-o", tmp_path / "out", "--profile", "hdr-default")
    assert result.exit_code == 2 and "xfix hdr" in result.stderr and not (tmp_path / "out").exists()


def test_a_closed_stdout_ends_quietly():
    """`xfix profiles --json | head -1`: the reader is gone before the output is written; not an internal
    error."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    command = [sys.executable, "-m", "xfix", "profiles", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    process.stdout.close()  # as `head` exits: every write to stdout now fails with EPIPE
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1 and stderr == ""


def test_progress_bar_on_a_terminal_shows_failures_and_rate():
    import io

    from rich.console import Console

    from xfix.discover import Job
    from xfix.pipeline import FileResult, Summary
    from xfix.progress import Reporter, choose_mode, summary_table

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    assert choose_mode(console, quiet=False) == "bar" and choose_mode(console, quiet=True) == "quiet"
    ok = FileResult(Path("a.jpg"), Path("out/a.jpg"), "classic", "cpu", 0.5, "done", megapixels=24.0)
    bad = FileResult(Path("b.jpg"), None, "classic", "cpu", 0.1, "failed", error="truncated or corrupt JPEG")
    with Reporter(2, console, mode="bar") as reporter:
        for index, result in enumerate((ok, bad)):
            reporter.start(index, Job(result.input))
            reporter.result(result)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # colours and cursor moves off
    assert "[2/2] failed  b.jpg: truncated or corrupt JPEG" in text
    assert "out/a.jpg" not in text  # a done file only advances the bar
    assert "MP/s" in text and "2/2" in text
    Console(file=stream, width=120).print(summary_table(Summary((ok, bad), 2.0), extra_warnings=1))
    assert "12.0 MP/s" in stream.getvalue()


def test_a_broken_pipe_that_is_not_stdout_is_an_internal_error():
    """Only a closed stdout ends quietly: a pipe of the program's own (ffmpeg's, say) breaking is a failure
    to report."""
    import io

    import typer
    from rich.console import Console

    from xfix.cli_common import exit_codes

    console = Console(file=io.StringIO())
    with pytest.raises(typer.Exit) as stopped:
        with exit_codes(False, console):
            raise BrokenPipeError(32, "Broken pipe")
    assert stopped.value.exit_code == 1 and "internal error (BrokenPipeError" in console.file.getvalue()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_nohup_keeps_a_hangup_ignored():
    """`nohup xfix correct ...` starts with SIGHUP ignored: closing the terminal must not stop the batch."""
    code = ("import os, signal\nfrom xfix.cli_common import stop_signals_interrupt\n"
            "with stop_signals_interrupt():\n"
            "    os.kill(os.getpid(), signal.SIGHUP)\n"
            "    print('survived')\n")
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)

    def run(ignore_hangup: bool) -> subprocess.CompletedProcess:
        start = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if ignore_hangup else None
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              preexec_fn=start, timeout=60)

    assert run(ignore_hangup=True).stdout == "survived\n"
    stopped = run(ignore_hangup=False)
    assert stopped.returncode != 0 and "Terminated" in stopped.stderr


def test_a_corrupt_tiff_gives_one_line_not_the_decoder_s_own(tmp_path):
    """tifffile logs its complaints as warnings; the failure line already says what is wrong."""
    import tifffile

    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.uint16))
    data = bytearray(path.read_bytes())
    data[4:8] = b"\xff\xff\xff\x00"  # the first page's offset points past the end
    path.write_bytes(bytes(data))
    path_var = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path_var)
    command = [sys.executable, "-m", "xfix", "correct", str(path), "-o", str(tmp_path / "out"), "--profile",
               "classic", "--json", "--quiet"]  # a process of its own: pytest's log capture hides the leak
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and "corrupt TIFF" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"failed {path}: truncated or corrupt TIFF"]
