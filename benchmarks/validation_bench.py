"""What the benchmarks that score profiles on the corpus's validation photos share: their command-line
options, running each profile, and writing the rows as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def validation_parser(doc: str, json_name: str) -> argparse.ArgumentParser:
    """--profiles, --data, --limit, --max-side, --threads and --json (default bench-out/`json_name`)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--profiles", default="msec,whitebox,highlights")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "corpus" / "train_photos")
    parser.add_argument("--limit", type=int, default=100, help="validation photos (72 in the corpus)")
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=REPO / "bench-out" / json_name)
    return parser


def rows_of_profiles(args: argparse.Namespace, bench_profile: Callable[..., list[dict]]) -> list[dict]:
    """bench_profile(name, args)'s rows for each profile of --profiles in turn, on --threads torch threads."""
    import torch

    torch.set_num_threads(args.threads)
    return [row for name in args.profiles.split(",") if name for row in bench_profile(name, args)]


def write_rows(path: Path, rows: list[dict]) -> None:
    """{"rows": rows} as JSON at `path` (its folder made when missing), and a line saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"\nwrote {path}")
