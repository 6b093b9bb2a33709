"""The profile stage: profile files, their weights, and `Corrector`, a loaded profile that corrects Frames.

A profile is a TOML file (`profiles/<name>.toml`, or a folder on $XFIX_PROFILE_PATH):

    name = "classic"                 # must equal the file name
    description = "..."
    architecture = "classic"         # a name in xfix.archs
    encoding = "srgb"                # what the model reads and writes: a colour.RGB_SPACES name
    weights = ""                     # safetensors file, relative to the profile file; "" for none
    sha256 = ""                      # of the weights file; required with weights
    [inference]
    mode = "guided"                  # whole | tiled | guided
    work_size = 1024                 # guided: long side the model runs at
    tile_size = 512                  # tiled: tile side
    tile_overlap = 32                # tiled: context margin per side (raised to the receptive field)
    leave_alone = 0.25               # stops: fade out corrections that barely move the brightness; 0: off
    brighten_limit = 0.0             # stops beyond the highlights' headroom a correction may brighten
    second_opinion = "bgrid"         # a profile whose model must agree before leave_alone keeps a correction
    [settings]                       # architecture options, checked against its defaults

torch, cv2 and safetensors are imported inside functions: the CLI imports this module at start-up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, packaged as tomli (a declared dependency there)
    import tomli as tomllib

from xfix.archs import architecture_names
from xfix.colour import RGB_SPACES
from xfix.errors import ProfileError, UsageError

log = logging.getLogger(__name__)

MODES = ("whole", "tiled", "guided", "full")  # full: tiled where the model allows, else whole
_MOST_STOPS = 2.0  # leave_alone beyond this would fade out real exposure corrections
_TOP_KEYS = {"name", "description", "architecture", "encoding", "weights", "sha256", "inference", "settings"}
_REQUIRED = ("name", "description", "architecture", "encoding")


@dataclass(frozen=True)
class Inference:
    """How a model meets a large image: whole, tiled (tile_size, tile_overlap) or guided (work_size); and
    leave_alone, in stops: corrections that move the mean brightness by much less are faded out
    (`xfix.restraint`; 0: off); brighten_limit, in stops: brightening beyond the photo's highlight headroom
    plus this much is scaled back (`xfix.restraint`; None: off); second_opinion: the name of a profile in the
    same encoding whose model's brightness change the leave_alone fade also weighs (`xfix.restraint`)."""

    mode: str = "whole"
    work_size: int = 512
    tile_size: int = 512
    tile_overlap: int = 32
    leave_alone: float = 0.0
    brighten_limit: float | None = None
    second_opinion: str | None = None

    @property
    def restrains(self) -> bool:
        """Whether a correction can be weighed down at all (leave_alone or brighten_limit on)."""
        return self.leave_alone > 0 or self.brighten_limit is not None

    def problem(self) -> str | None:
        """What is wrong with these values, or None."""
        if self.mode not in MODES:
            return f"inference mode {self.mode!r} unknown; valid: {', '.join(MODES)}"
        for key, least in (("work_size", 16), ("tile_size", 16), ("tile_overlap", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                return f"inference {key} must be an integer >= {least}, got {value!r}"
        for key in ("leave_alone", "brighten_limit"):
            value = getattr(self, key)
            if key == "brighten_limit" and value is None:  # None: no limit
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not 0 <= value <= _MOST_STOPS:
                return f"{key} must be a number of stops in 0..{_MOST_STOPS}, got {value!r}"
        name = self.second_opinion
        if name is not None and not (isinstance(name, str) and name):
            return f"second_opinion must be a profile name, got {name!r}"
        return None


class ModelRun(NamedTuple):
    """A model's output in its encoding, already weighed by leave_alone and brighten_limit
    (`xfix.restraint`)."""

    pixels: Any
    weight: float = 1.0  # share of the model's correction kept
    change: float = 0.0  # stops by which the unfaded correction moved the mean brightness
    limited: bool = False  # brighten_limit, not leave_alone, set the weight
    second: tuple[str, float] | None = None  # the second opinion's profile and brightness change, if asked


@dataclass(frozen=True)
class Profile:
    """A parsed profile file. `weights` is an absolute path, or None for a profile without weights."""

    name: str
    description: str
    architecture: str
    encoding: str
    path: Path
    weights: Path | None = None
    sha256: str = ""
    inference: Inference = field(default_factory=Inference)
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # (size, mtime_ns) of the weights file when `check_weights` found its sha256 right: loading the profile
    # then does not hash the unchanged file a second time (the default profile is checked, then loaded)
    weights_checked: tuple[int, int] | None = field(default=None, compare=False, repr=False)


def profile_search_path() -> list[Path]:
    """Folders searched for profiles, first match wins: $XFIX_PROFILE_PATH, then the repo's profiles/."""
    env = [Path(p).expanduser() for p in os.environ.get("XFIX_PROFILE_PATH", "").split(os.pathsep) if p]
    return env + [Path(__file__).resolve().parents[1] / "profiles"]


def profile_files() -> dict[str, Path]:
    """Profile name -> file, over the search path; an earlier folder shadows a later one."""
    found: dict[str, Path] = {}
    for folder in profile_search_path():
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def _require(data: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    value = data[key]
    if not isinstance(value, kind):
        raise ProfileError(f"key {key!r} must be a {kind.__name__}, got {type(value).__name__}", path)
    return value


def read_profile(path: Path | str) -> Profile:
    """Parse and validate one profile file; ProfileError naming the file for bad TOML or a bad/missing key."""
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read profile: {exc.strerror or exc}", path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"invalid TOML: {exc}", path) from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        valid = ", ".join(sorted(_TOP_KEYS))
        raise ProfileError(f"unknown key(s) {', '.join(sorted(unknown))}; valid: {valid}", path)
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"missing key {key!r}", path)
        _require(data, key, str, path)
    if data["name"] != path.stem:
        raise ProfileError(f"name {data['name']!r} does not match the file name {path.name!r}", path)
    if data["encoding"] not in RGB_SPACES:
        raise ProfileError(f"encoding {data['encoding']!r} unknown; valid: {', '.join(RGB_SPACES)}", path)
    weights = _require(data, "weights", str, path) if "weights" in data else ""
    sha256 = (_require(data, "sha256", str, path) if "sha256" in data else "").lower()
    if weights and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise ProfileError("weights need a sha256 of 64 hex digits", path)
    table = data.get("inference")
    if not isinstance(table, dict) or "mode" not in table:
        raise ProfileError("missing [inference] table with a mode", path)
    fields = {f.name for f in dataclasses.fields(Inference)}
    if set(table) - fields:
        raise ProfileError(f"unknown [inference] key(s) {', '.join(sorted(set(table) - fields))}", path)
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ProfileError("[settings] must be a table", path)
    profile = Profile(
        name=data["name"], description=data["description"], architecture=data["architecture"],
        encoding=data["encoding"], path=path, weights=(path.parent / weights).resolve() if weights else None,
        sha256=sha256, inference=Inference(**table), settings=MappingProxyType(settings),
    )  # fmt: skip
    if profile.inference.problem():
        raise ProfileError(profile.inference.problem(), path)
    return profile


def load_profile(name: str) -> Profile:
    """The profile called `name` on the search path (or a path to a .toml file).

    An unknown name raises ProfileError listing the valid ones; so does an unknown architecture name.
    """
    files = profile_files()
    if name in files:
        path = files[name]
    elif name.endswith(".toml") and Path(name).is_file():
        path = Path(name)
    else:
        raise ProfileError(f"unknown profile {name!r}; valid: {', '.join(sorted(files)) or '(none found)'}")
    profile = read_profile(path)
    if profile.architecture not in architecture_names():
        valid = ", ".join(architecture_names())
        raise ProfileError(f"unknown architecture {profile.architecture!r}; valid: {valid}", profile.path)
    return profile


def list_profiles() -> list[Profile]:
    """Every profile on the search path, by name; ProfileError for the first invalid file.

    To show invalid files beside valid ones, iterate `profile_files()` and `read_profile` each.
    """
    return [load_profile(name) for name in sorted(profile_files())]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def check_weights(profile: Profile) -> Profile:
    """`profile` once its weights file is found and matches its sha256, marked so that `load_weights` does
    not hash the file again while it is unchanged; ProfileError if not. A profile without weights as is."""
    if profile.weights is None:
        return profile
    if not profile.weights.is_file():
        raise ProfileError(f"weights file {profile.weights} not found", profile.path)
    stamp = _file_stamp(profile.weights)  # before hashing: a file changed meanwhile gets a new stamp
    if profile.weights_checked == stamp:
        return profile
    actual = file_sha256(profile.weights)
    if actual != profile.sha256:
        raise ProfileError(
            f"sha256 mismatch for {profile.weights.name}: profile says {profile.sha256}, file is {actual}",
            profile.path,
        )
    return dataclasses.replace(profile, weights_checked=stamp)


def load_weights(profile: Profile) -> dict[str, Any]:
    """The profile's tensors (name -> torch.Tensor) after checking the file's sha256; {} without weights."""
    if profile.weights is None:
        return {}
    check_weights(profile)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(profile.weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ProfileError(f"cannot read weights {profile.weights.name}: {exc}", profile.path) from None


# ---------------------------------------------------------------- running a profile

_CHUNK_ROWS = 256  # pixel conversions run on row chunks: no full-size float64 or multi-copy temporaries
_TABLE_SIZE = 65  # lattice points per axis of the 8-bit route's 3D table: 4-6% of codes off by one; 33: 12%


def _is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error of any device (CUDA, MPS, CPU allocator, numpy)."""
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def needs_base_rendering(frame, encoding: str) -> bool:
    """A display-referred model given scene-referred light (a RAW file, or a file stored as linear light)
    first needs a neutral camera-like rendering, as a camera's JPEG engine would give."""
    display = RGB_SPACES[encoding].transfer != "linear"
    source_space = RGB_SPACES.get(frame.input_space)
    scene = frame.source.format == "raw" or (source_space is not None and source_space.transfer == "linear")
    return display and scene


def _encode(rows, transfer: str):
    """torch (R, W, 3) linear -> encoded with `transfer` (sRGB on torch; others through colour.py)."""
    import torch

    from xfix.colour import TRANSFER_ENCODINGS
    from xfix.tonecurve import srgb_encode

    if transfer == "srgb":
        return srgb_encode(rows)
    return rows if transfer == "linear" else torch.from_numpy(TRANSFER_ENCODINGS[transfer](rows.numpy()))


def _decode(rows, transfer: str):
    """torch (R, W, 3) encoded with `transfer` -> linear."""
    import torch

    from xfix.colour import TRANSFER_DECODINGS
    from xfix.tonecurve import srgb_decode

    if transfer == "srgb":
        return srgb_decode(rows)
    return rows if transfer == "linear" else torch.from_numpy(TRANSFER_DECODINGS[transfer](rows.numpy()))


def _map_rows(fn, *arrays, out):
    """out[rows] = fn(*(torch views of arrays[rows])) over row chunks of (H, W, 3) float32 arrays."""
    import numpy as np
    import torch

    for top in range(0, out.shape[0], _CHUNK_ROWS):
        rows = slice(top, top + _CHUNK_ROWS)
        chunks = [np.ascontiguousarray(a[rows], np.float32) for a in arrays]
        views = [torch.from_numpy(c if c.flags.writeable else c.copy()) for c in chunks]  # torch: writable
        out[rows] = fn(*views).numpy()
    return out


def _carrying(frame, strength: float, model_run: ModelRun):
    """`frame` (a corrected Frame or DisplayFrame) recording the share of the correction it carries, with a
    note when leave_alone faded it (naming the second opinion, if asked) or brighten_limit held it back."""
    from xfix.restraint import describe

    note = None
    if strength > 0:
        note = describe(model_run.weight, model_run.change, model_run.limited, model_run.second)
    notes = frame.notes + ((note,) if note else ())
    return dataclasses.replace(frame, strength=strength * model_run.weight, notes=notes)


def _check_frame(frame: Any) -> None:
    """TypeError for anything but a Frame (a bare array has no colour space to convert from)."""
    from xfix.frame import Frame

    if not isinstance(frame, Frame):
        raise TypeError(
            f"Corrector.apply takes an xfix.frame.Frame, got {type(frame).__name__}. From a file: "
            "xfix.linearize.linearize(xfix.decode.decode(path)); from display sRGB pixels in [0, 1]: "
            "Frame(pixels=xfix.colour.to_working(pixels, 'srgb'), source=SourceInfo(...), input_space='srgb')"
        )


def _check_strength(strength: float) -> None:
    if not 0.0 <= strength <= 1.0:
        raise UsageError(f"strength must be between 0 and 1, got {strength}")


def _merged_settings(arch: Any, profile: Profile, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture defaults < profile [settings] < overrides. A key the architecture lacks is an error: a
    ProfileError in the profile file, a UsageError in the overrides (the command line's --set and flags), as
    is an override of another kind than its default (--fusion's true for classic's fusion share)."""
    problem = _unknown_settings(arch, profile.settings)
    if problem is not None:
        raise ProfileError(problem, profile.path)
    problem = _unknown_settings(arch, overrides) or _mismatched_override(arch, overrides)
    if problem is not None:
        raise UsageError(problem)
    return {**arch.defaults, **profile.settings, **overrides}


def _unknown_settings(arch: Any, settings: Mapping[str, Any]) -> str | None:
    """Why `settings` do not fit the architecture's, or None (an architecture without defaults takes any)."""
    unknown = sorted(set(settings) - set(arch.defaults))
    if not arch.defaults or not unknown:
        return None
    valid = ", ".join(sorted(arch.defaults))
    return f"unknown setting(s) {', '.join(unknown)} for {arch.name}; valid: {valid}"


def _kind(value: Any) -> str:
    """What sort of value a setting holds, in words; int and float are both "a number"."""
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "text" if isinstance(value, str) else type(value).__name__


def _mismatched_override(arch: Any, overrides: Mapping[str, Any]) -> str | None:
    """Why an override is not the kind of value its default is, or None (a None default takes anything)."""
    for key, value in overrides.items():
        default = arch.defaults.get(key)
        if default is not None and _kind(value) != _kind(default):
            return f"setting {key} of {arch.name} takes {_kind(default)} (default {default!r}), got {value!r}"
    return None


def _build(arch: Any, profile: Profile, settings: Mapping[str, Any], overrides: Mapping[str, Any]) -> Any:
    """arch.build(settings). A ValueError is a value out of range (pyramid_scale of the wrong length): the
    command line's fault (UsageError) when it overrode settings, else the profile file's (ProfileError)."""
    try:
        return arch.build(settings)
    except ValueError as exc:
        if overrides:
            raise UsageError(f"bad setting for {arch.name}: {exc}") from None
        raise ProfileError(f"bad setting for {arch.name}: {exc}", profile.path) from None


def _checked_inference(arch: Any, profile: Profile, overrides: Mapping[str, Any]) -> Inference:
    """The profile's [inference] with overrides applied, checked against what the architecture allows."""
    try:
        inference = dataclasses.replace(profile.inference, **overrides)
    except TypeError as exc:
        raise UsageError(f"bad inference override: {exc}") from None
    if inference.problem():
        raise UsageError(inference.problem())
    if inference.mode == "tiled":
        if arch.receptive_field <= 0:
            message = f"{arch.name} is global (no receptive field) and cannot run tiled"
            raise ProfileError(message, profile.path)
        overlap = max(inference.tile_overlap, arch.receptive_field)
        if inference.tile_size <= 3 * overlap:
            raise UsageError(f"tile size {inference.tile_size} must exceed 3 x the overlap ({overlap})")
    return inference


def _load_second_opinion(profile: Profile, inference: Inference, device: Any) -> "Corrector | None":
    """The Corrector of `inference.second_opinion` on `device`, or None when there is none or leave_alone,
    whose fade it weighs, is off. ProfileError when it names this profile, an unknown one or one in another
    encoding."""
    name = inference.second_opinion
    if name is None or inference.leave_alone <= 0:
        return None
    if name == profile.name:
        raise ProfileError("second_opinion must name another profile", profile.path)
    other = load_profile(name)
    if other.encoding != profile.encoding:
        message = f"second_opinion {name!r} reads {other.encoding}, this profile {profile.encoding}"
        raise ProfileError(message, profile.path)
    # its own restraint plays no part: only its model's brightness change is asked for
    return Corrector.load(other, device=device, inference_overrides={"second_opinion": None})


class CorrectorPlan(NamedTuple):
    """What `Corrector.load` has checked before it reads the weights: the model is built, on the CPU, with
    untrained weights."""

    profile: Profile
    architecture: Any
    model: Any
    device: Any  # torch.device
    settings: Mapping[str, Any]
    inference: Inference


def plan_corrector(
    profile: Profile | str,
    *,
    device: Any = "auto",
    settings_overrides: Mapping[str, Any] | None = None,
    inference_overrides: Mapping[str, Any] | None = None,
    architecture: Any = None,
) -> CorrectorPlan:
    """Every check of `Corrector.load` short of the weights (arguments as there): the architecture, the
    settings and inference overrides, the device, the model built. `--dry-run` runs it to fail as the real
    run would, without reading weights. Raises ProfileError or UsageError."""
    import torch

    from xfix.archs import get_architecture
    from xfix.devices import select_device

    profile = load_profile(profile) if isinstance(profile, str) else profile
    arch = architecture or get_architecture(profile.architecture)
    if (arch.name, arch.encoding) != (profile.architecture, profile.encoding):
        wanted, got = f"{profile.architecture} on {profile.encoding}", f"{arch.name} on {arch.encoding}"
        raise ProfileError(f"profile wants {wanted}, got {got}", profile.path)
    settings = _merged_settings(arch, profile, settings_overrides or {})
    inference = _checked_inference(arch, profile, inference_overrides or {})
    torch_device = device if isinstance(device, torch.device) else select_device(device)
    if arch.learned and profile.weights is None:
        raise ProfileError(f"{arch.name} learns, but the profile names no weights", profile.path)
    model = _build(arch, profile, settings, settings_overrides or {})
    return CorrectorPlan(profile, arch, model, torch_device, settings, inference)


class Corrector:
    """A profile loaded on a device, ready to correct Frames. Build it with `Corrector.load`."""

    def __init__(
        self, profile: Profile, architecture: Any, model: Any, device: Any, settings: Mapping[str, Any],
        inference: Inference, second_opinion: "Corrector | None" = None,
    ):  # fmt: skip
        self.profile, self.architecture, self.model, self.device = profile, architecture, model, device
        self.settings, self.inference = MappingProxyType(dict(settings)), inference
        self.second_opinion = second_opinion  # the loaded `inference.second_opinion`, when it is used
        self.overlap = max(inference.tile_overlap, architecture.receptive_field)  # full context per tile

    @classmethod
    def load(
        cls,
        profile: Profile | str,
        *,
        device: Any = "auto",
        settings_overrides: Mapping[str, Any] | None = None,
        inference_overrides: Mapping[str, Any] | None = None,
        architecture: Any = None,
    ) -> "Corrector":
        """Build the profile's model, load its weights (strict, sha256 checked), eval(), move it to `device`.

        profile: a Profile or a profile name. device: "auto" | "cpu" | "cuda[:N]" | "mps" or a torch.device.
        settings_overrides update [settings] (keys must be in the architecture's defaults);
        inference_overrides update [inference] (mode, work_size, tile_size, tile_overlap, leave_alone, ...);
        the second_opinion profile, when leave_alone is on, is loaded on the same device.
        architecture: an `Architecture` used instead of the registry's (tests, plug-ins); its name and
        encoding must match the profile's.
        Raises ProfileError (profile, architecture, weights) or UsageError (device, overrides).
        """
        plan = plan_corrector(
            profile, device=device, settings_overrides=settings_overrides,
            inference_overrides=inference_overrides, architecture=architecture,
        )
        profile, arch, model = plan.profile, plan.architecture, plan.model
        try:
            model.load_state_dict(load_weights(profile), strict=True)
        except RuntimeError as exc:
            reason = str(exc).splitlines()[0]
            raise ProfileError(f"weights do not fit {arch.name}: {reason}", profile.path) from None
        model = model.float().eval().to(plan.device)
        log.debug("loaded profile %s (%s) on %s", profile.name, arch.name, plan.device)
        second = _load_second_opinion(profile, plan.inference, plan.device)
        return cls(profile, arch, model, plan.device, plan.settings, plan.inference, second)

    def describe(self) -> dict[str, Any]:
        """What was loaded, for `xfix profiles`, --verbose and model cards."""
        return {
            "profile": self.profile.name,
            "architecture": self.architecture.name,
            "encoding": self.profile.encoding,
            "device": str(self.device),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "mode": self.inference.mode,
            "work_size": self.inference.work_size,
            "tile_size": self.inference.tile_size,
            "tile_overlap": self.overlap,
            "leave_alone": self.inference.leave_alone,
            "brighten_limit": self.inference.brighten_limit,
            "second_opinion": self.second_opinion.profile.name if self.second_opinion else None,
            "weights": str(self.profile.weights) if self.profile.weights else None,
        }

    # -------------------------------------------------------------- Frame <-> model encoding

    def to_model(self, frame) -> Any:
        """Frame -> (H, W, 3) float32 in the model encoding, not clipped; base rendering first if needed."""
        import numpy as np
        import torch

        from xfix.colour import conversion_matrix
        from xfix.tonecurve import base_rendering

        matrix_t = torch.from_numpy(conversion_matrix(frame.space, self.profile.encoding).T.copy())
        render = needs_base_rendering(frame, self.profile.encoding)
        transfer = RGB_SPACES[self.profile.encoding].transfer

        def convert(rows):
            return _encode((base_rendering(rows) if render else rows) @ matrix_t, transfer)

        return _map_rows(convert, frame.pixels, out=np.empty(frame.pixels.shape, np.float32))

    def apply(self, frame, *, strength: float = 1.0):
        """Correct a Frame: (H, W, 3) working-space linear in; out the same shape, alpha and source.

        strength in [0, 1] blends model output and input in the model encoding (0 returns the input, for a
        display model given a RAW its neutral base rendering). Raises UsageError for a bad strength and
        ProfileError when the device runs out of memory even after the tiled retry.
        """
        import torch

        from xfix.colour import WORKING_SPACE, conversion_matrix

        _check_frame(frame)
        _check_strength(strength)
        encoded = self.to_model(frame)
        model_run = self.run(encoded) if strength > 0 else ModelRun(encoded)
        corrected = model_run.pixels
        matrix_t = torch.from_numpy(conversion_matrix(self.profile.encoding, WORKING_SPACE).T.copy())
        transfer = RGB_SPACES[self.profile.encoding].transfer

        def back(rows_out, rows_in):
            blended = rows_out if strength in (0.0, 1.0) else torch.lerp(rows_in, rows_out, strength)
            return _decode(blended, transfer) @ matrix_t

        pixels = _map_rows(back, corrected, encoded, out=corrected)  # in place: each chunk is read first
        return _carrying(frame.with_pixels(pixels, space=WORKING_SPACE), strength, model_run)

    # -------------------------------------------------------------- the 8-bit display route

    def takes_display(self, frame) -> bool:
        """True when this DisplayFrame can be corrected without leaving its encoding: it is in the model's
        encoding, and the model either maps colours the same way everywhere (a 3D table) or runs guided on a
        smaller copy (a grid sliced at full size)."""
        if frame.space != self.profile.encoding:
            return False
        if self.architecture.colour_map is not None:
            return True
        return self.inference.mode == "guided" and max(frame.samples.shape[:2]) > self.inference.work_size

    def apply_display(self, frame, *, strength: float = 1.0, dither_seed: int | None = 0):
        """Correct a DisplayFrame (see `takes_display`) into a DisplayFrame of 8-bit codes, quantized with the
        encoder's dither; agrees with `apply` + encode to within that dither.

        Raises UsageError for a bad strength or a frame this corrector does not take."""
        import torch

        _check_strength(strength)
        if not self.takes_display(frame):
            raise UsageError(f"{self.profile.name} cannot correct this image on the 8-bit route")
        with torch.inference_mode():
            if self.architecture.colour_map is not None:
                samples, model_run = self._display_through_table(frame.samples, strength, dither_seed)
            else:
                samples, model_run = self._display_through_grid(frame.samples, strength, dither_seed)
        return _carrying(frame.with_samples(samples), strength, model_run)

    def _work_shape(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) of an h x w photo scaled to the long side work_size, as both routes shrink it."""
        scale = self.inference.work_size / max(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _work_copy(self, samples):
        """(H, W, 3) uint8 -> float32 [0, 1] area-averaged to `_work_shape`, as `_run_guided` shrinks its
        float input."""
        from xfix.display8 import area_average

        return area_average(samples, *self._work_shape(*samples.shape[:2]))

    def _display_through_grid(self, samples, strength: float, dither_seed: int | None):
        import torch

        from xfix.display8 import slice_grid_u8
        from xfix.guided import CELL, block_grid_table, default_block, fit_grid, with_strength

        low = self._work_copy(samples)
        low_run = self._restrained(low, self._run_whole(low))
        low_t, low_out_t = (torch.from_numpy(a).to(self.device) for a in (low, low_run.pixels))
        grid = with_strength(fit_grid(low_t, low_out_t), strength)
        h, w = samples.shape[:2]
        block = default_block((h, w), low.shape, CELL)
        table = block_grid_table(grid, h, w, block)
        return slice_grid_u8(samples, table, block, dither_seed=dither_seed), low_run

    def _display_through_table(self, samples, strength: float, dither_seed: int | None):
        import torch

        from xfix.display8 import apply_lut_u8, area_average

        def shrink(height: int, width: int):
            """The photo as (1, 3, height, width) [0, 1], averaged as torch's area interpolation would."""
            # never larger than the photo: a model that wants more pixels enlarges them itself
            size = min(height, samples.shape[0]), min(width, samples.shape[1])
            small = area_average(samples, *size, adaptive=True)
            return torch.from_numpy(small).permute(2, 0, 1)[None].to(self.device)

        colour_fn = self.architecture.colour_map(self.model, shrink)
        model_run = self._restrained_map(samples, colour_fn)
        axis = torch.linspace(0.0, 1.0, _TABLE_SIZE, device=self.device)
        lattice = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=0)  # (3, N, N, N)
        flat = lattice.reshape(1, 3, _TABLE_SIZE, _TABLE_SIZE * _TABLE_SIZE)
        mapped = torch.lerp(flat, colour_fn(flat).float(), strength * model_run.weight).reshape(lattice.shape)
        table = mapped.permute(1, 2, 3, 0).contiguous().cpu().numpy()  # (N, N, N, 3): R, G, B axes
        return apply_lut_u8(samples, table, dither_seed=dither_seed), model_run

    def _restrained_map(self, samples, colour_fn) -> ModelRun:
        """The `_restraint` weight of a colour map, measured on the pixels `_restraint` samples of the whole
        photo on the float route (the pixels, not the weighted output: the table is weighted instead)."""
        import numpy as np
        import torch

        from xfix.restraint import sample_step

        if not self.inference.restrains:
            return ModelRun(None)
        step = sample_step(samples.shape)
        before = samples[::step, ::step].astype(np.float32) / np.float32(255.0)
        x = torch.from_numpy(before).permute(2, 0, 1)[None].to(self.device)
        return self._restraint(before, colour_fn(x).float()[0].permute(1, 2, 0).cpu().numpy())

    # -------------------------------------------------------------- running the model

    def run(self, encoded) -> ModelRun:
        """(H, W, 3) float32 in the model encoding -> the model's output, same shape, under inference_mode,
        faded by the leave_alone weight (ModelRun.pixels; the weight and brightness change beside it).

        Display encodings are clipped to [0, 1] on the way in. Out-of-memory is handled here and only here:
        a tileable model retries tiled at half the tile size; otherwise, or if that fails too, ProfileError.
        """
        import torch

        with torch.inference_mode():
            try:
                return self._run_mode(encoded, self.inference.mode, self.inference.tile_size)
            except (RuntimeError, MemoryError) as exc:
                if not _is_oom(exc):
                    raise
            self._release_memory()
            tile = self.inference.tile_size // 2
            where = f"{self.device} ({encoded.shape[1]}x{encoded.shape[0]})"
            if self.architecture.receptive_field <= 0 or tile <= 3 * self.overlap:
                message = f"out of memory on {where}; try another --device or a smaller image"
                raise ProfileError(message, self.profile.path)
            log.warning("out of memory on %s; retrying tiled at %d px", where, tile)
            try:
                return self._run_mode(encoded, "tiled", tile)
            except (RuntimeError, MemoryError) as exc:
                if not _is_oom(exc):
                    raise
            self._release_memory()
            raise ProfileError(f"out of memory on {where} even tiled at {tile} px", self.profile.path)

    def _release_memory(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _model_input(self, encoded):
        import numpy as np

        display = RGB_SPACES[self.profile.encoding].transfer != "linear"
        return np.clip(encoded, 0.0, 1.0) if display else encoded

    def _run_mode(self, encoded, mode: str, tile: int):
        if mode == "full":
            mode = "tiled" if self.architecture.receptive_field > 0 else "whole"
        if mode == "whole":
            image = self._model_input(encoded)
            return self._restrained(image, self._run_whole(image))
        if mode == "tiled":
            image = self._model_input(encoded)
            return self._restrained(image, self._run_tiled(image, tile))
        return self._run_guided(encoded)

    def _restraint(self, before, after) -> ModelRun:
        """The leave_alone weight (of the change the second opinion agrees with, when one is loaded), times
        the share brighten_limit keeps, and the brightness change of `after`, the model's output for `before`
        (both (H, W, 3) numpy in the model encoding); no pixels."""
        from xfix.restraint import (
            agreed_change,
            brightness_change,
            headroom_weight,
            highlight_headroom,
            restraint_weight,
        )

        inference, encoding = self.inference, self.profile.encoding
        if not inference.restrains:
            return ModelRun(None)
        change = brightness_change(before, after, encoding)
        second = None
        if self.second_opinion is not None:
            second = self.second_opinion.profile.name, self.second_opinion.judged_change(before)
        fade = restraint_weight(agreed_change(change, second[1]) if second else change, inference.leave_alone)
        limit = 1.0
        if inference.brighten_limit is not None and change > 0:
            limit = headroom_weight(change, highlight_headroom(before, encoding), inference.brighten_limit)
        return ModelRun(None, fade * limit, change, limit < fade, second)

    def judged_change(self, image) -> float:
        """Stops by which this profile's model, run whole and unrestrained on the pixels `xfix.restraint`
        samples of (H, W, 3) `image` in its encoding, moves their mean brightness: its opinion, asked by
        another profile (`second_opinion`)."""
        import numpy as np
        import torch

        from xfix.restraint import brightness_change, sample_step

        step = sample_step(image.shape)
        sample = np.ascontiguousarray(self._model_input(image[::step, ::step]), np.float32)
        with torch.inference_mode():
            return brightness_change(sample, self._run_whole(sample), self.profile.encoding)

    def _restrained(self, before, after) -> ModelRun:
        """`after` faded towards `before` by its `_restraint` weight, in place."""
        import torch

        run = self._restraint(before, after)
        if run.weight < 1.0:
            after = _map_rows(lambda b, a: torch.lerp(b, a, run.weight), before, after, out=after)
        return run._replace(pixels=after)

    def _global_context(self, image):
        """The model's `global_context` of the whole (1, 3, H, W) image, or None when its architecture takes
        none: computed once, before padding and tiling, so every tile and a whole-image run see the same."""
        import torch

        if not self.architecture.takes_context:
            return None
        return self.model.global_context(image.to(torch.float32))

    def _forward(self, x, context=None):
        """(1, 3, h, w) tensor, any device -> model output (1, 3, h, w) float32 on the CPU; pads and crops.
        `context`: the whole image's `_global_context` (None: the model has none)."""
        import torch

        from xfix.tiling import pad_to_multiple

        x = x.to(self.device, torch.float32).contiguous()
        padded, h, w = pad_to_multiple(x, self.architecture.multiple_of)
        y = self.model(padded) if context is None else self.model(padded, context.to(self.device))
        if y.ndim != 4 or y.shape[:2] != (1, 3) or y.shape[-2:] != padded.shape[-2:]:
            message = f"{self.architecture.name} returned {tuple(y.shape)} for {tuple(padded.shape)}"
            raise ProfileError(message, self.profile.path)
        if not torch.isfinite(y).all():  # written out, NaN would become black pixels reported as done
            raise ProfileError(f"{self.architecture.name} returned non-finite values for a "
                               f"{h} x {w} input", self.profile.path)
        return y[:, :, :h, :w].float().cpu()

    def _run_whole(self, image):
        """(H, W, 3) numpy -> (H, W, 3) numpy, the model on the whole image at once."""
        import torch

        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        y = self._forward(x, self._global_context(x))
        return y[0].permute(1, 2, 0).contiguous().numpy()

    def _run_tiled(self, image, tile: int):
        import torch

        from xfix.tiling import run_tiled

        x = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, 3, H, W) view, tiles are cut from it
        context = self._global_context(x)
        y = run_tiled(lambda t: self._forward(t, context), x, tile, self.overlap, self.architecture.multiple_of,
                      self.architecture.tile_align)
        return y[0].permute(1, 2, 0).contiguous().numpy()

    def _run_guided(self, encoded):
        """Model at long side work_size, then guided upsampling of its correction to full size."""
        import cv2
        import torch

        from xfix.guided import upsample

        if max(encoded.shape[:2]) <= self.inference.work_size:
            return self._run_mode(encoded, "whole", 0)
        height, width = self._work_shape(*encoded.shape[:2])
        # area average, then clip: clipping the full-res copy first would cost a pass over the big image
        low = self._model_input(cv2.resize(encoded, (width, height), interpolation=cv2.INTER_AREA))
        low_run = self._restrained(low, self._run_whole(low))
        display = RGB_SPACES[self.profile.encoding].transfer != "linear"
        # the grid is fitted and sliced on the model's device; full-res rows travel there in chunks
        low_t, low_out_t = (torch.from_numpy(a).to(self.device) for a in (low, low_run.pixels))
        return low_run._replace(pixels=upsample(low_t, low_out_t, encoded, clip_input=display))
