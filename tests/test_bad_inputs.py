"""Bad input gets one clear line and loses nothing: the rest of the batch is processed, exit code 1 (130 for
Ctrl-C, 143 for SIGTERM), and no partial or temporary file is left in the output folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import fixtures
import pytest
from typer.testing import CliRunner

from xfix.cli import app

REPO = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def lines_naming(text: str, path: Path) -> list[str]:
    return [line for line in text.splitlines() if str(path) in line]


def everything_in(folder: Path) -> list[str]:
    """Every entry below `folder`, hidden ones included (a leftover temp file is hidden)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def assert_complete_jpeg(path: Path, shape=(64, 48, 3)) -> None:
    import imageio.v3 as iio

    assert iio.imread(path).shape == shape


@pytest.fixture
def batch(tmp_path):
    """A good JPEG first and last, every kind of bad file in between: kind -> (path, words of the reason)."""
    folder = tmp_path / "in"
    folder.mkdir()
    good_tiff = fixtures.make_tiff16(tmp_path / "whole.tif")
    good_dng = fixtures.make_dng(tmp_path / "whole.dng")
    jpeg = fixtures.make_jpeg(folder / "a_good.jpg")
    bad = {
        "empty": (fixtures.make_empty(folder / "empty.jpg"), ("empty",)),
        "truncated jpeg": (fixtures.make_truncated(jpeg, folder / "cut.jpg"), ("truncated", "corrupt")),
        "truncated tiff": (fixtures.make_truncated(good_tiff, folder / "cut.tif"), ("truncated", "corrupt")),
        "truncated dng": (fixtures.make_truncated(good_dng, folder / "cutraw.dng"), ("truncated", "corrupt")),
        "text as jpg": (fixtures.make_text_as_jpg(folder / "notes.jpg"), ("text", "not an image")),
        "png bomb": (fixtures.make_png_bomb_header(folder / "bomb.png"), ("max-megapixels", "MP")),
        "missing": (folder / "missing.jpg", ("no such file",)),
    }
    last = fixtures.make_jpeg(folder / "z_good.jpg")
    return jpeg, bad, last


def test_each_bad_input_gets_one_line_and_the_batch_goes_on(batch, tmp_path):
    first, bad, last = batch
    out = tmp_path / "out"
    result = invoke("correct", first, *(path for path, _ in bad.values()), last, "-o", out)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for kind, (path, words) in bad.items():
        lines = lines_naming(result.stderr, path)
        assert len(lines) == 1, (kind, lines)
        assert "failed" in lines[0] and any(w.lower() in lines[0].lower() for w in words), (kind, lines[0])
    assert everything_in(out) == ["a_good.jpg", "z_good.jpg"]
    assert_complete_jpeg(out / "a_good.jpg")
    assert_complete_jpeg(out / "z_good.jpg")


def test_json_marks_the_bad_files_failed(batch, tmp_path):
    import json

    first, bad, last = batch
    result = invoke("correct", first, bad["empty"][0], last, "-o", tmp_path / "out", "--json", "--quiet")
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["done", "failed", "done"] and result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and "empty.jpg" in result.stderr  # --quiet: failures only


