"""How much of a profile's error is its judgement of the photo's brightness.

    python benchmarks/bench_brightness.py [--profiles msec,whitebox,highlights] [--limit 100]
                                          [--json bench-out/brightness.json]

Every validation photo is rendered at the MSEC levels as `xfix eval` renders it, and each profile runs
without its leave_alone fade (the network's own judgement). The brightness error of an output is log2 of its
mean linear luminance over the original's. It splits into a scene part (the mean over the five exposures of
one photo: the brightness the profile believes the scene has, whatever the exposure) and a residual (how far
each exposure's output is from that belief). Per level, PSNR to the original of the output as it is, with
its scene part removed (one gain per photo, known only to an oracle), and with its whole brightness error
removed (one gain per output). The gap between the first two is what a better judgement of the scene's
brightness could give, the gap to the third what consistent exposures could add on top. Beside them, the
better of input and output for each photo: the most that any gate choosing between correcting a photo and
leaving it alone (leave_alone, a second opinion, any classifier of the frame) can reach. A benchmark, not a
test: it prints a table, writes JSON and asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from validation_bench import rows_of_profiles, validation_parser, write_rows  # noqa: E402  (beside it)


def _linear_luminance(display: np.ndarray) -> tuple[np.ndarray, float]:
    from xfix.colour import decode_transfer, luminance

    linear = decode_transfer(np.clip(display, 0.0, 1.0), "srgb")
    return linear, float(np.mean(luminance(linear, "srgb")))


def _scaled(linear: np.ndarray, stops: float) -> np.ndarray:
    from xfix.colour import encode_transfer

    return encode_transfer(np.clip(linear * np.float32(2.0**stops), 0.0, 1.0), "srgb")


def bench_profile(name: str, args) -> list[dict]:
    from xfix.data.synthesis import MSEC_LEVELS
    from xfix.evaluate import EvalConfig, _through_frame, synthetic_scenes
    from xfix.metrics import psnr
    from xfix.profile import Corrector

    corrector = Corrector.load(name, device="cpu", inference_overrides={"leave_alone": 0.0})
    errors, as_is, scene_known, exposure_known, best_of_two = [], [], [], [], []
    for _, target, _, inputs in synthetic_scenes(EvalConfig(name, data=args.data, limit=args.limit,
                                                            max_side=args.max_side)):
        _, target_y = _linear_luminance(target)
        displays = [_through_frame(corrector.apply, inputs[ev]) for ev in MSEC_LEVELS]
        outputs = [_linear_luminance(display) for display in displays]
        error = np.array([np.log2(y / target_y) for _, y in outputs])
        scene = float(error.mean())
        errors.append(error)
        as_is.append([psnr(display, target) for display in displays])
        best_of_two.append([max(p, psnr(inputs[ev], target)) for p, ev in zip(as_is[-1], MSEC_LEVELS)])
        scene_known.append([psnr(_scaled(linear, -scene), target) for linear, _ in outputs])
        exposure_known.append([psnr(_scaled(linear, -e), target) for (linear, _), e in zip(outputs, error)])
    errors = np.array(errors)  # (photos, levels)
    residual = errors - errors.mean(axis=1, keepdims=True)
    return [
        {"profile": name, "ev": ev, "n": len(errors), "error_mean": float(errors[:, k].mean()),
         "error_abs": float(np.abs(errors[:, k]).mean()), "scene_abs": float(np.abs(errors.mean(1)).mean()),
         "residual_abs": float(np.abs(residual[:, k]).mean()), "psnr": float(np.mean([p[k] for p in as_is])),
         "psnr_scene_known": float(np.mean([p[k] for p in scene_known])),
         "psnr_exposure_known": float(np.mean([p[k] for p in exposure_known])),
         "psnr_best_of_two": float(np.mean([p[k] for p in best_of_two]))}
        for k, ev in enumerate(MSEC_LEVELS)
    ]  # fmt: skip


COLUMNS = ("error_mean", "error_abs", "scene_abs", "residual_abs", "psnr", "psnr_scene_known",
           "psnr_exposure_known", "psnr_best_of_two")  # fmt: skip


def main() -> None:
    parser = validation_parser(__doc__, "brightness.json")
    args = parser.parse_args()

    rows = rows_of_profiles(args, bench_profile)
    print("brightness error: log2(mean linear luminance of output / original), stops; PSNR in dB")
    print(f"{'profile':>12}{'EV':>6}{'n':>5}" + "".join(f"{c:>20}" for c in COLUMNS))
    for r in rows:
        print(f"{r['profile']:>12}{r['ev']:>+6.1f}{r['n']:>5}" + "".join(f"{r[c]:>20.3f}" for c in COLUMNS))
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
