"""`kgrec etl load --format FORMAT PATH`: read, validate, quarantine, load into the graph."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from core.config import Config
from kgrec.commands.common import config, console, friendly_errors, open_store
from kgrec.progress import progress_bars
from kgrec.tables import Col, table

app = typer.Typer(help="Load shop data into the graph.", no_args_is_help=True)

FORMATS = ("amazon-kg", "rees46", "csv")


@app.command("load")
@friendly_errors
def load_cmd(
    path: Path = typer.Argument(..., help="A file or folder in the chosen format."),
    fmt: str = typer.Option(..., "--format", "-f", help="amazon-kg | rees46 | csv (docs/formats.md)"),
    pseudonymize: bool = typer.Option(False, "--pseudonymize",
                                      help="Replace user ids by a salted hash (one salt per "
                                           "KGREC_HOME, kept in its file 'salt')."),
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
    """Read + validate + load with progress bars; returns (LoadSummary, quarantine file)."""
    from core.errors import ConfigError
    from etl.load import fingerprint, load_tables
    from etl.quarantine import Quarantine
    from etl.readers import read

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    t0 = time.perf_counter()
    quarantine = Quarantine()
    with console.status(Text(f"reading {path} as {fmt}…")):
        tables = read(fmt, path, quarantine)
    read_s = time.perf_counter() - t0
    name = path.name.split(".")[0] or fmt
    qfile = quarantine.write(cfg.etl.quarantine_dir, name)  # always: a fixed file clears it
    fp = fingerprint(fmt, path, cfg.etl.pseudonymize, cfg.graph.batch_size)
    home = cfg.graph.home

    def waiting() -> None:
        console.print(Text(f"waiting for another load of this home ({home}) to finish…",
                           style="yellow"))

    with open_store(cfg) as store, progress_bars() as progress:
        summary = load_tables(store, tables, home=home, fingerprint=fp, source=name,
                              progress=progress, pseudonymize=cfg.etl.pseudonymize,
                              on_wait=waiting)
    summary.quarantined = quarantine.counts()
    summary.read_seconds = read_s
    return summary, qfile


def summary_table(summary, quarantine_file: Path | None) -> RenderableType:
    """What this load wrote (rows of this input per node label / relationship type, and how
    many of them are new to the graph), beside the whole graph's totals; then the quarantine
    and the speed."""
    cols = [Col("what"), Col("this load", "number"), Col("new", "number"),
            Col("graph total", "number")]
    rows: list[list[object]] = [
        [what, f"{n:,}", f"{summary.new.get(what, 0):,}", f"{summary.counts.get(what, 0):,}"]
        for what, n in summary.loaded.items()]
    rows.append(["events (event store)", f"{summary.events_read:,}",
                 f"{summary.events_added:,}", ""])
    parts: list[RenderableType] = [
        table(f"loaded {summary.source}: what this load wrote", cols, rows, console)]
    bad = sum(summary.quarantined.values())
    where = f" ({quarantine_file})" if quarantine_file else ""
    parts.append(Text(f"quarantined rows: {bad:,}{where}"))
    if bad:
        parts.append(table("quarantined by reason", [Col("reason"), Col("rows", "number")],
                           [[r, f"{n:,}"] for r, n in summary.quarantined.items()], console))
    written = sum(summary.rows_written.values())
    speed = f"{summary.rows_per_s:,.0f} rows/s" if summary.seconds else "-"
    waited = f"; waited {summary.waited_seconds:.1f} s for another load" \
        if summary.waited_seconds >= 0.1 else ""
    parts.append(Text(f"read in {summary.read_seconds:.1f} s; rows written: {written:,} in "
                      f"{summary.seconds:.1f} s ({speed}){waited}"))
    if summary.resumed_steps:
        parts.append(Text(f"resumed steps: {summary.resumed_steps} (finished batches of an "
                          "interrupted load were skipped)"))
    if summary.salt_file:
        parts.append(Text(f"user ids pseudonymized with the salt in {summary.salt_file} (one "
                          "salt per home: the same user gets the same id on every load; keep "
                          "that file, and keep it private)"))
    return Group(*parts)
