"""Seconds per stage and peak memory of `xfix correct` on synthetic JPEGs of 1, 12, 24 and 50 MP.

    python benchmarks/bench_correct.py [--sizes 1,12,24,50] [--profile classic] [--device cpu] [--repeat 3]
                                       [--mode whole|tiled|guided] [--work-size PX] [--workdir DIR]
                                       [--json bench-out/correct.json]
    python benchmarks/bench_correct.py --one 24 [same options]    # one size in this process, JSON on stdout

Each size runs in a fresh subprocess (`--one`), so its peak resident memory (ru_maxrss) is its own. That
subprocess has its input made by a separate spawned process (a smooth photo-like upscale of scikit-image's
`coffee` photo, 1.5 EV under-exposed, with sensor-like noise, JPEG q92 with a small EXIF block), warms up on a
tiny image, then times `--repeat` corrections stage by stage, exactly as `pipeline._Batch._process` chains
them, and as many codec-only passes (the same decode, then the same JPEG encoder call on the decoded samples):
the "decode + encode alone" reference of issue 4. Medians are reported. A benchmark, not a test: it asserts
nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter

REPO = Path(__file__).resolve().parents[1]
STAGES = ("decode", "linearize", "inference", "upsample", "encode", "metadata", "write")
EXIF = {  # a small camera-like block: what the metadata stage reads, cleans and copies
    "Exif.Image.Make": "xfix",
    "Exif.Image.Model": "synthetic benchmark",
    "Exif.Image.Orientation": "1",
    "Exif.Photo.ExposureTime": "1/60",
    "Exif.Photo.FNumber": "28/10",
    "Exif.Photo.ISOSpeedRatings": "800",
    "Exif.Photo.DateTimeOriginal": "2024:06:01 12:00:00",
    "Exif.Photo.ColorSpace": "1",
}


# ---------------------------------------------------------------- synthetic inputs


def synthetic_photo(megapixels: float, seed: int = 0):
    """(H, W, 3) uint8 sRGB, 3:2, H * W ~ megapixels * 1e6: `coffee` upscaled (bicubic, so smooth), darkened
    1.5 EV in linear light, plus Gaussian noise of 2 codes so the JPEG codec has real detail to code."""
    import cv2
    import numpy as np
    from skimage import data

    from xfix.colour import srgb_decode, srgb_encode

    width = max(3, round((megapixels * 1e6 * 1.5) ** 0.5))
    height = max(2, round(width / 1.5))
    codes = np.arange(256, dtype=np.float32) / 255
    darken = np.round(srgb_encode(srgb_decode(codes) * 2**-1.5) * 255).astype(np.uint8)
    image = darken[cv2.resize(data.coffee(), (width, height), interpolation=cv2.INTER_CUBIC)]
    rng = np.random.default_rng(seed)
    for top in range(0, height, 512):  # in chunks: 50 MP of float64 noise at once would be 1.2 GB
        rows = image[top : top + 512]
        noise = rng.normal(0.0, 2.0, rows.shape).astype(np.float32)
        rows[:] = np.clip(rows + noise + 0.5, 0, 255).astype(np.uint8)
    return image


def write_input(megapixels: float, path: str) -> None:
    """Write the synthetic photo as a JPEG (q92, 4:2:0 as cameras do) with a small camera-like EXIF block."""
    import pyexiv2
    from PIL import Image

    Image.fromarray(synthetic_photo(megapixels)).save(path, format="JPEG", quality=92)
    image = pyexiv2.Image(path)
    try:
        image.modify_exif(EXIF)
    finally:
        image.close()


def make_inputs(jobs: list[tuple[float, str]]) -> None:
    """Write each (megapixels, path) in a spawned process: its memory must not count in the caller's peak."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=_write_all, args=(jobs,))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"making the synthetic inputs failed (exit code {process.exitcode})")


def _write_all(jobs: list[tuple[float, str]]) -> None:
    for megapixels, path in jobs:
        write_input(megapixels, path)


