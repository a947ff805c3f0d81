"""`kgrec recommend --run NAME ...` (batch top-K, Parquet, write-back to the graph) and
`kgrec explain USER ITEM` (why an item is recommended, as paths through the graph)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError, InputFileError
from gnn.rundir import RunDir
from kgrec.commands.common import config, console, err_console, friendly_errors, open_store

log = logging.getLogger(__name__)

MAX_K = 1000
SHOW_LISTS_UP_TO = 5  # users: print their lists after the job


@friendly_errors
def recommend(
    run: str = typer.Option(..., "--run", help="The trained run (runs/NAME)."),
    k: int = typer.Option(20, "--k", "-k", help=f"Recommendations per user (1-{MAX_K})."),
    users: str = typer.Option(None, "--users",
                              help="A file of user ids (one per line, or a CSV/Parquet with a "
                                   "user_id column), or ids separated by commas."),
    all_users: bool = typer.Option(False, "--all", help="Every user in the graph."),
    write_graph: bool = typer.Option(False, "--write-graph",
                                     help="Write (:User)-[:RECOMMENDED]->(:Item) edges, replacing "
                                          "the user's previous ones from the same model."),
    out: Path = typer.Option(None, "--out", help="Parquet output (default runs/NAME/"
                                                 "recommendations.parquet)."),
    similar_items: bool = typer.Option(False, "--similar-items",
                                       help="Also write top-k (:Item)-[:SIMILAR_TO]->(:Item)."),
    similar_k: int = typer.Option(0, "--similar-k", help="Similar items per item (default: --k)."),
    exclude: str = typer.Option("history", "--exclude",
                                help="Items left out per user: history (what the model learned "
                                     "from: reviews or purchases), all (any behaviour), none."),
    chunk_users: int = typer.Option(4096, "--chunk-users", help="Users scored per chunk."),
    from_snapshot: bool = typer.Option(False, "--from-snapshot",
                                       help="Score the graph the run was trained on instead of "
                                            "exporting the current graph (no fold-in)."),
    restart: bool = typer.Option(False, "--restart",
                                 help="Do not resume an unfinished job: start afresh."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Score users with a trained run: top-k per user, seen items excluded, in chunks.

    Without --from-snapshot the current graph is exported first, so events loaded since training
    change the users' recommendations (fold-in, no retraining). A killed job resumes from its last
    finished chunk when run again with the same options.
    """
    from kgrec.commands.common import setup_logging

    setup_logging(verbose)
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"--k must be between 1 and {MAX_K} (got {k})")
    if (users is None) == (not all_users):
        raise ConfigError("give either --users FILE|IDS or --all")
    if similar_k < 0:
        raise ConfigError(f"--similar-k must be >= 0 (got {similar_k})")
    cfg = config()
    rd = RunDir.named(cfg.runs_dir, run).require_trained()
    run_dir, model_file = rd.path, rd.model_file
    wanted = None if all_users else read_user_ids(users)

    from gnn.score import RecommendJob

    model = rd.load_model()
    need_store = write_graph or similar_items or not from_snapshot
    store = open_store(cfg) if need_store else None
    try:
        sink = similar_sink = None
        if write_graph:
            sink = _recommendation_sink(store, model.name, run_dir.name)
        if similar_items:
            similar_sink = _similar_sink(store, model.name, run_dir.name)
        job = RecommendJob(run_dir, model, k=k, users=wanted, exclude=exclude,
                           chunk_users=chunk_users, out=out, sink=sink,
                           similar_k=(similar_k or k) if similar_items else 0,
                           similar_sink=similar_sink, model_file=model_file)
        pending = None if restart else job.pending()
        if pending:
            console.print(f"resuming an unfinished job: {len(pending['done'])} chunks already "
                          "done")
        with _bars() as bars:
            tasks: dict[str, int] = {}

            def progress(step: str, n: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bars.add_task(step, total=total)
                bars.advance(tasks[step], n)

            def snapshot_fn():
                if from_snapshot:
                    return rd.load_snapshot()
                from gnn.snapshot import export
                from graph import queries as Q

                steps = len(Q.NODE_LABELS) + len(Q.BEHAVIOUR_EDGES) + len(Q.KG_EDGES)
                return export(store, progress=lambda what, n: progress("export graph", 1, steps))

            res = job.run(snapshot_fn, progress=progress, restart=restart)
        if job.scorer is not None:
            rd.save_embeddings(job.scorer.node_embeddings())
        console.print(result_table(res))
        if res.missing_users:
            err_console.print(f"[yellow]note:[/yellow] {len(res.missing_users)} users not in the "
                              f"graph, skipped (e.g. {', '.join(res.missing_users[:3])})")
        if wanted is not None and res.users <= SHOW_LISTS_UP_TO:
            _print_lists(res.out, store)
    finally:
        if store is not None:
            store.close()


@friendly_errors
def explain(
    user: str = typer.Argument(..., help="A user id."),
    item: str = typer.Argument(..., help="An item id (e.g. one recommended to the user)."),
    n: int = typer.Option(3, "--n", "-n", help="Paths to show (1-20)."),
    run: str = typer.Option(None, "--run", help="Rank paths with this run's embeddings "
                                                "(saved by its last `kgrec recommend`)."),
    max_length: int = typer.Option(4, "--max-length", help="Longest path, in hops (2-4)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths as JSON."),
) -> None:
    """Why ITEM suits USER: up to N short paths through the knowledge graph, with reasons."""
    from graph.explain import explain as explain_paths

    if not 1 <= n <= 20:
        raise ConfigError(f"--n must be between 1 and 20 (got {n})")
    if not 2 <= max_length <= 4:
        raise ConfigError(f"--max-length must be between 2 and 4 (got {max_length})")
    cfg = config()
    emb = None
    if run:
        emb = load_embeddings(RunDir.named(cfg.runs_dir, run).require_trained())
        if emb is None:
            err_console.print(f"[yellow]note:[/yellow] run {run!r} has no saved embeddings yet "
                              f"(run `kgrec recommend --run {run} ...` once): paths are ranked by "
                              "type only")
    with open_store(cfg) as store:
        t0 = time.perf_counter()
        paths = explain_paths(store, user, item, n=n, embeddings=emb, max_length=max_length)
        ms = (time.perf_counter() - t0) * 1e3
        if not paths:
            from graph import queries as Q

            ends = store.read(Q.EXPLAIN_ENDPOINTS, user_id=user, item_id=item)[0]
            if not ends["user_found"]:
                raise InputFileError(f"no user {user!r} in the graph: check the id")
            if not ends["item_found"]:
                raise InputFileError(f"no item {item!r} in the graph: check the id")
    if as_json:
        console.print_json(json.dumps({"user": user, "item": item, "ms": round(ms, 1),
                                       "paths": [p.to_dict() for p in paths]}))
        return
    if not paths:
        console.print(f"no path of length <= {max_length} links user {user} to item {item} "
                      "through brands, categories, item relations or other customers.")
        return
    table = Table(title=f"why {item} for {user} ({ms:.0f} ms)", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("reason", max_width=80)
    table.add_column("path type")
    table.add_column("hops", justify="right")
    table.add_column("score", justify="right")
    for i, p in enumerate(paths, 1):
        table.add_row(str(i), p.reason.replace("*", ""), p.kind, str(p.length),
                      f"{p.score:.3f}")
    console.print(table)


# --- helpers (also used by the dashboard and the benchmark) -----------------------------------

def read_user_ids(spec: str) -> list[str]:
    """User ids from a file (text: one per line; CSV/Parquet: a user_id column) or a
    comma-separated list."""
    import pandas as pd

    path = Path(spec)
    if path.is_file():
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.name.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(path, dtype=str)
        else:
            ids = [x.strip() for x in path.read_text().splitlines()]
            ids = [x for x in ids if x and not x.startswith("#")]
            if not ids:
                raise InputFileError(f"{path}: no user ids (expected one id per line)")
            return ids
        if "user_id" not in frame.columns:
            raise InputFileError(f"{path}: expected a user_id column, got "
                                 f"{', '.join(map(str, frame.columns))}")
        return frame["user_id"].dropna().astype(str).str.strip().tolist()
    ids = [x.strip() for x in spec.split(",") if x.strip()]
    if not ids:
        raise ConfigError(f"--users {spec!r}: no user ids (give a file or ids separated by "
                          "commas)")
    if len(ids) == 1 and ("/" in spec or spec.endswith((".txt", ".csv", ".parquet"))):
        raise InputFileError(f"{spec}: file not found (--users takes a file or user ids)")
    return ids


def load_embeddings(rd: RunDir):
    """`graph.explain.NodeEmbeddings` from the run's saved vectors (None when absent)."""
    from graph.explain import NodeEmbeddings

    emb = rd.load_embeddings()
    return None if emb is None else NodeEmbeddings(emb)


def result_table(res) -> Table:
    table = Table(title=f"recommendations of run {res.run_id} ({res.model})", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [("users scored", f"{res.users:,}"), ("recommendations", f"{res.recommendations:,}"),
            ("Parquet", res.out or "-")]
    if res.relationships:
        rows.append(("RECOMMENDED edges written", f"{res.relationships:,}"))
    if res.similar_out:
        rows += [("SIMILAR_TO edges written", f"{res.similar_relationships:,}"),
                 ("similar items Parquet", res.similar_out)]
    if res.resumed_chunks:
        rows.append(("chunks resumed", f"{res.resumed_chunks} of {res.chunks}"))
    rows += [("export s", f"{res.export_seconds:.1f}"),
             ("embeddings s", f"{res.embed_seconds:.1f}"),
             ("scoring users/s", f"{res.users_per_s:,.0f}")]
    if res.write_seconds:
        rows.append(("graph writes rels/s", f"{res.relationships_per_s:,.0f}"))
    rows.append(("seconds", f"{res.seconds:.1f}"))
    for what, value in rows:
        table.add_row(what, value)
    return table


def _recommendation_sink(store, model: str, run_id: str):
    from graph.recommendations import now_iso, write_recommendations

    created_at = now_iso()

    def sink(frame, user_ids):
        return write_recommendations(store, frame, model=model, run_id=run_id,
                                     created_at=created_at, users=user_ids)

    return sink


def _similar_sink(store, model: str, run_id: str):
    from graph.recommendations import write_similar_items

    def sink(frame, item_ids):
        return write_similar_items(store, frame, model=model, run_id=run_id)

    return sink


def _bars() -> Progress:
    return Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _print_lists(out: str, store) -> None:
    import pandas as pd

    recs = pd.read_parquet(out)
    titles = {}
    if store is not None:
        from graph.recommendations import item_titles

        titles = item_titles(store, recs["item_id"])
    for user_id, rows in recs.groupby("user_id", sort=False):
        table = Table(title=f"user {user_id}", title_justify="left")
        for col in ("rank", "item", "title", "score"):
            table.add_column(col, justify="right" if col in ("rank", "score") else "left")
        for r in rows.itertuples(index=False):
            table.add_row(str(r.rank), r.item_id, (titles.get(r.item_id) or "")[:60],
                          f"{r.score:.4f}")
        console.print(table)
