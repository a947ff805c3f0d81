"""`kgrec recommend --run NAME ...` (batch top-K, Parquet, write-back to the graph) and
`kgrec explain USER ITEM` (why an item is recommended, as paths through the graph)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import typer
from rich.text import Text

from core.errors import ConfigError, InputFileError
from gnn.config import DEVICES
from gnn.rundir import RunDir
from kgrec.commands.common import config, console, err_console, friendly_errors, open_store
from kgrec.progress import progress_bars
from kgrec.tables import Col, table

log = logging.getLogger(__name__)

MAX_K = 1000
SHOW_LISTS_UP_TO = 5  # users: print their lists after the job
NO_TITLE = "(no title in the catalogue)"


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
    out: Path = typer.Option(None, "--out",
                             help="Parquet output (default: with --all the run's batch output "
                                  "runs/NAME/recommendations.parquet; with --users runs/NAME/"
                                  "user_recommendations.parquet, never the batch output)."),
    similar_items: bool = typer.Option(False, "--similar-items",
                                       help="Also write top-k (:Item)-[:SIMILAR_TO]->(:Item)."),
    similar_k: int = typer.Option(0, "--similar-k", help="Similar items per item (default: --k)."),
    exclude: str = typer.Option("history", "--exclude",
                                help="Items left out per user: history (what the model learned "
                                     "from: reviews or purchases), all (any behaviour), none."),
    chunk_users: int = typer.Option(4096, "--chunk-users", help="Users scored per chunk."),
    from_snapshot: bool = typer.Option(False, "--from-snapshot",
                                       help="Score the graph the run was trained on as it is "
                                            "(no fold-in of events loaded since)."),
    restart: bool = typer.Option(False, "--restart",
                                 help="Do not resume an unfinished job: start afresh."),
    device: str = typer.Option("auto", help="Where the top-k matmul runs: auto (CUDA when "
                                            "present), cpu or cuda. Blended and sparse models "
                                            "score on the CPU."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Score users with a trained run: top-k per user, seen items excluded, in chunks.

    Events loaded since training count (fold-in, no retraining): --all exports the current graph
    first; --users reads just those users' current histories and splices them into the run's
    graph snapshot (no export of the whole graph). --from-snapshot scores the training graph as
    it is. A --users request never replaces the run's batch output (the file the dashboard
    reads). A killed job resumes from its last finished chunk when run again with the same
    options; one job at a time per run.
    """
    from gnn.score import RecommendJob, scoring_graph
    from kgrec.commands.common import setup_logging

    setup_logging(verbose)
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"--k must be between 1 and {MAX_K} (got {k})")
    if (users is None) == (not all_users):
        raise ConfigError("give either --users FILE|IDS or --all")
    if similar_k < 0:
        raise ConfigError(f"--similar-k must be >= 0 (got {similar_k})")
    if device not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)} (got {device!r})")
    cfg = config()
    rd = RunDir.named(cfg.runs_dir, run).require_trained()
    wanted = None if all_users else read_user_ids(users)
    out = output_path(rd, out, per_user=wanted is not None)
    model = rd.load_model()
    # the store: for the graph (export or histories), the writes, and the lists' titles
    need_store = write_graph or similar_items or not from_snapshot or wanted is not None
    with rd.lock("kgrec recommend"):
        store = open_store(cfg) if need_store else None
        try:
            job = RecommendJob(rd, model, k=k, users=wanted, exclude=exclude,
                               chunk_users=chunk_users, out=out,
                               sink=_recommendation_sink(store, model.name, rd.name)
                               if write_graph else None,
                               similar_k=(similar_k or k) if similar_items else 0,
                               similar_sink=_similar_sink(store, model.name, rd.name)
                               if similar_items else None, device=device)
            pending = None if restart else job.pending()
            if pending:
                console.print(f"resuming an unfinished job: {len(pending['done'])} chunks "
                              "already done")
            how: list[str] = []
            with progress_bars() as progress:
                def snapshot_fn():
                    snapshot, text = scoring_graph(rd, store, wanted, from_snapshot=from_snapshot,
                                                   progress=progress)
                    how.append(text)
                    return snapshot

                res = job.run(snapshot_fn, progress=progress, restart=restart)
            # the vectors explanations rank paths with: a batch job's (a per-user request
            # leaves them alone, unless the run has none yet)
            if job.scorer is not None and (wanted is None
                                           or not rd.file(RunDir.EMBEDDINGS).exists()):
                rd.save_embeddings(job.scorer.node_embeddings())
            console.print(result_table(res, how[0] if how else "the resumed job's graph"))
            if res.missing_users:
                err_console.print(Text.assemble(
                    ("note: ", "yellow"), f"{len(res.missing_users)} of the users are not in the "
                    f"graph, skipped (e.g. {', '.join(res.missing_users[:3])})"))
            if wanted is not None and res.users <= SHOW_LISTS_UP_TO:
                print_lists(Path(res.out), store)
        finally:
            if store is not None:
                store.close()


