"""Camera tone curves: scene-linear [0, 1] (1 = sensor saturation) -> display-encoded [0, 1].

The synthesis treats every training photo as a scene rendered through some camera's curve. Which curve is
unknown, so one is drawn per sample from the families cameras and raw converters use. Each family is a pure
function of linear light; a `ToneCurve` samples it into two lookup tables (one per direction, linear
interpolation), so rendering a patch costs well under a millisecond and `forward(inverse(y))` stays within
1e-4 of `y`, which keeps "EV 0 returns the target" exact after 8-bit quantization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from xfix.colour import srgb_encode

_SEGMENTS = (
    4096  # table segments; forward knots sit at x = (k / 4096)**3, dense near black where curves are steep
)


@dataclass(frozen=True, eq=False)
class ToneCurve:
    """A monotone, invertible camera curve as two lookup tables with linear interpolation.

    knots_y: (4097,) float32 display values at linear x = (k / 4096)**3, strictly increasing from 0 to 1.
    inverse_x: (4097,) float32 linear values at display y = k / 4096 (the numeric inverse).
    forward(inverse(y)) == y within 1e-4 for every y in [0, 1].
    """

    name: str
    params: tuple[tuple[str, float], ...]
    knots_y: np.ndarray
    inverse_x: np.ndarray

    def forward(self, linear: np.ndarray) -> np.ndarray:
        """Scene-linear -> display values, float32, same shape; input clipped to [0, 1] first."""
        position = np.cbrt(np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)) * np.float32(_SEGMENTS)
        return _lerp_table(self.knots_y, position)

    def inverse(self, display: np.ndarray) -> np.ndarray:
        """Display values -> scene-linear, float32, same shape; input clipped to [0, 1] first."""
        position = np.clip(np.asarray(display, dtype=np.float32), 0.0, 1.0) * np.float32(_SEGMENTS)
        return _lerp_table(self.inverse_x, position)

    def describe(self) -> dict:
        """JSON-friendly summary: {"name": ..., param: value, ...}."""
        return {"name": self.name, **{k: round(float(v), 5) for k, v in self.params}}


def _lerp_table(table: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Linear interpolation in a uniform table at fractional indices `position` in [0, len - 1]."""
    index = np.minimum(position.astype(np.int32), len(table) - 2)
    frac = position - index
    return table[index] + frac * (table[index + 1] - table[index])


# ---------------------------------------------------------------- curve families: f(x), x linear in [0, 1]


def srgb_curve(x: np.ndarray) -> np.ndarray:
    """The sRGB encoding itself (what a neutral rendering applies). Known value: 0.18 -> 0.4614."""
    return srgb_encode(x).astype(np.float64)


def gamma_curve(x: np.ndarray, gamma: float) -> np.ndarray:
    """Pure power x**(1/gamma). Known value: gamma 2.2, 0.18 -> 0.4587."""
    return np.power(x, 1.0 / gamma)


def sigmoid_curve(x: np.ndarray, n: float, s: float) -> np.ndarray:
    """The camera curve fitted in HDRCNN (Eilertsen et al. 2017): (1 + s) x^n / (x^n + s); f(1) = 1.

    Known value: n 0.9, s 0.6, 0.18 -> 0.4202."""
    xn = np.power(x, n)
    return (1.0 + s) * xn / (xn + s)


def _hable(t: np.ndarray, a: float, b: float, c: float, d: float, e: float, f: float) -> np.ndarray:
    return (t * (a * t + c * b) + d * e) / (t * (a * t + b) + d * f) - e / f


def filmic_curve(x: np.ndarray, white: float, shoulder: float, toe: float) -> np.ndarray:
    """S-shaped filmic curve (Hable's "Uncharted 2" operator) then sRGB encoding; linear 1 maps to `white`.

    shoulder scales Hable's A (highlight roll-off), toe scales D (shadow toe). Known value: white 11.2,
    shoulder 1, toe 1: 0.18 -> 0.7323."""
    params = (0.15 * shoulder, 0.50, 0.10, 0.20 * toe, 0.02, 0.30)
    zero = _hable(np.zeros(1), *params)[0]
    display_linear = (_hable(x * white, *params) - zero) / (_hable(np.array([white]), *params)[0] - zero)
    return srgb_curve(display_linear)


