"""What a profile's leave_alone costs and gains, exposure level by exposure level.

    python benchmarks/bench_leave_alone.py [--profiles msec,whitebox,highlights] [--limit 100]
                                           [--stops 0.25] [--json bench-out/leave_alone.json]

`xfix eval` scores the MSEC levels {-1.5, -1, 0, +1, +1.5} EV. A fade of small corrections helps at 0 EV and
must cost little at +-1 and +-1.5; its price is paid at the levels between, where a photo needs a small
correction, so this also renders every validation photo at -0.5 and +0.5 EV (the same camera curve per
photo as the eval, seeds of their own). Each profile runs as `xfix eval` runs it, once with leave_alone 0
and once for each `--stops` value (default: the profile's own); a profile's `brighten_limit` and
`second_opinion` apply to the faded runs, not to the one without the fade. Per level: PSNR to the original
photo of identity, of the profile without the fade and with each value, and the mean share of the
correction kept.
A benchmark, not a test: it prints a table, writes JSON and asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from validation_bench import rows_of_profiles, validation_parser, write_rows  # noqa: E402  (beside it)

LEVELS = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


def bench_profile(name: str, args) -> list[dict]:
    from xfix.evaluate import EvalConfig, _through_frame, synthetic_scenes
    from xfix.metrics import psnr
    from xfix.profile import Corrector, load_profile

    profile = load_profile(name)
    stops = [float(s) for s in args.stops.split(",")] if args.stops else [profile.inference.leave_alone]
    def restrained(leave_alone: float) -> dict:
        return {"leave_alone": leave_alone} if leave_alone else {"leave_alone": 0.0, "brighten_limit": None}

    correctors = {s: Corrector.load(profile, device="cpu", inference_overrides=restrained(s))
                  for s in dict.fromkeys([0.0, *stops])}  # fmt: skip
    scores: dict = {ev: {"identity": [], **{s: [] for s in correctors}, "weight": {s: [] for s in stops}}
                    for ev in LEVELS}  # fmt: skip
    config = EvalConfig(name, data=args.data, limit=args.limit, max_side=args.max_side)
    for _, target, _, inputs in synthetic_scenes(config, LEVELS):
        for ev, inp in inputs.items():
            scores[ev]["identity"].append(psnr(inp, target))
            for s, corrector in correctors.items():
                kept = []
                out = _through_frame(lambda frame: _kept(corrector.apply(frame), kept), inp)
                scores[ev][s].append(psnr(out, target))
                if s in stops:
                    scores[ev]["weight"][s].append(kept[0])
    rows = []
    for ev in LEVELS:
        cell = scores[ev]
        row = {"profile": name, "ev": ev, "n": len(cell["identity"]),
               "identity": float(np.mean(cell["identity"])), "unfaded": float(np.mean(cell[0.0]))}
        for s in stops:
            row[f"faded_{s:g}"] = float(np.mean(cell[s]))
            row[f"weight_{s:g}"] = float(np.mean(cell["weight"][s]))
        rows.append(row)
    return rows


def _kept(frame, kept: list):
    """`frame`, noting the share of the correction it carries in `kept`."""
    kept.append(frame.strength)
    return frame


def main() -> None:
    parser = validation_parser(__doc__, "leave_alone.json")
    parser.add_argument("--stops", default="", help="comma-separated leave_alone values (default: each "
                        "profile's own)")
    args = parser.parse_args()

    rows = rows_of_profiles(args, bench_profile)
    for name in dict.fromkeys(r["profile"] for r in rows):
        mine = [r for r in rows if r["profile"] == name]
        faded_keys = [k for k in mine[0] if k.startswith(("faded_", "weight_"))]
        print(f"\n{name}: PSNR to the original (dB) per exposure; weight = share of the correction kept")
        print(f"{'EV':>6}{'n':>5}{'identity':>10}{'unfaded':>10}" + "".join(f"{k:>14}" for k in faded_keys))
        for r in mine:
            print(f"{r['ev']:>+6.1f}{r['n']:>5}{r['identity']:>10.2f}{r['unfaded']:>10.2f}"
                  + "".join(f"{r[k]:>14.2f}" for k in faded_keys))
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
