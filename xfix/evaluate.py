"""The benchmark behind `xfix eval`: a profile against the `identity` and `classic` baselines.

Three sets, any combination:
- synthetic (`data`): the fixed validation split of a photo folder, each photo rendered at the MSEC levels
  {-1.5, -1, 0, +1, +1.5} EV with one camera curve per photo and a fixed seed; PSNR / SSIM / CIEDE2000 to the
  photo per group (under, normal, over, all), exposure consistency per scene, seconds per megapixel.
- pairs (`pairs`): DIR/input/* against DIR/target/* matched by file stem.
- brackets (`brackets`): folders of real differently exposed frames of one scene: consistency of the outputs
  across frames, and how far the middle frame's output moved from its input (PSNR).
With `fused_reference` (the sice profile's references): the synthetic photos are also scored against the
exposure fusion of their EV -2..+2 stack (set "fused", `xfix.data.sice`), and the brackets' middle-frame
output against `xfix fuse` of the whole bracket (PSNR / SSIM of the brackets rows).
Every method runs the way `xfix correct` runs a profile: display sRGB -> working-space Frame ->
Corrector.apply -> display sRGB, clipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Sequence

import numpy as np

from xfix.data.synthesis import MSEC_LEVELS
from xfix.errors import InputError, UsageError
from xfix.metrics import delta_e2000, exposure_consistency, psnr, ssim

log = logging.getLogger(__name__)

BASELINES = ("identity", "classic")
# also accepted in `baselines`: any profile name (e.g. "msec"), and the seed's trivial inverse of its clipping
TRIVIAL_INVERSE = "trivial-inverse"
CLIPPING_THRESHOLDS = (0.5, 0.7)  # the `clipping` set: the seed's simple over-exposure (0.5 is the seed's)
GROUPS = {"under": (-1.5, -1.0), "normal": (0.0,), "over": (1.0, 1.5)}


@dataclass(frozen=True)
class EvalConfig:
    """What `run_eval` measures. At least one of data / pairs / brackets.

    limit: at most this many photos (pairs, scenes) per set, first by name. max_side: photos are downscaled so
    their long side is at most this (None: full size), which keeps a 2-core run to minutes."""

    profile: str
    data: Path | None = None
    pairs: Path | None = None
    brackets: Path | None = None
    device: str = "auto"
    limit: int | None = None
    max_side: int | None = 512
    seed: int = 0
    baselines: tuple[str, ...] = BASELINES
    highlights: bool = False  # also the seed's similarities, the error on clipped pixels and the clipping set
    fused_reference: bool = False  # also score against exposure fusions (set "fused"; brackets: psnr/ssim)

    def __post_init__(self) -> None:
        if self.data is None and self.pairs is None and self.brackets is None:
            raise UsageError("xfix eval needs --data, --pairs or --brackets")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {self.limit}")


@dataclass(frozen=True)
class Method:
    """A correction under test: display sRGB (H, W, 3) float32 [0, 1] -> same."""

    name: str
    run: Callable[[np.ndarray], np.ndarray]


@dataclass
class Row:
    """One line of the report: a method's mean scores on one group of one set."""

    set: str
    method: str
    group: str
    n: int
    psnr: float | None = None
    ssim: float | None = None
    deltae: float | None = None
    consistency: float | None = None
    moved: float | None = None
    sec_per_mp: float | None = None
    lum_sim: float | None = None  # with `highlights`: the seed's similarities to the target, percent
    con_sim: float | None = None
    sat_sim: float | None = None
    clip_err: float | None = None  # mean absolute error (8-bit levels) on pixels clipped in the input


@dataclass
class EvalReport:
    profile: str
    config: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)  # per image (and level) scores, for analysis

    def table(self) -> list[dict[str, Any]]:
        """The rows as dicts: set, method, group, n, psnr, ssim, deltae, consistency, moved, sec_per_mp."""
        return [asdict(row) for row in self.rows]

    def to_json(self) -> str:
        return json.dumps(
            {"profile": self.profile, "config": self.config, "rows": self.table(), "items": self.items},
            indent=2,
            default=str,
        )


# ---------------------------------------------------------------- methods


