"""hgt's cold-item map: an item without interactions gets the embedding that a ridge regression
from its knowledge-graph neighbourhood predicts, fitted on the items with interactions.

    x(c) = [ for each KG part p:  mean of the final embeddings of c's p-neighbours that have
                                  interactions (zeros if none),  1 if c has any ]  + [1]
    p    : each item-item relation (both directions: also_bought with its reverse, ...),
           the items of c's brand, the items of c's categories (each category's mean weighted
           by its IDF, so the root category counts ~0)
    W    = argmin_W  sum over warm items i of |x(i) W - e(i)|^2 + RIDGE |W|^2
    cold item c:  e(c) := x(c) W

e(i) is the network's final item embedding on the training graph (the fitted network, its
best state); x(i) for a warm item leaves i itself out of every mean. The fit is closed form and
takes about a second on Beauty; it runs after training, beside the blend (`hgt.calibrate`), and
never looks at validation or test edges. `--set cold_map=false` turns it off (the cold item
then keeps the network's own KG-propagated embedding).

Why (issue 13): the network's cold embedding is propagated from its KG neighbours' layer-0
rows and was never fitted for items without users (training a share of items as cold in each
step, `cold_dropout`, gave nothing); a map fitted to reproduce what the network learned for the
warm items from what a cold item does have is the classic attribute-to-embedding mapping of
cold-start recommendation (Gantner et al., ICDM 2010). Measured on Beauty's cold slice: see
bench/results/cold-map*.md.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from gnn.data import EdgeType, Graph
from gnn.models.pairwise import BRAND, CATEGORY, idf, membership_matrix, relation_matrix

RIDGE = 10.0  # insensitive between 1 and 100 on a pseudo-cold validation (the note, issue 13)
HOLDOUT = 0.2  # share of the warm items held out to record the map's fit


def with_interactions(graph: Graph) -> np.ndarray:
    """[n_items] bool: the items with an edge of any user-item relation in `graph`."""
    has = np.zeros(graph.n_items, bool)
    has[graph.user_item_pairs()[1].numpy()] = True
    return has


def parts(graph: Graph, kg_edge_types: list[EdgeType]) -> dict[str, sp.csr_matrix]:
    """The KG parts the model sees, as [n_items, n_items] (item-item, symmetric, no diagonal)
    or [n_items, n_groups] (brand, category: IDF-weighted membership)."""
    mine = {tuple(et) for et in kg_edge_types}
    out: dict[str, sp.csr_matrix] = {}
    for et in sorted(mine):
        if et[0] == et[2] == "item" and not et[1].startswith("rev_") and \
                et in graph.data.edge_types:
            m = relation_matrix(graph, et)
            m = ((m + m.T) > 0).astype(np.float32).tocsr()
            m.setdiag(0)
            m.eliminate_zeros()
            out[et[1]] = m
    for name, et in (("brand", BRAND), ("category", CATEGORY)):
        if et in mine and et in graph.data.edge_types:
            m = membership_matrix(graph, et)
            out[name] = (m @ sp.diags(idf(m))).tocsr()
    return out


def _neighbour_mean(m: sp.csr_matrix, emb: np.ndarray, known: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Row c: the mean of emb over c's neighbours that are `known` (m has no diagonal)."""
    m = (m @ sp.diags(known.astype(np.float32))).tocsr()
    deg = np.asarray(m.sum(1)).ravel()
    return (m @ emb) / np.maximum(deg, 1e-12)[:, None], deg > 0


def _group_mean(m: sp.csr_matrix, emb: np.ndarray, known: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Row c: the weighted mean over c's groups g (weight m[c, g]) of the mean of emb over the
    known members of g other than c."""
    k = known.astype(np.float32)
    member = (m > 0).astype(np.float32)
    sums = member.T @ (emb * k[:, None])  # [groups, d]
    counts = np.asarray(member.T @ k).ravel()  # [groups]
    coo = m.tocoo()
    c, g, w = coo.row, coo.col, coo.data.astype(np.float32)
    n = counts[g] - k[c]  # members of g other than c
    ok = n > 0
    c, g, w, n = c[ok], g[ok], w[ok], n[ok]
    means = (sums[g] - emb[c] * k[c][:, None]) / n[:, None]
    num = np.zeros_like(emb)
    np.add.at(num, c, means * w[:, None])
    den = np.bincount(c, weights=w, minlength=len(emb))
    return num / np.maximum(den, 1e-12)[:, None], den > 0


def features(graph: Graph, emb: np.ndarray, known: np.ndarray,
             kg_edge_types: list[EdgeType], names: list[str]) -> np.ndarray:
    """[n_items, len(names) * (d + 1) + 1]: x(c) of the module docstring (a part the graph
    lacks: zeros)."""
    have = parts(graph, kg_edge_types)
    emb = emb.astype(np.float32)
    cols = []
    for name in names:
        if name not in have:
            cols += [np.zeros_like(emb), np.zeros((len(emb), 1), np.float32)]
            continue
        mean = _group_mean if name in ("brand", "category") else _neighbour_mean
        x, has = mean(have[name], emb, known)
        cols += [x, has[:, None].astype(np.float32)]
    return np.hstack([*cols, np.ones((len(emb), 1), np.float32)]).astype(np.float32)


def ridge(x: np.ndarray, y: np.ndarray, lam: float = RIDGE) -> np.ndarray:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def fit(graph: Graph, item_emb: Tensor, kg_edge_types: list[EdgeType], seed: int = 0
        ) -> tuple[Tensor | None, dict]:
    """The map W [features, d] fitted on the warm items of `graph` (their embeddings
    `item_emb`), and its record: the parts, the warm items, the relative squared error of a
    fit on the other 80 % on a held-out 20 % of them. (None, why) when the graph has no KG
    part the model sees."""
    names = sorted(parts(graph, kg_edge_types))
    if not names:
        return None, {"fitted": False, "why": "no knowledge-graph part to map from"}
    emb = item_emb.float().cpu().numpy()
    known = with_interactions(graph)
    x = features(graph, emb, known, kg_edge_types, names)
    warm = np.flatnonzero(known)
    rng = np.random.default_rng(seed)
    held = rng.random(len(warm)) < HOLDOUT
    w = ridge(x[warm[~held]], emb[warm[~held]])
    err = x[warm[held]] @ w - emb[warm[held]]
    rel = float((err ** 2).sum() / max((emb[warm[held]] ** 2).sum(), 1e-12))
    w = ridge(x[warm], emb[warm])
    return torch.from_numpy(w.astype(np.float32)), {
        "fitted": True, "parts": names, "ridge": RIDGE, "warm_items": int(len(warm)),
        "holdout_relative_error": round(rel, 4)}


def apply(graph: Graph, item_emb: Tensor, w: Tensor, kg_edge_types: list[EdgeType],
          names: list[str]) -> Tensor:
    """`item_emb` with the items without interactions in `graph` mapped (a copy)."""
    known = with_interactions(graph)
    if known.all():
        return item_emb
    emb = item_emb.float().cpu().numpy()
    x = features(graph, emb, known, kg_edge_types, names)
    cold = torch.from_numpy(~known)
    out = item_emb.clone()
    out[cold] = (torch.from_numpy(x[~known]) @ w).to(out.dtype)
    return out