@friendly_errors
def explain(
    user: str = typer.Argument(..., help="A user id."),
    item: str = typer.Argument(..., help="An item id (e.g. one recommended to the user)."),
    n: int = typer.Option(3, "--n", "-n", help="Paths to show (1-20)."),
    run: str = typer.Option(None, "--run", help="Rank paths with this run's embeddings "
                                                "(saved by its last `kgrec recommend --all`)."),
    max_length: int = typer.Option(4, "--max-length", help="Longest path, in hops (2-4)."),
    as_json: bool = typer.Option(False, "--json", help="Print the paths as JSON."),
) -> None:
    """Why ITEM suits USER: up to N short paths through the knowledge graph, with reasons.

    When the user already bought or reviewed ITEM, it says so instead (there is nothing to
    recommend); when they only viewed it or put it in their cart, it says so first.
    """
    from graph.explain import endpoints
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
            err_console.print(Text.assemble(
                ("note: ", "yellow"), f"run {run!r} has no saved embeddings yet (run `kgrec "
                f"recommend --run {run} --all` once): paths are ranked by type only"))
    with open_store(cfg) as store:
        ends = endpoints(store, user, item)
        if not ends.user_found:
            raise InputFileError(f"no user {user!r} in the graph: check the id")
        if not ends.item_found:
            raise InputFileError(f"no item {item!r} in the graph: check the id")
        t0 = time.perf_counter()
        paths = [] if ends.owned else explain_paths(store, user, item, n=n, embeddings=emb,
                                                    max_length=max_length)
        ms = (time.perf_counter() - t0) * 1e3
    if as_json:
        console.print_json(json.dumps({
            "user": user, "item": item, "ms": round(ms, 1), "owned": ends.owned,
            "behaviours": list(ends.behaviours), "paths": [p.to_dict() for p in paths]}))
        return
    if ends.behaviours:
        console.print(Text(ends.sentence(user, item), style="bold"))
        if ends.owned:
            console.print(Text("It is in the user's history: there is no reason to recommend it. "
                               f"Explain one of their recommendations instead (`kgrec recommend "
                               f"--run RUN --users {user}` lists them)."))
            return
    if not paths:
        console.print(Text(f"no path of length <= {max_length} links user {user} to item {item} "
                           "through brands, categories, item relations or other customers."))
        return
    # the reason takes what the terminal leaves; narrow ones drop hops, then the path type
    cols = [Col("#", "number"), Col("reason", max_width=_room(44, 90)),
            Col("path type", priority=2), Col("hops", "number", priority=3),
            Col("score", "number", priority=1)]
    rows = [(i, p.reason, p.kind, p.length, f"{p.score:.3f}") for i, p in enumerate(paths, 1)]
    console.print(table(f"why {item} for {user} ({ms:.0f} ms)", cols, rows, console))


# --- helpers (also used by the dashboard and the benchmark) -----------------------------------

def read_user_ids(spec: str) -> list[str]:
    """User ids from a file (text: one per line; CSV/Parquet: a user_id column) or a
    comma-separated list. A file that is not what it claims gives InputFileError naming it."""
    path = Path(spec)
    if path.is_file():
        ids = _ids_from_file(path)
        if not ids:
            raise InputFileError(f"{path}: no user ids (expected one id per line, or a CSV/"
                                 "Parquet with a user_id column)")
        return ids
    ids = [x.strip() for x in spec.split(",") if x.strip()]
    if not ids:
        raise ConfigError(f"--users {spec!r}: no user ids (give a file or ids separated by "
                          "commas)")
    if len(ids) == 1 and ("/" in spec or spec.endswith((".txt", ".csv", ".parquet"))):
        raise InputFileError(f"{spec}: file not found (--users takes a file or user ids)")
    return ids


