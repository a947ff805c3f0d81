"""Fold-in for a few users without exporting the whole graph.

    fold_in(snapshot, histories) -> (snapshot', FoldInReport)

`snapshot` is the graph a run was trained on; `histories` holds the *current* user-item edges
of a few users, read from the store with one targeted query
(`graph.recommendations.current_histories`: columns user_id, rel, item_id, count, first_ts,
last_ts, split; a user found in the graph with no edge has one row whose rel is missing). The
result is the snapshot with those users' user-item edges replaced by their current ones (users
new since training are added as nodes), so the model recomputes exactly those users from their
current neighbourhood: what a whole-graph export does for them, at the cost of one query.

What it does not see (by design: the other users and the catalogue are as at training time):
items added to the catalogue since training (their edges are dropped and counted in the report)
and other users' new events (which move the item vectors only slightly). `kgrec recommend
--all` exports the whole graph and sees everything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from gnn.snapshot import SPLIT_CODES, GraphSnapshot
from graph.export import BEHAVIOUR_ATTRS, edge_type

log = logging.getLogger(__name__)


@dataclass
class FoldInReport:
    users: int = 0  # users found in the graph whose edges were replaced
    new_users: int = 0  # of them, users the snapshot did not have
    edges: int = 0  # their current user-item edges, now in the snapshot
    unknown_items: int = 0  # edges to items the snapshot does not have (dropped)


def fold_in(snapshot: GraphSnapshot, histories: pd.DataFrame
            ) -> tuple[GraphSnapshot, FoldInReport]:
    """`snapshot` with the user-item edges of the users in `histories` replaced by theirs."""
    report = FoldInReport()
    found = pd.Index(histories["user_id"].astype(str).unique())
    if found.empty:
        return snapshot, report
    old_users = pd.Index(snapshot.ids["user"])
    added = found[~found.isin(old_users)]
    ids = dict(snapshot.ids)
    remap: Tensor | None = None
    if len(added):
        ids["user"] = np.array(sorted([*old_users, *added]), dtype=object)
        remap = torch.from_numpy(pd.Index(ids["user"]).get_indexer(old_users).astype(np.int64))
    users = pd.Index(ids["user"])
    rows = torch.from_numpy(np.sort(users.get_indexer(found)).astype(np.int64))

    edges = histories[histories["rel"].notna()]
    item_pos = pd.Index(snapshot.ids["item"]).get_indexer(edges["item_id"].astype(str))
    report.unknown_items = int((item_pos < 0).sum())
    if report.unknown_items:
        log.info("fold-in: %d edges to items added since training are left out",
                 report.unknown_items)
    edges = edges[item_pos >= 0].assign(_item=item_pos[item_pos >= 0])
    edges = edges.assign(_user=users.get_indexer(edges["user_id"].astype(str)))

    src = snapshot.data
    data = HeteroData()
    for t in src.node_types:
        data[t].num_nodes = len(ids[t]) if t in ids else int(src[t].num_nodes)
    user_item = [et for et in src.edge_types if et[0] == "user" and et[2] == "item"]
    for et in src.edge_types:
        if "user" not in (et[0], et[2]):
            data[et].edge_index = src[et].edge_index  # the catalogue: as at training time
    rels = {et[1].upper() for et in user_item} | set(edges["rel"])
    n_items = len(ids["item"])
    for rel in sorted(rels):
        et = edge_type(rel)
        old = src[et] if et in user_item else None
        part = edges[edges["rel"] == rel]
        ei, attrs = _splice(old, remap, rows, part, n_items)
        report.edges += len(part)
        if ei.size(1) == 0:
            continue  # like the export: a type without edges is left out
        store = data[et]
        store.edge_index = ei
        for name, value in attrs.items():
            store[name] = value
        data[et[2], "rev_" + et[1], et[0]].edge_index = ei.flip(0)
    report.users, report.new_users = len(found), len(added)
    return GraphSnapshot(data, ids), report


def _splice(old, remap: Tensor | None, rows: Tensor, part: pd.DataFrame,
            n_items: int) -> tuple[Tensor, dict[str, Tensor]]:
    """One user-item type: the old edges of users not in `rows`, plus `part`; sorted by
    (user, item) as the export sorts them."""
    new_attrs = _attrs(part)
    if old is not None:
        ei = old.edge_index.clone()
        if remap is not None:
            ei[0] = remap[ei[0]]
        keep = ~torch.isin(ei[0], rows)
        ei = ei[:, keep]
        kept = {a: old[a][keep] for a in BEHAVIOUR_ATTRS if a in old}
    else:
        ei = torch.empty(2, 0, dtype=torch.long)
        kept = {a: v[:0] for a, v in new_attrs.items()}
    new_ei = torch.from_numpy(np.stack([part["_user"].to_numpy(np.int64),
                                        part["_item"].to_numpy(np.int64)]))
    ei = torch.cat([ei, new_ei], 1)
    attrs = {a: torch.cat([v, new_attrs[a].to(v.dtype)]) for a, v in kept.items()}
    order = (ei[0] * n_items + ei[1]).argsort()
    return ei[:, order], {a: v[order] for a, v in attrs.items()}


def _attrs(part: pd.DataFrame) -> dict[str, Tensor]:
    """The behaviour attributes as the export stores them (count float, times long with -1 for
    unknown, split as a code)."""
    def num(col: str, default: float) -> pd.Series:
        return pd.to_numeric(part[col], errors="coerce").fillna(default)

    split = part["split"].map(SPLIT_CODES).fillna(0)
    return {"count": torch.tensor(num("count", 1).to_numpy(np.float32)),
            "first_ts": torch.tensor(num("first_ts", -1).to_numpy(np.int64)),
            "last_ts": torch.tensor(num("last_ts", -1).to_numpy(np.int64)),
            "split": torch.tensor(split.to_numpy(np.int64))}
