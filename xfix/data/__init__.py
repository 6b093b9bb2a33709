"""Training data: camera tone curves (`curves`), exposure synthesis (`synthesis`) and the photo folder,
validation split and batch stream (`dataset`, which imports torch).

The light entry points are re-exported here; `xfix.data.dataset` is imported on its own where batches are
needed.
"""

from xfix.data.curves import ToneCurve, draw_curve, tone_curve
from xfix.data.synthesis import MSEC_LEVELS, make_pair, render_exposure, synthesize_pair, unprocess

__all__ = [
    "MSEC_LEVELS",
    "ToneCurve",
    "draw_curve",
    "make_pair",
    "render_exposure",
    "synthesize_pair",
    "tone_curve",
    "unprocess",
]