def corrector_method(profile: Any, device: str, architecture: Any = None) -> Method:
    """A profile (name or Profile) loaded on `device`, run through Corrector.apply as `xfix correct` does.

    `architecture` replaces the registry lookup (Corrector.load's option), e.g. for a model in training."""
    from xfix.profile import Corrector

    return method_from_corrector(Corrector.load(profile, device=device, architecture=architecture))


def method_from_corrector(corrector: Any) -> Method:
    """A loaded `profile.Corrector` as a Method named after its profile."""
    return Method(corrector.profile.name, lambda image: _through_frame(corrector.apply, image))


def _through_frame(apply: Callable[[Any], Any], image: np.ndarray) -> np.ndarray:
    from xfix.colour import from_working, to_working
    from xfix.frame import Frame, SourceInfo

    h, w = image.shape[:2]
    source = SourceInfo(path=Path("eval.png"), format="png", bit_depth=8, width=w, height=h, channels=3)
    frame = Frame(pixels=to_working(image, "srgb"), source=source, input_space="srgb")
    return np.clip(from_working(apply(frame).pixels, "srgb"), 0.0, 1.0)


def build_methods(config: EvalConfig, extra: Sequence[Method] = ()) -> list[Method]:
    """The profile (or the `extra` methods given in its place) and the baselines, each name once.

    Every name is checked before any model loads: an unknown one is a UsageError listing the valid ones."""
    check_method_names(config, extra)
    methods = list(extra) or ([] if config.profile in config.baselines else [_named(config.profile, config)])
    for name in config.baselines:
        if name not in [m.name for m in methods]:
            methods.append(_named(name, config))
    return methods


_BUILT_IN = ("identity", TRIVIAL_INVERSE)  # methods that are no profile


def check_method_names(config: EvalConfig, extra: Sequence[Method] = ()) -> None:
    """UsageError for an unknown profile (unless `extra` replaces it) or baseline; ProfileError for a known
    profile whose file is broken. Reads profile files only."""
    from xfix.profile_choice import correction_profile_names, resolve_correction_profile

    # the hdr-* profiles reconstruct light for `xfix hdr` (scored by bench_hdr.py), they correct no exposure
    if not extra and config.profile not in _BUILT_IN:
        resolve_correction_profile(config.profile)
    for name in config.baselines:
        if name in _BUILT_IN:
            continue
        try:
            resolve_correction_profile(name)
        except UsageError:
            valid = f"{', '.join(_BUILT_IN)} or a profile: {', '.join(correction_profile_names())}"
            raise UsageError(f"unknown baseline {name!r}; valid: {valid}") from None


def _named(name: str, config: EvalConfig) -> Method:
    if name == "identity":
        return Method("identity", lambda image: image)
    if name == TRIVIAL_INVERSE:
        from xfix.data.highlights import trivial_inverse

        return Method(TRIVIAL_INVERSE, trivial_inverse)
    return corrector_method(name, config.device)


