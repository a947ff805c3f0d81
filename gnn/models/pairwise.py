"""Pairwise features added to a model's dot product: score(u, i) = <e_u, e_i> + sum_f w_f x_f(u, i).

`KGLinkCounts` (`--set kg_links=true`): one feature per item->item relation r of the knowledge
graph (also_bought, also_viewed, bought_together and their reverses),

    x_r(u, i) = log(1 + #{j in history(u) : (j, r, i) is an edge})

with a learned weight w_r per relation, initialised at 0 (the model starts as its plain dot
product). The counts are a sparse users x items matrix H A_r per relation (H: the graph's
history, A_r: the relation), built once per graph from its edges (nothing here is learned per
id, so a new user's or a later snapshot's counts follow its current history). Pairs are looked
up by binary search over the matrix's sorted (user, item) keys; a block of users reads rows.

`LinkFeatures`: the same counts and more (shared brand, shared categories weighted by IDF,
popularity) as fixed features of a candidate and a set of items; `kglink` is their weighted sum.
This module is the one owner of KG link counting: both build on `history_matrix` and
`relation_matrix`.
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
    hist = history_matrix(graph)
    n_users, n_items = graph.n_users, graph.n_items
    keys, values, rows = [], [], []
    for et in relations:
        if et in graph.data.edge_types:
            m = (hist @ relation_matrix(graph, et)).tocsr()
        else:
            m = sp.csr_matrix((n_users, n_items), dtype=np.float32)
        m.sort_indices()
        m.data = np.log1p(m.data).astype(np.float32)
        row = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(m.indptr))
        keys.append(torch.from_numpy(row * n_items + m.indices.astype(np.int64)))
        values.append(torch.from_numpy(m.data))
        rows.append(m)
    return LinkTable(n_items, keys, values, rows)


# ---------------------------------------------------------------------- link matrices

def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    m.data[:] = 1.0  # binary, whatever the duplicates
    return m


def history_matrix(graph: Graph) -> sp.csr_matrix:
    """[n_users, n_items] binary: the graph's history (its target relation)."""
    h = graph.history.numpy()
    return _binary(h[0], h[1], (graph.n_users, graph.n_items))


def relation_matrix(graph: Graph, et: EdgeType) -> sp.csr_matrix:
    """[n_items, n_items] binary: A[j, c] = 1 when (j, relation, c) is an edge."""
    ei = graph.data[et].edge_index.numpy()
    return _binary(ei[0], ei[1], (graph.n_items, graph.n_items))


def membership_matrix(graph: Graph, et: EdgeType) -> sp.csr_matrix:
    """[n_items, n_groups] binary: each item's brand or categories (`et`: BRAND, CATEGORY)."""
    ei = graph.data[et].edge_index.numpy()
    return _binary(ei[0], ei[1], (graph.n_items, int(graph.data[et[2]].num_nodes)))


def idf(member: sp.csr_matrix) -> np.ndarray:
    """[n_groups] log(n_items / items in the group): a group of every item counts ~0."""
    size = np.asarray(member.sum(0)).ravel()
    return np.log(member.shape[0] / np.maximum(size, 1.0)).astype(np.float32)


def item_relations(graph: Graph) -> list[EdgeType]:
    """The graph's item->item relations (reverses included: one feature per direction)."""
    return [et for et in graph.kg_edge_types() if et[0] == "item" and et[2] == "item"]


BRAND = ("item", "has_brand", "brand")
CATEGORY = ("item", "in_category", "category")


