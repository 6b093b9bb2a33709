"""`xfix hdr`: 8-bit photos or video frames -> scene-linear HDR OpenEXR files, clipped highlights filled in.

Stages, one way: plan the inputs (images; folders of frames in natural order; video files read through
imageio's ffmpeg plugin) -> decode and linearize each frame to linear Rec.709 -> the hdrcnn model of the
chosen weight set (`xfix.archs.hdrcnn`, run by `profile.Corrector`, tiled above its tile size) -> EXR
(`xfix.exr`, atomic) and optionally a tone-mapped PNG preview (and an MP4 for video input).

Values are relative to the input's white: 1.0 is where the camera clipped; reconstructed highlights go above.
A failed frame or file is reported and the batch goes on; no partial output is ever left behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from xfix.discover import as_inputs
from xfix.errors import DecodeError, InputError, UsageError, XfixError
from xfix.outputs import OutputClaims

log = logging.getLogger(__name__)

WEIGHT_SETS = {"default": "hdr-default", "compressed": "hdr-compressed", "video": "hdr-video"}
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class HdrConfig:
    """One `xfix hdr` run. `inputs`: paths, or a single path; `weights` is a key of WEIGHT_SETS; `half`
    chooses half (else float) EXR samples."""

    inputs: Sequence[str | os.PathLike] | str | os.PathLike  # a tuple of Paths once built
    out_dir: Path
    weights: str = "default"
    gamma: float = 1.0
    tau: float = 0.95
    compression: str = "zip"
    half: bool = True
    preview: bool = False
    overwrite: bool = False
    device: str = "auto"
    max_megapixels: float = 200.0

    def __post_init__(self) -> None:
        from xfix.exr import COMPRESSIONS

        object.__setattr__(self, "inputs", tuple(Path(p) for p in as_inputs(self.inputs)))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.weights not in WEIGHT_SETS:
            raise UsageError(f"unknown weights {self.weights!r}; valid: {', '.join(WEIGHT_SETS)}")
        if not 0.1 <= self.gamma <= 5.0:
            raise UsageError(f"--gamma must be between 0.1 and 5, got {self.gamma}")
        if not 0.0 <= self.tau < 1.0:
            raise UsageError(f"--tau must be in [0, 1), got {self.tau}")
        if self.compression not in COMPRESSIONS:
            valid = ", ".join(COMPRESSIONS)
            raise UsageError(f"unknown EXR compression {self.compression!r}; valid: {valid}")


@dataclass(frozen=True)
class Item:
    """One input: an image (-> `name`.exr) or a video (-> `name`/frame_000001.exr, or at the top).

    problem: set when the input cannot be read at all (the path does not exist); it is reported as a failed
    input and the batch goes on."""

    path: Path
    kind: str  # "image" | "video"
    output: Path  # image: the EXR path relative to the output folder; video: the folder for its frames
    problem: str | None = None


@dataclass(frozen=True)
class HdrResult:
    source: str  # file, or "file#frame"
    output: Path | None
    status: str  # "done" | "skipped" | "failed"
    message: str = ""
    seconds: float = 0.0
    peak: float = 0.0  # brightest reconstructed value (1 = the input's white)


@dataclass
class HdrSummary:
    results: list[HdrResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # inputs skipped while planning (see `plan`)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)


def _is_frame(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def plan(inputs: tuple[Path, ...]) -> tuple[list[Item], list[str]]:
    """Images, folders (their images in natural order: frame_2 before frame_10) and videos -> (Items,
    warnings).

    A single video input writes frame_NNNNNN.exr at the top of the output folder; several write into
    sub-folders named after each video. As in `xfix correct`, one bad input does not stop the others: a
    missing path is an Item with its problem; the files of a folder that are not images, and a folder without
    images, are warnings. Two inputs with the same output (a/x.png and b/x.png, or a/clip.mp4 and
    b/clip.mp4) are both planned; the run fails the later one (`_Writer.clash`)."""
    from xfix.discover import folder_images

    items: list[Item] = []
    warnings: list[str] = []
    videos = [p for p in inputs if p.suffix.lower() in VIDEO_EXTENSIONS]
    for path in inputs:
        if path.is_dir():
            try:
                frames, notes = folder_images(path, is_image=_is_frame)
            except OSError as exc:
                items.append(Item(path, "image", Path(), f"cannot list folder: {exc.strerror or exc}"))
                continue
            warnings += notes if frames else [*notes, f"{path}: no images in this folder"]
            items += [Item(p, "image", Path(p.stem + ".exr")) for p, _ in frames]
        elif not path.exists():
            items.append(Item(path, "image", Path(), "file not found"))
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            alone = len(inputs) == 1 and len(videos) == 1
            items.append(Item(path, "video", Path() if alone else Path(path.stem)))
        else:
            items.append(Item(path, "image", Path(path.stem + ".exr")))
    return items, warnings


# ---------------------------------------------------------------- reading frames


def read_image(path: Path, max_megapixels: float = 200.0) -> tuple[np.ndarray, dict[str, Any]]:
    """An image file -> ((H, W, 3) float32 linear Rec.709, EXR attributes of its EXIF); DecodeError."""
    from xfix.colour import convert_linear
    from xfix.decode import decode
    from xfix.exr import exif_attributes
    from xfix.linearize import linearize
    from xfix.metadata import read_exposure

    frame = linearize(decode(path, max_megapixels=max_megapixels))
    linear = convert_linear(frame.pixels, frame.space, "linear-srgb").astype(np.float32, copy=False)
    return linear, exif_attributes(read_exposure(path))


def video_frames(path: Path) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of a video through imageio's ffmpeg plugin; InputError if it is missing."""
    try:
        import imageio
        import imageio_ffmpeg  # noqa: F401  (the plugin's binary)
    except ImportError:
        message = "video input needs the imageio-ffmpeg package (pip install imageio-ffmpeg)"
        raise InputError(message, path) from None
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
    except (OSError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"cannot read video: {str(exc).splitlines()[0]}", path) from None
    with reader:
        try:
            for frame in reader:
                yield np.ascontiguousarray(np.asarray(frame)[..., :3])
        except (OSError, RuntimeError, ValueError) as exc:
            reason = str(exc).splitlines()[0]
            raise DecodeError(f"video ends with an unreadable frame: {reason}", path) from None