class _Timer:
    """Seconds and megapixels per method; the first call of each method is a warm-up and not counted."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.mp: dict[str, float] = {}

    def run(self, method: Method, image: np.ndarray) -> np.ndarray:
        if method.name not in self.seconds:
            method.run(image)
            self.seconds[method.name], self.mp[method.name] = 0.0, 0.0
        start = perf_counter()
        out = np.asarray(method.run(image), dtype=np.float32)
        self.seconds[method.name] += perf_counter() - start
        self.mp[method.name] += image.shape[0] * image.shape[1] / 1e6
        return out

    def per_mp(self, name: str) -> float | None:
        return self.seconds[name] / self.mp[name] if self.mp.get(name) else None


# ---------------------------------------------------------------- sets


def _stable_hash(name: str) -> int:
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16)


def _scores(out: np.ndarray, target: np.ndarray, inp: np.ndarray | None = None) -> dict[str, float]:
    """PSNR, SSIM, CIEDE2000; with the input also the `highlights` scores (clip_err None: nothing clipped)."""
    scores = {"psnr": psnr(out, target), "ssim": ssim(out, target), "deltae": delta_e2000(out, target)}
    if inp is not None:
        from xfix.metrics import clipped_error, exposure_similarities

        similar = exposure_similarities(out, target)
        scores |= {"lum_sim": similar["luminance"], "con_sim": similar["contrast"],
                   "sat_sim": similar["saturation"], "clip_err": clipped_error(inp, out, target)}
    return scores


_OPTIONAL_SCORES = ("lum_sim", "con_sim", "sat_sim", "clip_err")


def _mean_row(set_name: str, method: str, group: str, items: list[dict], timer: _Timer, **extra) -> Row:
    mean = {k: float(np.mean([i[k] for i in items])) if items else None for k in ("psnr", "ssim", "deltae")}
    for key in _OPTIONAL_SCORES:  # over the items that have the score
        values = [i[key] for i in items if i.get(key) is not None]
        mean[key] = float(np.mean(values)) if values else None
    return Row(set_name, method, group, len(items), **mean, sec_per_mp=timer.per_mp(method), **extra)


_OTHER_LEVEL_SEEDS = 100  # renders at levels other than MSEC's draw seeds 100 + their index, apart from these


def validation_photos(config: EvalConfig) -> list[Path]:
    """The validation split of `config.data`, at most `config.limit` photos, first by name. UsageError when no
    photo of the folder falls in it: the scores would be empty, not low."""
    from xfix.data.dataset import VALIDATION_MODULUS, list_photos, split_photos

    photos = list_photos(config.data)
    _, val = split_photos(photos)
    if not val:
        raise UsageError(
            f"no photo of this folder is in the validation split (1 in {VALIDATION_MODULUS} by a hash of the "
            f"file name); it has {len(photos)} photo(s), give a folder with more",
            config.data,
        )
    return val[: config.limit] if config.limit else val


def synthetic_scenes(config: EvalConfig, levels: Sequence[float] = MSEC_LEVELS):
    """Yields (photo path, original, camera curve, {ev: input}) for the validation photos of `config.data`:
    each photo rendered at `levels` through one camera curve per photo, an MSEC level always with the same
    seed (so any caller reproduces the eval's inputs), any other level with a seed of its own."""
    from xfix.data.curves import draw_curve
    from xfix.data.dataset import load_photo, to_float
    from xfix.data.synthesis import render_exposure

    for path in validation_photos(config):
        target = to_float(load_photo(path, config.max_side))
        key = _stable_hash(path.name)
        curve = draw_curve(np.random.default_rng([config.seed, key, 0]))  # one camera per scene
        inputs = {}
        for k, ev in enumerate(levels):
            index = MSEC_LEVELS.index(ev) + 1 if ev in MSEC_LEVELS else _OTHER_LEVEL_SEEDS + k
            rng = np.random.default_rng([config.seed, key, index])
            inputs[ev] = render_exposure(target, ev, rng, curve=curve)
        yield path, target, curve, inputs


def eval_synthetic(config: EvalConfig, methods: Sequence[Method], report: EvalReport) -> None:
    timer, items, consistency, fused_items = _Timer(), [], {m.name: [] for m in methods}, []
    for path, target, curve, rendered in synthetic_scenes(config):
        inputs = [rendered[ev] for ev in MSEC_LEVELS]
        fused = _fused_reference(target, curve) if config.fused_reference else None
        for method in methods:
            outputs = [timer.run(method, inp) for inp in inputs]
            consistency[method.name].append(exposure_consistency(outputs))
            for ev, inp, out in zip(MSEC_LEVELS, inputs, outputs, strict=True):
                items.append(
                    {
                        "set": "synthetic",
                        "method": method.name,
                        "image": path.name,
                        "ev": ev,
                        **_scores(out, target, inp if config.highlights else None),
                    }
                )
                if fused is not None:
                    fused_items.append({"set": "fused", "method": method.name, "image": path.name, "ev": ev,
                                        **_scores(out, fused)})
        log.debug("evaluated %s", path.name)
    for group, levels in [*GROUPS.items(), ("all", MSEC_LEVELS)]:
        for method in methods:
            mine = [i for i in items if i["method"] == method.name and i["ev"] in levels]
            scenes = consistency[method.name] if group == "all" else []
            report.rows.append(
                _mean_row(
                    "synthetic",
                    method.name,
                    group,
                    mine,
                    timer,
                    consistency=float(np.mean(scenes)) if scenes else None,
                )
            )
    for group, levels in [*GROUPS.items(), ("all", MSEC_LEVELS)] if fused_items else []:
        for method in methods:
            mine = [i for i in fused_items if i["method"] == method.name and i["ev"] in levels]
            report.rows.append(_mean_row("fused", method.name, group, mine, timer))
    report.items.extend(fused_items)
    report.items.extend(items)


def _fused_reference(photo: np.ndarray, curve: Any) -> np.ndarray:
    """The SICE reference of a validation photo: the exposure fusion of its stack rendered through `curve`."""
    from xfix.data.sice import fused_reference

    return fused_reference(photo, curve)


def eval_clipping(config: EvalConfig, methods: Sequence[Method], report: EvalReport) -> None:
    """The seed's simple over-exposure of the validation split (clip in gamma space at each of
    CLIPPING_THRESHOLDS), one group per threshold and "all"."""
    from xfix.data.dataset import load_photo, to_float
    from xfix.data.highlights import simple_overexpose

    timer, items = _Timer(), []
    for path in validation_photos(config):
        target = to_float(load_photo(path, config.max_side))
        for threshold in CLIPPING_THRESHOLDS:
            inp = simple_overexpose(target, threshold)
            for method in methods:
                out = timer.run(method, inp)
                items.append({"set": "clipping", "method": method.name, "image": path.name,
                              "threshold": threshold, **_scores(out, target, inp)})
    for group in [*CLIPPING_THRESHOLDS, "all"]:
        for method in methods:
            mine = [i for i in items if i["method"] == method.name and group in (i["threshold"], "all")]
            name = "all" if group == "all" else f"clip {group:g}"
            report.rows.append(_mean_row("clipping", method.name, name, mine, timer))
    report.items.extend(items)


def _images_by_stem(folder: Path) -> dict[str, Path]:
    from xfix.data.dataset import list_photos

    return {p.stem.lower(): p for p in list_photos(folder)}


def eval_pairs(config: EvalConfig, methods: Sequence[Method], report: EvalReport) -> None:
    from xfix.data.dataset import load_photo, to_float

    inputs, targets = _images_by_stem(config.pairs / "input"), _images_by_stem(config.pairs / "target")
    stems = sorted(set(inputs) & set(targets))
    if not stems:
        raise InputError("no input/target pairs with matching names", config.pairs)
    stems = stems[: config.limit] if config.limit else stems
    timer, items = _Timer(), []
    for stem in stems:
        inp = to_float(load_photo(inputs[stem], config.max_side))
        target = to_float(load_photo(targets[stem], config.max_side))
        if inp.shape != target.shape:
            raise InputError(
                f"input {inp.shape[:2]} and target {target.shape[:2]} differ in size", inputs[stem]
            )
        for method in methods:
            items.append(
                {
                    "set": "pairs",
                    "method": method.name,
                    "image": stem,
                    **_scores(timer.run(method, inp), target),
                }
            )
    for method in methods:
        report.rows.append(
            _mean_row("pairs", method.name, "all", [i for i in items if i["method"] == method.name], timer)
        )
    report.items.extend(items)


def bracket_scenes(folder: Path) -> list[tuple[str, list[Path]]]:
    """(scene name, frame paths) for every folder under `folder` (itself included) with at least 2 photos."""
    from xfix.data.dataset import PHOTO_EXTENSIONS

    if not Path(folder).is_dir():
        raise InputError("not a folder of bracket scenes", folder)
    scenes = []
    for sub in sorted([Path(folder), *(p for p in Path(folder).rglob("*") if p.is_dir())]):
        frames = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS)
        if len(frames) >= 2:
            scenes.append((sub.name, frames))
    if not scenes:
        raise InputError("no scene folders with two or more frames", folder)
    return scenes


