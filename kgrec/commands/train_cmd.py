"""`kgrec train | evaluate | compare`: train a recommender on the graph, re-evaluate it, compare runs.

The graph is exported from the store once per training run and cached in `runs/NAME/snapshot/`,
so `evaluate` scores the model on exactly the data it was trained on. `--snapshot PATH` (or
$KGREC_SNAPSHOT) uses a saved snapshot instead of the store (development, tests, benchmarks).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.table import Table

from core.config import Config
from core.errors import ConfigError, DataError, RunNotFound
from gnn.config import MODELS
from gnn.rundir import RunDir
from kgrec.commands.common import config, console, friendly_errors, open_store, setup_logging

log = logging.getLogger(__name__)
app = typer.Typer()

COLUMNS = ("ndcg@10", "recall@20", "hr@10", "precision@10", "mrr@10", "coverage@20", "gini@20",
           "cold_item_recall@20", "train_seconds", "peak_rss_mb")


def load_snapshot(cfg: Config, rd: RunDir, snapshot: Path | None = None, fresh: bool = False):
    """The graph snapshot of run `rd`: from `snapshot` if given (saved into the run), else the
    run's saved copy (unless `fresh`), else exported from the graph store."""
    from gnn.snapshot import GraphSnapshot

    if snapshot is not None:
        if not (snapshot / "graph.pt").exists():
            raise ConfigError(f"--snapshot {snapshot}: not a saved snapshot (no graph.pt)")
        snap = GraphSnapshot.load(snapshot)
        if snapshot.resolve() != rd.snapshot_dir.resolve():
            rd.path.mkdir(parents=True, exist_ok=True)
            rd.save_snapshot(snap)
        return snap
    with console.status("exporting the graph…") as status:
        snap = rd.snapshot(lambda: open_store(cfg), fresh=fresh, progress=lambda what, n:
                           status.update(f"exporting the graph… {what}: {n:,}"))
    if not any(et[0] == "user" and et[2] == "item" for et in snap.data.edge_types):
        raise DataError("the graph has no user-item interactions to train on: "
                        "load data first (kgrec etl load …)")
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
    rd = RunDir.named(cfg.runs_dir, run)
    tc = TrainConfig.for_model(model, epochs=epochs, dim=dim, lr=lr, loss=loss, device=device,
                               seed=seed)
    snap = load_snapshot(cfg, rd, snapshot, fresh=not resume)
    metrics = train_run(snap, tc, rd, progress=True, resume=resume)
    console.print(metrics_table({run: metrics}, title=f"{model} on the test split"))
    console.print(f"run written to {rd.path}")


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
    rd = RunDir.named(cfg.runs_dir, run).require_trained()
    snap = load_snapshot(cfg, rd, snapshot)
    metrics = evaluate_run(snap, rd)
    console.print(metrics_table({run: metrics}, title=f"{metrics['model']} on the test split"))


@app.command()
@friendly_errors
def compare(runs: list[Path] = typer.Argument(..., help="Run directories (or run names).")
            ) -> None:
    """Compare runs side by side (their metrics.json)."""
    cfg = config()
    found: dict[str, dict] = {}
    for r in runs:
        rd = RunDir(r) if r.is_dir() else RunDir.named(cfg.runs_dir, str(r))
        metrics = rd.load_metrics()
        if metrics is None:
            raise RunNotFound(f"{rd.path}: no metrics.json (train it with `kgrec train --run "
                              f"{rd.name}`)")
        found[rd.name] = metrics
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
