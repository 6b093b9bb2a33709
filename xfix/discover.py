"""Turn command-line inputs (files, folders, globs, `-` for stdin) into an ordered list of jobs.

Pure standard library, so the CLI imports it at start-up for free. Every input either yields jobs, a
warning (a file that is not an image, skipped) or a failed job (a path that names nothing, a symbolic link
loop), never an exception: one bad argument must not stop a batch. A FIFO, socket or device named like an
image is never queued: opening it would block the batch or read something that is no file.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from xfix.files import link_problem, real_path, special_file_kind

# Extension (lower case, with dot) -> the format the decoder and `encode.resolve_format` speak.
EXTENSION_FORMATS: dict[str, str] = {
    **{
        ext: "raw" for ext in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw")
    },
    ".tif": "tiff",
    ".tiff": "tiff",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
}

_GLOB_CHARS = re.compile(r"[*?\[]")
_TEMP_NAME = re.compile(
    r"^\..*\.xfix-tmp-"
)  # the atomic writer's temp files; hidden anyway, named for clarity


@dataclass(frozen=True)
class Job:
    """One input image to correct.

    rel_dir: sub-folder of the walked root the file was found in (Path() when given directly), mirrored under
        the output folder so `-r` keeps a shoot's structure.
    problem: set when the input cannot be processed at all (e.g. the path does not exist); the pipeline
        reports it as a failed file without touching anything.
    """

    input: Path
    rel_dir: Path = Path()
    problem: str | None = None

    @property
    def format(self) -> str | None:
        """The format from the extension ("raw", "tiff", "jpeg" or "png"); None for an unsupported one."""
        return format_of(self.input)


@dataclass(frozen=True)
class DiscoveryResult:
    jobs: tuple[Job, ...]
    warnings: tuple[str, ...]

    @property
    def failures(self) -> tuple[Job, ...]:
        return tuple(job for job in self.jobs if job.problem is not None)


def as_inputs(inputs: Any, *single: type) -> tuple:
    """`inputs` as a tuple: one str or os.PathLike (or one instance of the `single` types) is one input, not a
    sequence of inputs, which a str would otherwise be, taken character by character."""
    return (inputs,) if isinstance(inputs, (str, os.PathLike, *single)) else tuple(inputs)


def format_of(path: Path | str) -> str | None:
    """Image format from the file extension, case-insensitive: "IMG_1.CR2" -> "raw"; "notes.txt" -> None."""
    return EXTENSION_FORMATS.get(Path(path).suffix.lower())


def _is_folder(entry: os.DirEntry) -> bool:
    """entry.is_dir() that says False instead of raising for a symbolic link loop (reported as a file)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def natural_key(name: str) -> list[object]:
    """Sort key that orders digits by value: IMG_2 before IMG_10 (case-insensitive otherwise)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _ignored(name: str) -> bool:
    """Hidden files (including our own `.name.xfix-tmp-*` temp files) are never inputs."""
    return name.startswith(".") or bool(_TEMP_NAME.match(name))


def read_stdin_paths(stream: TextIO, *, nul: bool) -> list[str]:
    """Paths from a stream: one per line, or NUL-separated (`find -print0`) when `nul`; blanks dropped."""
    raw = getattr(stream, "buffer", None)  # bytes when possible: file names need not be valid UTF-8
    text = os.fsdecode(raw.read()) if raw is not None else stream.read()
    parts = text.split("\0") if nul else [line.rstrip("\r") for line in text.splitlines()]
    return [p for p in parts if p.strip()]  # names are kept exactly, spaces included


def _list_folder(
    root: Path, *, recursive: bool, exclude: tuple[Path, ...]
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, rel_dir) for the non-hidden files of a folder in natural order (files, then sub-folders,
    depth-first), and warnings for sub-folders that could not be listed.

    Raises OSError when `root` itself cannot be listed."""
    files: list[tuple[Path, Path]] = []
    warnings: list[str] = []
    visited = {real_path(root)}  # a symlink back up the tree must not loop forever
    stack = [Path()]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(root / rel) as it:
                entries = sorted(it, key=lambda e: natural_key(e.name))
        except OSError as exc:
            if rel == Path():
                raise
            warnings.append(f"{root / rel}: folder skipped, cannot list it ({exc.strerror or exc})")
            continue
        subdirs = []
        for entry in entries:
            if _ignored(entry.name):
                continue
            if _is_folder(entry):
                real = real_path(entry.path)
                if recursive and real not in exclude and real not in visited:
                    visited.add(real)
                    subdirs.append(rel / entry.name)
            else:
                files.append((Path(entry.path), rel))
        stack.extend(reversed(subdirs))  # depth-first, in natural order
    return files, warnings


def _glob_base(pattern: str) -> Path:
    """The leading folders of a pattern that hold no wildcard: "shoot/*/a?.jpg" -> Path("shoot")."""
    parts = Path(pattern).parts
    literal: list[str] = []
    for part in parts:
        if _GLOB_CHARS.search(part):
            break
        literal.append(part)
    return Path(*literal) if literal else Path()


def _expand(arg: str, *, recursive: bool) -> list[str] | None:
    """Glob expansion for quoted patterns (the shell did not expand them); None when `arg` is no pattern.

    An existing file whose name holds `[` or `*` is taken literally. `**` spans folders only with `recursive`,
    as in the shell's globstar."""
    if not _GLOB_CHARS.search(arg) or os.path.lexists(arg):
        return None
    matches = glob.glob(_caseless_extension(arg), recursive=recursive)
    return sorted(matches, key=natural_key)