def basecurve_curve(x: np.ndarray, white: float, contrast: float) -> np.ndarray:
    """Raw-converter base curve: brighten by `white`, extended-Reinhard roll-off to white at 1, sRGB encode,
    then an S contrast curve blended in by `contrast` in [0, 1]. Known value: white 3, contrast 0.3:
    0.18 -> 0.6800."""
    t = x * white
    rolled = t * (1.0 + t / white**2) / (1.0 + t)
    y = srgb_curve(rolled)
    s = y**2 / (y**2 + (1.0 - y) ** 2)
    return (1.0 - contrast) * y + contrast * s


def xfix_base_curve(x: np.ndarray) -> np.ndarray:
    """xfix's own neutral RAW rendering (`tonecurve.base_rendering`, +0.5 EV and a shoulder) then sRGB: the
    curve a display profile's RAW inputs arrive in. Known value: 0.18 -> 0.5416."""
    from xfix.tonecurve import base_rendering

    return srgb_curve(base_rendering(x))


CURVE_FAMILIES: dict[str, Callable[..., np.ndarray]] = {
    "srgb": srgb_curve,
    "gamma": gamma_curve,
    "sigmoid": sigmoid_curve,
    "filmic": filmic_curve,
    "basecurve": basecurve_curve,
    "xfix-base": xfix_base_curve,
}


def tone_curve(name: str, **params: float) -> ToneCurve:
    """Sample family `name` with `params` into a ToneCurve; ValueError if unknown or not strictly monotone."""
    if name not in CURVE_FAMILIES:
        raise ValueError(f"unknown tone curve {name!r}; valid: {', '.join(CURVE_FAMILIES)}")
    x = np.linspace(0.0, 1.0, _SEGMENTS + 1) ** 3
    y = np.asarray(CURVE_FAMILIES[name](x, **params), dtype=np.float64)
    y = (y - y[0]) / (y[-1] - y[0])  # pin f(0) = 0, f(1) = 1 exactly
    if not np.all(np.diff(y) > 0):
        raise ValueError(f"tone curve {name} {params} is not strictly increasing")
    inverse_x = np.interp(np.linspace(0.0, 1.0, _SEGMENTS + 1), y, x)
    params_items = tuple(sorted((k, float(v)) for k, v in params.items()))
    return ToneCurve(name, params_items, y.astype(np.float32), inverse_x.astype(np.float32))


# ---------------------------------------------------------------- random draw

_FAMILY_WEIGHTS = {
    "srgb": 0.2, "gamma": 0.15, "sigmoid": 0.2, "filmic": 0.15, "basecurve": 0.15, "xfix-base": 0.15,
}


def _draw_params(name: str, rng: np.random.Generator) -> dict[str, float]:
    if name == "gamma":
        return {"gamma": rng.uniform(1.8, 2.6)}
    if name == "sigmoid":  # HDRCNN's distribution, clipped to the range real cameras fit into
        return {
            "n": float(np.clip(rng.normal(0.9, 0.1), 0.65, 1.2)),
            "s": float(np.clip(rng.normal(0.6, 0.1), 0.3, 0.9)),
        }
    if name == "filmic":
        return {
            "white": rng.uniform(3.0, 12.0),
            "shoulder": rng.uniform(0.7, 1.5),
            "toe": rng.uniform(0.6, 1.4),
        }
    if name == "basecurve":
        return {"white": rng.uniform(1.5, 4.0), "contrast": rng.uniform(0.0, 0.6)}
    return {}


def draw_curve(rng: np.random.Generator) -> ToneCurve:
    """A random camera curve: family by fixed weights, then its parameters; deterministic for the rng."""
    names = list(_FAMILY_WEIGHTS)
    weights = np.array([_FAMILY_WEIGHTS[n] for n in names])
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return tone_curve(name, **_draw_params(name, rng))
