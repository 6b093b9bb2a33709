"""What `xfix info` reports about an image: how it is stored, how it was exposed (EXIF), and how exposed it
looks, measured on the decoded pixels; and what `xfix profiles` reports about the installed profiles.

The measures (`measure_exposure`) are pure functions of the samples and the scene-linear image, so they are
tested on synthetic arrays with known answers; `inspect_image` wires them to decode / linearize / metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xfix import colour
from xfix.errors import XfixError

# Measured state thresholds. Mid-grey (18 % reflectance) sits at linear luminance 0.18; a typical well-exposed
# photo averages 0.1-0.3 in linear light (the mean of linear values is above the linear value of the mean
# encoded level, about 0.46 in sRGB).
CLIP_LEVEL = 0.99  # a sample at or above this fraction of full scale (in the file's own encoding) is clipped
CRUSH_LEVEL = 0.02  # luminance below this when sRGB-encoded (about 5/255) is crushed black: linear 0.00155
UNDER_MEAN = 0.07  # mean linear luminance below this: about 1.4 EV under mid-grey
OVER_MEAN = 0.40  # above this: about 1.2 EV over
CLIPPED_OVER = 0.10  # this fraction of clipped pixels with a bright mean also reads as over-exposed
CRUSHED_UNDER = 0.30  # this fraction of crushed pixels with a dark mean also reads as under-exposed
_MAX_SAMPLES = 1_000_000  # measure on a strided subsample of at most this many pixels: fast on 50 MP RAW


def verdict(mean_luminance: float, clipped: float, crushed: float) -> str:
    """The verdict, "under", "normal" or "over", from the measures (see the thresholds above).

    Known values: mean 0.01 -> under; mean 0.2 -> normal; mean 0.6 -> over; mean 0.25 with 20 % clipped ->
    over; mean 0.1 with 40 % crushed -> under; a night scene with lamps (mean 0.03, 5 % clipped) -> under.
    """
    if mean_luminance > OVER_MEAN or (clipped >= CLIPPED_OVER and mean_luminance > 0.18):
        return "over"
    if mean_luminance < UNDER_MEAN or (crushed >= CRUSHED_UNDER and mean_luminance < 0.18):
        return "under"
    return "normal"


def measure_exposure(
    samples: np.ndarray, linear: np.ndarray, space: str = colour.WORKING_SPACE
) -> dict[str, Any]:
    """Exposure measures of one image.

    samples: (H, W, C) as stored in the file (uint8, uint16 or float): clipping is judged in its own encoding.
    linear: (H, W, 3) float32 scene-linear RGB in `space`, for luminance.
    Returns mean_luminance (mean linear Y), clipped (fraction of pixels with any channel >= CLIP_LEVEL of full
    scale), crushed (fraction with sRGB-encoded Y <= CRUSH_LEVEL), ev_from_mid_grey (log2(mean / 0.18)) and
    the verdict. Known value: a uniform sRGB 0.5 image -> mean 0.214, clipped 0, crushed 0, "normal".
    """
    step = max(1, int(np.ceil(np.sqrt(samples.shape[0] * samples.shape[1] / _MAX_SAMPLES))))
    samples, linear = samples[::step, ::step], linear[::step, ::step]
    y = colour.luminance(linear, space)  # (h, w)
    mean = float(np.mean(y))
    clipped = float(np.mean(np.any(colour.to_float(samples) >= CLIP_LEVEL, axis=-1)))
    crushed = float(np.mean(colour.srgb_encode(np.maximum(y, 0.0)) <= CRUSH_LEVEL))
    ev = round(float(np.log2(mean / 0.18)), 2) if mean > 0 else None  # None: black frame (JSON has no -inf)
    return {
        "mean_luminance": round(mean, 5),
        "clipped": round(clipped, 5),
        "crushed": round(crushed, 5),
        "ev_from_mid_grey": ev,
        "verdict": verdict(mean, clipped, crushed),
    }


def inspect_image(path: Path | str, *, max_megapixels: float = 200) -> dict[str, Any]:
    """Everything `xfix info` shows for one file, as a JSON-ready dict. Raises XfixError (DecodeError...)."""
    from xfix import decode, linearize, metadata

    path = Path(path)
    decoded = decode.decode(path, max_megapixels=max_megapixels)
    space = linearize.detect_space(decoded)
    frame = linearize.linearize(decoded)
    src = decoded.source
    facts: dict[str, Any] = {
        "path": str(path),
        "format": src.format,
        "width": src.width,
        "height": src.height,
        "bit_depth": src.bit_depth,
        "channels": src.channels,
        "alpha": decoded.alpha is not None,
        "colour_space": space,
        "icc": src.icc is not None,
        "orientation": src.orientation,
        "exif": _json_safe(metadata.read_exposure(path)),
    }
    facts.update(measure_exposure(decoded.pixels, frame.pixels, frame.space))
    return facts


def _json_safe(value: Any) -> Any:
    """EXIF readers hand back ratios and bytes; JSON wants numbers and strings."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def exposure_text(exif: dict[str, Any]) -> str:
    """Photographer's notation: {"exposure_time": 0.008, "f_number": 5.6, "iso": 400, "exposure_bias": -2/3}
    -> "1/125 s, f/5.6, ISO 400, -0.67 EV"; "-" when nothing is recorded."""
    parts = []
    time = exif.get("exposure_time")
    if time:
        parts.append(f"1/{round(1 / time)} s" if time < 0.5 else f"{time:g} s")
    if exif.get("f_number"):
        parts.append(f"f/{exif['f_number']:g}")
    if exif.get("iso"):
        parts.append(f"ISO {exif['iso']}")
    if exif.get("exposure_bias") is not None:
        parts.append(f"{exif['exposure_bias']:+.2f} EV")
    return ", ".join(parts) or "-"


