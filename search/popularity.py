"""The one popularity of search: per item, the interactions of the target relation that are not
labelled test (the training split), whatever they are read from.

`training_popularity(item_ids, interactions)` is the definition; its two sources give it the same
rows (relation, item_id, split, n):
- `from_snapshot(snapshot, item_ids, target)`: a run's graph snapshot (serving a trained run);
- `from_store(store, item_ids)`: the graph itself, aggregated by Cypher (search without a run).
The CLI and the dashboard both get their engines from `search.assets`, which uses these two
functions only, so they rank the same query the same way.

The target relation is the run's (the relation its model learnt), else the rule of
`gnn.data.target_edge_type`: PURCHASED when the graph has any, else REVIEWED. Without split labels
(a temporal split is made at training time) every interaction counts.

The search protocol (`search.evaluate`) does not use this: its engines count the interactions
their split's graph knows (no validation pair in the validation engine, no test pair in either),
so that a held-out pair never raises its own item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

TARGET_ORDER = ("purchased", "reviewed")  # = gnn.data.target_edge_type's default rule
TEST = "test"
SPLIT_LABELS = {0: None, 1: "train", 2: TEST}  # gnn.snapshot's split codes
COLUMNS = ["relation", "item_id", "split", "n"]


def target_relation(relations: Iterable[str], target: str | None = None) -> str | None:
    """`target` (lower case) when given, else purchased if present, else reviewed, else None."""
    rels = {r.lower() for r in relations}
    if target is not None:
        return target.lower()
    return next((r for r in TARGET_ORDER if r in rels), None)


def training_popularity(item_ids: Sequence[str], interactions: pd.DataFrame,
                        target: str | None = None) -> np.ndarray:
    """Interactions per item of `item_ids` (float64, in that order): the rows of `interactions`
    (relation, item_id, split, n) of the target relation whose split is not "test"."""
    out = np.zeros(len(item_ids))
    if interactions.empty:
        return out
    f = interactions.assign(relation=interactions["relation"].str.lower())
    rel = target_relation(f["relation"].unique(), target)
    f = f[(f["relation"] == rel) & (f["split"].astype(object) != TEST)]
    if f.empty:
        return out
    counts = f.groupby(f["item_id"].astype(str))["n"].sum()
    pos = pd.Index(np.asarray(item_ids, dtype=object)).get_indexer(counts.index)
    ok = pos >= 0
    np.add.at(out, pos[ok], counts.to_numpy(np.float64)[ok])
    return out


def from_snapshot(snapshot, item_ids: Sequence[str], target: str | None = None) -> np.ndarray:
    """`training_popularity` of a GraphSnapshot's user->item relations."""
    rows = []
    for et in snapshot.data.edge_types:
        if et[0] != "user" or et[2] != "item":
            continue
        store = snapshot.data[et]
        items = snapshot.ids["item"][store.edge_index[1].numpy()]
        codes = store.split.numpy() if "split" in store else np.zeros(len(items), np.int64)
        rows.append(pd.DataFrame({"relation": et[1], "item_id": items,
                                  "split": [SPLIT_LABELS.get(int(c)) for c in codes], "n": 1}))
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)
    return training_popularity(item_ids, frame, target)


def from_store(store, item_ids: Sequence[str], target: str | None = None) -> np.ndarray:
    """`training_popularity` of the graph's behaviour edges (counted by Cypher per item and
    split label)."""
    from graph import queries as Q

    frames = []
    for rel, stmt in Q.ITEM_POPULARITY.items():
        f = store.read_df(stmt)
        if not f.empty:
            frames.append(f.assign(relation=rel))
    if not frames:
        return np.zeros(len(item_ids))
    frame = pd.concat(frames, ignore_index=True).rename(columns={"id": "item_id"})
    return training_popularity(item_ids, frame[COLUMNS], target)
