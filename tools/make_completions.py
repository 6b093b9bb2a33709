"""Regenerate completions/xfix.{bash,zsh,fish} from the Typer app.

Each script is what the app itself prints when asked by its completion variable (`_XFIX_COMPLETE=source_bash
xfix`), so the committed files are exactly the scripts Typer/click would install. Run after changing the
CLI's commands or options; tests/test_completions.py fails while the committed files are stale.

    python tools/make_completions.py [--out completions]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")
PROG_NAME = "xfix"
COMPLETE_VAR = "_XFIX_COMPLETE"
REPO = Path(__file__).resolve().parents[1]


def render(shell: str) -> str:
    """The completion script for `shell` as the app prints it, from a fresh interpreter as a shell runs it."""
    env = dict(os.environ, **{COMPLETE_VAR: f"source_{shell}"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "xfix"], env=env, capture_output=True, text=True, check=False, cwd=REPO
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"no {shell} completion script from xfix (exit {done.returncode}): {done.stderr}")
    return done.stdout.rstrip("\n") + "\n"


def write_all(out_dir: Path) -> list[Path]:
    """Write every shell's script into `out_dir` as xfix.<shell>; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for shell in SHELLS:
        path = out_dir / f"{PROG_NAME}.{shell}"
        path.write_text(render(shell), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "completions", help="folder to write into")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
