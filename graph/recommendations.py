"""Recommendations written back to the graph, and read from it (and the targeted reads that
scoring a few users needs: their current histories, item titles).

    (:User)-[:RECOMMENDED {score, rank, model, run_id, created_at, list_size}]->(:Item)
    (:Item)-[:SIMILAR_TO {score, rank, model, run_id}]->(:Item)

Atomic per user: one `UNWIND` statement per batch of users deletes each user's previous
RECOMMENDED edges *of the same model* and creates the new ones, in one transaction. Neo4j's
readers then see a user's old list or the new one, never half of each. The embedded server reads
committed pages without a snapshot, so a read that runs while a batch commits can see part of a
list (measured: 1 edge of 7, or none); each RECOMMENDED edge therefore carries its list's
`list_size` and `created_at`, and `read_whole_lists` (the product's readers) reads again until
every list it returns is whole. A plain Cypher reader can check the same two properties.
Re-running a batch gives the same edges (the old ones are replaced, not added to), so the
managed transaction may be retried and a whole job may be re-run. Edges of other models are
left alone, so two models can be compared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from core.io import chunks
from graph import queries as Q

log = logging.getLogger(__name__)

RELS_PER_TRANSACTION = 10_000  # relationships per write batch (≈ users × k)
IDS_PER_QUERY = 5_000  # ids per targeted read
READ_ATTEMPTS = 20  # reads of a torn list before giving up (a commit takes milliseconds)
EMPTY_READ_ATTEMPTS = 4  # an empty answer may be torn too, or simply have no edges


def now_iso() -> str:
    """The `created_at` value: ISO-8601 UTC text, which both servers store and compare alike."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_recommendations(store, recs: pd.DataFrame, *, model: str, run_id: str,
                          created_at: str | None = None, users: Iterable[str] | None = None,
                          rels_per_batch: int = RELS_PER_TRANSACTION,
                          on_batch: Callable[[int, int], None] | None = None) -> int:
    """Replace the RECOMMENDED edges of `model` for every user in `recs` (and in `users`).

    `recs` has columns user_id, item_id, score, rank. Users listed in `users` but absent from
    `recs` lose their edges of this model (they got no recommendation this time). Returns the
    number of relationships created; `on_batch(users, relationships)` after each transaction.
    """
    created_at = created_at or now_iso()
    rows = _grouped(recs, "user_id", "recs", users)
    return _write(store, Q.REPLACE_RECOMMENDATIONS, rows, recs, rels_per_batch, on_batch,
                  model=model, run_id=run_id, created_at=created_at)


def write_similar_items(store, similar: pd.DataFrame, *, model: str, run_id: str,
                        rels_per_batch: int = RELS_PER_TRANSACTION,
                        on_batch: Callable[[int, int], None] | None = None) -> int:
    """Replace the SIMILAR_TO edges of `model` from every item in `similar`.

    `similar` has columns item_id, similar_item_id, score, rank. Returns relationships created.
    """
    frame = similar.rename(columns={"item_id": "owner", "similar_item_id": "item_id"})
    rows = _grouped(frame, "owner", "similar", None, key_name="item_id")
    return _write(store, Q.REPLACE_SIMILAR_ITEMS, rows, frame, rels_per_batch, on_batch,
                  model=model, run_id=run_id)


def summary(store, run_id: str) -> dict[str, int]:
    """users, edges, min_per_user, max_per_user of one run's RECOMMENDED edges (0 when none)."""
    rows = store.read(Q.RECOMMENDED_SUMMARY, run_id=run_id)
    r = rows[0] if rows else {}
    return {k: int(r.get(k) or 0) for k in ("users", "edges", "min_per_user", "max_per_user")}


def similar_summary(store, run_id: str) -> dict[str, int]:
    rows = store.read(Q.SIMILAR_SUMMARY, run_id=run_id)
    r = rows[0] if rows else {}
    return {k: int(r.get(k) or 0) for k in ("items", "edges", "min_per_item", "max_per_item")}


def per_user_counts(store, run_id: str) -> dict[str, int]:
    """RECOMMENDED edges per user for one run."""
    return {r["user_id"]: int(r["n"]) for r in store.read(Q.RECOMMENDED_PER_USER, run_id=run_id)}


def user_recommendations(store, user_id: str, model: str) -> pd.DataFrame:
    """A user's current recommendations from `model`, by rank."""
    cols = ["item_id", "title", "score", "rank", "run_id", "created_at"]
    rows = read_whole_lists(store, Q.USER_RECOMMENDATIONS, user_id=user_id, model=model)
    return pd.DataFrame(rows, columns=cols)


