"""The committed shell completions are current, and completing through the app works without heavy imports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "rawpy", "cv2", "pyexiv2")

# Runs the console-script entry point as a shell's completion hook does, then reports what got imported.
_DRIVER = """
import sys
from xfix.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def _tool():
    spec = importlib.util.spec_from_file_location("make_completions", REPO / "tools" / "make_completions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_committed_completion_is_current(tmp_path, shell):
    tool = _tool()
    tool.write_all(tmp_path)
    committed = REPO / "completions" / f"xfix.{shell}"
    assert committed.read_text() == (tmp_path / f"xfix.{shell}").read_text(), (
        f"{committed} is stale: run `python tools/make_completions.py`"
    )
    assert "_XFIX_COMPLETE" in committed.read_text() and "xfix" in committed.read_text()


def _complete_bash(words: str) -> tuple[list[str], str]:
    """Ask the app for bash completions of `words` (the last word is the one being completed)."""
    cword = len(words.split(" ")) - 1
    env = dict(os.environ, _XFIX_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER.format(heavy=HEAVY)], env=env, capture_output=True, text=True, cwd=REPO
    )
    heavy = done.stderr.rsplit("HEAVY=", 1)[-1].strip()
    return done.stdout.split(), heavy


def test_bash_completion_completes_commands_and_choices_without_heavy_imports():
    commands, heavy = _complete_bash("xfix ")
    assert {"correct", "info", "profiles"} <= set(commands)
    assert heavy == ""
    options, _ = _complete_bash("xfix correct --dev")
    assert options == ["--device"]
    choices, heavy = _complete_bash("xfix correct --device ")
    assert choices == ["auto", "cpu", "cuda", "mps"]
    assert heavy == ""
    formats, _ = _complete_bash("xfix correct --format t")
    assert formats == ["tiff"]


def test_profile_names_complete_from_the_profile_files():
    names, heavy = _complete_bash("xfix correct --profile cl")
    assert names == ["classic"]
    assert heavy == ""  # profile files are found, not loaded: no torch


def test_profile_completion_leaves_out_hdr_profiles_and_completes_eval():
    """`xfix correct` refuses the HDR profiles (`xfix hdr` runs them), so they are not offered."""
    assert _complete_bash("xfix correct --profile hdr")[0] == []
    names, heavy = _complete_bash("xfix eval ")
    assert {"classic", "msec"} <= set(names) and not any(n.startswith("hdr-") for n in names)
    assert _complete_bash("xfix eval cl")[0] == ["classic"] and heavy == ""


def test_train_completes_the_profiles_it_trains():
    names, heavy = _complete_bash("xfix train wh")
    assert names == ["whitebox", "whitebox-raw"] and heavy == ""
