"""Write stage: put the output bytes on disk atomically.

The data goes to a hidden temporary file in the output folder (same file system, so the final step is a
rename), is flushed and fsync'ed, then takes the target's name in one step. An interrupted or failed write
therefore leaves either the old state or the complete new file, never a truncated output; the temporary file
is removed on any exception, KeyboardInterrupt included (and `xfix correct` turns SIGTERM and SIGHUP into one,
`cli_common.Terminated`). Without `overwrite` an existing file is never
replaced, even if another process creates it while we write (a hard link, which fails if the name exists,
instead of a rename).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from pathlib import Path

from xfix.errors import WriteError

logger = logging.getLogger(__name__)

_REASONS = {
    errno.EACCES: "permission denied (folder not writable)",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "file name too long",
}


def _reason(error: OSError) -> str:
    return _REASONS.get(error.errno, error.strerror or str(error))


def ensure_folder(path: Path) -> None:
    """Create `path` and its parents if needed; WriteError naming the reason if that is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise WriteError("output folder is a file, not a folder", path) from None
    except NotADirectoryError:
        raise WriteError("cannot create output folder: a file is in the way", path) from None
    except OSError as error:
        raise WriteError(f"cannot create output folder: {_reason(error)}", path) from None
    if not path.is_dir():
        raise WriteError("output folder is not a folder", path)


def check_folder(path: Path) -> None:
    """WriteError when `ensure_folder(path)` would fail, found without creating anything (--dry-run): a file
    where the folder or one of its parents should be, or a folder to write in that is not writable."""
    path = Path(path)
    try:
        nearest = _nearest_existing(path)
    except OSError as error:
        raise WriteError(f"cannot create output folder: {_reason(error)}", path) from None
    if nearest == path and not path.is_dir():
        raise WriteError("output folder is a file, not a folder", path)
    if not nearest.is_dir():
        raise WriteError("cannot create output folder: a file is in the way", path)
    if not os.access(nearest, os.W_OK | os.X_OK):
        verb = "write in" if nearest == path else "create output folder in"
        raise WriteError(f"cannot {verb} {nearest}: {_REASONS[errno.EACCES]}", path)


def check_name(path: Path) -> None:
    """WriteError when the file name, or its temporary file's, is longer than the file system takes (a long
    --suffix), found before any work is done."""
    path = Path(path)
    size = len(os.fsencode(path.name))
    longest = _name_max(path.parent) - (len(os.fsencode(_temporary_name(path).name)) - size)
    if size > longest:
        raise WriteError(f"file name too long ({size} bytes, at most {longest} here)", path)


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of `folder`, or of its nearest existing parent, takes."""
    try:
        return os.pathconf(_nearest_existing(folder), "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no answer: the common limit
        return 255


def _nearest_existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (the folder a missing one would be created in)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_target(path: Path, overwrite: bool) -> None:
    folder = path.parent
    try:
        if not folder.exists():
            raise WriteError(f"output folder {folder} does not exist", path)
        if not folder.is_dir():
            raise WriteError(f"output folder {folder} is not a folder", path)
        if path.is_dir():
            raise WriteError("output path is a folder", path)
    except OSError as error:  # e.g. a name too long even to look up
        raise WriteError(f"cannot write: {_reason(error)}", path) from None
    if not overwrite and os.path.lexists(path):
        raise WriteError("output exists (use --overwrite to replace it)", path)


def _temporary_name(path: Path) -> Path:
    """`.<name>.xfix-tmp-<random>` beside `path`: hidden, and skipped by discovery."""
    return path.with_name(f".{path.name}.xfix-tmp-{secrets.token_hex(4)}")


def _open_temporary(path: Path, claimed: list[Path]) -> int:
    """Create `.<name>.xfix-tmp-<random>` next to `path` exclusively, mode 0666 minus the umask; its name is
    in `claimed` from before it is created, so an interrupt at any moment leaves the caller a name to
    remove."""
    for _ in range(16):
        claimed.append(_temporary_name(path))
        try:
            return os.open(
                claimed[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
        except FileExistsError:
            claimed.pop()  # someone else's file
    raise WriteError("cannot create a temporary file (names exhausted)", path)


def _link_without_replacing(temporary: Path, path: Path) -> None:
    """Give the complete temporary file the target name only if that name is still free."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise WriteError("output exists (use --overwrite to replace it)", path) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # File systems without hard links (FAT, exFAT, some network shares): claim the name exclusively,
        # then rename over our own empty claim.
        try:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                raise WriteError("output exists (use --overwrite to replace it)", path) from None
            os.replace(temporary, path)
        except WriteError:
            raise
        except BaseException:  # also an interrupt between claiming the name and filling it
            path.unlink(missing_ok=True)
            raise
        return
    os.unlink(temporary)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not possible everywhere (Windows), so only logged when it fails."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        logger.debug("could not fsync folder %s: %s", folder, error)


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write `data` to `path` atomically. Raises WriteError (folder missing or not writable, disk full,
    target exists without `overwrite`); on any exception no temporary file is left and nothing but `path` is
    touched."""
    path = Path(path)
    _check_target(path, overwrite)
    claimed: list[Path] = []  # the temporary's name, known before the file exists
    try:
        try:
            fd = _open_temporary(path, claimed)
        except OSError as error:
            raise WriteError(f"cannot write in {path.parent}: {_reason(error)}", path) from None
        temporary = claimed[-1]
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _link_without_replacing(temporary, path)
    except BaseException as error:
        for name in claimed:
            try:
                name.unlink(missing_ok=True)
            except OSError as cleanup_error:
                logger.debug("could not remove %s: %s", name, cleanup_error)
        if isinstance(error, OSError):
            raise WriteError(f"cannot write: {_reason(error)}", path) from error
        raise
    _fsync_folder(path.parent)
