"""Which profile a command uses: the shipped default, the names offered to shell completion, and a name given
on the command line turned into a `profile.Profile` record.

`xfix.profile` (and through it torch) is imported inside the functions, so the CLI imports this module at
start-up for free and completion never loads a model.
"""

from __future__ import annotations

import logging
from typing import Any

from xfix.errors import ProfileError, UsageError, XfixError

log = logging.getLogger(__name__)

# Shipped profiles, best first: the default is the first that loads (models/msec.md has the numbers that put
# msec ahead of classic; classic stays as the fallback that needs no weights).
PROFILE_PREFERENCE: tuple[str, ...] = ("msec", "classic")
# Architectures of the profiles `xfix hdr` runs: they reconstruct HDR light and correct no exposure, so
# `xfix correct` refuses them (it would write the input back unchanged) and does not offer them, and
# `xfix train` leaves them to `xfix.hdr_train` (the one place that says which architectures are HDR).
HDR_ARCHITECTURES: tuple[str, ...] = ("hdrcnn",)


def default_profile() -> Any:
    """The best shipped profile: the first of PROFILE_PREFERENCE whose file loads and whose weights file is
    there with the right sha256 (not yet built: that needs torch). Passing over a better one is a warning
    naming the profile used and why; ProfileError when none loads."""
    from xfix.profile import check_weights, load_profile

    reasons = []
    for name in PROFILE_PREFERENCE:
        try:
            profile = check_weights(load_profile(name))
        except XfixError as error:
            reasons.append(f"{name}: {error}")
            continue
        if reasons:
            log.warning("using the profile %s, as %s", profile.name, "; ".join(
                reason.replace(": ", " does not load: ", 1) for reason in reasons))
        return profile
    raise ProfileError("no shipped profile loads (" + "; ".join(reasons) + ")")


def profile_names() -> list[str]:
    """Names of the profile files on the search path (files are found, not parsed: cheap enough for shell
    completion)."""
    from xfix.profile import profile_files

    return sorted(profile_files())


def correction_profile_names() -> list[str]:
    """`profile_names()` less the HDR profiles, for `xfix correct --profile` completion: the files are parsed
    (no model is built); one that does not parse is kept, as choosing it shows what is wrong."""
    from xfix.profile import profile_files, read_profile

    names = []
    for name, path in sorted(profile_files().items()):
        try:
            hdr = read_profile(path).architecture in HDR_ARCHITECTURES
        except XfixError:
            hdr = False
        if not hdr:
            names.append(name)
    return names


def resolve_correction_profile(name: str | None) -> Any:
    """`resolve_profile` for `xfix correct`: an HDR profile, which `xfix hdr` runs, is a UsageError."""
    profile = resolve_profile(name)
    if profile.architecture in HDR_ARCHITECTURES:
        valid = ", ".join(correction_profile_names())
        message = f"{profile.name} reconstructs HDR for `xfix hdr`, it corrects no exposure; valid: {valid}"
        raise UsageError(message)
    return profile


def resolve_profile(name: str | None) -> Any:
    """The `Profile` record for `name` (None: the default). An unknown name is a UsageError listing the valid
    ones; a known profile whose file is broken stays a ProfileError."""
    from xfix.profile import load_profile

    if not name:
        return default_profile()
    try:
        return load_profile(name)
    except XfixError as error:
        if name not in profile_names():
            raise UsageError(error.message) from None
        raise
