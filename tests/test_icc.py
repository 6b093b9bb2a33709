"""ICC profiles: structure, round-trip identification, and agreement of LittleCMS with xfix.colour."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from xfix import colour, icc
from xfix.errors import ColourError

SPACES = ("srgb", "adobergb", "prophoto", "linear-srgb", "linear-prophoto")


def _tag_table(profile: bytes) -> dict[bytes, tuple[int, int]]:
    (count,) = struct.unpack_from(">I", profile, 128)
    return {
        sig: (offset, size)
        for sig, offset, size in (struct.unpack_from(">4sII", profile, 132 + 12 * i) for i in range(count))
    }


@pytest.mark.parametrize("space", SPACES)
def test_round_trip_identifies_space(space):
    assert icc.identify_space(icc.icc_profile(space)) == space


@pytest.mark.parametrize("space", SPACES)
def test_header_and_tag_table_are_valid(space):
    profile = icc.icc_profile(space)
    assert struct.unpack_from(">I", profile, 0)[0] == len(profile)
    assert len(profile) % 4 == 0
    assert profile[12:24] == b"mntrRGB XYZ " and profile[36:40] == b"acsp"
    assert profile[8] == 2  # major version 2
    illuminant = np.array(struct.unpack_from(">3i", profile, 68)) / 65536
    np.testing.assert_allclose(illuminant, [0.9642, 1.0, 0.8249], atol=1e-4)
    tags = _tag_table(profile)
    assert {b"desc", b"cprt", b"wtpt", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"} <= set(tags)
    for offset, size in tags.values():
        assert offset % 4 == 0 and offset + size <= len(profile)


def test_colorants_sum_to_d50_and_match_known_srgb_values():
    m = icc.colorants("srgb")
    np.testing.assert_allclose(m[:, 0], [0.4361, 0.2225, 0.0139], atol=2e-4)  # the published sRGB rXYZ
    for space in ("srgb", "adobergb", "prophoto"):
        np.testing.assert_allclose(icc.colorants(space).sum(axis=1), [0.9642, 1.0, 0.8249], atol=1e-4)


def test_trc_types():
    tags = _tag_table(icc.icc_profile("adobergb"))
    offset, _ = tags[b"rTRC"]
    data = icc.icc_profile("adobergb")[offset : offset + 14]
    assert data[:4] == b"curv" and struct.unpack_from(">IH", data, 8) == (1, 563)
    offset, _ = _tag_table(icc.icc_profile("srgb"))[b"gTRC"]
    assert struct.unpack_from(">I", icc.icc_profile("srgb"), offset + 8)[0] == 1024


def test_unknown_space_is_rejected_with_valid_names():
    with pytest.raises(ColourError, match="srgb"):
        icc.icc_profile("rec2020")


@pytest.mark.parametrize("space", SPACES)
def test_pillow_opens_our_profiles(space):
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc.icc_profile(space)))
    assert colour.rgb_space(space).description in ImageCms.getProfileDescription(profile)


def _ramp_image() -> Image.Image:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    values[0, :, :] = np.arange(32, dtype=np.uint8)[:, None] * 8  # a grey ramp
    return Image.fromarray(values, "RGB")


def test_littlecms_srgb_to_our_srgb_is_identity():
    image = _ramp_image()
    ours = ImageCms.ImageCmsProfile(io.BytesIO(icc.icc_profile("srgb")))
    out = ImageCms.profileToProfile(image, ImageCms.createProfile("sRGB"), ours, outputMode="RGB")
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(image, dtype=int))
    assert diff.max() <= 1


def test_littlecms_prophoto_to_srgb_agrees_with_xfix_colour():
    # In-gamut colours: sRGB values expressed in ProPhoto by xfix.colour, quantized to 8 bit.
    srgb_in = np.asarray(_ramp_image(), dtype=np.float32) / 255
    linear_prophoto = colour.convert_linear(colour.srgb_decode(srgb_in), "srgb", "prophoto")
    prophoto_8 = np.round(np.clip(colour.prophoto_encode(linear_prophoto), 0, 1) * 255).astype(np.uint8)

    expected = colour.srgb_encode(
        colour.convert_linear(colour.to_linear(prophoto_8, "prophoto"), "prophoto", "srgb")
    )
    expected = np.clip(expected, 0, 1) * 255

    ours = ImageCms.ImageCmsProfile(io.BytesIO(icc.icc_profile("prophoto")))
    out = ImageCms.profileToProfile(
        Image.fromarray(prophoto_8, "RGB"),
        ours,
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    diff = np.abs(np.asarray(out, dtype=np.float32) - expected)
    assert diff.max() <= 1.5, diff.max()
    assert diff.mean() < 0.5


def test_identifies_littlecms_v4_srgb_with_parametric_curve():
    builtin = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert builtin[8] == 4  # this is the v4 'para' path, not our own v2 tables
    assert icc.identify_space(builtin) == "srgb"


def _apple_display_p3() -> bytes:
    """A matrix/TRC profile with the colorants of Apple's "Display P3" (D50-adapted, as its rXYZ, gXYZ and
    bXYZ tags read) and the sRGB tone curve as a parametric curve of type 3."""
    curve = b"para" + bytes(4) + struct.pack(">HH", 3, 0) + b"".join(
        struct.pack(">i", round(v * 65536)) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
    colorants = {b"rXYZ": (0.5151, 0.2412, -0.0011), b"gXYZ": (0.2920, 0.6922, 0.0419),
                 b"bXYZ": (0.1571, 0.0666, 0.7841)}  # fmt: skip
    tags = [(b"desc", icc._desc_tag("Display P3")), (b"wtpt", icc._xyz_tag((0.9642, 1.0, 0.8249)))]
    tags += [(sig, icc._xyz_tag(xyz)) for sig, xyz in colorants.items()]
    tags += [(sig, curve) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    return icc._assemble(tags)


def test_identifies_display_p3_by_its_colorants():
    profile = bytearray(_apple_display_p3())
    d_off, _ = _tag_table(bytes(profile))[b"desc"]
    profile[d_off + 12 : d_off + 22] = b"Mystery 12"  # the colorants alone must do
    assert icc.identify_space(bytes(profile)) == "display-p3"


def test_a_display_p3_jpeg_is_linearized_from_p3(tmp_path):
    """P3's red is outside sRGB: in linear sRGB it must come out above 1 in red and below 0 in green."""
    from xfix import decode, linearize
    from xfix.colour import WORKING_SPACE, convert_linear

    path = tmp_path / "p3.jpg"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(path, quality=100, icc_profile=_apple_display_p3())
    frame = linearize.linearize(decode.decode(path))
    assert frame.input_space == "display-p3" and not frame.notes
    red = convert_linear(frame.pixels[8, 8], WORKING_SPACE, "srgb")
    assert red[0] > 1.1 and red[1] < -0.01


