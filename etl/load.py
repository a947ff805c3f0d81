"""Canonical tables -> the graph: batched, idempotent, resumable, one load of a home at a time.

Idempotent: every write is a MERGE on ids that SETs absolute values, and behaviour edges are
re-aggregated from the event store (Parquet beside the graph, deduplicated), so loading the same
file twice leaves the same graph, while a new file with more events for a (user, item) adds to it.

Resumable: each step's finished batches are recorded in a checkpoint file keyed by the input's
fingerprint; a re-run after a kill skips them. A batch that was half-written when the process died
is simply written again (MERGE + SET), so the result equals an uninterrupted load.

Serialised: the event store is read, merged and rewritten, and edge aggregates are computed from
it, so two loads into one home must not interleave; `load_tables` holds the home's load lock
(`EtlHome.lock`) from the user-id check to the last batch. A second load waits (its `on_wait`
says so) and then adds its events to the first one's: nothing is lost.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.io import PRIVATE_FILE, atomic_write, atomic_write_json, read_json
from core.progress import Progress
from etl.canonical import EDGE_TYPE, CanonicalTables, aggregate_behaviour
from etl.home import EtlHome, check_user_ids
from etl.normalize import pseudonymize as pseudonymize_tables
from graph import queries as Q

log = logging.getLogger(__name__)

EVENT_KEY = ["user_id", "item_id", "event_type", "ts", "session"]
RELATION_TYPE = {"also_bought": "ALSO_BOUGHT", "also_viewed": "ALSO_VIEWED",
                 "bought_together": "BOUGHT_TOGETHER"}


@dataclass
class LoadSummary:
    """What one load did. `loaded` and `new` are this load's; `counts` is the whole graph."""

    source: str
    loaded: dict[str, int] = field(default_factory=dict)  # label/type -> rows of this input
    new: dict[str, int] = field(default_factory=dict)  # label/type -> created by this load
    counts: dict[str, int] = field(default_factory=dict)  # label/type -> graph total after
    rows_written: dict[str, int] = field(default_factory=dict)  # step -> rows sent this run
    events_read: int = 0  # events of this input
    events_added: int = 0  # of them, new to the event store
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> rows
    seconds: float = 0.0  # writing (event store and graph), after the lock was taken
    waited_seconds: float = 0.0  # for another load of the home to finish
    read_seconds: float = 0.0  # reading and checking the input (set by the caller)
    resumed_steps: int = 0
    salt_file: Path | None = None  # set when user ids were pseudonymized with it

    @property
    def rows_per_s(self) -> float:
        return sum(self.rows_written.values()) / self.seconds if self.seconds else 0.0


def load_tables(store, tables: CanonicalTables, *, home: Path, fingerprint: str,
                source: str, batch_size: int | None = None,
                progress: Progress | None = None, pseudonymize: bool = False,
                on_wait: Callable[[], None] | None = None) -> LoadSummary:
    """Write `tables` into the graph behind `store` (a GraphStore), holding the home's load
    lock (`on_wait` is called once if another load holds it). With `pseudonymize`, user ids
    are replaced by their salted hash (the home's salt) first."""
    bs = batch_size or store.cfg.batch_size
    summary = LoadSummary(source, events_read=len(tables.events))
    etl_home = EtlHome(home)
    waited = time.perf_counter()
    with etl_home.lock(on_wait):
        t0 = time.perf_counter()
        summary.waited_seconds = t0 - waited
        check_user_ids(store, etl_home, pseudonymize, tables.users["user_id"])
        if pseudonymize:
            tables = pseudonymize_tables(tables, etl_home.salt())
            summary.salt_file = etl_home.salt_file
        store.ensure_schema()
        before = store.counts()
        behaviour, summary.events_added = _update_event_store(etl_home.events, tables.events)
        ckpt = Checkpoint(etl_home.checkpoint(fingerprint))
        for name, stmt, frame in _steps(tables, behaviour):
            if frame.empty:
                continue
            summary.loaded[name] = len(frame)
            done = ckpt.batches_done(name)
            summary.resumed_steps += bool(done)
            if progress:
                progress(name, 0, len(frame))  # the step's bar (and its clock) starts now
            for i, rows in enumerate(_batches(frame, bs)):
                if i >= done:
                    store.write(stmt, rows=rows)
                    ckpt.mark(name, i + 1)
                    summary.rows_written[name] = summary.rows_written.get(name, 0) + len(rows)
                if progress:
                    progress(name, len(rows), len(frame))
        ckpt.finish()
        summary.counts = store.counts()
    summary.new = {k: n - before.get(k, 0) for k, n in summary.counts.items()
                   if n != before.get(k, 0)}
    summary.seconds = time.perf_counter() - t0
    return summary