def _caseless_extension(pattern: str) -> str:
    """The pattern with its extension matching in any case, as extensions do in folders: "**/*.JPG" also
    finds a.jpg ("**/*.[jJ][pP][gG]"). Only a literal extension of letters and digits is rewritten; glob
    has no case-insensitive mode before Python 3.12's pathlib."""
    head, dot, ext = pattern.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]+", ext):
        return pattern
    return head + dot + "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)


class _Collector:
    """Accumulates jobs and warnings; drops duplicates (same resolved path), keeps first-seen order."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.warnings: list[str] = []
        self._seen: set[Path] = set()

    def add_file(self, path: Path, rel_dir: Path) -> None:
        """Queue an image file (its extension and kind already checked) unless it is queued already."""
        key = real_path(path)
        if key not in self._seen:
            self._seen.add(key)
            self.jobs.append(Job(path, rel_dir))

    def add_problem(self, arg: str, problem: str) -> None:
        self.jobs.append(Job(Path(arg), Path(), problem))


def discover(
    inputs: Sequence[str],
    *,
    recursive: bool = False,
    stdin: TextIO | None = None,
    nul: bool = False,
    exclude: Sequence[Path | str] = (),
) -> DiscoveryResult:
    """Jobs for `inputs`: files, folders (`recursive` walks sub-folders), glob patterns, or "-" (read the
    paths from `stdin`, one per line or NUL-separated with `nul`).

    Order: inputs as given, each folder's files in natural order; a file reached twice is queued once.
    exclude: folders never walked into (the output folder, so a re-run over `.` does not eat its own outputs).
    A path that does not exist becomes a failed job naming it; a file of another type a warning.
    """
    out = _Collector()
    excluded = tuple(real_path(p) for p in exclude)
    args: list[str] = []
    stdin_read = False
    for arg in inputs:
        if arg != "-":
            args.append(arg)
        elif stdin is None:
            raise ValueError("'-' given but no stdin stream to read paths from")
        elif not stdin_read:  # a second "-" has nothing left to read
            args.extend(read_stdin_paths(stdin, nul=nul))
            stdin_read = True
    for arg in args:
        _discover_one(arg, out, recursive=recursive, exclude=excluded, rel_prefix=Path())
    return DiscoveryResult(tuple(out.jobs), tuple(out.warnings))


def _discover_one(
    arg: str, out: _Collector, *, recursive: bool, exclude: tuple[Path, ...], rel_prefix: Path
) -> None:
    expanded = _expand(arg, recursive=recursive)
    if expanded is not None:
        if not expanded:
            out.add_problem(arg, "no file matches this pattern")
        base = _glob_base(arg)
        for match in expanded:
            # Mirror what lies below the pattern's literal folders: "shoot/*/*.dng" keeps day folders apart.
            m = Path(match)
            rel = _relative(m if m.is_dir() else m.parent, base)
            _discover_one(match, out, recursive=recursive, exclude=exclude, rel_prefix=rel)
        return
    path = Path(arg)
    if path.is_dir():
        _discover_folder(path, out, recursive=recursive, exclude=exclude, rel_prefix=rel_prefix)
    elif os.path.lexists(path):
        if _ignored(path.name):
            out.warnings.append(f"{path}: skipped, hidden or temporary file")
        elif format_of(path) is None:
            out.warnings.append(
                f"{path}: skipped, not a supported image type ({path.suffix or 'no extension'})"
            )
        elif (problem := link_problem(path)) is not None:
            out.add_problem(arg, problem)
        elif (kind := special_file_kind(path)) is not None:
            out.add_problem(arg, f"not a regular file ({kind}); not opened")
        else:
            out.add_file(path, rel_prefix)
    else:
        out.add_problem(arg, "no such file or directory")


def _discover_folder(
    path: Path, out: _Collector, *, recursive: bool, exclude: tuple[Path, ...], rel_prefix: Path
) -> None:
    try:
        images, warnings = folder_images(path, recursive=recursive, exclude=exclude)
    except OSError as exc:
        out.add_problem(str(path), f"cannot list folder: {exc.strerror or exc}")
        return
    out.warnings.extend(warnings)
    for image, rel in images:
        # A name like an image's is one the user expects corrected: a link there that leads nowhere is a
        # failed file, not silently skipped as the folder's other files are
        if (problem := link_problem(image)) is not None:
            out.add_problem(str(image), problem)
        else:
            out.add_file(image, rel_prefix / rel)
    if not images:
        hint = "" if recursive else " (use -r to include sub-folders)"
        out.warnings.append(f"{path}: no images in this folder{hint}")


def _is_image(path: Path) -> bool:
    return format_of(path) is not None


def folder_images(
    folder: Path, *, is_image: Callable[[Path], bool] = _is_image, recursive: bool = False,
    exclude: tuple[Path, ...] = (),
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, rel_dir) of the images in a folder, in natural order, and the warnings: sub-folders that could
    not be listed, FIFOs, sockets and devices named like images, and one line counting the files that are not
    images. `is_image` decides (default: the extensions `correct` reads), so a command that reads other files
    (`xfix hdr`) warns alike.

    Raises OSError when `folder` itself cannot be listed."""
    files, warnings = _list_folder(folder, recursive=recursive, exclude=exclude)
    images, others = [], []
    for file, rel in files:
        if not is_image(file):
            others.append(file)
        elif (kind := special_file_kind(file)) is not None:  # opening a FIFO would block forever
            warnings.append(f"{file}: skipped, not a regular file ({kind})")
        else:
            images.append((file, rel))
    if others:
        kinds = ", ".join(sorted({f.suffix.lower() or "no extension" for f in others}))
        warnings.append(f"{folder}: skipped {len(others)} file(s) that are not images ({kinds})")
    return images, warnings


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.relative_to(base)
    except ValueError:  # ".." in the pattern: no common base to mirror from
        return Path()