# ---------------------------------------------------------------- timing one size (the --one subprocess)


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


@contextmanager
def probes(corrector, timings: dict):
    """Time, inside a real correction, the step that carries it to full resolution (`xfix.guided.upsample`
    on the float route; on the 8-bit route the fused kernel of `xfix.display8` that slices the grid or the
    table and quantizes) and the network's forward passes (module hooks). They are looked up at each call,
    so they are wrapped for the duration. Adds seconds to timings["upsample"] / timings["network"]; a key
    stays absent when that part never ran (whole or tiled mode, or an image already within the work size)."""
    import torch

    from xfix import display8, guided

    cuda = corrector.device.type == "cuda"
    wrapped = [(guided, "upsample"), (display8, "slice_grid_u8"), (display8, "apply_lut_u8")]
    originals = [getattr(module, name) for module, name in wrapped]
    started: list[float] = []

    def sync() -> None:
        if cuda:  # kernels run asynchronously: wait, or the time lands in whatever waits next
            torch.cuda.synchronize(corrector.device)

    def timed(original):
        def upsample(*args, **kwargs):
            start = perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                sync()
                timings["upsample"] = timings.get("upsample", 0.0) + perf_counter() - start

        return upsample

    def before(module, inputs) -> None:
        sync()
        started.append(perf_counter())

    def after(module, inputs, output) -> None:
        sync()
        timings["network"] = timings.get("network", 0.0) + perf_counter() - started.pop()

    model = corrector.model
    handles = [model.register_forward_pre_hook(before), model.register_forward_hook(after)]
    for (module, name), original in zip(wrapped, originals):
        setattr(module, name, timed(original))
    try:
        yield
    finally:
        for (module, name), original in zip(wrapped, originals):
            setattr(module, name, original)
        for handle in handles:
            handle.remove()


def correct_once(path: Path, out: Path, corrector, config) -> dict:
    """One correction of `path`, stage by stage as the pipeline chains them, on the route the pipeline would
    take (`pipeline.display_route_frame`); seconds per stage, and "route". "inference" is the correction
    without the step timed as "upsample" (float route: conversion to and from the model encoding, downscale,
    network; 8-bit route: downscale, network, grid fit); "network" (part of inference) is the model's
    forward passes alone. On the 8-bit route "upsample" includes the quantization and "encode" is the codec."""
    from xfix import __version__, decode, encode, linearize, metadata, write
    from xfix.pipeline import display_route_frame

    t: dict[str, float] = {}
    start = mark = perf_counter()

    def lap(stage: str) -> None:
        nonlocal mark
        now = perf_counter()
        t[stage] = t.get(stage, 0.0) + now - mark
        mark = now

    decoded = decode.decode(path, max_megapixels=config.max_megapixels)
    lap("decode")
    display = display_route_frame(decoded, corrector, config, fmt="jpeg", bits=8)
    frame = display or linearize.linearize(decoded, input_space=config.input_space)
    lap("linearize")
    with probes(corrector, t):
        if display is not None:
            corrected = corrector.apply_display(display, strength=config.strength)
        else:
            corrected = corrector.apply(frame, strength=config.strength)
    lap("inference")
    space = config.output_space
    if display is not None:
        data = encode.encode_display(corrected, fmt="jpeg", quality=config.quality)
    else:
        data = encode.encode(corrected, fmt="jpeg", bits=8, quality=config.quality, output_space=space)
    lap("encode")
    software = f"xfix {__version__} ({corrector.profile.name})"
    data, _warnings = metadata.copy_metadata(path, data, fmt="jpeg", strip_gps=config.strip_gps,
                                             software=software, output_space=space)  # fmt: skip
    lap("metadata")
    write.write_atomic(out, data, overwrite=True)
    lap("write")
    t["total"] = perf_counter() - start
    t["inference"] -= t.get("upsample", 0.0)
    t["route"] = "8-bit" if display is not None else "float"
    return t