def _ids_from_file(path: Path) -> list[str]:
    import pandas as pd

    if path.suffix == ".parquet" or path.name.endswith((".csv", ".csv.gz")):
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        try:
            frame = pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path, dtype=str)
        except (ValueError, OSError, UnicodeDecodeError) as e:  # pyarrow / pandas parse errors
            raise InputFileError(f"{path}: not a readable {kind} file ({type(e).__name__}: "
                                 f"{str(e)[:200]})") from None
        if "user_id" not in frame.columns:
            raise InputFileError(f"{path}: expected a user_id column, got "
                                 f"{', '.join(map(str, frame.columns))}")
        return frame["user_id"].dropna().astype(str).str.strip().tolist()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputFileError(f"{path}: not a text file of user ids (line {line}, byte {e.start} "
                             "is not UTF-8: a binary file?); give one id per line, or a CSV/"
                             "Parquet with a user_id column") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise InputFileError(f"{path}: not a text file of user ids (line {line} holds a NUL "
                             "byte: a binary file?); give one id per line")
    return [x.strip() for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]


def output_path(rd: RunDir, out: Path | None, per_user: bool) -> Path:
    """Where the job writes: the run's batch file for every user, its per-user file for a
    --users request; an explicit --out is checked (never the batch file for a per-user request,
    never a directory) and its missing directories are announced."""
    if out is None:
        return rd.user_recommendations_file if per_user else rd.recommendations_file
    out = Path(out)
    if per_user and out.resolve() == rd.recommendations_file.resolve():
        raise ConfigError(f"--out {out} is the run's batch output (every user; the dashboard "
                          "reads it): a --users request never replaces it. Leave --out out (it "
                          f"writes {rd.user_recommendations_file}), or use --all to rewrite the "
                          "batch")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory: give a file name, e.g. "
                          f"{out / 'recommendations.parquet'}")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"--out {out}: {blocked} is a file, not a directory")
    if not out.parent.exists():
        err_console.print(Text.assemble(("note: ", "yellow"),
                                        f"{out.parent} does not exist: creating it for --out"))
    return out


def load_embeddings(rd: RunDir):
    """`graph.explain.NodeEmbeddings` from the run's saved vectors (None when absent)."""
    from graph.explain import NodeEmbeddings

    emb = rd.load_embeddings()
    return None if emb is None else NodeEmbeddings(emb)


def result_table(res, graph: str):
    rows = [("graph scored", graph), ("users scored", f"{res.users:,}"),
            ("recommendations", f"{res.recommendations:,}"), ("Parquet", res.out or "-")]
    if res.relationships:
        rows.append(("RECOMMENDED edges written", f"{res.relationships:,}"))
    if res.similar_out:
        rows += [("SIMILAR_TO edges written", f"{res.similar_relationships:,}"),
                 ("similar items Parquet", res.similar_out)]
    if res.resumed_chunks:
        rows.append(("chunks resumed", f"{res.resumed_chunks} of {res.chunks}"))
    rows += [("graph s", f"{res.export_seconds:.1f}"),
             ("embeddings s", f"{res.embed_seconds:.1f}"),
             ("scoring users/s", f"{res.users_per_s:,.0f}")]
    if res.write_seconds:
        rows.append(("graph writes rels/s", f"{res.relationships_per_s:,.0f}"))
    rows.append(("seconds", f"{res.seconds:.1f}"))
    return table(f"recommendations of run {res.run_id} ({res.model})",
                 [Col("what", max_width=26), Col("value", max_width=_room(34, 90))], rows,
                 console)


def print_lists(out: Path, store) -> None:
    """Each user's list with the items' titles (read from the graph by id)."""
    import pandas as pd

    from graph.recommendations import item_titles

    recs = pd.read_parquet(out)
    titles = item_titles(store, recs["item_id"].unique()) if store is not None else {}
    cols = [Col("rank", "number"), Col("item", "id"), Col("title", max_width=_room(40, 70)),
            Col("score", "number")]
    for user_id, rows in recs.groupby("user_id", sort=False):
        lines = [(r.rank, r.item_id, titles.get(r.item_id) or NO_TITLE, f"{r.score:.4f}")
                 for r in rows.itertuples(index=False)]
        console.print(table(f"user {user_id}", cols, lines, console))


def _room(taken: int, most: int) -> int:
    """The width left for a table's free-text column when the other columns take `taken`."""
    return max(16, min(most, (console.width or 80) - taken))


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
