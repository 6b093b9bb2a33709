"""Profiles on camera-linear ("RAW-like") inputs, as `xfix correct` gives them a RAW file.

    python benchmarks/bench_raw.py [--profiles whitebox-raw,whitebox] [--limit 100]
                                   [--json bench-out/raw.json]

Each validation photo is unprocessed as the linear profiles' training pairs are (`xfix.data.synthesis.
unprocess`: camera curve inverted, white balance divided out, exposed at the MSEC levels, sensor noise,
14-bit clipping, the gains re-applied as dcraw does) into a Frame of linear ProPhoto RGB, one seed per photo
and level. Each profile corrects that Frame as `xfix correct` would: a linear profile reads it as it is, a
display-referred one reads its neutral base rendering. Each is scored against what it aims at, in 16-bit
sRGB: a linear profile against the photo's scene-linear light, a display one against the base rendering of
that light (what the camera would have rendered, correctly exposed). "identity" is the input against the
same target. PSNR and CIEDE2000 per group (under -1.5/-1, normal 0, over +1/+1.5 EV).
A benchmark, not a test: it prints a table, writes JSON and asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from validation_bench import rows_of_profiles, validation_parser, write_rows  # noqa: E402  (beside it)

GROUPS = {"under": (-1.5, -1.0), "normal": (0.0,), "over": (1.0, 1.5)}
_SEED = 7  # unprocess draws: apart from the eval's synthetic renders


def raw_scenes(args):
    """{ev: (input Frame, target Frame)} for each validation photo, linear ProPhoto RGB."""
    from xfix.data.dataset import list_photos, load_photo, split_photos, to_float
    from xfix.data.synthesis import unprocess
    from xfix.frame import Frame, SourceInfo

    _, val = split_photos(list_photos(args.data))
    for index, path in enumerate(val[: args.limit]):
        photo = to_float(load_photo(path, args.max_side))
        source = SourceInfo(path, "dng", 16, photo.shape[1], photo.shape[0], 3)
        pairs = {}
        for k, ev in enumerate(ev for levels in GROUPS.values() for ev in levels):
            rng = np.random.default_rng([_SEED, index, k])
            inp, target, _ = unprocess(photo, rng, ev=ev)
            pairs[ev] = tuple(Frame(pixels=p, source=source) for p in (inp, target))
        yield pairs


def display(frame) -> np.ndarray:
    """A Frame as 16-bit sRGB, scaled to [0, 1]."""
    from xfix.encode import quantize

    return quantize(frame, bits=16, output_space="srgb", grey=False).astype(np.float32) / 65535.0


def bench_profile(name: str, args) -> list[dict]:
    from xfix.colour import RGB_SPACES
    from xfix.metrics import delta_e2000, psnr
    from xfix.profile import Corrector

    corrector = Corrector.load(name, device="cpu")
    linear = RGB_SPACES[corrector.profile.encoding].transfer == "linear"

    def aim(frame):
        # a display profile at strength 0 gives the frame's base rendering, the look it corrects towards
        return display(frame if linear else corrector.apply(frame, strength=0.0))

    scores = {(method, g): [] for method in (name, "identity") for g in GROUPS}
    for pairs in raw_scenes(args):
        for ev, (inp, target) in pairs.items():
            group = next(g for g, levels in GROUPS.items() if ev in levels)
            want = aim(target)
            for method, out in ((name, display(corrector.apply(inp))), ("identity", aim(inp))):
                scores[method, group].append((psnr(out, want), delta_e2000(out, want)))
    return [
        {"profile": name, "method": method, "target": "scene-linear" if linear else "base rendering",
         "group": group, "n": len(cell), "psnr": float(np.mean([c[0] for c in cell])),
         "deltae": float(np.mean([c[1] for c in cell]))}
        for (method, group), cell in scores.items()
    ]  # fmt: skip


def main() -> None:
    parser = validation_parser(__doc__, "raw.json")
    parser.set_defaults(profiles="whitebox-raw,whitebox")
    args = parser.parse_args()

    rows = rows_of_profiles(args, bench_profile)
    header = ("profile", "method", "target", "group", "n", "PSNR", "ΔE00")
    print("\n{:14s} {:14s} {:15s} {:7s} {:>4s} {:>7s} {:>6s}".format(*header))
    for r in rows:
        print(f"{r['profile']:14s} {r['method']:14s} {r['target']:15s} {r['group']:7s} {r['n']:4d} "
              f"{r['psnr']:7.2f} {r['deltae']:6.2f}")
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