def codec_once(path: Path, config) -> float:
    """Seconds for "decode + encode alone": the same decode, then the JPEG codec on the decoded 8-bit samples
    through the encoder's own codec call (same quality, subsampling, optimisation, ICC), nothing between."""
    from xfix import decode, encode, icc

    start = perf_counter()
    decoded = decode.decode(path, max_megapixels=config.max_megapixels)
    # the private codec call on purpose: the reference must follow any change to how xfix writes JPEGs
    encode._jpeg(decoded.pixels, config.quality, icc.icc_profile(config.output_space))
    return perf_counter() - start


def run_one(megapixels: float, args: argparse.Namespace) -> dict:
    """Everything measured for one size in this process; the dict the parent collects."""
    with tempfile.TemporaryDirectory(prefix="xfix-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        source, warm = work / "input.jpg", work / "warmup.jpg"
        corrector, config = load(args, source)
        make_inputs([(warmup_megapixels(corrector), str(warm)), (megapixels, str(source))])
        correct_once(warm, work / "warmup-out.jpg", corrector, config)  # lazy imports, allocator, kernels
        codec_once(warm, config)
        baseline = peak_mb()
        runs = [correct_once(source, work / "out.jpg", corrector, config) for _ in range(args.repeat)]
        reference = [codec_once(source, config) for _ in range(args.repeat)]
        height, width = _size(source)
        input_mb = source.stat().st_size / 1e6
    routes = {r.pop("route") for r in runs}
    seconds = {key: statistics.median(r.get(key, 0.0) for r in runs) for key in runs[0]}
    seconds["reference"] = statistics.median(reference)
    return {
        "megapixels": megapixels, "width": width, "height": height, "input_mb": round(input_mb, 2),
        "route": "/".join(sorted(routes)),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "ratio": round(seconds["total"] / seconds["reference"], 3),
        "ratio_stages": round(seconds["total"] / (seconds["decode"] + seconds["encode"]), 3),
        "baseline_mb": round(baseline), "peak_mb": round(peak_mb()),
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in runs],
        "reference_runs": [round(s, 4) for s in reference],
    }  # fmt: skip


def warmup_megapixels(corrector) -> float:
    """A warm-up image just over the guided work size, so the warm-up takes the same path (downscale, network,
    upsampling) as the timed runs; a small one otherwise."""
    if corrector.inference.mode != "guided":
        return 0.05
    long_side = corrector.inference.work_size * 1.1
    return long_side * long_side / 1.5 / 1e6


def _size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def load(args: argparse.Namespace, source: Path):
    """(Corrector, CorrectConfig): the profile on its device; the pipeline's defaults for everything else."""
    from xfix.pipeline import CorrectConfig
    from xfix.profile import Corrector
    from xfix.profile_choice import resolve_correction_profile

    overrides = {k: v for k, v in (("mode", args.mode), ("work_size", args.work_size)) if v is not None}
    profile = resolve_correction_profile(args.profile)
    corrector = Corrector.load(profile, device=args.device, inference_overrides=overrides)
    config = CorrectConfig(jobs=(source,), profile=profile.name, device=args.device,
                           display_route=args.route == "auto")  # fmt: skip
    return corrector, config


# ---------------------------------------------------------------- the parent: sizes, table, JSON


def machine(corrector) -> dict:
    """What the timings depend on, recorded next to them."""
    import torch

    from xfix import __version__

    cpu = platform.processor()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass  # not Linux: platform.processor() it is
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "xfix": __version__,
        "device": str(corrector.device), "corrector": corrector.describe(),
    }  # fmt: skip


