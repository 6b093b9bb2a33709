"""File-system questions every stage may ask about a path, kept apart so that no stage imports another to ask
them: where a path really leads, whether a name leads nowhere, whether it is a FIFO, socket or device.

Pure standard library, never raising: one bad link or special file must not stop a batch.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def real_path(path: Path | str) -> Path:
    """The absolute path with symbolic links followed, never raising: unlike Path.resolve, a symlink loop
    or a dangling link stays as named, so one bad link cannot stop a batch."""
    return Path(os.path.realpath(path))


def link_problem(path: Path | str) -> str | None:
    """Why a name that exists leads nowhere (a symbolic link loop, a dangling link), or None."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (too many levels of symbolic links)"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "broken symbolic link (its target does not exist)"
        return f"cannot read it: {exc.strerror or exc}"
    return None


def special_file_kind(path: Path | str) -> str | None:
    """"a FIFO", "a socket" or "a device" when `path` is one of those, None for a regular file or a folder
    (or a name that leads nowhere). Such a file must never be opened as an image: a FIFO blocks forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
