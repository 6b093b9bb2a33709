"""Metadata stage: copy EXIF, XMP and IPTC from the source file (RAW included) into the encoded output.

What is copied is what describes the *photograph* (camera, lens, exposure, capture time, GPS, author,
keywords); what described the *source file's pixels* is never copied (strip/tile layout, bit depth, CFA,
DNG private tags, embedded previews), because it would be false for the output and can corrupt a TIFF.
Orientation becomes 1 (decode already rotated the pixels), Software is set, ColorSpace follows the output
space. Every problem becomes a warning string naming the file; this module never raises for metadata.

The source metadata is first copied into a tiny in-memory PNG and cleaned there, then that clean set is
copied into the output: exiv2 rewrites a TIFF's strip tags from whatever EXIF it is given, so the output must
never see the source's structural tags, not even for a moment.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

logger = logging.getLogger(__name__)

# Exif.Image.* (IFD0) tags that describe the photograph rather than the file's pixel layout.
_IMAGE_TAGS_KEPT = frozenset(
    """Make Model DateTime Artist Copyright ImageDescription HostComputer XResolution YResolution
    ResolutionUnit Rating RatingPercent XPTitle XPComment XPAuthor XPKeywords XPSubject CameraSerialNumber
    LensInfo TimeZoneOffset ExifTag GPSTag Orientation Software""".split()
)
# TIFF/EP raw files keep exposure data in IFD0; EXIF readers look for it in the Photo IFD, so it moves there.
_TIFF_EP_EXPOSURE = """ExposureTime FNumber ExposureProgram ISOSpeedRatings DateTimeOriginal ExposureBiasValue
    MaxApertureValue SubjectDistance MeteringMode LightSource Flash FocalLength""".split()
# EXIF groups that are not maker notes; anything else (Canon, Nikon3, Sony1, ...) is a maker note group.
_STANDARD_GROUP = re.compile(
    r"(Image|Photo|GPSInfo|Iop|Thumbnail|MpfInfo|PanasonicRaw|(Sub)?Image\d+|SubThumb\d+)$"
)
_PREVIEW_NAME = re.compile(r"Preview|Thumbnail", re.IGNORECASE)
_XMP_STRUCTURAL = tuple(
    f"Xmp.tiff.{tag}"
    for tag in """ImageWidth ImageLength BitsPerSample Compression PhotometricInterpretation SamplesPerPixel
    PlanarConfiguration YCbCrSubSampling YCbCrPositioning""".split()
)
# Camera Raw develop settings would be re-applied by Lightroom/ACR on top of our already corrected pixels.
_XMP_DROPPED_PREFIXES = (
    "Xmp.xmp.Thumbnails",
    "Xmp.crs.",
    "Xmp.crss.",
    "Xmp.photoshop.ICCProfile",
) + _XMP_STRUCTURAL
_EXIF_ERRORS = (RuntimeError, ValueError, OSError, UnicodeError)
# 1x1 grey PNG: the scratch container the source metadata is cleaned in.
_SCRATCH_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200015d0b95c40000000049454e44ae426082"
)


def _exiv2():
    import pyexiv2

    pyexiv2.set_log_level(4)  # exiv2 otherwise writes its own warnings to stderr; ours go to the summary
    return pyexiv2


def _open(exiv2, path: Path):
    """A pyexiv2 image of the file at `path`. pyexiv2 takes a path as UTF-8 text; a name that is not (a card
    written with Latin-1 names, say) is read through its bytes instead."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return exiv2.ImageData(Path(path).read_bytes())
    return exiv2.Image(str(path))


def _read(image, kind: str) -> dict:
    """read_exif/read_xmp/read_iptc, tolerating non-UTF-8 text (old cameras write Latin-1)."""
    try:
        return getattr(image, f"read_{kind}")()
    except UnicodeError:
        return getattr(image, f"read_{kind}")(encoding="latin-1")


def _reason(error: BaseException, source: Path) -> str:
    """exiv2's message without the path it sometimes prefixes (the warning names the file already)."""
    return str(error).removeprefix(f"{source}: ").strip() or type(error).__name__


def _is_maker_note(key: str) -> bool:
    group = key.split(".")[1]
    return key == "Exif.Photo.MakerNote" or not _STANDARD_GROUP.match(group)


