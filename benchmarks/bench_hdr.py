"""HDR reconstruction bars of issue 6: quality on held-out HDR scenes, temporal stability, seconds per frame.

    python benchmarks/bench_hdr.py [--hdr DIR] [--weights default,compressed,video] [--pan-frames 32]
                                   [--speed 1080p,4k] [--threads 2] [--json bench-out/hdr.json]

1. Quality: every held-out scene (`xfix.data.hdr.HOLDOUT`) at exposures where 2, 5 and 10% of the pixels
   saturate, 8-bit sRGB; log PSNR over the saturated pixels and PU21 PSNR of the whole image, for the naive
   baseline (inverse curve) and each weight set (`xfix.hdr_eval` documents the metrics). Bar: +3 dB over the
   baseline on saturated pixels. The `best-gain` row is a reference that knows the truth: the baseline with
   its saturated pixels multiplied by the single best gain per image.
2. Video: a 32-frame sub-pixel pan across two held-out scenes; temporal instability of the ground truth, the
   baseline and each weight set. Bar: video weights <= 1.2 x ground truth, and below default weights.
3. Speed: seconds per frame (median of 3 after a warm-up) at 1920x1080 and 3840x2160 on the CPU.
A benchmark, not a test: it prints a table, writes JSON and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from time import perf_counter

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = {"1080p": (1080, 1920), "4k": (2160, 3840)}


def quality(scenes: dict, methods: dict) -> list[dict]:
    from xfix.hdr_eval import evaluate_scene

    rows = []
    for name, scene in scenes.items():
        for row in evaluate_scene(scene, methods):
            rows.append({"scene": name, **row})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean over scenes and exposures per method, with the gain over the naive baseline."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    mean = {m: {k: float(np.mean([r[k] for r in rows if r["method"] == m]))
                for k in ("log_psnr_saturated", "pu21_psnr")} for m in methods}  # fmt: skip
    return [{"method": m, **mean[m],
             "gain_saturated_db": mean[m]["log_psnr_saturated"] - mean["naive"]["log_psnr_saturated"],
             "gain_pu21_db": mean[m]["pu21_psnr"] - mean["naive"]["pu21_psnr"]} for m in methods]  # fmt: skip


def speed(reconstructor, sizes: list[str], repeat: int = 3) -> dict:
    from xfix.hdr import reconstruct

    rng = np.random.default_rng(0)
    reconstruct(reconstructor, rng.random((256, 256, 3), dtype=np.float32))  # warm-up
    out = {}
    for label in sizes:
        h, w = SIZES[label]
        image = rng.random((h, w, 3), dtype=np.float32) ** 2
        times = []
        for _ in range(repeat):
            start = perf_counter()
            reconstruct(reconstructor, image)
            times.append(perf_counter() - start)
        out[label] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hdr", type=Path, default=REPO.parent / "shared" / "corpus" / "hdr")
    parser.add_argument("--weights", default="default,compressed,video")
    parser.add_argument("--pan-frames", type=int, default=32)
    parser.add_argument("--pan-scenes", default="CandleGlass,GoldenGate")
    parser.add_argument("--speed", default="1080p,4k", help="sizes to time ('' skips)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--json", type=Path, default=REPO / "bench-out" / "hdr.json")
    args = parser.parse_args()

    import torch

    from xfix.data.hdr import list_hdr, load_hdr, scene_name, split_hdr
    from xfix.hdr import load_reconstructor, reconstruct
    from xfix.hdr_eval import evaluate_pan, naive

    torch.set_num_threads(args.threads)
    held_out = split_hdr(list_hdr(args.hdr))[1]
    scenes = {scene_name(p): load_hdr(p, args.max_side) for p in held_out}
    sets = [w for w in args.weights.split(",") if w]
    reconstructors = {w: load_reconstructor(w, device="cpu") for w in sets}
    methods = {"naive": naive, **{w: (lambda x, r=r: reconstruct(r, x)) for w, r in reconstructors.items()}}

    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} torch threads",
                    "load_average": os.getloadavg()}
    report["quality"] = quality(scenes, methods)
    report["quality_summary"] = summarise(report["quality"])
    print("quality (mean over held-out scenes and exposures 2/5/10% saturated)")
    print(f"{'method':<12}{'logPSNR sat':>12}{'gain':>8}{'PU21 PSNR':>11}{'gain':>8}")
    for row in report["quality_summary"]:
        print(f"{row['method']:<12}{row['log_psnr_saturated']:>12.2f}{row['gain_saturated_db']:>8.2f}"
              f"{row['pu21_psnr']:>11.2f}{row['gain_pu21_db']:>8.2f}")
    report["pan"] = {}
    for name in [n for n in args.pan_scenes.split(",") if n in scenes]:
        report["pan"][name] = evaluate_pan(scenes[name], methods, count=args.pan_frames)
    print("\ntemporal instability on a pan (mean |d log| per frame over saturated pixels)")
    for name, pan in report["pan"].items():
        cells = "  ".join(f"{k} {v:.4f}" for k, v in pan.items() if k not in ("frames", "saturated_share"))
        print(f"{name}: {cells}")
    sizes = [s for s in args.speed.split(",") if s]
    if sizes:
        report["seconds_per_frame"] = speed(reconstructors[sets[0]], sizes)
        timings = ", ".join(f"{k} {v:.2f}" for k, v in report["seconds_per_frame"].items())
        print(f"\nseconds per frame (CPU): {timings}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