def _fused_bracket(frames: Sequence[np.ndarray]) -> np.ndarray:
    """`xfix fuse` of a bracket's frames (display sRGB, one size): the reference the middle frame's output is
    scored against with `fused_reference` (psnr / ssim of the brackets rows)."""
    from xfix.fuse import fuse

    return fuse(list(frames)).image


def eval_brackets(config: EvalConfig, methods: Sequence[Method], report: EvalReport) -> None:
    from xfix.data.dataset import load_photo, to_float

    scenes = bracket_scenes(config.brackets)
    scenes = scenes[: config.limit] if config.limit else scenes
    timer, items = _Timer(), []
    for scene, paths in scenes:
        frames = [to_float(load_photo(p, config.max_side)) for p in paths]
        if len({f.shape for f in frames}) != 1:
            raise InputError(f"frames of scene {scene} differ in size", paths[0].parent)
        frames.sort(key=lambda f: float(f.mean()))  # the middle frame is the median exposure
        middle = len(frames) // 2
        fused = _fused_bracket(frames) if config.fused_reference else None
        for method in methods:
            outputs = [timer.run(method, f) for f in frames]
            items.append(
                {
                    "set": "brackets",
                    "method": method.name,
                    "image": scene,
                    "consistency": exposure_consistency(outputs),
                    "moved": psnr(outputs[middle], frames[middle]),
                    **({} if fused is None else {"psnr": psnr(outputs[middle], fused),
                                                 "ssim": ssim(outputs[middle], fused)}),
                }
            )
    for scene, _ in [*scenes, ("all", None)]:
        for method in methods:
            mine = [i for i in items if i["method"] == method.name and scene in (i["image"], "all")]
            report.rows.append(
                Row(
                    "brackets",
                    method.name,
                    scene,
                    len(mine),
                    consistency=float(np.mean([i["consistency"] for i in mine])),
                    moved=float(np.mean([i["moved"] for i in mine])),
                    sec_per_mp=timer.per_mp(method.name) if scene == "all" else None,
                    **{k: float(np.mean([i[k] for i in mine])) for k in ("psnr", "ssim") if k in mine[0]},
                )
            )
    report.items.extend(items)