def keep_exif_key(key: str, *, strip_gps: bool, maker_notes: bool = True) -> bool:
    """Whether an EXIF key of the source belongs in the output. Known values: Exif.Image.Make -> True,
    Exif.Image.StripOffsets -> False, Exif.Thumbnail.Compression -> False, Exif.GPSInfo.* -> not strip_gps."""
    _, group, tag = key.split(".", 2)
    if _is_maker_note(key):
        return maker_notes and not (_PREVIEW_NAME.search(group) or _PREVIEW_NAME.search(tag))
    if group == "Image":
        return tag in _IMAGE_TAGS_KEPT and not (strip_gps and tag == "GPSTag")
    if group == "GPSInfo":
        return not strip_gps
    return group in ("Photo", "Iop")


def _clean_exif(exif: dict, *, strip_gps: bool, maker_notes: bool) -> dict:
    """Edits (key -> new value, None = delete) that turn the source EXIF into what the output may carry."""
    edits: dict = {
        key: None for key in exif if not keep_exif_key(key, strip_gps=strip_gps, maker_notes=maker_notes)
    }
    # tifffile records the source's array shape as its description; it would be false for the output.
    if exif.get("Exif.Image.ImageDescription", "").startswith('{"shape":'):
        edits["Exif.Image.ImageDescription"] = None
    for tag in _TIFF_EP_EXPOSURE:
        if f"Exif.Image.{tag}" in exif and f"Exif.Photo.{tag}" not in exif:
            edits[f"Exif.Photo.{tag}"] = exif[f"Exif.Image.{tag}"]
    return edits


def _clean_xmp(xmp: dict, *, strip_gps: bool) -> dict:
    dropped = _XMP_DROPPED_PREFIXES + (("Xmp.exif.GPS",) if strip_gps else ())
    edits: dict = {key: None for key in xmp if key.startswith(dropped)}
    if "Xmp.tiff.Orientation" in xmp:
        edits["Xmp.tiff.Orientation"] = "1"
    return edits


def _scratch_copy(exiv2, source: Path, *, strip_gps: bool, maker_notes: bool):
    """The source's metadata, cleaned, in a scratch in-memory image. Raises RuntimeError when unreadable."""
    scratch = exiv2.ImageData(_SCRATCH_PNG)
    try:
        with _open(exiv2, source) as original:
            original.copy_to_another_image(
                scratch, exif=True, iptc=True, xmp=True, comment=False, icc=False, thumbnail=False
            )
        scratch.clear_thumbnail()
        scratch.modify_exif(_clean_exif(_read(scratch, "exif"), strip_gps=strip_gps, maker_notes=maker_notes))
        scratch.modify_xmp(_clean_xmp(_read(scratch, "xmp"), strip_gps=strip_gps))
    except BaseException:
        scratch.close()
        raise
    return scratch


def _stamp(target, *, software: str, output_space: str) -> None:
    """Facts about the output itself: orientation, software, colour space, pixel dimensions."""
    exif, xmp = _read(target, "exif"), _read(target, "xmp")
    width, height = str(target.get_pixel_width()), str(target.get_pixel_height())
    edits = {
        "Exif.Image.Orientation": "1",
        "Exif.Image.Software": software,
        "Exif.Photo.ColorSpace": "1" if output_space == "srgb" else "65535",
    }
    if "Exif.Photo.PixelXDimension" in exif:
        edits.update({"Exif.Photo.PixelXDimension": width, "Exif.Photo.PixelYDimension": height})
    # DCF: R98 = sRGB, R03 = Adobe RGB (how cameras flag Adobe RGB without ICC); no code for other spaces.
    if "Exif.Iop.InteroperabilityIndex" in exif or output_space == "adobergb":
        edits["Exif.Iop.InteroperabilityIndex"] = {"srgb": "R98", "adobergb": "R03"}.get(output_space)
    target.modify_exif(edits)
    xmp_edits = {
        k: v
        for k, v in (
            ("Xmp.exif.PixelXDimension", width),
            ("Xmp.exif.PixelYDimension", height),
            ("Xmp.exif.ColorSpace", edits["Exif.Photo.ColorSpace"]),
        )
        if k in xmp
    }
    if xmp_edits:
        target.modify_xmp(xmp_edits)