def _without_dac_override() -> list[str] | None:
    """A command prefix that runs a child without root's power to read and write any file, or None."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def invoke_as_a_user(*args) -> tuple[int, str]:
    """(exit code, stderr) of `xfix ARGS` with file permissions enforced: in-process for a normal user; for
    root (which reads and writes anything) in a child process without that capability."""
    if os.geteuid() != 0:
        result = invoke(*args)
        return result.exit_code, result.stderr
    prefix = _without_dac_override()
    if prefix is None:
        pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    cmd = [*prefix, sys.executable, "-m", "xfix", *(str(a) for a in args)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return done.returncode, done.stderr


def test_unreadable_file(tmp_path):
    good = fixtures.make_jpeg(tmp_path / "good.jpg")
    secret = fixtures.make_jpeg(tmp_path / "secret.jpg")
    secret.chmod(0)
    out = tmp_path / "out"
    try:
        code, stderr = invoke_as_a_user("correct", good, secret, "-o", out)
    finally:
        secret.chmod(0o644)
    assert code == 1, stderr
    lines = lines_naming(stderr, secret)
    assert len(lines) == 1 and "permission" in lines[0].lower(), lines
    assert everything_in(out) == ["good.jpg"]


def test_output_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    good = fixtures.make_jpeg(tmp_path / "good.jpg")
    other = fixtures.make_png16(tmp_path / "other.png")
    result = invoke("correct", good, other, "-o", blocker / "out")
    assert result.exit_code == 1
    for source in (good, other):
        lines = lines_naming(result.stderr, source)
        assert len(lines) == 1 and "output folder" in lines[0], lines
    assert blocker.read_text() == "not a folder"


def test_read_only_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    good = fixtures.make_jpeg(tmp_path / "good.jpg")
    try:
        code, stderr = invoke_as_a_user("correct", good, "-o", out)
    finally:
        out.chmod(0o755)
    assert code == 1, stderr
    lines = lines_naming(stderr, good)
    assert len(lines) == 1 and "permission denied" in lines[0].lower(), lines
    assert everything_in(out) == []


def test_ctrl_c_in_a_stage_exits_130_and_keeps_the_finished_file(tmp_path, monkeypatch):
    import xfix.encode

    sources = [fixtures.make_jpeg(tmp_path / f"{name}.jpg") for name in ("a", "b", "c")]
    real, calls = xfix.encode.encode, []

    def interrupt_second(frame, **kwargs):
        calls.append(frame.source.path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(frame, **kwargs)

    monkeypatch.setattr(xfix.encode, "encode", interrupt_second)
    out = tmp_path / "out"
    result = invoke("correct", *sources, "-o", out)
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert len(calls) == 2  # the third file was never started
    assert everything_in(out) == ["a.jpg"]
    assert_complete_jpeg(out / "a.jpg")


def test_ctrl_c_during_the_write_leaves_no_temp_file(tmp_path, monkeypatch):
    import stat

    sources = [fixtures.make_jpeg(tmp_path / f"{name}.jpg") for name in ("a", "b")]
    real_fsync, file_syncs = os.fsync, []

    def interrupt_second_file(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):  # the temp file's data (folder syncs pass through)
            file_syncs.append(fd)
            if len(file_syncs) == 2:
                raise KeyboardInterrupt
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", interrupt_second_file)
    out = tmp_path / "out"
    result = invoke("correct", *sources, "-o", out)
    assert result.exit_code == 130
    assert len(file_syncs) == 2  # the interrupt really came mid-write, after the temp file had its data
    assert everything_in(out) == ["a.jpg"]
    assert_complete_jpeg(out / "a.jpg")


STOP_MID_WRITE = """
import os, signal, stat, sys
real_fsync, synced, stop = os.fsync, [], getattr(signal, sys.argv[1])

def stop_in_the_second_write(fd):
    if stat.S_ISREG(os.fstat(fd).st_mode):  # the temporary file's data (folder syncs pass through)
        synced.append(fd)
        if len(synced) == 2:
            os.kill(os.getpid(), stop)  # as cron, systemd or `timeout` would
    return real_fsync(fd)

os.fsync = stop_in_the_second_write
from xfix.cli import main
sys.argv = ["xfix", *sys.argv[2:]]
main()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_during_the_write_leaves_no_temp_file(tmp_path, name):
    """A real signal in a child process, sent from inside the second file's write (not after a guessed
    delay): the batch stops as for Ctrl-C, with exit code 128 + the signal's number."""
    sources = [fixtures.make_jpeg(tmp_path / f"{n}.jpg") for n in ("a", "b", "c")]
    out = tmp_path / "out"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    args = ["correct", *map(str, sources), "-o", str(out), "--profile", "classic"]
    done = subprocess.run([sys.executable, "-c", STOP_MID_WRITE, name, *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 128 + getattr(signal, name), done.stderr
    assert f"stopped by {name}" in done.stderr and "Traceback" not in done.stderr
    assert not [p for p in out.iterdir() if ".xfix-tmp-" in p.name], everything_in(out)
    assert everything_in(out) in (["a.jpg"], ["a.jpg", "b.jpg"])  # c.jpg never started
    for path in out.iterdir():
        assert_complete_jpeg(path)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_stop_signal_handlers_are_the_previous_ones_again_afterwards():
    from xfix.cli_common import Terminated, stop_signals_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as stopped, stop_signals_interrupt():
        signal.raise_signal(signal.SIGHUP)
    assert stopped.value.signum == signal.SIGHUP and isinstance(stopped.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before


def test_bad_pixels_never_reach_disk(tmp_path):
    """A decode failure writes nothing, not even an empty output or a mirrored folder's file."""
    bad = fixtures.make_truncated(fixtures.make_jpeg(tmp_path / "full.jpg"), tmp_path / "half.jpg", keep=0.3)
    original = bad.read_bytes()
    out = tmp_path / "out"
    result = invoke("correct", bad, "-o", out, "--overwrite")
    assert result.exit_code == 1
    assert [p for p in everything_in(out) if not (out / p).is_dir()] == []
    assert bad.read_bytes() == original  # the input is never touched
