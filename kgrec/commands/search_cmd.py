"""`kgrec search "QUERY"` and `kgrec search-eval --run NAME`: product search over the graph's
items, re-ranked for a shopper by a trained run (`search.assets`, `search.evaluate`)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer
from rich.markup import escape

from core.config import Config
from core.errors import ConfigError
from gnn.rundir import RunDir
from kgrec.commands.common import config, console, err_console, friendly_errors, open_store
from kgrec.tables import PAD, Col, table
from search.config import SearchConfig

MAX_K = 1000
NO_RUN = "none"


@friendly_errors
def search(
    query: str = typer.Argument(..., help="What the shopper types, e.g. \"rose face cream\"."),
    user: str = typer.Option(None, "--user", "-u", help="A user id: personalise the ranking."),
    k: int = typer.Option(10, "--k", "-k", help=f"Results to show (1-{MAX_K})."),
    run: str = typer.Option(None, "--run", help="Trained run to re-rank with (default: the "
                            "latest hgt run, else the latest run; 'none': text + popularity "
                            "from the graph, no run)."),
    hide_owned: bool = typer.Option(False, "--hide-owned",
                                    help="Leave out items the user already has."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    refresh: bool = typer.Option(False, "--refresh", help="Read the item text (and, without a "
                                 "run, the popularity) from the graph again instead of the "
                                 "cached copy."),
) -> None:
    """Search the catalogue: items matching more of the query's words first, then BM25, personal
    and popularity scores blended."""
    from search.config import EMPTY_QUERY, QueryError

    if not 1 <= k <= MAX_K:
        raise ConfigError(f"--k must be between 1 and {MAX_K} (got {k})")
    if not query.strip():
        _refuse(EMPTY_QUERY)
    t0 = time.perf_counter()
    engine, where, notes = _engine(config(), run, refresh)
    try:
        result = engine.search(query, user=user, k=k, exclude_history=hide_owned)
    except QueryError as e:
        _refuse(str(e))
    ms = (time.perf_counter() - t0) * 1e3
    if as_json:
        console.print_json(json.dumps({
            "query": result.query, "terms": result.terms, "user": result.user,
            "mode": result.mode, "source": where, "matches": result.matches,
            "weights": result.weights, "notes": notes + result.notes,
            "hits": [{**h.__dict__, "score": None if math.isnan(h.score) else h.score}
                     for h in result.hits]}))
        return
    _notes(notes + result.notes)
    who = f"for user {result.user}" if result.mode == "personal" else "anonymous"
    personal = result.mode == "personal"
    # title and why share what the fixed columns leave (numbers go first when space is short):
    # both fold within their width, neither is cut
    ids = max([len(h.item_id) for h in result.hits] + [4])
    room = max((console.width or 80) - 1 - (3 + PAD) - (ids + PAD) - 2 * PAD, 40)
    cols = [Col("#", "number"), Col("item", "id"),
            Col("title", max_width=min(60, room * 11 // 20)),
            Col("why", max_width=min(48, room - min(60, room * 11 // 20))),
            Col("text", "number", priority=2)]
    if personal:
        cols.append(Col("personal", "number", priority=1))
    rows = [[rank, h.item_id, h.title, h.reason, f"{h.text_score:.2f}",
             *(["-" if h.personal_score is None else f"{h.personal_score:.2f}"] if personal
               else [])]
            for rank, h in enumerate(result.hits, 1)]
    console.print(table(f"{result.query[:60]!r}: {result.matches:,} matching items, {who} "
                        f"({where})", cols, rows, console))
    console.print(f"[dim]{ms:.0f} ms including loading[/dim]")


def _refuse(message: str) -> None:
    """A query we cannot search: one red line (the query may hold rich markup: escaped)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _notes(notes: list[str]) -> None:
    for n in notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(n)}", highlight=False)


