"""Colour maths: transfer functions against published values, round trips, and conversion matrices checked
against matrices computed independently (Lindbloom's published tables, not xfix's own chromaticity code)."""

from __future__ import annotations

import numpy as np
import pytest

from xfix import colour
from xfix.errors import ColourError

SPACES = tuple(colour.RGB_SPACES)
TRANSFERS = tuple(colour.TRANSFER_DECODINGS)

# Published matrices (Bruce Lindbloom, brucelindbloom.com): sRGB -> XYZ (D65), Bradford D65 -> D50,
# XYZ (D50) -> ProPhoto, Adobe RGB (1998) -> XYZ (D65).
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
BRADFORD_D65_D50 = np.array(
    [
        [1.0478112, 0.0228866, -0.0501270],
        [0.0295424, 0.9904844, -0.0170491],
        [-0.0092345, 0.0150436, 0.7521316],
    ]
)
XYZ_TO_PROPHOTO = np.array(
    [[1.3459433, -0.2556075, -0.0511118], [-0.5445989, 1.5081673, 0.0205351], [0.0, 0.0, 1.2118128]]
)
ADOBE_TO_XYZ = np.array(
    [[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741], [0.0270343, 0.0706872, 0.9911085]]
)


@pytest.mark.parametrize(
    "fn, value, expected",
    [
        (colour.srgb_decode, 0.5, 0.21404),
        (colour.srgb_decode, 1.0, 1.0),
        (colour.srgb_decode, 0.04045, 0.04045 / 12.92),  # end of the linear segment
        (colour.srgb_decode, 0.02, 0.02 / 12.92),
        (colour.srgb_encode, 0.18, 0.46135),
        (colour.srgb_encode, 0.0031308, 0.0031308 * 12.92),
        (colour.adobe_decode, 0.5, 0.21776),
        (colour.adobe_encode, 0.21776, 0.5),
        (colour.prophoto_decode, 0.5, 0.28717),
        (colour.prophoto_decode, 0.01, 0.01 / 16),  # ROMM linear toe below 16/512
        (colour.prophoto_decode, 1.0, 1.0),
        (colour.prophoto_encode, 0.001, 0.016),  # toe: slope 16 below 1/512
        (colour.prophoto_encode, 0.18, 0.18 ** (1 / 1.8)),
    ],
)
def test_transfer_known_values(fn, value, expected):
    assert float(fn(np.float32(value))) == pytest.approx(expected, abs=2e-5)


def test_prophoto_toe_is_continuous_at_its_breakpoint():
    below, above = colour.prophoto_encode(np.array([colour.ROMM_ET * 0.9999, colour.ROMM_ET * 1.0001]))
    assert below == pytest.approx(16 * colour.ROMM_ET, rel=1e-3)
    assert above == pytest.approx(16 * colour.ROMM_ET, rel=1e-3)


@pytest.mark.parametrize("name", TRANSFERS)
def test_transfer_round_trip(name):
    x = np.linspace(0, 1, 4097, dtype=np.float32)
    back = colour.TRANSFER_ENCODINGS[name](colour.TRANSFER_DECODINGS[name](x))
    np.testing.assert_allclose(back, x, atol=2e-5)


@pytest.mark.parametrize("name", TRANSFERS)
def test_transfer_is_monotonic_and_handles_negative_and_hdr(name):
    x = np.linspace(-0.5, 4.0, 2001, dtype=np.float32)  # out-of-gamut negatives and HDR values above 1
    linear = colour.TRANSFER_DECODINGS[name](x)
    assert np.isfinite(linear).all() and linear.dtype == np.float32
    assert np.all(np.diff(linear[x >= 0]) > 0)
    assert np.isfinite(colour.TRANSFER_ENCODINGS[name](x)).all()


@pytest.mark.parametrize("space", SPACES)
def test_encoded_round_trip_through_working_space(space):
    rng = np.random.default_rng(1)
    encoded = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    working = colour.to_working(encoded, space)
    assert working.dtype == np.float32
    np.testing.assert_allclose(colour.from_working(working, space), encoded, atol=1e-4)


@pytest.mark.parametrize("src", SPACES)
@pytest.mark.parametrize("dst", SPACES)
def test_conversion_maps_white_to_white(src, dst):
    white = colour.convert_linear(np.ones((1, 3), np.float32), src, dst)
    np.testing.assert_allclose(white, 1.0, atol=1e-5)


@pytest.mark.parametrize("src, dst", [("srgb", "prophoto"), ("adobergb", "prophoto"), ("srgb", "adobergb")])
def test_conversion_matrix_inverts(src, dst):
    product = colour.conversion_matrix(dst, src) @ colour.conversion_matrix(src, dst)
    np.testing.assert_allclose(product, np.eye(3), atol=1e-5)


def test_srgb_red_in_prophoto_matches_published_matrices():
    expected = XYZ_TO_PROPHOTO @ BRADFORD_D65_D50 @ SRGB_TO_XYZ[:, 0]  # about (0.5293, 0.0984, 0.0169)
    red = colour.convert_linear(np.array([[1, 0, 0]], np.float32), "linear-srgb", "linear-prophoto")[0]
    np.testing.assert_allclose(red, expected, atol=1e-3)


def test_adobe_green_in_prophoto_matches_published_matrices():
    expected = XYZ_TO_PROPHOTO @ BRADFORD_D65_D50 @ ADOBE_TO_XYZ[:, 1]
    green = colour.convert_linear(np.array([[0, 1, 0]], np.float32), "adobergb", "linear-prophoto")[0]
    np.testing.assert_allclose(green, expected, atol=1e-3)


def test_srgb_matrix_matches_the_standard():
    # Lindbloom's D65 is XYZ (0.95047, 1, 1.08883); xy (0.3127, 0.3290) gives Z 1.08906: hence 3e-4.
    np.testing.assert_allclose(colour.rgb_to_xyz_matrix(colour.rgb_space("srgb")), SRGB_TO_XYZ, atol=3e-4)


def test_wide_gamut_survives_working_space():
    # Saturated ProPhoto green is outside sRGB: it must come back negative in sRGB, not clipped.
    green = np.array([[0.0, 1.0, 0.0]], np.float32)
    srgb = colour.convert_linear(green, "linear-prophoto", "linear-srgb")
    assert srgb.min() < -0.1
    np.testing.assert_allclose(
        colour.convert_linear(srgb, "linear-srgb", "linear-prophoto"), green, atol=1e-5
    )


@pytest.mark.parametrize("space", ["srgb", "adobergb", "prophoto", "linear-prophoto"])
@pytest.mark.parametrize("dtype, bits", [(np.uint8, 8), (np.uint16, 16)])
def test_integer_lut_matches_direct_decode(space, dtype, bits):
    samples = np.arange(0, 2**bits, 2 ** (bits - 8) if bits > 8 else 1, dtype=dtype).reshape(-1, 1)
    direct = colour.decode_transfer(samples.astype(np.float32) / (2**bits - 1), space)
    np.testing.assert_allclose(colour.to_linear(samples, space), direct, atol=1e-6)


def test_luminance_of_white_is_one_and_green_dominates():
    assert float(colour.luminance(np.ones(3, np.float32), "linear-srgb")) == pytest.approx(1.0, abs=1e-5)
    weights = colour.luminance_weights("linear-srgb")
    np.testing.assert_allclose(weights, SRGB_TO_XYZ[1], atol=2e-4)


def test_unknown_space_lists_valid_names():
    with pytest.raises(ColourError, match="valid: srgb, adobergb"):
        colour.rgb_space("rec2020")
