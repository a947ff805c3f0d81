"""What every command shares: the config, the console, opening the graph, error reporting."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from core.config import Config
from core.errors import KgrecError

console = Console()
err_console = Console(stderr=True)
PIPED_WIDTH = 200  # columns for tables written to a pipe or file (logs, CI): not squashed to 80


def fit_console_to_output() -> None:
    """Rich falls back to 80 columns when stdout is not a terminal, which truncates table cells
    ("itemk…") in logs and pipes; there the consoles get `PIPED_WIDTH`, a terminal keeps its
    own width. Runs before every command (the app's callback)."""
    for c in (console, err_console):
        c.width = PIPED_WIDTH if not c.is_terminal else None  # type: ignore[assignment]
F = TypeVar("F", bound=Callable[..., Any])


def config() -> Config:
    return Config.from_env()


def open_store(cfg: Config):
    """The graph store; starts the embedded server on demand when no Neo4j is configured."""
    from graph.store import GraphStore

    if cfg.graph.embedded:
        with console.status("starting the embedded graph server…"):
            return GraphStore(cfg.graph)
    return GraphStore(cfg.graph)


def friendly_errors(fn: F) -> F:
    """A KgrecError becomes one red line on stderr and exit code 1; anything else is a bug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KgrecError as e:
            err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
