"""`kgrec train | evaluate | compare`: train a recommender on the graph, re-evaluate it, compare runs.

The graph is exported from the store once per training run and cached in `runs/NAME/snapshot/`,
so `evaluate` scores the model on exactly the data it was trained on. `--snapshot PATH` (or
$KGREC_SNAPSHOT) uses a saved snapshot instead of the store (development, tests, benchmarks).
Training never replaces an existing run unasked: `--resume` continues it, `--overwrite`
replaces it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from core.config import Config
from core.errors import ConfigError, RunNotFound
from gnn.config import MODELS
from gnn.rundir import RunDir
from kgrec.commands.common import config, console, friendly_errors, open_store, setup_logging
from kgrec.progress import progress_bars
from kgrec.tables import Col, table

log = logging.getLogger(__name__)
app = typer.Typer()

# (column, priority: 0 always shown, higher ones dropped first when the terminal is narrow)
COLUMNS = (("ndcg@10", 0), ("recall@20", 0), ("hr@10", 1), ("mrr@10", 2),
           ("cold_item_recall@20", 2), ("train_seconds", 1), ("precision@10", 3),
           ("coverage@20", 3), ("gini@20", 4), ("peak_rss_mb", 4))


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
        return rd.snapshot(lambda: open_store(cfg), fresh=fresh, progress=lambda what, n:
                           status.update(f"exporting the graph… {what}: {n:,}"))


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
    target: str | None = typer.Option(
        None, help="User-item relation to predict (default: purchased if present, else "
                   "reviewed); the other behaviours (viewed, carted, favorited, ...) are "
                   "learned from."),
    settings: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE",
        help="Any training setting (a TrainConfig field), repeatable; wins over the options "
             "above. E.g. --set cold_item_fraction=0 --set max_minutes=null; behaviours=all|"
             "target|carted,favorited (what the model learns from; default: all for hgt, "
             "behaviour-pop and behaviour-knn, the target for lightgcn and itemknn); "
             "aux_test_edges=keep|drop (the held-out pairs' own cart/favourite/view edges)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run's last checkpoint "
                                                        "(same model)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run of this "
                                                              "name."),
    snapshot: Path | None = typer.Option(None, envvar="KGREC_SNAPSHOT", hidden=True,
                                         help="Use a saved graph snapshot, not the store."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train a recommender on the graph and evaluate it on the held-out interactions."""
    from gnn.config import TrainConfig, parse_settings
    from gnn.train import train_run

    setup_logging(verbose)
    if model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)} (got {model!r})")
    cfg = config()
    rd = RunDir.named(cfg.runs_dir, run)
    tc = TrainConfig.for_model(model, parse_settings(settings), epochs=epochs, dim=dim, lr=lr,
                               loss=loss, device=device, seed=seed,
                               target=target)  # --set wins
    rd.check_can_train(model, resume, overwrite)
    with rd.lock("training"):
        if overwrite:
            rd.clear()
        snap = load_snapshot(cfg, rd, snapshot, fresh=not resume)
        with progress_bars() as progress:
            on_epoch, on_step = epoch_reporters(progress, tc.model, tc.epochs)
            metrics = train_run(snap, tc, rd, progress=on_epoch, resume=resume,
                                on_step=on_step)
    console.print(metrics_table({run: metrics}, title=f"{model} on the test split"))
    console.print(f"run written to {rd.path}")


def epoch_reporters(progress, model: str, epochs: int):
    """(on_epoch, on_step) callbacks that draw a bar over epochs and one over steps, and print
    one line per epoch (loss, validation, * at a new best) that stays on screen."""

    def on_step(step: str, done: int, total: int) -> None:
        if not done:  # (a "validating" notice has done = 0)
            return
        if step.startswith("epoch "):  # the network's training steps: one bar over all epochs
            progress(f"{model}: steps", done, total * epochs)
        else:  # a fit of its own (kglink's weight search, the score blend): its own bar
            progress(f"{model}: {step}", done, total)

    def on_epoch(e) -> None:
        progress(f"{model}: epochs", 1, epochs)
        parts = [f"epoch {e.epoch:>3}"]
        if e.loss is not None:
            parts.append(f"loss {e.loss:.4f}")
        if e.val:
            parts.append(f"val ndcg@20 {e.val['ndcg@20']:.4f}  recall@20 "
                         f"{e.val['recall@20']:.4f}")
        parts.append(f"{e.seconds:,.0f} s")
        console.print("  ".join(parts) + ("  *" if e.best else ""), highlight=False)

    return on_epoch, on_step


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
    """Compare runs side by side (their metrics.json); folders without one are skipped."""
    cfg = config()
    found: dict[str, dict] = {}
    skipped: list[str] = []
    for r in runs:
        rd = RunDir(r) if r.is_dir() else RunDir.named(cfg.runs_dir, str(r))
        if not rd.exists():
            raise RunNotFound(f"no run {str(r)!r} (neither a folder nor a run in "
                              f"{cfg.runs_dir})")
        metrics = rd.load_metrics()
        if metrics is None:
            skipped.append(rd.name)
            continue
        found[rd.name] = metrics
    if skipped:
        console.print(f"skipped (no metrics.json: training did not finish): "
                      f"{', '.join(skipped)}", style="dim", highlight=False)
    if not found:
        raise RunNotFound("none of the given runs has metrics.json: train one with "
                          "`kgrec train --run NAME`")
    console.print(metrics_table(found, title="runs"))


def metrics_table(rows: dict[str, dict], title: str) -> RenderableType:
    """Runs by metrics, fitted to the terminal (kgrec.tables); the best of each ranking metric
    in bold when there are several runs."""
    cols = [(c, p) for c, p in COLUMNS if any(c in m for m in rows.values())]
    spec = [Col("run", "id"), Col("model", "id")] + \
        [Col(c, "number", priority=p) for c, p in cols]
    best = {c: max((m[c] for m in rows.values() if isinstance(m.get(c), (int, float))),
                   default=None) for c, _ in cols if "@" in c and not c.startswith("gini")}
    cells, bold = [], set()
    unscored = [name for name, m in rows.items() if "cold_item_recall@20" in m
                and m["cold_item_recall@20"] is None]
    for r, (name, m) in enumerate(rows.items()):
        row: list[object] = [name, m.get("model", "?")]
        for j, (c, _) in enumerate(cols, 2):
            v = m.get(c)
            row.append("–" if v is None else _number(c, v))
            if len(rows) > 1 and v is not None and best.get(c) == v:
                bold.add((r, j))
        cells.append(row)
    out = table(title, spec, cells, console, bold)
    if not unscored:
        return out
    return Group(out, Text(f"cold_item_recall@20 –: {', '.join(unscored)} cannot score items "
                           "without interactions (no knowledge graph), so no cold metric is "
                           "reported", style="dim"))


def _number(column: str, v: float) -> str:
    if "@" in column:
        return f"{v:.4f}"
    return f"{v:,.1f}" if column == "train_seconds" else f"{v:,.0f}"