def video_fps(path: Path) -> float:
    import imageio

    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return float(reader.get_meta_data().get("fps") or 25.0)


# ---------------------------------------------------------------- the model


def load_reconstructor(weights: str = "default", *, gamma: float = 1.0, tau: float = 0.95,
                       device: str = "auto"):
    """The weight set's profile loaded as a `Corrector` (sha256 checked), with the gamma and tau settings."""
    from xfix.profile import Corrector

    if weights not in WEIGHT_SETS:
        raise UsageError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHT_SETS)}")
    return Corrector.load(WEIGHT_SETS[weights], device=device,
                          settings_overrides={"gamma": float(gamma), "tau": float(tau)})


def reconstruct(reconstructor, linear: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 linear Rec.709 LDR (1 = white) -> (H, W, 3) float32 linear HDR, same scale."""
    if linear.ndim != 3 or linear.shape[2] != 3:
        raise ValueError(f"reconstruct expects (H, W, 3), got {linear.shape}")
    return reconstructor.run(np.ascontiguousarray(linear, dtype=np.float32)).pixels


def tone_map(hdr: np.ndarray) -> np.ndarray:
    """(H, W, 3) linear HDR -> (H, W, 3) uint8 sRGB preview: mid-tones kept, highlights rolled off by the
    filmic shoulder of `xfix.tonecurve` up to the 99.9th percentile of the frame (at least 1.5)."""
    from xfix.colour import srgb_encode
    from xfix.tonecurve import filmic

    white = max(float(np.quantile(hdr.max(axis=2)[::4, ::4], 0.999)), 1.5)
    mapped = filmic(np.maximum(hdr, 0.0), knee=0.6, white=white)
    return np.round(np.clip(srgb_encode(np.clip(mapped, 0.0, 1.0)), 0.0, 1.0) * 255).astype(np.uint8)


def _png_bytes(image: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image[..., ::-1])
    if not ok:
        raise XfixError("could not encode the preview PNG")
    return data.tobytes()


# ---------------------------------------------------------------- the run


class _Writer:
    """EXR (+ preview) outputs of a run. All of a frame's files are checked before any is written: one that
    would replace an input of the run fails the frame, an existing one skips it (unless overwrite); then they
    are written atomically, all or none."""

    def __init__(self, config: HdrConfig, inputs: Iterable[Path]):
        self.config = config
        self.claims = OutputClaims(inputs)

    def clash(self, item: Item) -> str | None:
        """Why `item` may write nothing at all, or None: an earlier input of the run writes the same EXR or,
        for a video, into the same folder (the later one's frames would be skipped, or mixed in). An image
        claims all its files at once, so one refused for its preview keeps no claim on its EXR."""
        if item.kind == "image":
            return self.refusal(item.path, self.targets(item.output))
        return self.refusal(item.path, [self.config.out_dir / item.output])

    def targets(self, relative: Path) -> list[Path]:
        """The files one frame writes: its EXR, and with --preview its tone-mapped PNG."""
        exr = self.config.out_dir / relative
        return [exr, exr.with_suffix(".png")] if self.config.preview else [exr]

    def refusal(self, source: Path, targets: list[Path]) -> str | None:
        """Why `targets` must not be written for `source`, or None, and then they are `source`'s: one of them
        is an input of the run, or an earlier input's output."""
        return self.claims.refusal(source, targets, replace_hint="choose another -o folder",
                                   clash_hint="give them in separate runs")

    def existing(self, targets: list[Path]) -> Path | None:
        """The first target already on disk, unless overwrite (a frame with one is skipped, not half-done)."""
        if self.config.overwrite:
            return None
        return next((t for t in targets if os.path.lexists(t)), None)

    def write(self, targets: list[Path], hdr: np.ndarray, attributes: dict[str, Any]) -> np.ndarray | None:
        """Encode the frame's files, then write them; should a later one fail, those written here are removed
        again (without overwrite nothing was there before), so a frame is left whole or absent."""
        from xfix.exr import encode_exr
        from xfix.write import ensure_folder, write_atomic

        config = self.config
        preview = tone_map(hdr) if config.preview else None
        files = [encode_exr(hdr, half=config.half, compression=config.compression, attributes=attributes)]
        if preview is not None:
            files.append(_png_bytes(preview))
        ensure_folder(targets[0].parent)
        written: list[Path] = []
        try:
            for target, data in zip(targets, files):
                write_atomic(target, data, overwrite=config.overwrite)
                written.append(target)
        except BaseException:
            if not config.overwrite:
                for target in written:
                    target.unlink(missing_ok=True)
            raise
        return preview


def _attributes(config: HdrConfig, source: Path, extra: dict[str, Any]) -> dict[str, Any]:
    from xfix import __version__

    return {"software": f"xfix {__version__}", "xfixSource": source.name, "xfixWeights": config.weights,
            "xfixGamma": float(config.gamma), "xfixTau": float(config.tau), **extra}  # fmt: skip


def _one(writer: _Writer, reconstructor, path: Path, source: str, relative: Path,
         load: Callable[[], tuple]) -> tuple:
    """Reconstruct and write one frame of the input `path` (`source` names the frame); (HdrResult, preview
    or None)."""
    targets = writer.targets(relative)
    refusal = writer.refusal(path, targets)
    if refusal is not None:
        return HdrResult(source, None, "failed", refusal), None
    existing = writer.existing(targets)
    if existing is not None:
        return HdrResult(source, targets[0], "skipped", f"{existing} exists (use --overwrite)"), None
    start = perf_counter()
    try:
        linear, attributes = load()
        hdr = reconstruct(reconstructor, linear)
        preview = writer.write(targets, hdr, attributes)
    except XfixError as error:
        return HdrResult(source, None, "failed", error.message if error.path else str(error)), None
    peak = float(hdr.max()) if hdr.size else 0.0
    return HdrResult(source, targets[0], "done", "", perf_counter() - start, peak), preview


def run_hdr(config: HdrConfig, *, on_result: Callable[[HdrResult], None] | None = None,
            on_warning: Callable[[str], None] | None = None, reconstructor: Any = None) -> HdrSummary:
    """Reconstruct every input frame of `config`; returns the summary (failed frames counted, not raised).

    on_warning(text) hears of the inputs skipped while planning (also in the summary's warnings).
    UsageError / ProfileError for a bad request, no inputs among them (raised before anything is written)."""
    items, warnings = plan(config.inputs)
    if not items:
        raise UsageError("no inputs" + (f" ({warnings[0]})" if warnings else ""))
    reconstructor = reconstructor or load_reconstructor(config.weights, gamma=config.gamma, tau=config.tau,
                                                        device=config.device)
    writer, summary = _Writer(config, (item.path for item in items)), HdrSummary(warnings=warnings)
    for warning in warnings:
        if on_warning:
            on_warning(warning)

    def report(result: HdrResult) -> None:
        summary.results.append(result)
        if on_result:
            on_result(result)

    for item in items:
        problem = item.problem or writer.clash(item)
        if problem is not None:
            report(HdrResult(str(item.path), None, "failed", problem))
        elif item.kind == "image":
            def load(path=item.path):
                linear, exif = read_image(path, config.max_megapixels)
                return linear, _attributes(config, path, exif)

            report(_one(writer, reconstructor, item.path, str(item.path), item.output, load)[0])
        else:
            _run_video(config, writer, reconstructor, item, report)
    return summary


def _run_video(config: HdrConfig, writer: _Writer, reconstructor: Any, item: Item, report) -> None:
    from xfix.colour import srgb_decode

    previews: list[np.ndarray] = []
    count, unreadable = 0, ""
    try:
        for index, frame in enumerate(video_frames(item.path), start=1):
            count = index

            def load(frame=frame, index=index):
                linear = srgb_decode(frame.astype(np.float32) / 255.0).astype(np.float32)
                return linear, _attributes(config, item.path, {"xfixFrame": index})

            relative = item.output / f"frame_{index:06d}.exr"
            result, preview = _one(writer, reconstructor, item.path, f"{item.path}#{index}", relative, load)
            report(result)
            if preview is not None:
                previews.append(preview)
    except XfixError as error:
        if count == 0:  # the video as a whole failed: one line below, not a frame's line as well
            unreadable = error.message
        else:
            report(HdrResult(f"{item.path}#{count + 1}", None, "failed", error.message))
    if count == 0:
        report(HdrResult(str(item.path), None, "failed", unreadable or "no frames could be read"))
    if config.preview and previews:
        result = _preview_video(config, writer, item, previews)
        if result is not None:
            report(result)


def _preview_video(
    config: HdrConfig, writer: _Writer, item: Item, previews: list[np.ndarray]
) -> HdrResult | None:
    """Write the tone-mapped frames as an MP4 next to the EXR frames. None when written; else the line to
    report, like any other output's and not the end of the batch: failed, or skipped when the file is there
    already (a partial run's), checked before encoding as the atomic writer would refuse it only after."""
    source = f"{item.path} (preview video)"
    target = config.out_dir / item.output / f"{item.path.stem}_preview.mp4"
    refusal = writer.refusal(item.path, [target])
    if refusal is not None:
        return HdrResult(source, None, "failed", refusal)
    existing = writer.existing([target])
    if existing is not None:
        return HdrResult(source, target, "skipped", f"{existing} exists (use --overwrite)")
    try:
        _write_preview_video(config, item.path, target, previews)
    except XfixError as error:
        return HdrResult(source, None, "failed", str(error))
    return None


def _write_preview_video(config: HdrConfig, video: Path, target: Path, previews: list[np.ndarray]) -> None:
    """The tone-mapped frames as an MP4 (H.264) at `target`, at the frame rate of `video`; WriteError when it
    cannot be written."""
    import imageio

    from xfix.write import write_atomic

    with tempfile.TemporaryDirectory(prefix="xfix-mp4-") as folder:
        path = Path(folder) / "preview.mp4"
        with imageio.get_writer(str(path), format="FFMPEG", fps=video_fps(video), codec="libx264",
                                macro_block_size=2, quality=8) as out:
            for frame in previews:
                out.append_data(frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2])
        write_atomic(target, path.read_bytes(), overwrite=config.overwrite)
