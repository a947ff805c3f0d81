"""Pairwise features added to a model's dot product: score(u, i) = <e_u, e_i> + sum_f w_f x_f(u, i).

`KGLinkCounts` (`--set kg_links=true`): one feature per item->item relation r of the knowledge
graph (also_bought, also_viewed, bought_together and their reverses),

    x_r(u, i) = log(1 + #{j in history(u) : (j, r, i) is an edge})

with a learned weight w_r per relation, initialised at 0 (the model starts as its plain dot
product). The counts are a sparse users x items matrix H A_r per relation (H: the graph's
history, A_r: the relation), built once per graph from its edges (nothing here is learned per
id, so a new user's or a later snapshot's counts follow its current history). Pairs are looked
up by binary search over the matrix's sorted (user, item) keys; a block of users reads rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from gnn.data import EdgeType, Graph, is_member


@dataclass
class LinkTable:
    """The features of one graph: per relation, the sorted keys (user * n_items + item) of the
    non-zero pairs and their values; `rows` the same as CSR matrices (CPU) for blocks."""

    n_items: int
    keys: list[Tensor]
    values: list[Tensor]
    rows: list[sp.csr_matrix]

    def to(self, device: torch.device) -> LinkTable:
        return LinkTable(self.n_items, [k.to(device) for k in self.keys],
                         [v.to(device) for v in self.values], self.rows)


class KGLinkCounts(nn.Module):
    def __init__(self, relations: list[EdgeType]) -> None:
        super().__init__()
        self.relations = [tuple(r) for r in relations]
        self.weight = nn.Parameter(torch.zeros(len(self.relations)))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)

    def table(self, graph: Graph, device: torch.device | str = "cpu") -> LinkTable:
        """The features of `graph` on `device` (built once per graph and device)."""
        key = f"kg_links:{self.relations}:{device}"
        if key not in graph.cache:
            base = f"kg_links:{self.relations}:cpu"
            if base not in graph.cache:
                graph.cache[base] = _build(graph, self.relations)
            graph.cache[key] = graph.cache[base].to(torch.device(device))
        return graph.cache[key]

    def forward(self, table: LinkTable, users: Tensor, items: Tensor) -> Tensor:
        """sum_r w_r x_r(users, items), `users` and `items` broadcast against each other."""
        keys = users * table.n_items + items
        out = torch.zeros(keys.shape, device=self.weight.device)
        for r, (k, v) in enumerate(zip(table.keys, table.values)):
            if k.numel():
                pos = torch.searchsorted(k, keys).clamp_(max=k.numel() - 1)
                x = torch.where(is_member(keys, k), v[pos], torch.zeros((), device=v.device))
                out = out + self.weight[r] * x
        return out

    def block(self, table: LinkTable, users: Tensor) -> Tensor:
        """[len(users), n_items]: the pairwise part of every item's score for `users`."""
        rows = users.cpu().numpy()
        out = torch.zeros(len(rows), table.n_items)
        for r, m in enumerate(table.rows):
            if m.nnz:
                out += float(self.weight[r]) * torch.from_numpy(m[rows].toarray())
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{r[1]}={float(w.detach()):.3f}" for r, w in zip(self.relations, self.weight))


def _build(graph: Graph, relations: list[EdgeType]) -> LinkTable:
    h = graph.history.numpy()
    n_users, n_items = graph.n_users, graph.n_items
    hist = sp.csr_matrix((np.ones(h.shape[1], np.float32), (h[0], h[1])), shape=(n_users, n_items))
    hist.data[:] = 1.0  # binary, whatever the duplicates
    keys, values, rows = [], [], []
    for et in relations:
        if et in graph.data.edge_types:
            ei = graph.data[et].edge_index.numpy()
            a = sp.csr_matrix((np.ones(ei.shape[1], np.float32), (ei[0], ei[1])),
                              shape=(n_items, n_items))
            a.data[:] = 1.0
            m = (hist @ a).tocsr()
        else:
            m = sp.csr_matrix((n_users, n_items), dtype=np.float32)
        m.sort_indices()
        m.data = np.log1p(m.data).astype(np.float32)
        row = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(m.indptr))
        keys.append(torch.from_numpy(row * n_items + m.indices.astype(np.int64)))
        values.append(torch.from_numpy(m.data))
        rows.append(m)
    return LinkTable(n_items, keys, values, rows)
