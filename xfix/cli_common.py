"""What every `xfix` command shares: exit codes, the error-to-exit-code context, common option types."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, Iterator

import typer
from rich.console import Console

from xfix.errors import UsageError, XfixError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130  # 130: 128 + SIGINT, as shells report it
THIRD_PARTY_LOGGERS = ("tifffile",)  # decoders that log what the failure line reports anyway
# Sent to stop a program by cron, systemd, `timeout` and a closed terminal; handled like Ctrl-C.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) arrived. A KeyboardInterrupt, so everything that cleans up after Ctrl-C
    (the atomic writer's temporary file, a training checkpoint) does the same for it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]
JsonOut = Annotated[
    bool, typer.Option("--json", help="One JSON object per file on stdout, nothing else there.")
]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Print failures only.")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing outputs (default: skip them).")
]


def complete_correction_profile(incomplete: str) -> list[str]:
    """Names of the profiles `xfix correct` (and `xfix eval`) run, for shell completion; reads profile files
    only, never a model."""
    try:
        from xfix.profile_choice import correction_profile_names

        return [name for name in correction_profile_names() if name.startswith(incomplete)]
    except Exception:  # completion must never print a traceback into the user's shell
        return []


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise `Terminated` wherever the program is, as Ctrl-C raises
    KeyboardInterrupt; the previous handlers come back on the way out. A repeated signal is ignored so it
    cannot cut the cleanup short, and one the process was started ignoring (nohup) is left alone. Signal
    handlers can only be set from the main thread: elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = []  # the first signal; a closure, not module state

    def handler(signum: int, frame: object) -> None:
        if not stopping:
            stopping.append(signum)
            raise Terminated(signum)

    # a signal already ignored stays ignored: `nohup xfix correct ...` must outlive its terminal
    handled = [signum for signum in STOP_SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, handler) for signum in handled}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def exit_codes(debug: bool, console: Console, *, verbose: bool = False) -> Iterator[None]:
    """The one place where errors become exit codes and one line on stderr. Also routes the library's log
    records to `console` for the duration (through rich, so they do not tear the progress bar)."""
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    log = logging.getLogger("xfix")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    # Libraries' own complaints about a file ("invalid offset to first page") would add lines beside the
    # one failure line that already says it; --debug shows them.
    quiet = logging.NullHandler()
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).addHandler(handler if debug else quiet)
    try:
        yield
    except Terminated as stop:
        message = f"xfix: stopped by {signal.Signals(stop.signum).name}; no partial file was left behind"
        console.print(message, soft_wrap=True, markup=False)
        raise typer.Exit(128 + stop.signum) from None  # the shell's convention for a signal's exit status
    except KeyboardInterrupt:
        console.print("xfix: interrupted; no partial file was left behind", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except UsageError as error:
        if debug:
            raise
        console.print(f"xfix: error: {error}", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except XfixError as error:
        if debug:
            raise
        console.print(f"xfix: error: {error}", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    except (typer.Exit, typer.Abort):
        raise
    except BrokenPipeError as error:
        if not _stdout_closed():
            _report_internal_error(error, debug, console)  # a pipe of ours (ffmpeg, say) broke
        # stdout's reader has gone (`xfix profiles --json | head -1`): not an internal error. Typer's main
        # loop ends such a command quietly (exit 1) and keeps the final flush from failing again.
        raise
    except Exception as error:
        _report_internal_error(error, debug, console)
    finally:
        log.removeHandler(handler)
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).removeHandler(handler if debug else quiet)


def _stdout_closed() -> bool:
    """True when stdout is a pipe whose reader has gone (poll reports an error on its write end)."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
    except (AttributeError, OSError, ValueError):  # no real file behind stdout (a test runner's buffer)
        return False
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _report_internal_error(error: Exception, debug: bool, console: Console) -> None:
    """An unexpected error: one line on stderr and exit 1 (the traceback with --debug)."""
    if debug:
        raise error
    kind = type(error).__name__
    console.print(f"xfix: internal error ({kind}: {error}); --debug shows the traceback", soft_wrap=True)
    raise typer.Exit(EXIT_FAILED) from None


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings -> dict; values are parsed as JSON where they can be (numbers, lists, booleans)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects key=value, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def parse_scales(text: str | None) -> list[float] | None:
    """"1,1.2,1,1" -> [1.0, 1.2, 1.0, 1.0]; None stays None."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--pyramid-scale expects numbers like 1,1,1,1, got {text!r}") from None


def correction_overrides(
    *, work_size: int | None, full_res: bool, pyramid_scale: str | None, fusion: bool, hist_adjust: bool,
    settings: list[str], leave_alone: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The profile controls of `xfix correct` as (settings overrides, inference overrides).

    A profile whose architecture lacks a setting (e.g. --pyramid-scale on classic) is refused when it loads,
    with the list of settings it has."""
    chosen = parse_settings(settings)
    scales = parse_scales(pyramid_scale)
    if scales is not None:
        chosen["pyramid_scale"] = scales
    if fusion:
        chosen["fusion"] = True
    if hist_adjust:
        chosen["hist_adjust"] = True
    inference: dict[str, Any] = {}
    if work_size is not None:
        inference["work_size"] = work_size
    if full_res:
        inference["mode"] = "full"
    if leave_alone is not None:
        inference["leave_alone"] = leave_alone
    return chosen, inference
