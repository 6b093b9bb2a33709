"""Files written beside a corrected image for profiles that predict an edit (`whitebox`):

- "edits": `<name>.xfix.json`, the edit in order with its values (`xfix.edit`), for `xfix apply`;
- "xmp": `<name>.xmp`, Camera Raw settings (`xfix.xmp`), to carry the edit to Lightroom or darktable;
- "steps": `<name>.steps.jpg`, a strip showing the photo before and after each operation.

`--variants N` writes N other edits the model draws (dropout on, the paper's one-to-many mapping) as
`<name>.vK.<ext>`, each with its own sidecars.

`<name>` is the corrected file's name without its extension. Each is written atomically after the image, and
follows the image's rules (`xfix.outputs.planned_files`): never replacing an input, kept unless --overwrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from xfix.errors import UsageError

SIDECARS = ("edits", "xmp", "steps")
_STRIP_HEIGHT = 240


def check_sidecars(kinds: Sequence[str], corrector: Any, variants: int = 0) -> None:
    """UsageError for an unknown kind, or when the profile's model predicts no edit to write (or to vary).
    corrector: a `profile.Corrector`, or the `profile.CorrectorPlan` a dry run checks."""
    unknown = [k for k in kinds if k not in SIDECARS]
    if unknown:
        raise UsageError(f"unknown sidecar(s) {', '.join(unknown)}; valid: {', '.join(SIDECARS)}")
    wanted = [f"--{k}" for k in kinds] + (["--variants"] if variants else [])
    needed = "sample" if variants else "last_edits"
    if wanted and not hasattr(corrector.model, needed):
        raise UsageError(f"{wanted[0]} needs a profile that predicts an edit (whitebox); "
                         f"{corrector.profile.name} does not")


def variant_path(output: Path, k: int) -> Path:
    """NAME.vK.ext beside NAME.ext."""
    return output.with_name(f"{output.stem}.v{k}{output.suffix}")


def variant_correctors(corrector: Any, frame: Any, count: int, seed: int = 0) -> list[Any]:
    """`count` Correctors, each applying one edit the model draws with dropout on (`WhiteBox.sample`), the
    same for the same photo and seed. The draws look at a small copy: the model only sees a thumbnail."""
    import cv2
    import numpy as np
    import torch

    from xfix.apply import edit_corrector

    encoded = corrector.to_model(frame)  # (H, W, 3)
    h, w = encoded.shape[:2]
    scale = min(1.0, 256 / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.ascontiguousarray(cv2.resize(encoded, size, interpolation=cv2.INTER_AREA))
    x = torch.from_numpy(small).permute(2, 0, 1)[None].clamp(0, 1).to(corrector.device)  # (1, 3, h, w)
    correctors = []
    for k, (edit, *_) in enumerate(corrector.model.sample(x, count, seed=seed), 1):
        edit = type(edit)(edit.encoding, edit.steps, corrector.profile.name, None, {"variant": k})
        correctors.append(edit_corrector(edit, corrector.profile.path, str(corrector.device)))
    return correctors


def sidecar_path(output: Path, kind: str) -> Path:
    ending = {"edits": ".xfix.json", "xmp": ".xmp", "steps": ".steps.jpg"}[kind]
    return output.with_name(output.stem + ending)


def write_sidecars(kinds: Sequence[str], corrector: Any, frame: Any, output: Path, *, source: Path,
                   strength: float = 1.0, overwrite: bool = False) -> list[Path]:
    """Write each kind for the edit the corrector's model made last; `frame` is the input (for "steps").
    Without `overwrite` an existing file (a Lightroom or darktable NAME.xmp, say) is never replaced."""
    from xfix.write import write_atomic

    edits = getattr(corrector.model, "last_edits", None)
    if not edits:
        raise UsageError("the profile made no edit to write (was the image corrected?)", source)
    edit = edits[0]
    extra = {**edit.extra, **({"strength": strength} if strength != 1.0 else {})}
    edit = type(edit)(edit.encoding, edit.steps, corrector.profile.name, source.name, extra)
    written = []
    for kind in kinds:
        path = sidecar_path(output, kind)
        if kind == "edits":
            edit.save(path, overwrite=overwrite)
        elif kind == "xmp":
            from xfix.xmp import to_xmp

            write_atomic(path, to_xmp(edit), overwrite=overwrite)
        else:
            write_atomic(path, steps_strip(edit, corrector.to_model(frame)), overwrite=overwrite)
        written.append(path)
    return written


def steps_strip(edit: Any, encoded: Any) -> bytes:
    """JPEG bytes: the input and the image after each operation, side by side, each _STRIP_HEIGHT px high,
    the operation's name written under its picture."""
    import cv2
    import numpy as np
    import torch

    h, w = encoded.shape[:2]
    size = (max(1, round(w * _STRIP_HEIGHT / h)), _STRIP_HEIGHT)
    small = torch.from_numpy(cv2.resize(np.ascontiguousarray(encoded), size, interpolation=cv2.INTER_AREA))
    x = small.permute(2, 0, 1)[None].clamp(0, 1)  # (1, 3, h, w)
    frames, labels = [], ["input", *(s.op for s in edit.steps)]
    for upto in range(len(edit.steps) + 1):
        y = edit.apply_exact(x, upto=upto)[0].permute(1, 2, 0).numpy()
        if edit.encoding != "srgb":
            from xfix.tonecurve import srgb_encode

            y = srgb_encode(np.clip(y, 0.0, 1.0))
        panel = np.zeros((_STRIP_HEIGHT + 24, size[0], 3), np.uint8)
        panel[:_STRIP_HEIGHT] = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
        cv2.putText(panel, labels[upto], (4, _STRIP_HEIGHT + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        frames.append(panel)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.hstack(frames), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise UsageError("could not encode the steps strip")
    return data.tobytes()
