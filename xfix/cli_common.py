"""What every `xfix` command shares: exit codes, the error-to-exit-code context, common option types."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Iterator

import typer
from rich.console import Console

from xfix.errors import UsageError, XfixError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]
JsonOut = Annotated[
    bool, typer.Option("--json", help="One JSON object per file on stdout, nothing else there.")
]


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
    try:
        yield
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
    except Exception as error:
        if debug:
            raise
        kind = type(error).__name__
        console.print(f"xfix: internal error ({kind}: {error}); --debug shows the traceback", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        log.removeHandler(handler)