def _attempt(
    exiv2,
    source: Path,
    encoded: bytes,
    *,
    strip_gps: bool,
    software: str,
    output_space: str,
    maker_notes: bool,
    warnings: list[str],
) -> bytes:
    target = exiv2.ImageData(encoded)
    try:
        own_icc = target.read_icc()
        try:
            scratch = _scratch_copy(exiv2, source, strip_gps=strip_gps, maker_notes=maker_notes)
        except _EXIF_ERRORS as error:
            warnings.append(f"{source}: metadata not copied (cannot read it: {_reason(error, source)})")
            scratch = None
        if scratch is not None:
            try:
                scratch.copy_to_another_image(
                    target, exif=True, iptc=True, xmp=True, comment=False, icc=False, thumbnail=False
                )
            finally:
                scratch.close()
        target.clear_thumbnail()
        _stamp(target, software=software, output_space=output_space)
        if own_icc and target.read_icc() != own_icc:
            target.modify_icc(own_icc)
        return target.get_bytes()
    finally:
        target.close()


def copy_metadata(
    source: Path, encoded: bytes, *, fmt: str, strip_gps: bool, software: str, output_space: str = "srgb"
) -> tuple[bytes, list[str]]:
    """Copy the source's EXIF/XMP/IPTC into `encoded` (a complete jpeg|tiff|png file) and return the new bytes
    and warnings. On a problem the warnings say what was lost; the pixels and ICC profile are never lost:
    at worst the encoded bytes come back unchanged."""
    try:
        exiv2 = _exiv2()
    except ImportError as error:
        return encoded, [f"{source}: metadata not copied (pyexiv2 unavailable: {error})"]
    for maker_notes in (True, False):
        warnings: list[str] = []
        try:
            result = _attempt(
                exiv2,
                Path(source),
                encoded,
                strip_gps=strip_gps,
                software=software,
                output_space=output_space,
                maker_notes=maker_notes,
                warnings=warnings,
            )
        except _EXIF_ERRORS as error:
            logger.debug("metadata copy failed for %s (maker notes %s): %s", source, maker_notes, error)
            last_error = error
            continue
        if not maker_notes:
            reason = _reason(last_error, source)
            warnings.append(
                f"{source}: camera maker notes dropped (could not write them into the {fmt}: {reason})"
            )
        return result, warnings
    return encoded, [f"{source}: metadata not copied ({_reason(last_error, source)})"]


# ---------------------------------------------------------------- exposure facts for `xfix info`


def _number(value: str | None) -> float | None:
    """EXIF rational/integer text ("1/125", "28/10", "400 400") -> float; None if absent or malformed."""
    if not value:
        return None
    try:
        return float(Fraction(value.split()[0]))
    except (ValueError, ZeroDivisionError):
        return None


def _first(exif: dict, *tags: str) -> str | None:
    for tag in tags:
        for group in ("Photo", "Image"):
            value = exif.get(f"Exif.{group}.{tag}")
            if value and str(value).strip():
                return str(value).strip()
    return None


def read_exposure(path: Path) -> dict:
    """{exposure_time (s), f_number, iso, exposure_bias (EV), camera, lens, datetime}; a value is None when
    the file does not record it or its metadata cannot be read (never raises). "1/125" s -> 0.008."""
    exif: dict = {}
    try:
        exiv2 = _exiv2()
        with _open(exiv2, path) as image:
            exif = _read(image, "exif")
    except (ImportError, *_EXIF_ERRORS) as error:
        logger.debug("no EXIF read from %s: %s", path, error)
    make, model = _first(exif, "Make"), _first(exif, "Model")
    camera = (
        model
        if make and model and model.lower().startswith(make.split()[0].lower())
        else (" ".join(part for part in (make, model) if part) or None)
    )
    iso = _number(_first(exif, "ISOSpeedRatings", "PhotographicSensitivity"))
    return {
        "exposure_time": _number(_first(exif, "ExposureTime")),
        "f_number": _number(_first(exif, "FNumber")),
        "iso": int(iso) if iso is not None else None,
        "exposure_bias": _number(_first(exif, "ExposureBiasValue")),
        "camera": camera,
        "lens": _first(exif, "LensModel") or exif.get("Exif.Canon.LensModel"),
        "datetime": _first(exif, "DateTimeOriginal", "DateTime"),
    }
