"""Write stage: atomic writes, no clobbering without overwrite, no temporary file left after any failure."""

from __future__ import annotations

import os
import signal
import stat

import pytest

from xfix import write
from xfix.cli_common import Terminated
from xfix.errors import WriteError


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".xfix-tmp-" in p.name)


def test_writes_new_file_with_normal_permissions(tmp_path):
    target = tmp_path / "out.jpg"
    write.write_atomic(target, b"abc", overwrite=False)
    assert target.read_bytes() == b"abc" and _leftovers(tmp_path) == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_existing_file_is_not_replaced_without_overwrite(tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")
    with pytest.raises(WriteError, match="exists"):
        write.write_atomic(target, b"new", overwrite=False)
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_existing_file_is_replaced_with_overwrite(tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")
    write.write_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == []


def test_file_created_by_someone_else_during_the_write_is_not_clobbered(tmp_path, monkeypatch):
    target = tmp_path / "out.jpg"
    real_fsync = os.fsync

    def racing_fsync(fd):  # another process takes the name after our existence check
        real_fsync(fd)
        target.write_bytes(b"theirs")

    monkeypatch.setattr(write.os, "fsync", racing_fsync)
    with pytest.raises(WriteError, match="exists"):
        write.write_atomic(target, b"ours", overwrite=False)
    assert target.read_bytes() == b"theirs" and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "failure", [OSError(28, "No space left on device"), KeyboardInterrupt(), Terminated(signal.SIGTERM)]
)  # Terminated: what `xfix correct`'s SIGTERM/SIGHUP handler raises
def test_failure_mid_write_leaves_no_temporary_and_no_target(tmp_path, monkeypatch, failure):
    target = tmp_path / "out.jpg"

    def failing_fsync(fd):
        raise failure

    monkeypatch.setattr(write.os, "fsync", failing_fsync)
    expected = WriteError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        write.write_atomic(target, b"x" * 10000, overwrite=True)
    if expected is WriteError:
        assert "no space left" in str(info.value)
    assert not target.exists() and _leftovers(tmp_path) == []


def test_interrupt_during_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(write.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        write.write_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def _open_then_interrupt(monkeypatch, *, chosen):
    """os.open that creates the file whose name `chosen(name)` picks, then is interrupted (as a signal
    arriving just after the call would)."""
    real_open = os.open

    def opening(path, flags, mode=0o777):
        fd = real_open(path, flags, mode)
        if chosen(os.path.basename(path)):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(write.os, "open", opening)


def test_an_interrupt_just_after_creating_the_temporary_leaves_nothing(tmp_path, monkeypatch):
    _open_then_interrupt(monkeypatch, chosen=lambda name: ".xfix-tmp-" in name)
    with pytest.raises(KeyboardInterrupt):
        write.write_atomic(tmp_path / "out.jpg", b"data", overwrite=False)
    assert not (tmp_path / "out.jpg").exists() and _leftovers(tmp_path) == []


def test_an_interrupt_just_after_claiming_the_name_without_hard_links_leaves_nothing(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(1, "Operation not permitted")  # EPERM, as FAT/exFAT answer

    monkeypatch.setattr(write.os, "link", no_link)
    _open_then_interrupt(monkeypatch, chosen=lambda name: name == "out.jpg")  # the empty claim
    with pytest.raises(KeyboardInterrupt):
        write.write_atomic(tmp_path / "out.jpg", b"data", overwrite=False)
    assert not (tmp_path / "out.jpg").exists() and _leftovers(tmp_path) == []


def test_missing_folder(tmp_path):
    with pytest.raises(WriteError, match="does not exist"):
        write.write_atomic(tmp_path / "nope" / "out.jpg", b"x", overwrite=False)


def test_folder_that_is_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_bytes(b"i am a file")
    with pytest.raises(WriteError, match="not a folder"):
        write.write_atomic(blocker / "out.jpg", b"x", overwrite=False)
    with pytest.raises(WriteError, match="a file is in the way|not a folder"):
        write.ensure_folder(blocker / "sub")
    with pytest.raises(WriteError, match="not a folder"):
        write.ensure_folder(blocker)
    assert blocker.read_bytes() == b"i am a file"


def test_target_that_is_a_folder(tmp_path):
    (tmp_path / "out.jpg").mkdir()
    with pytest.raises(WriteError, match="folder"):
        write.write_atomic(tmp_path / "out.jpg", b"x", overwrite=True)


def test_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root (or a permissive file system) can write anyway
            pytest.skip("chmod does not stop this user from writing")
        with pytest.raises(WriteError, match="permission denied"):
            write.write_atomic(folder / "out.jpg", b"x", overwrite=False)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_ensure_folder_creates_parents(tmp_path):
    folder = tmp_path / "a" / "b" / "c"
    write.ensure_folder(folder)
    write.ensure_folder(folder)  # twice is fine
    assert folder.is_dir()


def test_filesystem_without_hard_links_still_refuses_to_clobber(tmp_path, monkeypatch):
    target = tmp_path / "out.jpg"

    def no_link(src, dst):
        raise OSError(1, "Operation not permitted")  # EPERM, as FAT/exFAT answer

    monkeypatch.setattr(write.os, "link", no_link)
    write.write_atomic(target, b"first", overwrite=False)
    assert target.read_bytes() == b"first"
    with pytest.raises(WriteError, match="exists"):
        write.write_atomic(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first" and _leftovers(tmp_path) == []


def test_permission_denied_is_a_clear_write_error(tmp_path, monkeypatch):
    # Runs as root too (where chmod cannot lock a folder): the OS refusal is simulated at file creation.
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(write.os, "open", refused)
    with pytest.raises(WriteError, match="permission denied") as info:
        write.write_atomic(tmp_path / "out.jpg", b"x", overwrite=False)
    assert info.value.path == tmp_path / "out.jpg"


def test_a_name_too_long_is_a_write_error_found_before_the_work(tmp_path):
    target = tmp_path / ("u" + "a" * 300 + ".jpg")
    with pytest.raises(WriteError, match="file name too long"):
        write.check_name(target)
    with pytest.raises(WriteError, match="file name too long"):  # not an OSError from looking it up
        write.write_atomic(target, b"x", overwrite=False)
    write.check_name(tmp_path / ("a" * 200 + ".jpg"))  # leaves room for the temporary file's longer name
    with pytest.raises(WriteError, match="at most"):
        write.check_name(tmp_path / ("a" * 240 + ".jpg"))  # fits, but its temporary file would not
    assert list(tmp_path.iterdir()) == []
