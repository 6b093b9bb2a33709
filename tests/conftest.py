"""Shared pytest fixtures: each writes one generated file (see `fixtures.py`) into the test's tmp_path."""

from __future__ import annotations

import fixtures
import pytest


@pytest.fixture
def jpeg_file(tmp_path):
    """48x64 stored JPEG, EXIF camera/exposure/GPS, Orientation 6, ColorSpace sRGB, XMP and IPTC."""
    return fixtures.make_jpeg(tmp_path / "photo.jpg")


@pytest.fixture
def tiff16_file(tmp_path):
    """16-bit RGB TIFF with a ProPhoto ICC profile and EXIF camera tags."""
    return fixtures.make_tiff16(tmp_path / "prophoto.tif", "prophoto")


@pytest.fixture
def dng_file(tmp_path):
    """Synthetic Bayer RGGB DNG of `fixtures.dng_scene()`, warm light undone by its AsShotNeutral."""
    return fixtures.make_dng(tmp_path / "raw.dng")


@pytest.fixture
def png16_file(tmp_path):
    """16-bit RGB PNG of `fixtures.tiff_pixels()`."""
    return fixtures.make_png16(tmp_path / "image16.png")


@pytest.fixture
def grey_file(tmp_path):
    """8-bit one-channel PNG of `fixtures.grey_pixels()`."""
    return fixtures.make_grey(tmp_path / "grey.png", "png")


@pytest.fixture
def alpha_png_file(tmp_path):
    """8-bit RGBA PNG with an alpha ramp."""
    return fixtures.make_alpha_png(tmp_path / "alpha.png")


@pytest.fixture
def float_tiff_file(tmp_path):
    """32-bit float linear RGB TIFF with values above 1, no ICC."""
    return fixtures.make_float_tiff(tmp_path / "linear.tif")
