"""`itemknn`: item-item cosine similarity of co-occurrence in users' histories.

sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink), the `knn_neighbours` most similar kept per
item; score(u, i) = sum of sim(j, i) over the items j in u's history. Computed from the current
graph (memory-based: a new snapshot's histories are used as they are).

`--set behaviours=all` (issue 9): a user's "history" is every item the user has any behaviour
with (purchase, cart, favourite, view, review: each pair once), for the similarities and for the
profile alike — the no-learning multi-behaviour co-occurrence baseline, and a prior of hgt's
blend (`gnn.models.blend`). The default is the target relation only.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gnn.behaviours import SeesBehaviours, merged_pairs
from gnn.data import Graph
from gnn.models.base import MemoryRecommender, Source


class ItemKNN(SeesBehaviours, MemoryRecommender):
    name = "itemknn"

    def _similarity(self, graph: Graph) -> sp.csr_matrix:
        rels = self.behaviour_relations(graph)
        key = f"itemknn:{self.cfg.knn_neighbours}:{self.cfg.knn_shrink}:{rels}"
        if key in graph.cache:
            return graph.cache[key]
        h = merged_pairs(graph, rels).numpy()
        r = sp.csr_matrix((np.ones(h.shape[1], np.float32), (h[0], h[1])),
                          shape=(graph.n_users, graph.n_items))
        r.data[:] = 1.0  # binary, whatever the duplicates
        co = (r.T @ r).tocoo()
        n = np.asarray(r.sum(0)).ravel()
        keep = co.row != co.col
        row, col, val = co.row[keep], co.col[keep], co.data[keep]
        val = val / (np.sqrt(n[row] * n[col]) + self.cfg.knn_shrink)
        # keep the k largest per row: sort by (row, -val), rank within row
        order = np.lexsort((-val, row))
        row, col, val = row[order], col[order], val[order]
        starts = np.r_[0, np.flatnonzero(np.diff(row)) + 1] if len(row) else np.empty(0, int)
        rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
        top = rank < self.cfg.knn_neighbours
        sim = sp.csr_matrix((val[top].astype(np.float32), (row[top], col[top])),
                            shape=(graph.n_items, graph.n_items))
        graph.cache[key] = sim
        return sim

    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        """Sparse: user_emb = the history matrix R, item_emb = S^T (score = R S)."""
        h = merged_pairs(graph, self.behaviour_relations(graph))  # each pair once
        hist = torch.sparse_coo_tensor(h, torch.ones(h.size(1)), (graph.n_users, graph.n_items),
                                       check_invariants=False).coalesce()
        st = self._similarity(graph).T.tocoo()
        item = torch.sparse_coo_tensor(torch.from_numpy(np.vstack([st.row, st.col])),
                                       torch.from_numpy(st.data),
                                       (graph.n_items, graph.n_items),
                                       check_invariants=False).coalesce()
        return hist, item

    def similar_items(self, items: Tensor, k: int = 10,
                      source: Source = None) -> tuple[Tensor, Tensor]:
        sim = self._similarity(self._graph(source))
        items = torch.as_tensor(items, dtype=torch.long).view(-1)
        rows = torch.from_numpy(sim[items.numpy()].toarray())
        rows[torch.arange(len(items)), items] = -torch.inf
        val, idx = rows.topk(min(k, rows.size(1) - 1), dim=1)
        return idx, val
