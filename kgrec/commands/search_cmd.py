"""`kgrec search "QUERY"` and `kgrec search-eval --run NAME`: product search over the graph's
items, re-ranked for a shopper by a trained run (search.engine)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.config import Config
from core.errors import ConfigError
from gnn.rundir import RunDir
from kgrec.commands.common import config, console, err_console, friendly_errors, open_store

MAX_K = 1000


@friendly_errors
def search(
    query: str = typer.Argument(..., help="What the shopper types, e.g. \"rose face cream\"."),
    user: str = typer.Option(None, "--user", "-u", help="A user id: personalise the ranking."),
    k: int = typer.Option(10, "--k", "-k", help=f"Results to show (1-{MAX_K})."),
    run: str = typer.Option(None, "--run", help="Trained run to re-rank with (default: the "
                            "latest run; none: text + popularity from the graph)."),
    hide_owned: bool = typer.Option(False, "--hide-owned",
                                    help="Leave out items the user already has."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    snapshot: Path = typer.Option(None, envvar="KGREC_SNAPSHOT", hidden=True,
                                  help="The run's saved graph snapshot, if not in the run."),
) -> None:
    """Search the catalogue: BM25 candidates re-ranked by text, personal and popularity scores."""
    from search import engine as S

    if not 1 <= k <= MAX_K:
        raise ConfigError(f"--k must be between 1 and {MAX_K} (got {k})")
    if not query.strip():
        _refuse(S.EMPTY_QUERY)
    cfg = config()
    t0 = time.perf_counter()
    engine, where, notes = _engine(cfg, run, snapshot)
    try:
        result = engine.search(query, user=user, k=k, exclude_history=hide_owned)
    except S.QueryError as e:
        _refuse(str(e))
    ms = (time.perf_counter() - t0) * 1e3
    if as_json:
        console.print_json(json.dumps({
            "query": result.query, "terms": result.terms, "user": result.user,
            "mode": result.mode, "source": where, "matches": result.matches,
            "notes": notes + result.notes,
            "hits": [{**h.__dict__, "score": None if math.isnan(h.score) else h.score}
                     for h in result.hits]}))
        return
    _notes(notes + result.notes)
    who = f"for user {result.user}" if result.mode == "personal" else "anonymous"
    table = Table(title=escape(f"{result.query[:60]!r}: {result.matches:,} matching items, "
                               f"{who} ({where})"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("title", max_width=48, overflow="ellipsis", no_wrap=True)
    table.add_column("text", justify="right")
    table.add_column("personal", justify="right")
    table.add_column("why", overflow="fold")
    for rank, h in enumerate(result.hits, 1):
        table.add_row(str(rank), escape(h.item_id), escape(h.title), f"{h.text_score:.2f}",
                      "-" if h.personal_score is None else f"{h.personal_score:.2f}",
                      escape(h.reason))
    console.print(table)
    console.print(f"[dim]{ms:.0f} ms including loading[/dim]")


def _refuse(message: str) -> None:
    """A query we cannot search: one red line (the query may hold rich markup: escaped)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _notes(notes: list[str]) -> None:
    for n in notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(n)}", highlight=False)


def _engine(cfg: Config, run: str | None, snapshot: Path | None = None):
    """(engine, description, notes): the named or latest run, else the graph alone."""
    from search import engine as S

    scfg = S.SearchConfig()
    run_dir = RunDir.named(cfg.runs_dir, run).path if run else S.latest_run(cfg.runs_dir)
    if run_dir is None:
        with console.status("reading the catalogue from the graph…"):
            with open_store(cfg) as store:
                engine = S.graph_engine(store, scfg)
        return engine, "no trained run: text + popularity", [
            "no trained run found: results are not personalised (train one with kgrec train)"]
    S.check_run(run_dir)
    with console.status(f"loading run {run_dir.name}…"):
        engine, notes = S.load_engine(run_dir, lambda: open_store(cfg), scfg,
                                      _snapshot_fn(cfg, run_dir, snapshot))
    return engine, f"run {run_dir.name}", notes