class LinkFeatures:
    """The link features of one graph between a candidate c and a set of items (a user's
    history, or one item for `similar_items`), each as log(1 + count):

        <relation>  #{j in the set: (j, relation, c) is an edge}    (each item-item relation
                                                                     and its reverse)
        brand       #{j in the set, j != c: brand(j) = brand(c)}
        category    sum over j in the set of sum_{k in cats(j) & cats(c)} idf(k)
                    (idf(k) = log(n_items / items in k): the root category counts ~0, a leaf
                    category a lot)
        pop         log(1 + interactions of c in the graph's history)

    Computed from the graph alone (history and KG edges), so an item without interactions has
    every feature but `pop`. `weighted(rows, weights)` -> [B, n_items] sum_f w_f x_f for the
    sets of items `rows` (a [B, n_items] sparse indicator matrix).
    """

    def __init__(self, graph: Graph, relations: list[EdgeType] | None = None) -> None:
        n = graph.n_items
        self.n_items = n
        self.history = history_matrix(graph)
        rels = item_relations(graph) if relations is None else \
            [tuple(r) for r in relations if tuple(r) in graph.data.edge_types]
        self.matrices: dict[str, sp.csr_matrix] = {et[1]: relation_matrix(graph, et)
                                                   for et in rels}
        if BRAND in graph.data.edge_types:
            mb = membership_matrix(graph, BRAND)
            same = (mb @ mb.T).tocsr()
            same.setdiag(0)
            same.eliminate_zeros()
            same.data[:] = 1.0
            self.matrices["brand"] = same
        self.sig = self.sets_idf = None
        if CATEGORY in graph.data.edge_types:
            mc = membership_matrix(graph, CATEGORY)
            # items share few distinct category sets (254 on Beauty): score the sets, then
            # gather per item ([B, S] arithmetic instead of [B, n_items])
            sets, sig = np.unique(mc.toarray(), axis=0, return_inverse=True)
            self.member = mc
            self.sig = torch.from_numpy(sig.reshape(-1).astype(np.int64))
            self.sets_idf = torch.from_numpy((sets * idf(mc)).astype(np.float32))  # [S, C]
        counts = np.bincount(graph.history[1].numpy(), minlength=n).astype(np.float32)
        self.pop = torch.from_numpy(np.log1p(counts))

    @property
    def names(self) -> list[str]:
        return [*self.matrices, *(["category"] if self.sig is not None else []), "pop"]

    def weighted(self, rows: sp.csr_matrix, weights: dict[str, float]) -> Tensor:
        """[rows.shape[0], n_items]: sum_f weights[f] * x_f (features without a weight: 0).
        The dense parts (category, pop) fill the block; the sparse link counts are added at
        their entries only (a dense copy of them cost ~3x more on Beauty)."""
        b, n = rows.shape[0], self.n_items
        w_cat, w_pop = float(weights.get("category", 0.0)), float(weights.get("pop", 0.0))
        if w_cat and self.sig is not None:
            out = (self._category_sets(rows) * w_cat).index_select(1, self.sig)
        else:
            out = torch.zeros(b, n)
        if w_pop:
            out += w_pop * self.pop
        acc = None
        for name, m in self.matrices.items():
            w = weights.get(name, 0.0)
            if w:
                x = (rows @ m).tocsr()
                x.data = np.float32(w) * np.log1p(x.data)
                acc = x if acc is None else acc + x
        if acc is not None and acc.nnz:
            acc = acc.tocoo()
            keys = torch.from_numpy(acc.row.astype(np.int64) * n + acc.col)
            out.view(-1).index_add_(0, keys, torch.from_numpy(acc.data.astype(np.float32,
                                                                               copy=False)))
        return out

    def _category_sets(self, rows: sp.csr_matrix) -> Tensor:
        """[B, S]: the category feature of each row against each distinct category set."""
        profile = torch.from_numpy(np.asarray((rows @ self.member).todense(), np.float32))
        return torch.log1p(profile @ self.sets_idf.T)

    def columns(self, rows: sp.csr_matrix, name: str, items: np.ndarray) -> Tensor:
        """[B, len(items)]: the link feature `name` (a relation, brand or category; not pop) of
        the sets `rows` over `items` only (what `weighted(rows, {name: 1})[:, items]` gives,
        without the other columns)."""
        if name == "category":
            return self._category_sets(rows).index_select(1, self.sig[torch.from_numpy(items)])
        x = (rows @ self.matrices[name][:, items]).tocsr()
        x.data = np.log1p(x.data)
        return torch.from_numpy(x.toarray().astype(np.float32))

    def users(self, users: Tensor) -> sp.csr_matrix:
        """The histories of `users` as indicator rows."""
        return self.history[users.cpu().numpy()]

    def items(self, items: Tensor) -> sp.csr_matrix:
        """One indicator row per item."""
        i = items.cpu().numpy()
        return _binary(np.arange(len(i)), i, (len(i), self.n_items))


def link_features(graph: Graph, relations: list[EdgeType] | None = None) -> LinkFeatures:
    """`LinkFeatures` of `graph`, built once per graph (they depend only on its edges)."""
    key = f"link_features:{relations}"
    if key not in graph.cache:
        graph.cache[key] = LinkFeatures(graph, relations)
    return graph.cache[key]