def _engine(cfg: Config, run: str | None, refresh: bool = False):
    """(engine, description, notes): the named run, the default run (the latest hgt run, else
    the latest run), or the graph alone (`--run none`, or no trained run)."""
    from search import assets as A

    rd = None
    if run is None:
        rd = A.default_run(cfg.runs_dir)
    elif run.lower() != NO_RUN:
        rd = RunDir.named(cfg.runs_dir, run).require_trained()
    if rd is None:
        with console.status("loading the catalogue…"):
            engine, notes = A.graph_engine(_opener(cfg), cfg.graph, refresh=refresh)
        if run is None:
            notes = ["no trained run found: results are not personalised (train one with "
                     "kgrec train)", *notes]
        return engine, "no run: text + popularity", notes
    with console.status(f"loading run {rd.name}…"):
        engine, notes = A.load_engine(rd, _opener(cfg), refresh=refresh)
    how = "" if run is not None else f", the latest {rd.model_name()} run"
    return engine, f"run {rd.name}{how}", notes


def _opener(cfg: Config):
    """`open_store(start=...)` for search.assets: with start=False, a stopped embedded server
    stays stopped (GraphUnavailable), so checking a cache never starts one."""
    def open_(start: bool = True):
        if start:
            return open_store(cfg)
        from graph.store import GraphStore

        return GraphStore(cfg.graph, start_embedded=False)

    return open_


@friendly_errors
def search_eval(
    run: str = typer.Option(..., "--run", help="The trained run to evaluate (runs/NAME)."),
    limit: int = typer.Option(0, "--limit", help="Evaluate at most this many test queries "
                              "(a seeded sample; 0 = all)."),
    fit_queries: int = typer.Option(20000, "--fit-queries",
                                    help="Validation queries the blend is fitted on."),
    candidates: int = typer.Option(SearchConfig.candidates, "--candidates",
                                   help="BM25 candidates re-ranked per query."),
    queries: Path = typer.Option(None, "--queries", help="Evaluate these queries instead "
                                 "(CSV: user_id,item_id,query[,slice]), e.g. a run's "
                                 "search/queries_test.csv."),
) -> None:
    """Run the product-search protocol (Ai et al. 2017) on a trained run: fit the blend on
    validation queries, evaluate on test queries, write runs/NAME/search_metrics.json."""
    from kgrec.progress import progress_bars
    from search import assets as A
    from search.evaluate import evaluate_run

    if limit < 0:
        raise ConfigError(f"--limit must be >= 0 (got {limit})")
    cfg = config()
    rd = RunDir.named(cfg.runs_dir, run).require_trained()
    scfg = SearchConfig(candidates=candidates, fit_queries=fit_queries,
                        eval_queries=limit or None)
    if queries is not None and not queries.exists():
        raise ConfigError(f"--queries {queries}: no such file")

    store = _opener(cfg)
    with console.status("reading the item text…"):
        catalogue, notes = A.catalogue_for(rd.search_file, store, rd.load_snapshot)
        index, more = A.index_for(rd.search_file, catalogue, scfg)
    _notes(notes + more)
    with rd.lock("search-eval"), progress_bars(transient=True, width=36) as progress:
        out = evaluate_run(rd, catalogue, index, scfg, queries_file=queries, progress=progress,
                           open_store=store)
    console.print(metrics_table(out, scfg.k))
    console.print(f"latency per query: p50 {out.get('latency_p50_ms') or math.nan:.1f} ms, "
                  f"p95 {out.get('latency_p95_ms') or math.nan:.1f} ms "
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
    console.print(f"wrote {rd.file(RunDir.SEARCH_METRICS)}")


def metrics_table(out: dict, k: int = 10):
    """Every method's MRR / NDCG@k / HR@k, overall and per slice (warm, cold)."""
    from search.config import METHODS

    names = ("mrr", f"ndcg@{k}", f"hr@{k}")
    slices = out.get("slices") or {}
    cols = [Col("method", "id")] + [Col(n, "number") for n in names]
    cols += [Col(f"{s} {n}", "number", priority=1 + j) for s in slices
             for j, n in enumerate(names)]

    def cell(d: dict, key: str) -> str:
        v = d.get(key)
        return "–" if v is None else f"{v:.4f}"

    rows = [[m, *(cell(out, f"{m}.{n}") for n in names),
             *(cell(slices[s], f"{m}.{n}") for s in slices for n in names)] for m in METHODS]
    return table(f"search on run {out['run']} ({out['queries']:,} test queries)", cols, rows,
                 console)
