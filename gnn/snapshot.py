"""Graph -> PyG: a `GraphSnapshot` (HeteroData + id maps) built from the store's tables.

Contract (what the rest of `gnn` relies on):
- node types `user`, `item`, `category`, `brand` (always present, possibly with 0 nodes); node i
  of a type has id `snapshot.ids[type][i]`; ids are sorted, so repeated exports of an unchanged
  graph give identical tensors;
- one edge type per relationship present, named in lower case: ('user', 'reviewed', 'item'),
  ('item', 'in_category', 'category'), ('item', 'has_brand', 'brand'),
  ('category', 'subcategory_of', 'category'), ('item', 'also_bought', 'item'), ... and a reverse
  ('item', 'rev_reviewed', 'user') for each; edges sorted by (src, dst);
- behaviour edges carry `count` (float), `first_ts`, `last_ts` (long, -1 = unknown) and `split`
  (long: 0 = none given, 1 = train, 2 = test) on the forward type only.
Types with no edges are left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from graph import queries as Q
from graph.export import edge_type, export_frames

log = logging.getLogger(__name__)

SPLIT_CODES = {"train": 1, "test": 2}


@dataclass
class GraphSnapshot:
    data: HeteroData
    ids: dict[str, np.ndarray]  # node type -> ids (str) in index order

    def index(self, node_type: str) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.ids[node_type])}

    def save(self, path: Path) -> None:
        """Id maps as JSON, tensors with torch.save (no pickled Python objects)."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "ids.json").write_text(json.dumps({t: v.tolist() for t, v in self.ids.items()}))
        torch.save(self.data.to_dict(), path / "graph.pt")

    @classmethod
    def load(cls, path: Path) -> GraphSnapshot:
        ids = {t: np.array(v, dtype=object) for t, v in
               json.loads((path / "ids.json").read_text()).items()}
        data = HeteroData.from_dict(torch.load(path / "graph.pt", weights_only=True))
        return cls(data, ids)


def build_snapshot(node_ids: Mapping[str, Iterable[str]],
                   edges: Mapping[str, pd.DataFrame]) -> GraphSnapshot:
    """Build the snapshot from id lists per node type and edge frames per relationship type.

    `edges[REL]` has columns `src`, `dst` (ids) and, for behaviour types, `count`, `first_ts`,
    `last_ts`, `split`. Edges whose ends are unknown are dropped (and logged).
    """
    ids = {t: np.array(sorted(set(map(str, v))), dtype=object) for t, v in node_ids.items()}
    data = HeteroData()
    for t, v in ids.items():
        data[t].num_nodes = len(v)
    for rel, frame in edges.items():
        if frame is None or frame.empty:
            continue
        src_t, name, dst_t = edge_type(rel)
        src = pd.Index(ids[src_t]).get_indexer(frame["src"].astype(str))
        dst = pd.Index(ids[dst_t]).get_indexer(frame["dst"].astype(str))
        ok = (src >= 0) & (dst >= 0)
        if not ok.all():
            log.warning("%s: %d edges with unknown ends dropped", rel, int((~ok).sum()))
        order = np.lexsort((dst[ok], src[ok]))
        src, dst = src[ok][order], dst[ok][order]
        store = data[src_t, name, dst_t]
        store.edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
        if rel in Q.BEHAVIOUR_TYPES:
            f = frame[ok].iloc[order]
            store.count = torch.tensor(_num(f.get("count"), 1).to_numpy(np.float32))
            store.first_ts = torch.tensor(_num(f.get("first_ts"), -1).to_numpy(np.int64))
            store.last_ts = torch.tensor(_num(f.get("last_ts"), -1).to_numpy(np.int64))
            split = f.get("split", pd.Series(index=f.index, dtype=object))
            store.split = torch.tensor(split.map(SPLIT_CODES).fillna(0).to_numpy(np.int64))
        data[dst_t, "rev_" + name, src_t].edge_index = store.edge_index.flip(0)
    return GraphSnapshot(data, ids)


def export(store, progress: Callable[[str, int], None] | None = None) -> GraphSnapshot:
    """Stream the whole graph from `store` (a GraphStore) into a snapshot."""
    return build_snapshot(*export_frames(store, progress))


def _num(col: pd.Series | None, default: float) -> pd.Series:
    if col is None:
        return pd.Series(dtype=float)
    return pd.to_numeric(col, errors="coerce").fillna(default)