@friendly_errors
def search_eval(
    run: str = typer.Option(..., "--run", help="The trained run to evaluate (runs/NAME)."),
    limit: int = typer.Option(0, "--limit", help="Evaluate at most this many test queries "
                              "(a seeded sample; 0 = all)."),
    fit_queries: int = typer.Option(20000, "--fit-queries",
                                    help="Validation queries the blend is fitted on."),
    candidates: int = typer.Option(100, "--candidates", help="BM25 candidates re-ranked."),
    queries: Path = typer.Option(None, "--queries", help="Evaluate these queries instead "
                                 "(CSV: user_id,item_id,query[,slice]), e.g. a run's "
                                 "search/queries_test.csv."),
    refresh_catalogue: bool = typer.Option(False, "--refresh-catalogue",
                                           help="Read the item text from the graph again."),
    snapshot: Path = typer.Option(None, envvar="KGREC_SNAPSHOT", hidden=True,
                                  help="The run's saved graph snapshot, if not in the run."),
) -> None:
    """Run the product-search protocol (Ai et al. 2017) on a trained run and write
    runs/NAME/search_metrics.json."""
    from search import engine as S

    if limit < 0:
        raise ConfigError(f"--limit must be >= 0 (got {limit})")
    cfg = config()
    run_dir = RunDir.named(cfg.runs_dir, run).path
    S.check_run(run_dir)
    scfg = S.SearchConfig(candidates=candidates, fit_queries=fit_queries,
                          eval_queries=limit or None)
    if queries is not None and not queries.exists():
        raise ConfigError(f"--queries {queries}: no such file")
    snap = _snapshot_fn(cfg, run_dir, snapshot)
    with console.status("reading the item text…"):
        catalogue, notes = S.catalogue_for(run_dir, lambda: open_store(cfg),
                                           refresh=refresh_catalogue, snapshot_fn=snap)
    _notes(notes)
    with Progress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        out = S.evaluate_run(run_dir, catalogue, scfg, queries_file=queries, progress=progress,
                             snapshot_fn=snap)
    console.print(metrics_table(out, scfg.k))
    console.print(f"latency per query: p50 {out.get('latency_p50_ms', float('nan')):.1f} ms, "
                  f"p95 {out.get('latency_p95_ms', float('nan')):.1f} ms "
                  f"({out.get('latency_queries', 0)} queries)")
    w = out["blend"]
    console.print("blend (fitted on validation queries): personal "
                  + ", ".join(f"{k} {v:.2f}" for k, v in w["personal"].items())
                  + " | anonymous "
                  + ", ".join(f"{k} {v:.2f}" for k, v in w["anonymous"].items()
                              if k != "personal"))
    skipped = {k: v for k, v in out["skipped"].items() if v}
    console.print(f"{out['queries']:,} queries evaluated"
                  + (f" (of {out['queries_available']:,})"
                     if out["queries_available"] != out["queries"] else "")
                  + (f"; skipped: {skipped}" if skipped else ""))
    console.print(f"wrote {run_dir / 'search_metrics.json'}")


def _snapshot_fn(cfg: Config, run_dir: Path, snapshot: Path | None):
    """The run's snapshot, loaded only when needed, as `kgrec train` finds it: the given
    one, else the run's cached copy, else exported from the graph (and cached)."""
    from kgrec.commands.train_cmd import load_snapshot

    cached: list = []

    def load():
        if not cached:
            cached.append(load_snapshot(cfg, RunDir(run_dir), snapshot))
        return cached[0]

    return load


def metrics_table(out: dict, k: int = 10) -> Table:
    from search.engine import METHODS

    table = Table(title=f"search on run {out['run']} ({out['queries']:,} test queries)",
                  title_justify="left")
    table.add_column("method")
    for m in ("mrr", f"ndcg@{k}", f"hr@{k}"):
        table.add_column(m, justify="right")
    for method in METHODS:
        table.add_row(method, *(f"{out.get(f'{method}.{m}', float('nan')):.4f}"
                                for m in ("mrr", f"ndcg@{k}", f"hr@{k}")))
    return table
