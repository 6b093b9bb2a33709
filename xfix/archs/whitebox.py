"""whitebox: interpretable edits predicted from a thumbnail (after Hu et al., "Exposure", TOG 2018).

A small CNN looks at a 64 x 64 thumbnail of the photo (plus its histograms) and predicts the values of
ordinary editing operations, applied in a fixed order on linear RGB (`xfix.filters`): white balance, exposure,
gamma, contrast, black/white points, a tone curve, per-channel colour curves, saturation. The operations are
applied to the full-size image, so the cost is one lookup table per channel whatever the resolution, and the
edit is a record (`xfix.edit.Edit`) that can be saved, read, re-applied to other photos and exported as an XMP
sidecar.

Fixed order with per-operation strengths instead of the paper's learned choice and order: supervised training
on synthesized pairs is then differentiable end to end (the paper needs reinforcement learning only because
choosing and ordering filters is discrete), every operation can switch itself off by predicting its identity
value, and operations that change no display value by half a code value are left out of the saved edit.

In training mode the forward pass computes every operation directly (differentiable); in eval mode it builds
one Edit per image, keeps it in `last_edits` (what `--edits` and `--xmp` write) and applies it with lookup
tables. `sample` draws different edits with dropout on (the paper's one-to-many mapping, `--variants`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from xfix.archs import Architecture
from xfix.archs.statistics import exposure_statistics, statistics_branch, with_initial_weights
from xfix.data.synthesis import WELL_EXPOSED_SHARE, make_pair
from xfix.edit import Edit, steps_from_values
from xfix.filters import OPERATIONS, luma_tensor, run_operation, to_domain
from xfix.tonecurve import srgb_encode

ORDER = ("white_balance", "exposure", "gamma", "contrast", "black_white", "tone_curve", "colour_curves",
         "saturation")
DEFAULTS: dict[str, Any] = {
    "operations": list(ORDER),
    "thumbnail": 64,
    "width": 32,
    "hidden": 128,
    "dropout": 0.25,
    # Exposure statistics of the thumbnail (luminance histogram, percentiles, clipped fraction, detail; see
    # xfix.archs.statistics) join the head's hidden layer through a branch that starts silent.
    "global_stats": False,
}
# Read in training only: by WhiteBoxRecipe, and `well_share` and `min_misexposure` by the pair function.
TRAINING_DEFAULTS: dict[str, Any] = {
    "raw_weight": 1e-4,  # L2 on the raw network outputs: prefer the simplest edit that fits
    "loss_pixels": 4096,  # the loss sees this many random pixels of each patch (the edit is global)
    "content_weight": 1.0,  # the supervised L1 on synthesized pairs
    "style": "",  # folder of photos in the wanted look: unpaired adversarial training (whitebox_style.py)
    "style_weight": 0.05,  # the critic's verdict in the loss, with a style folder
    "well_share": WELL_EXPOSED_SHARE,  # share of (nearly) well-exposed training pairs, to be left alone
    "min_misexposure": 0.0,  # stops: the other pairs are at least this far off (synthesis.draw_ev)
}
HIST_BINS = 16


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True))


class WhiteBox(nn.Module):
    """(B, 3, H, W) in `encoding` ([0, 1]) -> the edited image, same shape and encoding."""

    def __init__(self, encoding: str, operations: Sequence[str], thumbnail: int, width: int, hidden: int,
                 dropout: float, global_stats: bool = False):
        super().__init__()
        unknown = [name for name in operations if name not in OPERATIONS]
        if unknown:
            raise ValueError(f"unknown operation(s) {unknown}; valid: {', '.join(OPERATIONS)}")
        self.encoding, self.operations, self.thumbnail = encoding, tuple(operations), int(thumbnail)
        self.features = nn.Sequential(_conv(3, width), _conv(width, 2 * width), _conv(2 * width, 4 * width),
                                      _conv(4 * width, 4 * width), nn.AdaptiveAvgPool2d(4))
        sizes = [OPERATIONS[name].raw_size for name in self.operations]
        self.head = nn.Sequential(
            nn.Linear(4 * width * 16 + 4 * HIST_BINS, hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, sum(sizes)),
        )
        self.stats = statistics_branch(hidden) if global_stats else None
        nn.init.zeros_(self.head[-1].weight)  # raw outputs start at 0: every operation at its identity
        nn.init.zeros_(self.head[-1].bias)
        self.sizes = sizes
        self.register_buffer("luma", luma_tensor(encoding), persistent=False)
        self.last_edits: list[Edit] = []

    # ------------------------------------------------------------ prediction

    def display(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(0.0, 1.0)
        return x if self.encoding == "srgb" else srgb_encode(x)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, sum of raw sizes) network outputs, from a thumbnail and its histograms."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"whitebox expects (B, 3, H, W), got {tuple(x.shape)}")
        thumb = self.display(F.interpolate(x, size=(self.thumbnail,) * 2, mode="area"))  # (B, 3, t, t)
        peak = thumb.amax(dim=1, keepdim=True)  # (B, 1, t, t)
        bins = (torch.cat([thumb, peak], dim=1) * HIST_BINS).long().clamp(0, HIST_BINS - 1)  # (B, 4, t, t)
        counts = torch.zeros(*bins.shape[:2], HIST_BINS, device=x.device)  # (B, 4, bins)
        hist = counts.scatter_add_(2, bins.flatten(2), torch.ones_like(thumb[:, :1]).flatten(2).expand(
            -1, 4, -1)).flatten(1) / float(thumb.shape[-1] * thumb.shape[-2])  # (B, 4 * bins)
        conv = self.features(thumb * 2.0 - 1.0).flatten(1)  # (B, 4w * 16)
        hidden = self.head[0](torch.cat([conv, hist], dim=1))
        if self.stats is not None:
            hidden = hidden + self.stats(exposure_statistics(thumb))
        return self.head[1:](hidden)

    def values(self, raw: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Raw outputs -> {operation: {param: (B, ...) bounded values}}."""
        chunks = torch.split(raw, self.sizes, dim=1)
        return {name: OPERATIONS[name].from_raw(chunk) for name, chunk in zip(self.operations, chunks)}

    def render(self, x: torch.Tensor, values: Mapping[str, Mapping[str, torch.Tensor]]) -> torch.Tensor:
        """Every operation computed directly (differentiable); x and the result in the model encoding."""
        y, domain = x.clamp(0.0, 1.0), "display" if self.encoding == "srgb" else "linear"
        for name in self.operations:
            y, domain = run_operation(OPERATIONS[name], y, values[name], self.luma, domain)
        return to_domain(y, domain, "display" if self.encoding == "srgb" else "linear").clamp(0.0, 1.0)

    def edits(self, values: Mapping[str, Mapping[str, torch.Tensor]], batch: int) -> list[Edit]:
        return [Edit(self.encoding, steps_from_values(self.operations, values, b)) for b in range(batch)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = self.values(self.raw(x))
        if self.training:
            return self.render(x, values)
        self.last_edits = self.edits(values, x.shape[0])
        return torch.cat([edit.apply(x[b : b + 1]) for b, edit in enumerate(self.last_edits)])

    @torch.no_grad()
    def sample(self, x: torch.Tensor, count: int, seed: int = 0) -> list[list[Edit]]:
        """`count` different edits per image, drawn with dropout on (deterministic for a seed)."""
        dropouts = [m for m in self.modules() if isinstance(m, nn.Dropout)]
        generator_state = torch.get_rng_state()
        torch.manual_seed(seed)
        try:
            for m in dropouts:
                m.train()
            draws = [self.edits(self.values(self.raw(x)), x.shape[0]) for _ in range(count)]
        finally:
            for m in dropouts:
                m.eval()
            torch.set_rng_state(generator_state)
        return draws


def build(settings: Mapping[str, Any], encoding: str = "srgb") -> WhiteBox:
    merged = {**DEFAULTS, **dict(settings)}
    return WhiteBox(encoding, **{key: merged[key] for key in DEFAULTS})


class WhiteBoxRecipe:
    """L1 between the edited patch and the target in the model encoding, plus a small L2 on the raw outputs;
    with a `style` folder, also the verdict of a critic that compares output thumbnails with the style photos.

    The operations are per pixel and their values come from the whole thumbnail, so the loss is computed on
    `loss_pixels` random pixels of each patch: an unbiased estimate of the full L1 at a fraction of the cost.
    """

    def __init__(self, model: WhiteBox, settings: Mapping[str, Any]):
        settings = {**TRAINING_DEFAULTS, **dict(settings)}
        self.raw_weight = float(settings["raw_weight"])
        self.loss_pixels = int(settings["loss_pixels"])
        self.content_weight = float(settings["content_weight"])
        self.style_weight = float(settings["style_weight"])
        self.style = None
        if settings["style"]:
            from xfix.archs.whitebox_style import StyleTerm
            from xfix.errors import UsageError

            if model.encoding != "srgb":
                raise UsageError(f"--style trains the srgb whitebox only, not {model.encoding}")
            self.style = StyleTerm(str(settings["style"]))

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"critic": self.style.critic} if self.style else {}

    def extra_optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.style.optimiser} if self.style else {}

    def loss(self, model: WhiteBox, inp: torch.Tensor, target: torch.Tensor, step: int):
        raw = model.raw(inp)
        values = model.values(raw)
        full = inp
        b, c, h, w = inp.shape
        if 0 < self.loss_pixels < h * w:
            index = torch.randperm(h * w, device=inp.device)[: self.loss_pixels]
            inp = inp.flatten(2)[:, :, index][:, :, None]  # (B, 3, 1, N)
            target = target.flatten(2)[:, :, index][:, :, None]
        l1 = F.l1_loss(model.render(inp, values), target)
        penalty = raw.pow(2).mean()
        total = self.content_weight * l1 + self.raw_weight * penalty
        logs = {"l1": float(l1.detach()), "raw": float(penalty.detach())}
        if self.style is not None:
            from xfix.archs.whitebox_style import thumbnail

            self._fake = model.render(thumbnail(full), values)  # (B, 3, 64, 64)
            adversarial = self.style.generator_loss(self._fake)
            total = total + self.style_weight * adversarial
            logs["adv"] = float(adversarial.detach())
        return total, logs

    def after_step(self, model: WhiteBox, inp: torch.Tensor, target: torch.Tensor, step: int):
        return self.style.critic_step(self._fake) if self.style is not None else {}


def colour_map(model: WhiteBox, shrink: Callable[[int, int], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """The edit predicted for the photo `shrink` gives at thumbnail size (every operation acts on each
    pixel's colour alone); the same edit as `forward` on the whole photo."""
    thumbnail = shrink(model.thumbnail, model.thumbnail)
    return model.edits(model.values(model.raw(thumbnail)), 1)[0].apply


def adapt_weights(state: dict[str, torch.Tensor], model: WhiteBox) -> dict[str, torch.Tensor]:
    """Weights trained without the statistics branch -> weights for `model`, the branch silent."""
    return with_initial_weights(state, model, "stats.")


ARCHITECTURE = Architecture(
    name="whitebox",
    description="Interpretable edits (exposure, white balance, curves...) from a thumbnail (Hu et al. 2018)",
    build=build,
    encoding="srgb",
    learned=True,
    receptive_field=0,  # global: the edit is predicted from the whole image
    multiple_of=1,
    supports_half=False,
    recipe=WhiteBoxRecipe,
    defaults={**DEFAULTS, **TRAINING_DEFAULTS},
    colour_map=colour_map,
    pairs=make_pair,
    pair_settings=("well_share", "min_misexposure"),
    adapt_weights=adapt_weights,
)