def run_eval(config: EvalConfig, *, methods: Sequence[Method] = ()) -> EvalReport:
    """Evaluate the profile (or `methods`, e.g. a model in training) and the baselines on the chosen sets."""
    if config.data is not None:
        validation_photos(config)  # an empty split is refused before any model loads
    chosen = build_methods(config, methods)
    report = EvalReport(profile=config.profile, config={k: v for k, v in asdict(config).items()})
    if config.data is not None:
        eval_synthetic(config, chosen, report)
    if config.data is not None and config.highlights:
        eval_clipping(config, chosen, report)
    if config.pairs is not None:
        eval_pairs(config, chosen, report)
    if config.brackets is not None:
        eval_brackets(config, chosen, report)
    return report


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


_HIGHLIGHT_COLUMNS = ("lum. sim %", "contr. sim %", "sat. sim %", "clipped err")


def report_table(report: EvalReport) -> "Any":
    """A rich Table of the report (rich imported here, so the module stays light); the `highlights` columns
    appear when a row has them."""
    from rich.table import Table

    highlights = any(getattr(row, key) is not None for row in report.rows for key in _OPTIONAL_SCORES)

    table = Table(title=f"xfix eval {report.profile}")
    for column in (
        "set",
        "method",
        "group",
        "n",
        "PSNR dB",
        "SSIM",
        "ΔE00",
        "consistency dB",
        "moved dB",
        "s/MP",
        *(_HIGHLIGHT_COLUMNS if highlights else ()),
    ):
        table.add_column(column, justify="left" if column in ("set", "method", "group") else "right")
    previous = None
    for row in report.rows:
        if previous is not None and (row.set, row.group) != previous:
            table.add_section()
        previous = (row.set, row.group)
        table.add_row(
            row.set,
            row.method,
            row.group,
            str(row.n),
            _fmt(row.psnr, 2),
            _fmt(row.ssim, 4),
            _fmt(row.deltae, 2),
            _fmt(row.consistency, 2),
            _fmt(row.moved, 2),
            _fmt(row.sec_per_mp, 3),
            *([_fmt(getattr(row, key), 1) for key in _OPTIONAL_SCORES] if highlights else []),
        )
    return table
