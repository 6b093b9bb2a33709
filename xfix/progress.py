"""How a batch reports itself to a person, on stderr: a rich progress bar (files, megapixels/s, ETA) on a
terminal, one plain line per file otherwise, only failures with --quiet; and the summary table at the end.

Machine-readable output (--json) is the CLI's business and goes to stdout; nothing here writes to stdout.
Lines are written unwrapped (`soft_wrap`), so a failure stays one line however long its path.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from xfix.discover import Job
    from xfix.pipeline import FileResult, Summary

MODES = ("bar", "lines", "quiet")
_STYLES = {"done": "green", "skipped": "yellow", "failed": "bold red", "dry-run": "cyan"}


def choose_mode(console: Console, *, quiet: bool) -> str:
    """The reporting mode: quiet when asked, bar when the console is a terminal, else lines."""
    if quiet:
        return "quiet"
    return "bar" if console.is_terminal else "lines"


class Reporter:
    """Receives `start(index, job)` and `result(r)` from the pipeline's callbacks for a batch of `total`.

    Use as a context manager: the bar (mode "bar") lives between __enter__ and __exit__.
    """

    def __init__(self, total: int, console: Console, *, mode: str = "lines", verbose: bool = False):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        self.total = total
        self.console = console
        self.mode = mode
        self.verbose = verbose
        self.index = 0
        self.megapixels = 0.0
        self._start = perf_counter()
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> "Reporter":
        self._start = perf_counter()
        if self.mode == "bar":
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", style="bold"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("xfix", total=self.total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def line(self, text: Text | str) -> None:
        """One unwrapped line above the bar (or on its own when there is no bar)."""
        self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def warning(self, text: str) -> None:
        if self.mode != "quiet":
            self.line(Text.assemble(("warning ", "yellow"), text))

    def start(self, index: int, job: "Job") -> None:
        self.index = index
        if self._progress is not None:
            self._progress.update(self._task, description=job.input.name)

    def result(self, result: "FileResult") -> None:
        self.megapixels += result.megapixels
        if self._progress is not None:
            elapsed = max(perf_counter() - self._start, 1e-6)
            self._progress.update(self._task, advance=1, rate=_rate(self.megapixels, elapsed))
        if self.mode == "quiet":
            if result.status == "failed":
                self.line(f"failed {result.input}: {result.error}")
            return
        show = self.mode == "lines" or result.status == "failed" or result.warnings or self.verbose
        if show:
            self.line(self._describe(result))
        for warning in result.warnings:
            self.line(Text.assemble(("warning ", "yellow"), warning))  # metadata warnings name their file

    def _describe(self, r: "FileResult") -> Text:
        counter = f"[{self.index + 1}/{self.total}] "
        status = Text(f"{r.status:<7} ", style=_STYLES.get(r.status, ""))
        if r.status == "failed":
            return Text.assemble(counter, status, f"{r.input}: {r.error}")
        text = Text.assemble(counter, status, f"{r.input} -> {r.output}")
        if r.status == "done":
            text.append(f"  ({r.seconds:.2f} s, {_megapixels(r.megapixels)})", style="dim")
        if r.note and (self.verbose or r.status in ("dry-run", "skipped")):  # a skip says which file exists
            text.append(f"  ({r.note})", style="dim")
        return text


def _megapixels(value: float) -> str:
    """One decimal from 10 up, two significant digits below (small images do not all read 0.0)."""
    return f"{value:.1f} MP" if value >= 10 else f"{value:.2g} MP"


def _rate(megapixels: float, seconds: float) -> str:
    return _megapixels(megapixels / max(seconds, 1e-6)) + "/s"


def summary_table(summary: "Summary", *, extra_warnings: int = 0) -> Table:
    """done / skipped / failed / warnings / time, plus dry-run when there were any, as one rich table row."""
    table = Table(title="xfix summary", title_justify="left")
    counts = [("done", summary.done), ("skipped", summary.skipped), ("failed", summary.failed)]
    if summary.count("dry-run"):
        counts.append(("dry-run", summary.count("dry-run")))
    for name, _ in counts:
        table.add_column(name, justify="right", style=_STYLES[name] if name != "done" else None)
    table.add_column("warnings", justify="right")
    table.add_column("time", justify="right")
    rate = f", {_rate(summary.megapixels, summary.seconds)}" if summary.megapixels else ""
    values = [str(n) for _, n in counts] + [
        str(summary.warnings + extra_warnings),
        f"{summary.seconds:.1f} s{rate}",
    ]
    table.add_row(*values)
    return table
