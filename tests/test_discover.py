"""discover(): files, folders, -r, globs, stdin, extensions, duplicates, order, missing paths."""

from __future__ import annotations

import io
import os
from pathlib import Path

import fixtures
import pytest

from xfix.discover import Job, discover, format_of, natural_key


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _names(result) -> list[str]:
    return [job.input.name for job in result.jobs]


@pytest.fixture
def shoot(tmp_path, monkeypatch):
    """A shoot: mixed-case extensions, natural-order names, a sidecar, hidden and temp files, sub-folders."""
    monkeypatch.chdir(tmp_path)
    _touch(
        tmp_path / "shoot",
        "IMG_10.JPG",
        "IMG_2.jpg",
        "IMG_1.Cr2",
        "scan.TIFF",
        "notes.txt",
        "IMG_1.xmp",
        ".hidden.jpg",
        ".IMG_2.jpg.xfix-tmp-1a2b",
        "day2/b.NEF",
        "day2/deeper/c.png",
        "day10/a.dng",
    )
    return Path("shoot")


def test_extensions_are_case_insensitive_and_cover_the_raw_formats():
    for ext in ("dng", "cr2", "cr3", "nef", "arw", "raf", "orf", "rw2", "pef", "srw"):
        assert format_of(f"x.{ext.upper()}") == "raw"
    assert [format_of(n) for n in ("a.TiF", "a.tiff", "a.JPEG", "a.jpg", "a.Png")] == [
        "tiff", "tiff", "jpeg", "jpeg", "png"
    ]  # fmt: skip
    assert format_of("a.gif") is None and format_of("README") is None


def test_natural_order():
    names = ["IMG_10.jpg", "img_2.jpg", "IMG_1.jpg", "IMG_100.jpg"]
    assert sorted(names, key=natural_key) == ["IMG_1.jpg", "img_2.jpg", "IMG_10.jpg", "IMG_100.jpg"]


def test_folder_lists_its_images_in_natural_order_and_warns_about_others(shoot):
    result = discover([str(shoot)])
    # No sub-folders, no hidden or temp files.
    assert _names(result) == ["IMG_1.Cr2", "IMG_2.jpg", "IMG_10.JPG", "scan.TIFF"]
    assert all(job.rel_dir == Path() and job.problem is None for job in result.jobs)
    assert len(result.warnings) == 1 and "2 file(s)" in result.warnings[0] and ".txt" in result.warnings[0]


def test_recursive_keeps_relative_sub_folders(shoot):
    result = discover([str(shoot)], recursive=True)
    rel = {job.input.name: job.rel_dir for job in result.jobs}
    assert rel == {
        "IMG_1.Cr2": Path(),
        "IMG_2.jpg": Path(),
        "IMG_10.JPG": Path(),
        "scan.TIFF": Path(),
        "b.NEF": Path("day2"),
        "c.png": Path("day2/deeper"),
        "a.dng": Path("day10"),
    }
    assert _names(result)[-3:] == ["b.NEF", "c.png", "a.dng"]  # day2 before day10, depth first


def test_recursive_skips_excluded_output_folder(shoot):
    _touch(shoot, "xfix-out/IMG_1.tif")
    result = discover([str(shoot)], recursive=True, exclude=[shoot / "xfix-out"])
    assert "IMG_1.tif" not in _names(result)


def test_quoted_globs_are_expanded(shoot):
    result = discover(["shoot/IMG_*.*"])
    assert _names(result) == ["IMG_1.Cr2", "IMG_2.jpg", "IMG_10.JPG"]
    assert any("IMG_1.xmp" in w for w in result.warnings)


def test_double_star_glob_needs_recursive_and_mirrors_folders(shoot):
    result = discover(["shoot/**/*.png"], recursive=True)
    assert [(j.input.name, j.rel_dir) for j in result.jobs] == [("c.png", Path("day2/deeper"))]
    assert discover(["shoot/**/*.png"]).failures  # without -r, ** is a plain * (one level): nothing matches
    # A matched folder is listed as if named on the command line (shell-expanded patterns behave the same).
    result = discover(["shoot/*/*"])
    assert {(j.input.name, j.rel_dir) for j in result.jobs} == {
        ("b.NEF", Path("day2")),
        ("c.png", Path("day2/deeper")),
        ("a.dng", Path("day10")),
    }


def test_quoted_glob_extensions_match_in_any_case(shoot):
    """As the README's example promises: "**/*.JPG" finds .jpg and .JPG alike, as a folder listing does."""
    result = discover(["shoot/**/*.JPG"], recursive=True)
    assert _names(result) == ["IMG_2.jpg", "IMG_10.JPG"]
    assert [j.problem for j in discover(["shoot/*.png"]).jobs] == ["no file matches this pattern"]
    assert _names(discover(["shoot/**/*.PNG"], recursive=True)) == ["c.png"]
    assert _names(discover(["shoot/IMG_1.C[rR]2"])) == ["IMG_1.Cr2"]  # a bracket in the extension is kept


