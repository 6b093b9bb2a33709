"""OutputClaims: which outputs a run may write, shared by `xfix correct` and `xfix hdr`."""

from __future__ import annotations

from pathlib import Path

from xfix.outputs import OutputClaims

HINTS = {"replace_hint": "REPLACE", "clash_hint": "CLASH"}


def test_refusal_names_the_first_conflict_and_claims_only_a_whole_job(tmp_path):
    a, b, c = (tmp_path / name for name in ("a.jpg", "b.jpg", "c.jpg"))
    out = tmp_path / "out"
    claims = OutputClaims([a, b, c])
    assert claims.refusal(a, [a], **HINTS) == "the output would replace the input; REPLACE"
    assert claims.refusal(a, [out / "a.tif", b], **HINTS) == f"{b} would replace the input {b}; REPLACE"
    assert claims.refusal(a, [out / "a.tif", out / "a.xmp"], **HINTS) is None
    assert claims.refusal(a, [out / "a.tif"], **HINTS) is None  # its own output again
    assert claims.refusal(b, [out / "b.tif", out / "a.xmp"], **HINTS) == (
        f"{out / 'a.xmp'} is also the output of {a}; CLASH")
    assert claims.refusal(c, [out / "b.tif"], **HINTS) is None  # b was refused: it claimed nothing


def test_refusal_follows_symbolic_links(tmp_path):
    source = tmp_path / "a.jpg"
    link = tmp_path / "link.jpg"
    link.symlink_to(source)
    loop = tmp_path / "loop.tif"
    loop.symlink_to(loop)
    claims = OutputClaims([source])
    refused = claims.refusal(Path("x.png"), [link], **HINTS)
    assert refused == f"{link} would replace the input {source}; REPLACE"
    assert claims.refusal(source, [loop], **HINTS) is None
