"""`kgrec etl load --format FORMAT PATH`: read, validate, quarantine, load into the graph."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.config import Config
from kgrec.commands.common import config, console, friendly_errors, open_store

app = typer.Typer(help="Load shop data into the graph.", no_args_is_help=True)

FORMATS = ("amazon-kg", "rees46", "csv")


@app.command("load")
@friendly_errors
def load_cmd(
    path: Path = typer.Argument(..., help="A file or folder in the chosen format."),
    fmt: str = typer.Option(..., "--format", "-f", help="amazon-kg | rees46 | csv (docs/formats.md)"),
    pseudonymize: bool = typer.Option(False, "--pseudonymize",
                                      help="Replace user ids by a salted hash (salt kept in KGREC_HOME)."),
    batch_size: int = typer.Option(0, "--batch-size", help="Rows per write batch (default from config)."),
) -> None:
    """Load PATH into the graph; bad rows go to quarantine/<name>.csv."""
    cfg = config()
    cfg.etl.pseudonymize = pseudonymize
    if batch_size:
        cfg.graph.batch_size = batch_size
    summary, quarantine_file = run_load(cfg, fmt, path)
    console.print(summary_table(summary, quarantine_file))


def run_load(cfg: Config, fmt: str, path: Path):
    """Read + validate + load with progress bars; returns (LoadSummary, quarantine file or None)."""
    from core.errors import ConfigError
    from etl.canonical import CanonicalTables  # noqa: F401  (import cost paid once here)
    from etl.load import fingerprint, load_tables
    from etl.normalize import pseudonymize
    from etl.quarantine import Quarantine
    from etl.readers import read

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    t0 = time.perf_counter()
    quarantine = Quarantine()
    with console.status(f"reading {path} as {fmt}…"):
        tables = read(fmt, path, quarantine)
        if cfg.etl.pseudonymize:
            tables = pseudonymize(tables, salt(cfg.graph.home))
    name = path.name.split(".")[0] or fmt
    qfile = quarantine.write(cfg.etl.quarantine_dir, name)  # always: a fixed file clears it
    fp = fingerprint(fmt, path, cfg.etl.pseudonymize, cfg.graph.batch_size)
    with open_store(cfg) as store, Progress(
        TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bars:
        tasks: dict[str, int] = {}

        def progress(step: str, n: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.advance(tasks[step], n)

        summary = load_tables(store, tables, home=cfg.graph.home, fingerprint=fp,
                              source=name, progress=progress)
    summary.quarantined = quarantine.counts()
    summary.seconds = time.perf_counter() - t0
    return summary, qfile


def salt(home: Path) -> bytes:
    """The pseudonymisation salt: generated once, mode 0600, so the same user maps the same."""
    path = Path(home) / "salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def summary_table(summary, quarantine_file: Path | None) -> Table:
    table = Table(title=f"loaded {summary.source}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, n in summary.counts.items():
        if n:
            table.add_row(name, f"{n:,}")
    bad = sum(summary.quarantined.values())
    table.add_row("quarantined rows", f"{bad:,}" + (f" ({quarantine_file})" if quarantine_file else ""))
    for reason, n in summary.quarantined.items():
        table.add_row(f"  {reason}", f"{n:,}")
    written = sum(summary.rows_written.values())
    table.add_row("rows written", f"{written:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("rows/s", f"{written / summary.seconds:,.0f}" if summary.seconds else "-")
    if summary.resumed_steps:
        table.add_row("resumed steps", str(summary.resumed_steps))
    return table
