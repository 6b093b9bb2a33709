"""An `Edit`: the ordered editing operations the `whitebox` profile predicts, as a record a person can read.

It serialises to `<name>.xfix.json` and applies to any image of its encoding at any size:

    {"xfix_edit": 1, "encoding": "srgb", "profile": "whitebox", "source": "IMG_1.jpg",
     "operations": [{"op": "exposure", "ev": 1.21}, {"op": "tone_curve", "slopes": [...]}, ...]}

Operations run in the order listed (see `xfix.filters` for what each does). `apply` folds every run of
per-channel operations into one lookup table per channel (65536 entries over display values), so a full-size
image costs one table lookup per run plus the saturation step, whatever the number of operations.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from xfix.errors import InputError
from xfix.filters import OPERATIONS, get_operation, luma_tensor, run_linear, run_operation, to_domain
from xfix.tonecurve import srgb_decode, srgb_encode

EDIT_VERSION = 1
SUFFIX = ".xfix.json"
LUT_SIZE = 65536
_CHUNK_ROWS = 256
_DIGITS = 5  # values are rounded when an Edit is made, so a saved edit reproduces the same pixels
_ENCODINGS = ("srgb", "linear-srgb", "linear-prophoto")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _round(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return round(float(value), _DIGITS)


@dataclass(frozen=True)
class Step:
    """One operation with its values: op name -> {param: float or list of floats}."""

    op: str
    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        operation = get_operation(self.op)
        wanted = {name: size for name, size in operation.params}
        if set(self.values) != set(wanted):
            got = ", ".join(self.values) or "nothing"
            raise ValueError(f"{self.op} takes {', '.join(wanted)}, got {got}")
        for name, size in wanted.items():
            value = self.values[name]
            numbers = list(value) if isinstance(value, (list, tuple)) else [value]
            shape_ok = len(numbers) == size and isinstance(value, (list, tuple)) == (size > 1)
            if not shape_ok or not all(_is_number(v) and math.isfinite(v) for v in numbers):
                what = "a finite number" if size == 1 else f"a list of {size} finite numbers"
                raise ValueError(f"{self.op}.{name} needs {what}, got {value!r}")
        object.__setattr__(self, "values", {k: _round(v) for k, v in self.values.items()})

    def tensors(self, device: Any = None) -> dict[str, torch.Tensor]:
        """Values as (1, k) tensors, the batched form `xfix.filters` takes."""
        return {k: torch.tensor([v], dtype=torch.float32, device=device).reshape(1, -1)
                for k, v in self.values.items()}


@dataclass(frozen=True)
class Edit:
    """Operations in order, for images in `encoding` (the profile's model encoding)."""

    encoding: str
    steps: tuple[Step, ...]
    profile: str = "whitebox"
    source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"edit encoding {self.encoding!r} unknown; valid: {', '.join(_ENCODINGS)}")
        object.__setattr__(self, "steps", tuple(self.steps))

    # ------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        data = {"xfix_edit": EDIT_VERSION, "encoding": self.encoding, "profile": self.profile}
        if self.source is not None:
            data["source"] = self.source
        data["operations"] = [{"op": s.op, **s.values} for s in self.steps]
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Edit":
        """Parse the JSON form; ValueError naming what is wrong."""
        if not isinstance(data, Mapping) or data.get("xfix_edit") != EDIT_VERSION:
            raise ValueError(f"not an xfix edit (needs \"xfix_edit\": {EDIT_VERSION})")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ValueError("\"operations\" must be a list")
        steps = []
        for item in operations:
            if not isinstance(item, Mapping) or "op" not in item:
                raise ValueError(f"each operation needs an \"op\", got {item!r}")
            steps.append(Step(item["op"], {k: v for k, v in item.items() if k != "op"}))
        known = {"xfix_edit", "encoding", "profile", "source", "operations"}
        return cls(str(data.get("encoding", "srgb")), tuple(steps), str(data.get("profile", "whitebox")),
                   data.get("source"), {k: v for k, v in data.items() if k not in known})

    def save(self, path: Path, *, overwrite: bool = True) -> Path:
        """Write the JSON atomically (temp file + rename); WriteError if `path` exists and not `overwrite`."""
        from xfix.write import write_atomic

        text = json.dumps(self.to_json(), indent=2) + "\n"
        write_atomic(Path(path), text.encode("utf-8"), overwrite=overwrite)
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> "Edit":
        """Read `path`; InputError naming the file when it is not a readable edit."""
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise InputError(f"cannot read edit: {exc.strerror or exc}", Path(path)) from None
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            raise InputError(f"not a valid edit: {exc}", Path(path)) from None

    def value(self, op: str, name: str, default: Any = None) -> Any:
        """The value of `name` in the first step `op`, or `default` when the edit has no such step."""
        return next((s.values[name] for s in self.steps if s.op == op), default)

    # ------------------------------------------------------------ applying

    @property
    def display(self) -> bool:
        return self.encoding == "srgb"

    def linear_in(self, x: torch.Tensor) -> torch.Tensor:
        """Model-encoded (B, 3, H, W) -> linear in [0, 1]."""
        x = x.clamp(0.0, 1.0)
        return srgb_decode(x) if self.display else x

    def encoded_out(self, y: torch.Tensor) -> torch.Tensor:
        y = y.clamp(0.0, 1.0)
        return srgb_encode(y) if self.display else y

    def apply_exact(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """(B, 3, H, W) model-encoded -> edited, every operation computed directly (the reference for
        `apply`, and the form `--steps` uses: `upto` stops after that many operations)."""
        luma = luma_tensor(self.encoding, x.device)
        y, domain = self.linear_in(x), "linear"
        for step in self.steps[:upto]:
            y, domain = run_operation(OPERATIONS[step.op], y, step.tensors(x.device), luma, domain)
        return self.encoded_out(to_domain(y, domain, "linear"))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) model-encoded -> edited, same shape: per-channel runs folded into lookup tables, rows
        processed in chunks so temporaries stay small. Within 2e-3 of `apply_exact` (half an 8-bit code)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"an edit applies to (B, 3, H, W), got {tuple(x.shape)}")
        stages = self._stages(x.device)
        out = torch.empty_like(x)
        for top in range(0, x.shape[2], _CHUNK_ROWS):
            out[:, :, top : top + _CHUNK_ROWS] = self._apply_chunk(x[:, :, top : top + _CHUNK_ROWS], stages)
        return out

    def _stages(self, device: Any) -> list[tuple[str, Any]]:
        """[("luma", weights), ("lut", (3, N) table: display value -> linear), ("mix", (op, values)), ...];
        a final table of a display encoding gives encoded values directly ("lut_out")."""
        luma = luma_tensor(self.encoding, device)
        stages: list[tuple[str, Any]] = [("luma", luma)]
        group: list[Step] = []
        for step in [*self.steps, None]:
            op = OPERATIONS[step.op] if step is not None else None
            if op is not None and op.per_channel:
                group.append(step)
                continue
            if group:
                stages.append(("lut", self._table(group, luma, device)))
                group = []
            if op is not None:
                stages.append(("mix", (op, step.tensors(device))))
        if self.display and stages[-1][0] == "lut":
            stages[-1] = ("lut_out", srgb_encode(stages[-1][1].clamp(0.0, 1.0)))
        return stages

    def _table(self, steps: Sequence[Step], luma: torch.Tensor, device: Any) -> torch.Tensor:
        """(3, LUT_SIZE) linear results of `steps` at display values 0 .. 1, one row per channel."""
        table = torch.linspace(0.0, 1.0, LUT_SIZE, device=device).expand(1, 3, 1, LUT_SIZE)
        domain = "display"
        for step in steps:
            table, domain = run_operation(OPERATIONS[step.op], table, step.tensors(device), luma, domain)
        return to_domain(table, domain, "linear")[0, :, 0].contiguous()

    def _apply_chunk(self, x: torch.Tensor, stages: list[tuple[str, Any]]) -> torch.Tensor:
        luma = stages[0][1]
        y, domain = x, "display" if self.display else "linear"
        for kind, item in stages[1:]:
            if kind in ("lut", "lut_out"):
                y = _lookup(y if domain == "display" else _transfer(y, "encode"), item)
                domain = "done" if kind == "lut_out" else "linear"
            else:
                y = run_linear(item[0], _transfer(y, "decode") if domain == "display" else y, item[1], luma)
                domain = "linear"
        if domain == "linear":
            return _transfer(y, "encode") if self.display else y.clamp_(0.0, 1.0)
        return y.clamp(0.0, 1.0) if domain == "display" else y  # display: there were no operations


