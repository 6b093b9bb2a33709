"""The batch pipeline: discover -> decode -> linearize -> profile -> encode -> metadata -> write, per file.

`correct(config)` runs a batch described by a frozen `CorrectConfig` and returns a `Summary`; a file that
fails becomes a `FileResult` with status "failed" and its one-line reason, and the batch goes on.
KeyboardInterrupt propagates (the atomic writer has already removed its temp file). `correct_file` corrects
one image from Python.

The stage modules (and through them torch, rawpy, pyexiv2) are imported inside the functions that use them, so
importing this module, as the CLI does at start-up, costs nothing. Which profile runs is decided in
`xfix.profile_choice`, where each output goes in `xfix.outputs`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from xfix import write
from xfix.discover import Job, as_inputs
from xfix.errors import UsageError, XfixError
from xfix.outputs import OutputClaims, format_for_extension, output_format, output_path, planned_files
from xfix.profile_choice import resolve_correction_profile

logger = logging.getLogger(__name__)

FORMAT_CHOICES = ("same", "jpeg", "tiff", "png")
STATUSES = ("done", "skipped", "failed", "dry-run")


def _jobs(items: Sequence[Job | str | os.PathLike] | Job | str | os.PathLike) -> tuple[Job, ...]:
    return tuple(item if isinstance(item, Job) else Job(Path(item)) for item in as_inputs(items, Job))


@dataclass(frozen=True)
class CorrectConfig:
    """Everything `correct` needs, checked when built; invalid values raise UsageError.

    jobs: from `discover.discover`, or plain paths (each a job without a sub-folder), or one path or job.
    bits: None picks the format's default (8 for JPEG, 16 for TIFF/PNG); JPEG outputs are 8-bit whatever
        `bits` says unless fmt is "jpeg" explicitly, where 16 is an error.
    strength: 0 keeps the input, 1 is the profile's full correction.
    settings: profile setting overrides, passed to the Corrector.
    inference: [inference] overrides (mode, work_size, tile_size, tile_overlap, leave_alone), passed to the
        Corrector.
    display_route: take the 8-bit display route where it applies (an 8-bit input in the model's display
        encoding, 8-bit output in that encoding, no sidecars or variants; see `xfix.display8`). It gives
        the same pixels up to the dither, several times faster on large photos; False always takes the
        float route.
    """

    jobs: tuple[Job, ...]
    out_dir: Path = Path("xfix-out")
    profile: str | None = None
    device: str = "auto"
    fmt: str = "same"
    bits: int | None = None
    quality: int = 95
    output_space: str = "srgb"
    input_space: str | None = None
    suffix: str = ""
    overwrite: bool = False
    dry_run: bool = False
    strip_gps: bool = False
    max_megapixels: float = 200.0
    strength: float = 1.0
    settings: Mapping[str, Any] = field(default_factory=dict)
    inference: Mapping[str, Any] = field(default_factory=dict)
    sidecars: tuple[str, ...] = ()  # beside each output: "edits", "xmp", "steps" (xfix.sidecars)
    variants: int = 0  # also write this many other edits the model draws (whitebox), as NAME.vK.ext
    display_route: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs", _jobs(self.jobs))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        object.__setattr__(self, "inference", MappingProxyType(dict(self.inference)))
        object.__setattr__(self, "sidecars", tuple(self.sidecars))
        self._check()

    def _check(self) -> None:
        from xfix.colour import OUTPUT_SPACES, RGB_SPACES

        checks = [
            (
                self.fmt in FORMAT_CHOICES,
                f"--format must be one of {', '.join(FORMAT_CHOICES)}, got {self.fmt!r}",
            ),
            (self.bits in (None, 8, 16), f"--bits must be 8 or 16, got {self.bits}"),
            (
                not (self.fmt == "jpeg" and self.bits == 16),
                "JPEG holds 8 bits; use --format tiff or png for 16",
            ),
            (1 <= self.quality <= 100, f"--quality must be 1-100, got {self.quality}"),
            (self.output_space in OUTPUT_SPACES, f"--output-space must be one of {', '.join(OUTPUT_SPACES)}"),
            (
                self.input_space in (None, *RGB_SPACES),
                f"--input-space must be one of {', '.join(RGB_SPACES)}",
            ),
            (0.0 <= self.strength <= 1.0, f"--strength must be in 0..1, got {self.strength}"),
            (0 <= self.variants <= 100, f"--variants must be in 0..100, got {self.variants}"),
            (self.max_megapixels > 0, f"--max-megapixels must be positive, got {self.max_megapixels}"),
            (
                "/" not in self.suffix and os.sep not in self.suffix,
                "--suffix cannot contain a path separator",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)


@dataclass(frozen=True)
class FileResult:
    """What happened to one input. status: done | skipped | failed | dry-run; error: the one-line reason of a
    failure (None otherwise); note: why it was skipped, what a dry run would do, the stages' assumptions;
    strength: the share of the profile's correction the output carries, after --strength and the profile's
    leave_alone fade (None when nothing was written)."""

    input: Path
    output: Path | None
    profile: str
    device: str
    seconds: float
    status: str
    error: str | None = None
    warnings: tuple[str, ...] = ()
    megapixels: float = 0.0
    note: str | None = None
    strength: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict with exactly: input, output, profile, device, seconds, status, error, warnings,
        strength, note (a script must see why a file was skipped: the image or a side file exists)."""
        return {
            "input": str(self.input),
            "output": None if self.output is None else str(self.output),
            "profile": self.profile,
            "device": self.device,
            "seconds": round(self.seconds, 4),
            "status": self.status,
            "error": self.error,
            "warnings": list(self.warnings),
            "strength": None if self.strength is None else round(self.strength, 4),
            "note": self.note,
        }


