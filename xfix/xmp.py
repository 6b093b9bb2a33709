"""An `Edit` as an XMP sidecar with Camera Raw settings (crs:), so Lightroom / Camera Raw and darktable's
Lightroom import can open the edit on the original file.

How each operation maps (Camera Raw renders from the RAW with its own pipeline, so "exact" means the value
means the same thing, not that the pixels will match):
- exposure -> crs:Exposure2012 in EV. Same unit and direction; approximate because both roll highlights off
  with their own shoulder.
- white_balance -> crs:WhiteBalance "Custom", crs:Temperature / crs:Tint. Approximate: the gains are read as
  the illuminant (1 / gain) relative to the D65 white of the rendering that was corrected, and its correlated
  colour temperature (McCamy's formula) is written; tint from the green gain against red and blue. Camera Raw
  reads Temperature as absolute Kelvin for RAW files, so this assumes the as-shot rendering was near D65.
- contrast -> crs:Contrast2012 = 100 x amount. Approximate (Camera Raw's contrast curve is its own).
- gamma, black_white, tone_curve -> crs:ToneCurvePV2012 (17 points, 0-255): their composition sampled on a
  grey ramp of display values. Exact at the points; Camera Raw interpolates them with a smooth spline.
- colour_curves -> crs:ToneCurvePV2012Red / Green / Blue, sampled the same way. Exact at the points.
- saturation -> crs:Saturation = 100 x (amount - 1), clipped to +-100. Approximate (Camera Raw saturates in
  its own perceptual space).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from xfix.edit import Edit

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "crs": "http://ns.adobe.com/camera-raw-settings/1.0/",
}
CURVE_POINTS = 17
_GREY_CURVE_OPS = ("gamma", "black_white", "tone_curve")
_D65_XY = (0.3127, 0.3290)


def _signed(value: float, digits: int = 0) -> str:
    text = f"{value:+.{digits}f}"
    return "0" if float(text) == 0 else text


def mccamy_cct(x: float, y: float) -> float:
    """Correlated colour temperature in K from CIE xy (McCamy 1992). Known value: D65 -> about 6505 K."""
    n = (x - 0.3320) / (0.1858 - y)
    return 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33


def temperature_tint(gains: Any) -> tuple[int, int]:
    """White-balance gains (linear sRGB R, G, B) -> (Camera Raw Temperature in K, Tint), both rounded.

    Gains of 1 give the D65 white: (6505, 0)."""
    from xfix.colour import rgb_space, rgb_to_xyz_matrix

    g = np.asarray(gains, np.float64)
    illuminant = rgb_to_xyz_matrix(rgb_space("linear-srgb")) @ (1.0 / g)  # the light the gains neutralise
    x, y = illuminant[0] / illuminant.sum(), illuminant[1] / illuminant.sum()
    kelvin = min(max(mccamy_cct(x, y), 2000.0), 50000.0)
    tint = 150.0 * math.log(math.sqrt(g[0] * g[2]) / g[1])  # more green gain: the photo was magenta -> green
    return int(round(kelvin)), int(round(min(max(tint, -150.0), 150.0)))


def curve_points(edit: Edit, ops: tuple[str, ...], channel: int | None) -> list[tuple[int, int]]:
    """The composition of the edit's steps named in `ops`, sampled at CURVE_POINTS display values (0-255).

    channel None: a grey ramp (all channels alike, channel 0 read); else that channel of the ramp."""
    import torch

    steps = tuple(s for s in edit.steps if s.op in ops)
    if not steps:
        return []
    ramp = torch.linspace(0.0, 1.0, CURVE_POINTS).expand(1, 3, 1, CURVE_POINTS)
    display = Edit("srgb", steps).apply_exact(ramp)[0, channel or 0, 0]  # (CURVE_POINTS,)
    xs = np.linspace(0, 255, CURVE_POINTS)
    return [(int(round(x)), int(round(float(v) * 255))) for x, v in zip(xs, display)]


def _is_identity_curve(points: list[tuple[int, int]]) -> bool:
    return all(x == y for x, y in points)


def settings(edit: Edit) -> tuple[dict[str, str], dict[str, list[tuple[int, int]]]]:
    """(crs attributes, crs curves) for `edit`; curves map a crs name to its (x, y) points."""
    attributes = {"Version": "15.0", "ProcessVersion": "11.0", "HasSettings": "True"}
    attributes["Exposure2012"] = _signed(edit.value("exposure", "ev", 0.0), 2)
    attributes["Contrast2012"] = _signed(100 * edit.value("contrast", "amount", 0.0))
    saturation = 100 * (edit.value("saturation", "amount", 1.0) - 1.0)
    attributes["Saturation"] = _signed(min(max(saturation, -100.0), 100.0))
    gains = edit.value("white_balance", "gains")
    if gains is None:
        attributes["WhiteBalance"] = "As Shot"
    else:
        kelvin, tint = temperature_tint(gains)
        attributes.update(WhiteBalance="Custom", Temperature=str(kelvin), Tint=_signed(tint))
    curves = {}
    grey = curve_points(edit, _GREY_CURVE_OPS, None)
    if grey and not _is_identity_curve(grey):
        curves["ToneCurvePV2012"] = grey
    for channel, name in enumerate(("Red", "Green", "Blue")):
        points = curve_points(edit, ("colour_curves",), channel)
        if points and not _is_identity_curve(points):
            curves[f"ToneCurvePV2012{name}"] = points
    if curves:
        attributes["ToneCurveName2012"] = "Custom"
    return attributes, curves


def to_xmp(edit: Edit) -> bytes:
    """The sidecar document (UTF-8, with an XML declaration)."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(f"{{{NS['x']}}}xmpmeta", {f"{{{NS['x']}}}xmptk": "xfix"})
    rdf = ET.SubElement(root, f"{{{NS['rdf']}}}RDF")
    attributes, curves = settings(edit)
    description = ET.SubElement(
        rdf, f"{{{NS['rdf']}}}Description",
        {f"{{{NS['rdf']}}}about": "", **{f"{{{NS['crs']}}}{k}": v for k, v in attributes.items()}},
    )  # fmt: skip
    for name, points in curves.items():
        seq = ET.SubElement(ET.SubElement(description, f"{{{NS['crs']}}}{name}"), f"{{{NS['rdf']}}}Seq")
        for x, y in points:
            ET.SubElement(seq, f"{{{NS['rdf']}}}li").text = f"{x}, {y}"
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def read_xmp(data: bytes) -> tuple[dict[str, str], dict[str, list[tuple[int, int]]]]:
    """Parse a sidecar written by `to_xmp` back into (crs attributes, curves); ET.ParseError if malformed."""
    root = ET.fromstring(data)
    description = root.find(f"{{{NS['rdf']}}}RDF/{{{NS['rdf']}}}Description")
    if description is None:
        raise ValueError("no rdf:Description in the XMP")
    prefix = f"{{{NS['crs']}}}"
    attributes = {k[len(prefix):]: v for k, v in description.attrib.items() if k.startswith(prefix)}
    curves = {}
    for child in description:
        if child.tag.startswith(prefix):
            items = child.findall(f"{{{NS['rdf']}}}Seq/{{{NS['rdf']}}}li")
            curves[child.tag[len(prefix):]] = [tuple(int(v) for v in li.text.split(",")) for li in items]
    return attributes, curves