_TRANSFER_SIZE = 1 << 20  # nearest-entry tables of the sRGB transfer: error below 1e-5
_transfer_tables: dict[tuple[str, str], torch.Tensor] = {}


def _transfer(x: torch.Tensor, direction: str) -> torch.Tensor:
    """sRGB encode or decode of [0, 1] values (clipped) by table lookup, far cheaper than the powers."""
    key = (direction, str(x.device))
    if key not in _transfer_tables:
        grid = torch.linspace(0.0, 1.0, _TRANSFER_SIZE, dtype=torch.float64, device=x.device)
        _transfer_tables[key] = (srgb_encode(grid) if direction == "encode" else srgb_decode(grid)).float()
    index = _index(x, _TRANSFER_SIZE)
    return torch.index_select(_transfer_tables[key], 0, index.reshape(-1)).reshape(x.shape)


def _index(u: torch.Tensor, n: int) -> torch.Tensor:
    """Nearest table index (int32) of values in [0, 1] (clipped) for a table of n entries."""
    return (u * (n - 1)).add_(0.5).clamp_(0.0, n - 1).to(torch.int32)


def _lookup(u: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """u (B, 3, H, W) display values, tables (3, N) -> per-channel nearest entry (N = LUT_SIZE = 65536, so
    the error is below the table's slope / 131072)."""
    index = _index(u, tables.shape[1])  # (B, 3, H, W) int32
    out = torch.empty_like(u)
    for c in range(3):  # index_select: several times faster than advanced indexing on the CPU
        out[:, c] = torch.index_select(tables[c], 0, index[:, c].reshape(-1)).reshape(out[:, c].shape)
    return out


def identity_edit(encoding: str = "srgb") -> Edit:
    return Edit(encoding, ())


def steps_from_values(names: Sequence[str], values: Mapping[str, Mapping[str, torch.Tensor]], index: int,
                      tolerance: float = 0.5 / 255) -> tuple[Step, ...]:
    """Steps for image `index` of a batch of operation values, leaving out operations whose effect on any
    display value is below `tolerance` (a grey ramp test), so the JSON lists what the edit really does."""
    steps = []
    for name in names:
        row = {k: v[index].detach().cpu() for k, v in values[name].items()}
        step = Step(name, {k: v.tolist() if v.numel() > 1 else float(v) for k, v in row.items()})
        if _effect(step) >= tolerance:
            steps.append(step)
    return tuple(steps)


def _effect(step: Step) -> float:
    """Largest change the step makes to display values over a ramp of colours (grey and saturated)."""
    ramp = torch.linspace(0.0, 1.0, 256)
    probes = torch.stack([torch.stack([ramp, ramp, ramp]), torch.stack([ramp, ramp * 0.5, ramp * 0.2]),
                          torch.stack([ramp * 0.2, ramp * 0.6, ramp])])[:, :, None, :]  # (3, 3, 1, 256)
    op = OPERATIONS[step.op]
    luma = luma_tensor("srgb")
    values = {k: v.expand(3, -1) for k, v in step.tensors().items()}
    out = run_linear(op, srgb_decode(probes), values, luma)
    return float((srgb_encode(out.clamp(0.0, 1.0)) - probes).abs().max())
