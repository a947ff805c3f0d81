"""Canonical tables -> the graph: batched, idempotent, resumable.

Idempotent: every write is a MERGE on ids that SETs absolute values, and behaviour edges are
re-aggregated from the event store (Parquet beside the graph, deduplicated), so loading the same
file twice leaves the same graph, while a new file with more events for a (user, item) adds to it.

Resumable: each step's finished batches are recorded in a checkpoint file keyed by the input's
fingerprint; a re-run after a kill skips them. A batch that was half-written when the process died
is simply written again (MERGE + SET), so the result equals an uninterrupted load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from etl.canonical import EDGE_TYPE, CanonicalTables, aggregate_behaviour
from graph import queries as Q

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (step, rows done in this call, rows in the step)
EVENT_KEY = ["user_id", "item_id", "event_type", "ts", "session"]
RELATION_TYPE = {"also_bought": "ALSO_BOUGHT", "also_viewed": "ALSO_VIEWED",
                 "bought_together": "BOUGHT_TOGETHER"}


@dataclass
class LoadSummary:
    source: str
    rows_written: dict[str, int] = field(default_factory=dict)  # step -> rows sent
    counts: dict[str, int] = field(default_factory=dict)  # graph nodes/edges per type after
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> rows
    seconds: float = 0.0
    resumed_steps: int = 0

    @property
    def rows_per_s(self) -> float:
        return sum(self.rows_written.values()) / self.seconds if self.seconds else 0.0


def load_tables(store, tables: CanonicalTables, *, home: Path, fingerprint: str,
                source: str, batch_size: int | None = None,
                progress: Progress | None = None) -> LoadSummary:
    """Write `tables` into the graph behind `store` (a GraphStore)."""
    t0 = time.perf_counter()
    bs = batch_size or store.cfg.batch_size
    summary = LoadSummary(source)
    ckpt = Checkpoint(home / "etl" / f"{fingerprint}.json")
    store.ensure_schema()

    behaviour = _update_event_store(home / "events.parquet", tables.events)
    steps: list[tuple[str, str, pd.DataFrame]] = [
        ("users", Q.MERGE_USERS, tables.users.rename(columns={"user_id": "id"})),
        ("items", Q.MERGE_ITEMS, tables.items.rename(columns={"item_id": "id"})
         [["id", "title", "price"]]),
        ("brands", Q.MERGE_BRANDS, tables.brands.rename(columns={"brand_id": "id"})),
        ("categories", Q.MERGE_CATEGORIES,
         tables.categories.rename(columns={"category_id": "id"})),
        ("HAS_BRAND", Q.MERGE_HAS_BRAND, _edges(tables.items.dropna(subset=["brand_id"]),
                                                "item_id", "brand_id")),
        ("IN_CATEGORY", Q.MERGE_IN_CATEGORY, _edges(tables.item_categories,
                                                    "item_id", "category_id")),
        ("SUBCATEGORY_OF", Q.MERGE_SUBCATEGORY_OF, _edges(tables.category_parents,
                                                          "category_id", "parent_id")),
    ]
    for relation, rel in RELATION_TYPE.items():
        frame = tables.item_relations[tables.item_relations["relation"] == relation]
        steps.append((rel, Q.MERGE_ITEM_RELATION[rel],
                      _edges(frame, "item_id", "related_item_id")))
    for event_type, rel in EDGE_TYPE.items():
        frame = behaviour[behaviour["event_type"] == event_type]
        steps.append((rel, Q.MERGE_BEHAVIOUR[rel], _edges(
            frame, "user_id", "item_id", ["count", "first_ts", "last_ts", "split", "rating"])))

    for name, stmt, frame in steps:
        if frame.empty:
            continue
        done = ckpt.batches_done(name)
        if done:
            summary.resumed_steps += 1
        for i, rows in enumerate(_batches(frame, bs)):
            if i < done:
                if progress:
                    progress(name, len(rows), len(frame))
                continue
            store.write(stmt, rows=rows)
            ckpt.mark(name, i + 1)
            summary.rows_written[name] = summary.rows_written.get(name, 0) + len(rows)
            if progress:
                progress(name, len(rows), len(frame))
    ckpt.finish()
    summary.counts = store.counts()
    summary.seconds = time.perf_counter() - t0
    return summary


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
    """Finished batches per step, saved atomically after each batch; removed when done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}

    def batches_done(self, step: str) -> int:
        return self.state.get(step, 0)

    def mark(self, step: str, batches: int) -> None:
        self.state[step] = batches
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def event_store(home: Path) -> pd.DataFrame:
    """All events loaded so far (deduplicated), as kept beside the graph for splits."""
    path = home / "events.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=EVENT_KEY)


# --- internals ---------------------------------------------------------------------------------

def _update_event_store(path: Path, events: pd.DataFrame) -> pd.DataFrame:
    """Merge new events into the store; return behaviour aggregated over the store for every
    (user, item, type) the new events touch."""
    if events.empty:
        return aggregate_behaviour(events)
    old = pd.read_parquet(path) if path.exists() else None
    merged = events if old is None else pd.concat([old, events], ignore_index=True)
    merged = merged.drop_duplicates(subset=EVENT_KEY, keep="first").reset_index(drop=True)
    if old is None or len(merged) != len(old):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.parquet")
        merged.to_parquet(tmp, index=False)
        os.replace(tmp, path)  # atomic: a kill leaves the old or the new store, never half
    touched = events[["user_id", "item_id", "event_type"]].drop_duplicates()
    affected = merged.merge(touched, on=["user_id", "item_id", "event_type"])
    return aggregate_behaviour(affected)


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