def test_other_primaries_are_unknown():
    # Swap the red and green colorants: a valid profile describing no space xfix knows, described neutrally.
    profile = bytearray(icc.icc_profile("srgb"))
    tags = _tag_table(bytes(profile))
    (r_off, _), (g_off, _) = tags[b"rXYZ"], tags[b"gXYZ"]
    red, green = bytes(profile[r_off : r_off + 20]), bytes(profile[g_off : g_off + 20])
    profile[r_off : r_off + 20], profile[g_off : g_off + 20] = green, red
    d_off, _ = tags[b"desc"]
    text = b"sRGB IEC61966-2.1"
    profile[d_off + 12 : d_off + 12 + len(text)] = b"Mystery space 123"
    assert icc.identify_space(bytes(profile)) is None


def test_falls_back_on_description_when_matrix_tags_are_missing():
    profile = bytearray(icc.icc_profile("prophoto"))
    offset = 132 + 12 * list(_tag_table(bytes(profile))).index(b"rXYZ")
    profile[offset : offset + 4] = b"zzzz"  # rename the tag: no colorants any more
    assert icc.identify_space(bytes(profile)) == "prophoto"


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\0" * 10,
        b"garbage" * 50,
        icc.icc_profile("srgb")[:200],
        icc.icc_profile("srgb")[:131] + b"\xff" * 9,
        None,
        12345,
    ],
)
def test_garbage_gives_none(garbage):
    assert icc.identify_space(garbage) is None


def test_truncated_tag_data_gives_none_or_a_space_but_never_raises():
    profile = icc.icc_profile("srgb")
    for cut in range(128, len(profile), 97):
        assert icc.identify_space(profile[:cut]) in (None, "srgb")


@pytest.mark.parametrize("space", ["srgb", "adobergb", "prophoto", "linear-srgb"])
def test_grey_profiles_are_gray_class_and_identified_by_tone_curve(space):
    profile = icc.icc_profile(space, grey=True)
    assert profile[16:20] == b"GRAY" and b"kTRC" in _tag_table(profile) and b"rXYZ" not in _tag_table(profile)
    assert ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space.strip() == "GRAY"
    assert icc.identify_space(profile) == space


def test_a_linear_profile_without_a_linear_space_is_unknown():
    """"Linear Adobe RGB" has no xfix space: reading it through Adobe RGB's gamma would be silently wrong."""
    profile = bytearray(icc.icc_profile("adobergb"))
    tags = _tag_table(bytes(profile))
    offset = 132 + 12 * list(tags).index(b"rXYZ")
    profile[offset : offset + 4] = b"zzzz"  # no colorants: the description decides
    d_off, _ = tags[b"desc"]
    text = b"Linear Adobe RGB"
    profile[d_off + 12 : d_off + 12 + len(text) + 1] = text + b"\0"
    assert icc.identify_space(bytes(profile)) is None
