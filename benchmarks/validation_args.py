"""The command-line options shared by the benchmarks that score profiles on the corpus's validation photos."""

from __future__ import annotations

import argparse
from pathlib import Path

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
