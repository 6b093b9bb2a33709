"""Typed errors. Each carries the file it concerns so a batch can report one clear line per failure."""

from __future__ import annotations

from pathlib import Path


class XfixError(Exception):
    """Base of every error xfix raises on purpose; the CLI turns these into one line and an exit code."""

    def __init__(self, message: str, path: Path | str | None = None):
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path is not None else self.message


class UsageError(XfixError):
    """The request itself is wrong (bad option value, unknown profile name)."""


class InputError(XfixError):
    """An input path is missing, unreadable or not a supported image."""


class DecodeError(XfixError):
    """A file could not be decoded (corrupt, truncated, too large)."""


class ColourError(XfixError):
    """A colour space or transfer function is unknown or cannot be applied."""


class ProfileError(XfixError):
    """A profile file, its architecture or its weights are invalid."""


class EncodeError(XfixError):
    """The corrected image could not be encoded."""


class MetadataError(XfixError):
    """Metadata could not be copied; the pipeline reports it as a warning, not a failure."""


class WriteError(XfixError):
    """The output could not be written (folder not writable, disk full)."""
