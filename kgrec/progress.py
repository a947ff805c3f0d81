"""The one way the CLI draws long work: rich progress bars fed by a library callback.

    with progress_bars() as progress:          # progress: core.progress.Progress
        load_tables(..., progress=progress)    # library code calls progress(step, done, total)

One bar per step, created on the step's first report; `done` is what finished in this call
(bars advance by it); a step whose total is 0 shows a spinner-like open bar. Bars stay on screen
when done (`transient=False`), so logs and pipes keep the record; `transient=True` clears them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.progress import Progress as ProgressCallback


@contextmanager
def progress_bars(console: Console | None = None, transient: bool = False,
                  width: int = 24) -> Iterator[ProgressCallback]:
    """Yields a `core.progress.Progress` callback that draws one bar per step."""
    from kgrec.commands.common import console as default_console

    bars = Progress(TextColumn(f"{{task.description:<{width}}}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console or default_console, transient=transient)
    tasks: dict[str, int] = {}

    def report(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = bars.add_task(step, total=total or None)
        elif total and bars.tasks[tasks[step]].total != total:
            bars.update(tasks[step], total=total)
        bars.advance(tasks[step], done)

    with bars:
        yield report
