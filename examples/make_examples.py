"""Regenerate the bundled example images from scikit-image's public-domain / CC0 sample photos.

    python examples/make_examples.py

Each photo is treated as a well-exposed scene rendered through the sRGB curve and re-rendered one to two stops
too dark or too bright (clipped, 8-bit, JPEG), the way a camera renders a badly exposed capture. One photo is also
written as a small under-exposed synthetic DNG (Bayer RGGB) so the RAW path can be tried.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the tests' DNG writer is the one place that knows the format

from fixtures import make_dng  # noqa: E402

from xfix.colour import srgb_decode  # noqa: E402
from xfix.data.curves import tone_curve  # noqa: E402
from xfix.data.synthesis import render_exposure  # noqa: E402

EXAMPLES = {  # file stem: (skimage photo, EV)
    "astronaut_under": ("astronaut", -1.7),
    "coffee_under": ("coffee", -1.5),
    "chelsea_over": ("chelsea", 1.3),
    "rocket_over": ("rocket", 1.5),
}


def small(photo: np.ndarray, long_side: int = 640) -> np.ndarray:
    image = Image.fromarray(photo)
    image.thumbnail((long_side, long_side), Image.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0


def main() -> None:
    rng = np.random.default_rng(2021)
    srgb = tone_curve("srgb")
    for stem, (name, ev) in EXAMPLES.items():
        rendered = render_exposure(small(getattr(data, name)()), ev, rng, curve=srgb, jpeg=False)
        Image.fromarray(np.round(rendered * 255).astype(np.uint8)).save(HERE / f"{stem}.jpg", quality=92)
    scene = srgb_decode(small(data.coffee(), 384))  # linear reflectances
    make_dng(HERE / "coffee_under.dng", scene, exposure=0.35)


if __name__ == "__main__":
    main()
