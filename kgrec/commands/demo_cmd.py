"""`kgrec demo`: the whole pipeline on the bundled real dataset with the embedded graph."""

from __future__ import annotations

from pathlib import Path

import typer

from kgrec.commands.common import config, console, friendly_errors
from kgrec.errors import InputFileError

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "amazon_beauty"


def bundled_data() -> Path:
    if not (BUNDLED / "interactions.csv.gz").exists():
        raise InputFileError(f"{BUNDLED}: the bundled dataset is missing; run kgrec from a "
                             "checkout of the repository (it ships data/amazon_beauty)")
    return BUNDLED


@friendly_errors
def demo(
    reload: bool = typer.Option(False, "--reload", help="Load the data again even if loaded."),
) -> None:
    """Run the pipeline on the bundled Amazon Beauty data: load the graph, then report."""
    from kgrec.commands.etl_cmd import run_load, summary_table
    from kgrec.commands.graph_cmd import counts_table
    from kgrec.commands.common import open_store

    cfg = config()
    data = bundled_data()
    console.rule("[bold]1. load the bundled Amazon Beauty graph")
    with open_store(cfg) as store:
        counts = store.counts()
    if counts.get("REVIEWED") and not reload:
        console.print("the graph is already loaded (use --reload to load again)")
        console.print(counts_table(counts))
    else:
        summary, qfile = run_load(cfg, "amazon-kg", data)
        console.print(summary_table(summary, qfile))