def read_whole_lists(store, stmt, *, limit: int | None = None, **params: Any) -> list[dict]:
    """`store.read(stmt)` of RECOMMENDED rows (item_id, run_id, created_at, list_size and, when
    several models come back, model), read again while some model's rows are not one whole list
    (see the module's docstring). Rows cut by `limit` are not checked."""
    if limit is not None:
        params["limit"] = limit
    rows: list[dict] = []
    for attempt in range(READ_ATTEMPTS):
        rows = store.read(stmt, **params)
        if rows and (limit is not None and len(rows) >= limit or _whole(rows)):
            return rows
        if not rows and attempt + 1 >= EMPTY_READ_ATTEMPTS:
            return rows
        time.sleep(0.005 * (attempt + 1))
    log.warning("a recommendation list stayed torn over %d reads; returning the last", READ_ATTEMPTS)
    return rows


def _whole(rows: list[dict]) -> bool:
    lists: dict[Any, list[dict]] = {}
    for r in rows:
        lists.setdefault(r.get("model"), []).append(r)
    for part in lists.values():
        if len({(r.get("run_id"), r.get("created_at")) for r in part}) != 1:
            return False
        size = part[0].get("list_size")
        if size is not None and len({r["item_id"] for r in part}) != int(size):
            return False
    return True


def item_titles(store, ids: Iterable[str]) -> dict[str, str | None]:
    """{item id: title (None when the item has none)} of the items found, one query per
    `IDS_PER_QUERY` ids."""
    out: dict[str, str | None] = {}
    for part in chunks(dict.fromkeys(map(str, ids)), IDS_PER_QUERY):
        out.update({r["id"]: r["title"] for r in store.read(Q.ITEM_TITLES, ids=part)})
    return out


HISTORY_COLUMNS = ["user_id", "rel", "item_id", "count", "first_ts", "last_ts", "split"]


def current_histories(store, user_ids: Iterable[str]) -> pd.DataFrame:
    """The current user-item edges of a few users (`HISTORY_COLUMNS`; rel is the relationship
    type). A user in the graph without edges has one row with rel None; users not in the graph
    have none. Targeted reads (the users by id): no export of the whole graph."""
    rows: list[dict[str, Any]] = []
    for part in chunks(dict.fromkeys(map(str, user_ids)), IDS_PER_QUERY):
        rows += store.read(Q.USER_HISTORIES, ids=part)
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


# --- internals ---------------------------------------------------------------------------------

def _grouped(frame: pd.DataFrame, owner: str, field: str, extra: Iterable[str] | None,
             key_name: str = "user_id") -> list[dict[str, Any]]:
    """One row per owner: {key_name: owner, field: [{item_id, score, rank}, ...]} by rank."""
    frame = frame.sort_values([owner, "rank"], kind="stable")
    rows: dict[str, list[dict[str, Any]]] = {}
    if len(frame):
        owners = frame[owner].astype(str).to_numpy()
        items = frame["item_id"].astype(str).to_numpy()
        scores = frame["score"].astype(float).to_numpy()
        ranks = frame["rank"].astype(int).to_numpy()
        for o, i, s, r in zip(owners, items, scores, ranks):
            rows.setdefault(o, []).append({"item_id": i, "score": float(s), "rank": int(r)})
    for o in extra or ():
        rows.setdefault(str(o), [])
    return [{key_name: o, field: v} for o, v in rows.items()]


def _batches(rows: list[dict[str, Any]], field: str, max_rels: int) -> Iterator[list[dict]]:
    batch: list[dict[str, Any]] = []
    n = 0
    for row in rows:
        size = max(1, len(row[field]))
        if batch and n + size > max_rels:
            yield batch
            batch, n = [], 0
        batch.append(row)
        n += size
    if batch:
        yield batch


def _write(store, stmt, rows: list[dict[str, Any]], frame: pd.DataFrame, max_rels: int,
           on_batch: Callable[[int, int], None] | None, **params: Any) -> int:
    field = "recs" if stmt is Q.REPLACE_RECOMMENDATIONS else "similar"
    created = 0
    for batch in _batches(rows, field, max_rels):
        res = store.write(stmt, rows=batch, **params)
        n = int(res[0]["n"]) if res else 0
        expected = sum(len(r[field]) for r in batch)
        if n != expected:  # an item or user id that is not (or no longer) in the graph
            log.warning("%s: created %d of %d relationships in a batch (ids missing in the graph)",
                        field, n, expected)
        created += n
        if on_batch:
            on_batch(len(batch), n)
    return created