def render_info(facts: dict[str, Any]) -> Any:
    """A rich table of `inspect_image`'s facts, for the terminal."""
    from rich.table import Table

    table = Table(title=facts["path"], title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    bits = "32-bit float" if facts["bit_depth"] == 32 else f"{facts['bit_depth']}-bit"
    table.add_row("format", f"{facts['format']}, {facts['width']} x {facts['height']}, {bits}")
    untagged = (
        not facts["icc"] and facts["format"] != "raw"
    )  # RAW has no ICC: its space comes from the decoder
    table.add_row("colour space", facts["colour_space"] + (" (no ICC profile)" if untagged else ""))
    exif = facts.get("exif") or {}
    table.add_row("exposure (EXIF)", exposure_text(exif))
    camera = ", ".join(str(exif[k]) for k in ("camera", "lens", "datetime") if exif.get(k))
    table.add_row("camera", camera or "-")
    ev = facts["ev_from_mid_grey"]
    ev_text = "black" if ev is None else f"{ev:+.2f} EV from mid-grey"
    table.add_row("mean luminance", f"{facts['mean_luminance']:.4f} linear ({ev_text})")
    table.add_row("clipped highlights", f"{100 * facts['clipped']:.1f} %")
    table.add_row("crushed shadows", f"{100 * facts['crushed']:.1f} %")
    table.add_row("verdict", facts["verdict"])
    return table


def describe_profiles() -> list[dict[str, Any]]:
    """One row per profile file on the search path, for `xfix profiles`: name, path (the file, which tells a
    file on $XFIX_PROFILE_PATH shadowing a shipped one), description, architecture, weights (path or None),
    loads (it builds on the CPU with its weights checked) and reason (why not, else None). A broken profile
    file is a row saying so, not an error."""
    from xfix.profile import Corrector, load_profile, profile_files

    rows = []
    for name, path in sorted(profile_files().items()):
        row: dict[str, Any] = {"name": name, "path": str(path), "description": "", "architecture": ""}
        row.update(weights=None, loads=False, reason=None)
        try:
            profile = load_profile(name)
            weights = None if profile.weights is None else str(profile.weights)
            row.update(description=profile.description, architecture=profile.architecture, weights=weights)
            Corrector.load(profile, device="cpu")
            row["loads"] = True
        except XfixError as error:
            row["reason"] = error.message
        rows.append(row)
    return rows