def _steps(tables: CanonicalTables, behaviour: pd.DataFrame
           ) -> Iterator[tuple[str, Any, pd.DataFrame]]:
    """(label or relationship type, statement, rows) in load order: nodes, then edges."""
    yield "User", Q.MERGE_USERS, tables.users.rename(columns={"user_id": "id"})
    yield "Item", Q.MERGE_ITEMS, tables.items.rename(columns={"item_id": "id"})[
        ["id", "title", "price"]]
    yield "Brand", Q.MERGE_BRANDS, tables.brands.rename(columns={"brand_id": "id"})
    yield "Category", Q.MERGE_CATEGORIES, tables.categories.rename(columns={"category_id": "id"})
    yield "HAS_BRAND", Q.MERGE_HAS_BRAND, _edges(tables.items.dropna(subset=["brand_id"]),
                                                 "item_id", "brand_id")
    yield "IN_CATEGORY", Q.MERGE_IN_CATEGORY, _edges(tables.item_categories,
                                                     "item_id", "category_id")
    yield "SUBCATEGORY_OF", Q.MERGE_SUBCATEGORY_OF, _edges(tables.category_parents,
                                                           "category_id", "parent_id")
    for relation, rel in RELATION_TYPE.items():
        frame = tables.item_relations[tables.item_relations["relation"] == relation]
        yield rel, Q.MERGE_ITEM_RELATION[rel], _edges(frame, "item_id", "related_item_id")
    for event_type, rel in EDGE_TYPE.items():
        frame = behaviour[behaviour["event_type"] == event_type]
        yield rel, Q.MERGE_BEHAVIOUR[rel], _edges(
            frame, "user_id", "item_id", ["count", "first_ts", "last_ts", "split", "rating"])


def fingerprint(fmt: str, path: Path, pseudonymize: bool, batch_size: int) -> str:
    """Identifies one input (format, files with size and mtime, options) for checkpoints."""
    h = hashlib.sha256(f"{fmt}|{path.resolve()}|{pseudonymize}|{batch_size}".encode())
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for f in files:
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class Checkpoint:
    """Finished batches per step, saved atomically (mode 0600) after each batch; removed when
    done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, int] = read_json(path, {})

    def batches_done(self, step: str) -> int:
        return self.state.get(step, 0)

    def mark(self, step: str, batches: int) -> None:
        self.state[step] = batches
        atomic_write_json(self.path, self.state, mode=PRIVATE_FILE, indent=None)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def event_store(home: Path) -> pd.DataFrame:
    """All events loaded so far (deduplicated), as kept beside the graph for splits."""
    path = EtlHome(home).events
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=EVENT_KEY)


# --- internals ---------------------------------------------------------------------------------

def _update_event_store(path: Path, events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Merge new events into the store (call under the load lock); return behaviour aggregated
    over the store for every (user, item, type) the new events touch, and how many events were
    new to the store."""
    if events.empty:
        return aggregate_behaviour(events), 0
    old = pd.read_parquet(path) if path.exists() else None
    merged = events if old is None else pd.concat([old, events], ignore_index=True)
    merged = merged.drop_duplicates(subset=EVENT_KEY, keep="first").reset_index(drop=True)
    added = len(merged) - (0 if old is None else len(old))
    if added:  # atomic: a kill leaves the old or the new store, never half
        atomic_write(path, lambda tmp: merged.to_parquet(tmp, index=False), mode=PRIVATE_FILE)
    touched = events[["user_id", "item_id", "event_type"]].drop_duplicates()
    affected = merged.merge(touched, on=["user_id", "item_id", "event_type"])
    return aggregate_behaviour(affected), added


def _edges(frame: pd.DataFrame, src: str, dst: str,
           attrs: list[str] | None = None) -> pd.DataFrame:
    cols = [src, dst] + (attrs or [])
    return frame[cols].rename(columns={src: "src", dst: "dst"}).reset_index(drop=True)


def _batches(frame: pd.DataFrame, size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows as plain dicts with None for missing values (Bolt has no NaN/NA)."""
    for start in range(0, len(frame), size):
        part = frame.iloc[start:start + size].astype(object)
        part = part.where(pd.notna(part), None)
        yield [{k: _plain(v) for k, v in row.items()} for row in part.to_dict("records")]


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v