def test_stdin_lines_and_nul(shoot):
    lines = io.StringIO("shoot/IMG_2.jpg\r\n\nshoot/day2/b.NEF\n")
    assert _names(discover(["-"], stdin=lines)) == ["IMG_2.jpg", "b.NEF"]
    # NUL-separated names may hold newlines and spaces.
    odd = shoot / "with space\nand newline.jpg"
    odd.write_bytes(b"x")
    nul = io.StringIO(f"{odd}\0shoot/IMG_10.JPG\0")
    assert [j.input for j in discover(["-"], stdin=nul, nul=True).jobs] == [odd, shoot / "IMG_10.JPG"]


def test_duplicates_removed_by_resolved_path_first_seen_order_kept(shoot):
    args = ["shoot/IMG_2.jpg", "./shoot/IMG_2.jpg", str(Path("shoot/IMG_2.jpg").resolve()), "shoot"]
    result = discover(args)
    assert _names(result) == ["IMG_2.jpg", "IMG_1.Cr2", "IMG_10.JPG", "scan.TIFF"]


def test_missing_path_and_empty_glob_are_failed_jobs_not_exceptions(shoot):
    result = discover(["nope.jpg", "shoot/IMG_2.jpg", "shoot/*.arw"])
    assert [(str(j.input), j.problem) for j in result.failures] == [
        ("nope.jpg", "no such file or directory"),
        ("shoot/*.arw", "no file matches this pattern"),
    ]
    assert [j.input.name for j in result.jobs if j.problem is None] == ["IMG_2.jpg"]


def test_explicit_non_image_and_hidden_files_are_warnings(shoot):
    result = discover(["shoot/notes.txt", "shoot/.hidden.jpg"])
    assert result.jobs == ()
    assert len(result.warnings) == 2 and "notes.txt" in result.warnings[0] and "hidden" in result.warnings[1]


def test_folder_without_images_warns(tmp_path):
    (tmp_path / "empty").mkdir()
    result = discover([str(tmp_path / "empty")])
    assert result.jobs == () and "no images" in result.warnings[0] and "-r" in result.warnings[0]


def test_unlistable_folder_is_a_failure_and_an_unlistable_sub_folder_a_warning(shoot, monkeypatch):
    real_scandir = os.scandir
    locked = {(shoot / "day2").resolve()}

    def scandir(path):  # chmod 000 does not stop root, so refuse the way the OS would
        if Path(path).resolve() in locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = discover([str(shoot / "day2")])
    assert [j.problem for j in result.jobs] == ["cannot list folder: Permission denied"]
    result = discover([str(shoot)], recursive=True)
    assert "b.NEF" not in _names(result) and "a.dng" in _names(result)
    assert any("day2" in w and "cannot list" in w for w in result.warnings)


def test_dash_without_stream_is_a_programming_error():
    with pytest.raises(ValueError):
        discover(["-"])


def test_job_format():
    assert Job(Path("a/b.ORF")).format == "raw" and Job(Path("a/b.bmp")).format is None


def test_symlink_loop_is_walked_once(shoot):
    (shoot / "day2" / "loop").symlink_to("..", target_is_directory=True)
    result = discover([str(shoot)], recursive=True)
    assert len(result.jobs) == 7 and len({j.input.resolve() for j in result.jobs}) == 7


def test_stdin_bytes_that_are_not_utf8(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 file name: not valid UTF-8
    Path(name).write_bytes(b"x")
    stream = io.TextIOWrapper(io.BytesIO(b"caf\xe9.jpg\n"))
    assert [j.input for j in discover(["-"], stdin=stream).jobs] == [Path(name)]


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@needs_fifo
def test_a_fifo_named_like_an_image_is_never_queued(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    with fixtures.fifo_with_standby_writer(folder / "pipe.jpg") as fifo:
        result = discover([str(folder)])
        assert _names(result) == ["a.jpg"]
        assert any("pipe.jpg: skipped, not a regular file (a FIFO)" in w for w in result.warnings)
        (job,) = discover([str(fifo)]).jobs
        assert job.problem == "not a regular file (a FIFO); not opened"


def test_a_symlink_loop_is_one_failed_job_and_the_rest_is_queued(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    (folder / "loop.jpg").symlink_to("loop.jpg")
    (folder / "gone.jpg").symlink_to("nothing-here.jpg")
    other = tmp_path / "u.jpg"
    other.write_bytes(b"x")
    result = discover([str(folder / "loop.jpg"), str(other)])
    assert [(j.input.name, j.problem) for j in result.jobs] == [
        ("loop.jpg", "symbolic link loop (too many levels of symbolic links)"), ("u.jpg", None)
    ]  # fmt: skip
    result = discover([str(folder)], exclude=[folder / "loop.jpg"])  # a looping -o must not raise either
    assert [(j.input.name, j.problem is None) for j in result.jobs] == [
        ("a.jpg", True), ("gone.jpg", False), ("loop.jpg", False)
    ]  # fmt: skip
    assert "broken symbolic link" in result.jobs[1].problem