def child_command(megapixels: float, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--one", f"{megapixels:g}"]
    command += ["--profile", args.profile or "", "--device", args.device, "--repeat", str(args.repeat)]
    command += ["--route", args.route]
    for flag, value in (("--mode", args.mode), ("--work-size", args.work_size), ("--workdir", args.workdir)):
        if value is not None:
            command += [flag, str(value)]
    return command


def run_all(args: argparse.Namespace) -> int:
    from rich.console import Console

    from xfix.errors import XfixError

    console = Console(width=None if sys.stdout.isatty() else 150)  # a log file gets the whole table
    try:  # fail fast, before minutes of work, on an unknown profile or device
        corrector, _ = load(args, Path("check.jpg"))
    except XfixError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    report = {"benchmark": "correct", "profile": corrector.profile.name, "repeat": args.repeat,
              "route": args.route, "machine": machine(corrector), "results": []}  # fmt: skip
    del corrector
    cores, load_now = report["machine"]["cores"], report["machine"]["load_average"][0]
    if load_now > 0.5 * (cores or 1):
        console.print(f"[yellow]note:[/yellow] load average {load_now} on {cores} cores: timings are skewed")
    failed = 0
    for megapixels in args.sizes:
        with console.status(f"{megapixels:g} MP ..."):
            done = subprocess.run(child_command(megapixels, args), capture_output=True, text=True)
        if done.returncode != 0:
            failed += 1
            reason = done.stderr.strip()
            console.print(f"[red]{megapixels:g} MP failed[/red] (exit {done.returncode}):\n{reason}")
            report["results"].append({"megapixels": megapixels, "error": reason[-2000:]})
            continue
        report["results"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(table(report))
    console.print(f"JSON: {args.json}")
    return 1 if failed else 0


def table(report: dict):
    """rich Table: one row per size, median seconds per stage, reference, ratio, memory."""
    from rich.table import Table

    m = report["machine"]
    title = (f"xfix correct, profile {report['profile']} on {m['device']} ({m['torch_threads']} threads, "
             f"{m['cores']} cores), median of {report['repeat']}, seconds")  # fmt: skip
    out = Table(title=title)
    columns = ("size", "route", *STAGES[:3], "(network)", *STAGES[3:], "total", "dec+enc", "ratio", "peak MB")
    columns = tuple("linear" if c == "linearize" else c for c in columns)
    for name in columns:
        out.add_column(name, justify="left" if name == "size" else "right")
    for r in report["results"]:
        label = f"{r['megapixels']:g} MP"
        if "error" in r:
            out.add_row(label, "", "[red]failed[/red]", *[""] * (len(columns) - 3))
            continue
        s = r["seconds"]
        keys = (*STAGES[:3], "network", *STAGES[3:], "total", "reference")
        cells = [_seconds(s.get(k)) for k in keys]
        out.add_row(label, r.get("route", ""), *cells, f"{r['ratio']:.2f}x", f"{r['peak_mb']:,}")
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.2f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--sizes", default="1,12,24,50", help="megapixels, comma-separated (%(default)s)")
    parser.add_argument("--profile", default="classic", help="profile (classic; '' = xfix's default)")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N] | mps (default cpu)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per size, medians (default: 3)")
    parser.add_argument("--mode", choices=("whole", "tiled", "guided"), help="override the profile's mode")
    parser.add_argument("--work-size", type=int, help="override the profile's guided work size (px)")
    parser.add_argument("--route", choices=("auto", "float"), default="auto",
                        help="auto: the 8-bit display route where the pipeline takes it; float: never")
    parser.add_argument("--workdir", help="folder for inputs and outputs (default: the system temp folder)")
    parser.add_argument("--json", type=Path, default=REPO / "bench-out" / "correct.json", help="report file")
    parser.add_argument("--one", type=float, metavar="MP", help="time one size here; JSON on stdout")
    args = parser.parse_args(argv)
    try:
        args.sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated numbers, got {args.sizes!r}")
    if args.repeat < 1 or not args.sizes or min(args.sizes) <= 0 or (args.one is not None and args.one <= 0):
        parser.error("--repeat and every size must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one is None:
        return run_all(args)
    from xfix.errors import XfixError

    try:
        result = run_one(args.one, args)
    except XfixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
