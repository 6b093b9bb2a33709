"""Which profile a command uses: the shipped default, the names offered to shell completion, and a name given
on the command line turned into a `profile.Profile` record.

`xfix.profile` (and through it torch) is imported inside the functions, so the CLI imports this module at
start-up for free and completion never loads a model.
"""

from __future__ import annotations

from typing import Any

from xfix.errors import ProfileError, UsageError, XfixError

# Shipped profiles, best first: the default is the first that loads (models/msec.md has the numbers that put
# msec ahead of classic; classic stays as the fallback that needs no weights).
PROFILE_PREFERENCE: tuple[str, ...] = ("msec", "classic")


def default_profile_name() -> str:
    """The best shipped profile: the first of PROFILE_PREFERENCE whose profile file loads."""
    from xfix.profile import load_profile

    reasons = []
    for name in PROFILE_PREFERENCE:
        try:
            return load_profile(name).name
        except XfixError as error:
            reasons.append(f"{name}: {error}")
    raise ProfileError("no shipped profile loads (" + "; ".join(reasons) + ")")


def profile_names() -> list[str]:
    """Names of the profile files on the search path (files are found, not parsed: cheap enough for shell
    completion)."""
    from xfix.profile import profile_files

    return sorted(profile_files())


def resolve_profile(name: str | None) -> Any:
    """The `Profile` record for `name` (None: the default). An unknown name is a UsageError listing the valid
    ones; a known profile whose file is broken stays a ProfileError."""
    from xfix.profile import load_profile

    name = name or default_profile_name()
    try:
        return load_profile(name)
    except XfixError as error:
        if name not in profile_names():
            raise UsageError(error.message) from None
        raise