@dataclass(frozen=True)
class Summary:
    """The results of a batch, in input order, and its wall time in seconds."""

    results: tuple[FileResult, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def done(self) -> int:
        return self.count("done")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def warnings(self) -> int:
        return sum(len(r.warnings) for r in self.results)

    @property
    def megapixels(self) -> float:
        return sum(r.megapixels for r in self.results)


OnStart = Callable[[int, Job], None]
OnResult = Callable[[FileResult], None]


def correct(
    config: CorrectConfig, *, on_start: OnStart | None = None, on_result: OnResult | None = None,
    corrector: Any = None,
) -> Summary:
    """Correct every job of `config`. on_start(index, job) is called before a file, on_result(result) after.

    The profile is resolved first (UsageError when unknown) and loaded on a device the first time a file
    needs it, so a batch where everything is skipped never imports torch. `corrector`: an already built
    `profile.Corrector` used instead (e.g. `xfix apply`'s saved edit); config.profile is then ignored.
    """
    start = perf_counter()
    profile = corrector.profile if corrector is not None else resolve_correction_profile(config.profile)
    batch = _Batch(config, profile, corrector=corrector)
    results = []
    for index, job in enumerate(config.jobs):
        if on_start is not None:
            on_start(index, job)
        result = batch.run(job)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return Summary(tuple(results), perf_counter() - start)


def correct_file(
    input: Path | str,
    output: Path | str | None = None,
    *,
    corrector: Any = None,
    **options: Any,
) -> FileResult:
    """Correct one image from Python; raises the XfixError instead of returning a failed result.

    output: the file to write (its extension picks the format when `fmt` is not given; a `fmt` that
        contradicts it is a UsageError); None puts it in `out_dir` as a batch would. options: any
        `CorrectConfig` field. corrector: an already loaded `profile.Corrector`, to reuse across calls.
    """
    if output is not None:
        output = Path(output)
        options.setdefault("out_dir", output.parent)
        options.setdefault("fmt", format_for_extension(output))
    config = CorrectConfig(jobs=(Job(Path(input)),), **options)
    if output is not None:
        _check_output_extension(config, output)
    profile = corrector.profile if corrector is not None else resolve_correction_profile(config.profile)
    batch = _Batch(config, profile, corrector=corrector, raise_errors=True)
    return batch.run(config.jobs[0], output=output)


def _check_output_extension(config: CorrectConfig, output: Path) -> None:
    """UsageError when `output`'s extension names another format than the one `config` writes for its job
    (fmt="jpeg" into "o.png", or "same" for a PNG into "o.jpg"): the bytes would contradict the name."""
    named, written = format_for_extension(output), output_format(config.jobs[0], config)
    if named != written:
        message = f"the name says {named} but fmt={config.fmt!r} writes {written}; change one of them"
        raise UsageError(message, output)


class _Batch:
    """Per-batch state: the profile, its Corrector (loaded on first use) and the outputs planned so far."""

    def __init__(
        self, config: CorrectConfig, profile: Any, *, corrector: Any = None, raise_errors: bool = False
    ):
        self.config = config
        self.profile = profile
        self.corrector = corrector
        self.raise_errors = raise_errors
        self.plan_checked = False  # --dry-run: the profile passed the checks of loading it (plan_corrector)
        # Every input of the batch: no output may take the place of any of them, not only its own (a.png ->
        # a.jpg would otherwise replace the input a.jpg before a.jpg's turn comes).
        self.claims = OutputClaims(j.input for j in config.jobs if j.problem is None)

    @property
    def device(self) -> str:
        return str(self.corrector.device) if self.corrector is not None else self.config.device

    def _corrector(self) -> Any:
        if self.corrector is None:
            from xfix.profile import Corrector

            self.corrector = self._checked(Corrector.load(self.profile, **self._load_options()))
        return self.corrector

    def _check_corrector(self) -> None:
        """For --dry-run: what `_corrector` would refuse (device, settings, sidecars for this profile), once,
        without reading the weights."""
        if self.plan_checked or self.corrector is not None:
            return
        from xfix.profile import plan_corrector

        self._checked(plan_corrector(self.profile, **self._load_options()))
        self.plan_checked = True

    def _load_options(self) -> dict[str, Any]:
        """How the batch's options load its profile (Corrector.load and plan_corrector alike)."""
        config = self.config
        return {"device": config.device, "settings_overrides": dict(config.settings),
                "inference_overrides": dict(config.inference)}  # fmt: skip

    def _checked(self, corrector: Any) -> Any:
        """`corrector` (a loaded one or a plan) once it can write the side files and variants asked for."""
        if self.config.sidecars or self.config.variants:
            from xfix.sidecars import check_sidecars

            check_sidecars(self.config.sidecars, corrector, variants=self.config.variants)
        return corrector

    def run(self, job: Job, *, output: Path | None = None) -> FileResult:
        start = perf_counter()

        def result(status: str, out: Path | None, **kw: Any) -> FileResult:
            kw.setdefault("seconds", perf_counter() - start)
            return FileResult(job.input, out, self.profile.name, self.device, status=status, **kw)

        if job.problem is not None:
            return result("failed", None, error=job.problem)
        try:
            output = output if output is not None else output_path(job, self.config)
            files = planned_files(output, self.config)
            for path in files:  # before claiming: a job failed for its names must not keep them
                write.check_name(path)
            refusal = self.claims.refusal(
                job.input, files, replace_hint="choose another -o folder or a --suffix",
                clash_hint="use --suffix or separate folders",
            )
            if refusal is not None:
                raise UsageError(refusal, job.input)
        except Exception as error:
            return result("failed", None, error=self._failure(error, job))
        existing = [f for f in files if os.path.lexists(f)]
        if existing and not self.config.overwrite:  # a sidecar too: NAME.xmp may be Lightroom's, not ours
            return result("skipped", output, note=f"{existing[0]} exists (--overwrite replaces it)")
        if self.config.dry_run:
            self._check_corrector()  # not caught, as in a real run
            try:
                write.check_folder(output.parent)  # what ensure_folder would refuse
            except XfixError as error:
                return result("failed", None, error=self._failure(error, job))
            plan = ", ".join(f"{'replace' if f in existing else 'write'} {f}" for f in files)
            return result("dry-run", output, note=f"would {plan}")
        corrector = self._corrector()  # not caught: a profile that cannot load would fail every file alike
        try:
            warnings, megapixels, notes, strength = self._process(job, output, corrector)
        except BaseException as error:  # an interrupt too: the job's files are written all or none
            _remove_new(files, existing)
            if not isinstance(error, Exception):
                raise
            return result("failed", None, error=self._failure(error, job))
        return result("done", output, warnings=tuple(warnings), megapixels=megapixels, note=notes,
                      strength=strength)

    def _failure(self, error: Exception, job: Job) -> str:
        """The one-line reason for a failed file; re-raises when the caller wants exceptions (correct_file).

        Anything that is not an XfixError is a bug or a resource problem, reported as one line (the traceback
        goes to the debug log) so it does not cost the rest of a long batch; the exit code still says 1."""
        if self.raise_errors:
            raise error
        if isinstance(error, XfixError):
            return failure_reason(error, job.input)
        if isinstance(error, MemoryError):
            return "out of memory (try --max-megapixels or another --device)"
        logger.debug("unexpected error on %s", job.input, exc_info=error)
        return _one_line(f"internal error ({type(error).__name__}: {error}); --debug shows the traceback")

    def _process(self, job: Job, output: Path, corrector: Any) -> tuple[list[str], float, str | None, float]:
        """Decode, correct, encode and write one file. Returns (metadata warnings, megapixels, notes of the
        stages' assumptions, e.g. "assumed sRGB", the share of the correction applied). Raises XfixError."""
        from xfix import decode, linearize

        config = self.config
        write.ensure_folder(output.parent)  # before the work: an unwritable output folder fails fast
        decoded = decode.decode(job.input, max_megapixels=config.max_megapixels)
        fmt, bits = self._output_format(job)
        display = display_route_frame(decoded, corrector, config, fmt=fmt, bits=bits)
        if display is not None:
            corrected_samples = corrector.apply_display(display, strength=config.strength)
            warnings = self._write_display(job, output, corrected_samples, fmt)
            notes = "; ".join(corrected_samples.notes) or None
            return warnings, display.megapixels, notes, corrected_samples.strength
        frame = linearize.linearize(decoded, input_space=config.input_space)
        corrected = corrector.apply(frame, strength=config.strength)
        warnings = self._write(job, output, corrected, corrector, frame)
        if config.variants:  # other edits drawn by the model (xfix.sidecars), output names numbered
            from xfix.sidecars import variant_correctors, variant_path

            for k, variant in enumerate(variant_correctors(corrector, frame, config.variants), 1):
                edited = variant.apply(frame, strength=config.strength)
                warnings += self._write(job, variant_path(output, k), edited, variant, frame)
        notes = "; ".join(dict.fromkeys(frame.notes + corrected.notes)) or None
        return warnings, frame.megapixels, notes, corrected.strength

    def _output_format(self, job: Job) -> tuple[str, int]:
        """(format, bits per sample) of the output written for `job`."""
        from xfix import encode

        fmt, bits = output_format(job, self.config), self.config.bits
        return fmt, bits if bits is not None and fmt != "jpeg" else encode.default_bits(fmt)

    def _write_display(self, job: Job, output: Path, corrected: Any, fmt: str) -> list[str]:
        """Encode a corrected DisplayFrame as `fmt`, copy the input's metadata, write atomically; returns the
        metadata warnings."""
        from xfix import encode

        data = encode.encode_display(corrected, fmt=fmt, quality=self.config.quality)
        return self._store(job, output, data, fmt)

    def _write(self, job: Job, output: Path, corrected: Any, corrector: Any, frame: Any) -> list[str]:
        """Encode `corrected`, copy the input's metadata, write atomically, then any sidecars; returns the
        metadata warnings."""
        from xfix import encode

        config = self.config
        fmt, bits = self._output_format(job)
        data = encode.encode(
            corrected, fmt=fmt, bits=bits, quality=config.quality, output_space=config.output_space
        )
        warnings = self._store(job, output, data, fmt)
        if config.sidecars:  # the edit the model just made (xfix.sidecars), beside the output
            from xfix.sidecars import write_sidecars

            write_sidecars(
                config.sidecars, corrector, frame, output, source=job.input, strength=corrected.strength,
                overwrite=config.overwrite,
            )
        return warnings

    def _store(self, job: Job, output: Path, data: bytes, fmt: str) -> list[str]:
        """Copy the input's metadata into the encoded `data`, write it atomically; returns the metadata
        warnings."""
        from xfix import __version__, metadata

        config = self.config
        software = f"xfix {__version__} ({self.profile.name})"
        data, warnings = metadata.copy_metadata(
            job.input,
            data,
            fmt=fmt,
            strip_gps=config.strip_gps,
            software=software,
            output_space=config.output_space,
        )
        write.write_atomic(output, data, overwrite=config.overwrite)
        return list(warnings)


def _remove_new(files: Sequence[Path], existing: Sequence[Path]) -> None:
    """Remove those of a failed job's `files` that were not there before it (`existing`): the image
    written, say, while a side file was not, would make a rerun skip the job and never write the rest."""
    for path in files:
        if path not in existing:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                logger.debug("could not remove %s: %s", path, error)


def display_route_frame(decoded: Any, corrector: Any, config: CorrectConfig, *, fmt: str, bits: int) -> Any:
    """The DisplayFrame to correct on the 8-bit display route, or None when the float route must run: the
    route must be allowed, the output 8-bit in the model's display encoding, no sidecar or variant (they
    read the linear frame), and the input 8-bit in that encoding at a size the corrector takes."""
    from xfix import linearize

    encoding = corrector.profile.encoding
    if not config.display_route or config.sidecars or config.variants:
        return None
    if bits != 8 or config.output_space != encoding:
        return None
    frame = linearize.keep_display(decoded, encoding, input_space=config.input_space)
    return frame if frame is not None and corrector.takes_display(frame) else None


def failure_reason(error: XfixError, input: Path) -> str:
    """The one-line reason for a result line that already names the input: the path is added only when the
    error concerns another file (the output folder, say)."""
    if error.path is None or error.path.absolute() == input.absolute():
        return _one_line(error.message)
    return _one_line(str(error))


def _one_line(text: str) -> str:
    """Library messages sometimes span lines; a failure is reported on exactly one."""
    return " ".join(text.split())
