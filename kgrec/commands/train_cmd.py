"""`kgrec train | evaluate | compare`: train a recommender on the graph, re-evaluate it, compare runs.

The graph is exported from the store once per training run and cached in `runs/NAME/snapshot/`,
so `evaluate` scores the model on exactly the data it was trained on. `--snapshot PATH` (or
$KGREC_SNAPSHOT) uses a saved snapshot instead of the store (development, tests, benchmarks).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import typer
from rich.table import Table

from gnn.config import MODELS
from kgrec.commands.common import (config, console, friendly_errors, open_store,
                                   setup_logging)
from kgrec.config import Config
from kgrec.errors import ConfigError, DataError, RunNotFound

log = logging.getLogger(__name__)
app = typer.Typer()

SNAPSHOT_DIR = "snapshot"
COLUMNS = ("ndcg@10", "recall@20", "hr@10", "precision@10", "mrr@10", "coverage@20", "gini@20",
           "cold_item_recall@20", "train_seconds", "peak_rss_mb")


def run_dir(cfg: Config, run: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run):
        raise ConfigError(f"run name {run!r}: use letters, digits, '.', '_' or '-'")
    return cfg.runs_dir / run


def load_snapshot(cfg: Config, run: str, snapshot: Path | None = None, fresh: bool = False):
    """The graph snapshot of run `run`: from `snapshot` if given, else the run's cached copy
    (unless `fresh`), else exported from the graph store. Cached in runs/RUN/snapshot/."""
    from graph.export import GraphSnapshot, export

    cache = run_dir(cfg, run) / SNAPSHOT_DIR
    if snapshot is not None:
        if not (snapshot / "graph.pt").exists():
            raise ConfigError(f"--snapshot {snapshot}: not a saved snapshot (no graph.pt)")
        snap = GraphSnapshot.load(snapshot)
    elif not fresh and (cache / "graph.pt").exists():
        return GraphSnapshot.load(cache)
    else:
        with open_store(cfg) as store:
            with console.status("exporting the graph…") as status:
                snap = export(store, progress=lambda what, n: status.update(
                    f"exporting the graph… {what}: {n:,}"))
        if not any(et[0] == "user" and et[2] == "item" for et in snap.data.edge_types):
            raise DataError("the graph has no user-item interactions to train on: "
                            "load data first (kgrec etl …)")
    if snapshot is None or snapshot.resolve() != cache.resolve():
        snap.save(cache)
    return snap


@app.command()
@friendly_errors
def train(
    model: str = typer.Option("hgt", "--model", "-m", help=f"One of: {', '.join(MODELS)}."),
    run: str = typer.Option(..., "--run", "-r", help="Run name: writes runs/RUN/."),
    epochs: int | None = typer.Option(None, help="Maximum epochs (early stopping may end "
                                                 "sooner)."),
    dim: int | None = typer.Option(None, help="Embedding size."),
    lr: float | None = typer.Option(None, help="Learning rate."),
    loss: str | None = typer.Option(None, help="bpr or softmax."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
    seed: int = typer.Option(0, help="Random seed (splits, initialisation, sampling)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's last "
                                                        "checkpoint."),
    snapshot: Path | None = typer.Option(None, envvar="KGREC_SNAPSHOT", hidden=True,
                                         help="Use a saved graph snapshot, not the store."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train a recommender on the graph and evaluate it on the held-out interactions."""
    from gnn.config import TrainConfig
    from gnn.train import train_run

    setup_logging(verbose)
    if model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)} (got {model!r})")
    cfg = config()
    directory = run_dir(cfg, run)
    tc = TrainConfig.for_model(model, epochs=epochs, dim=dim, lr=lr, loss=loss, device=device,
                               seed=seed)
    snap = load_snapshot(cfg, run, snapshot, fresh=not resume)
    metrics = train_run(snap, tc, directory, progress=True, resume=resume)
    console.print(metrics_table({run: metrics}, title=f"{model} on the test split"))
    console.print(f"run written to {directory}")


@app.command()
@friendly_errors
def evaluate(
    run: str = typer.Option(..., "--run", "-r", help="A trained run (runs/RUN/)."),
    snapshot: Path | None = typer.Option(None, envvar="KGREC_SNAPSHOT", hidden=True),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Re-evaluate a trained run on its cached graph snapshot; rewrites its metrics.json."""
    from gnn.train import evaluate_run

    setup_logging(verbose)
    cfg = config()
    directory = run_dir(cfg, run)
    if not (directory / "checkpoint" / "model.pt").exists():
        raise RunNotFound(f"no trained run {run!r} in {cfg.runs_dir}: "
                          f"run `kgrec train --run {run}` first")
    snap = load_snapshot(cfg, run, snapshot)
    metrics = evaluate_run(snap, directory)
    console.print(metrics_table({run: metrics}, title=f"{metrics['model']} on the test split"))


@app.command()
@friendly_errors
def compare(runs: list[Path] = typer.Argument(..., help="Run directories (or run names).")
            ) -> None:
    """Compare runs side by side (their metrics.json)."""
    cfg = config()
    found: dict[str, dict] = {}
    for r in runs:
        d = r if r.is_dir() else cfg.runs_dir / r
        f = d / "metrics.json"
        if not f.exists():
            raise RunNotFound(f"{d}: no metrics.json (train it with `kgrec train --run "
                              f"{d.name}`)")
        found[d.name] = json.loads(f.read_text())
    console.print(metrics_table(found, title="runs"))


def metrics_table(rows: dict[str, dict], title: str) -> Table:
    table = Table(title=title)
    table.add_column("run")
    table.add_column("model")
    cols = [c for c in COLUMNS if any(c in m for m in rows.values())]
    for c in cols:
        table.add_column(c, justify="right")
    best = {c: max((m[c] for m in rows.values() if isinstance(m.get(c), (int, float))),
                   default=None) for c in cols if "@" in c and not c.startswith("gini")}
    for name, m in rows.items():
        cells = []
        for c in cols:
            v = m.get(c)
            if v is None:
                cells.append("–")
                continue
            text = f"{v:.4f}" if "@" in c else f"{v:,.0f}" if c != "train_seconds" else \
                f"{v:,.1f}"
            cells.append(f"[bold]{text}[/bold]" if len(rows) > 1 and best.get(c) == v else text)
        table.add_row(name, str(m.get("model", "?")), *cells)
    return table
