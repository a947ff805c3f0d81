"""Leakage-safe top-K evaluation: full ranking over the candidate items, history excluded.

Per user with >= 1 relevant item (its held-out edges), over the top K of the ranking:
- recall@K = hits / |rel|; precision@K = hits / K; hr@K = 1 if any hit;
- ndcg@K = DCG / IDCG with DCG = sum over hit ranks r (0-based) of 1 / log2(r + 2) and the ideal
  DCG over min(|rel|, K) hits; mrr@K = 1 / (rank of the first hit + 1), 0 without a hit;
averaged over users, at K = 10, 20 and 50 (`KS`; HR@K and NDCG@K at 10 and 50 are what the
multi-behaviour benchmarks report). coverage@K = share of candidate items recommended to
anyone, gini@K = Gini coefficient of how often each candidate item is recommended (0 = even,
1 = one item for all).

The cold-start slice ranks only the cold items (which have no interactions in any training graph)
for the users who have held-out edges to them: `cold_item_recall@20` and `cold_item_ndcg@10`
(null for models that cannot score items without interactions), and beside it
`cold_item_recall@20_baseline`, a most-popular-in-the-user's-categories baseline
(`CategoryPopularity`).
"""

from __future__ import annotations

import logging
from typing import Protocol

import torch
from torch import Tensor

from gnn.data import Graph, Split, history_of, is_member, pair_keys

log = logging.getLogger(__name__)

KS = (10, 20, 50)
SCORE_BLOCK = 1 << 27  # scores per chunk of users (512 MB of float32): large catalogues get
# fewer users per chunk, so memory stays bounded (on Beauty, 12k items, the 4096 users stay)
METRICS = ("recall", "ndcg", "hr", "precision", "mrr")


class Ranker(Protocol):
    def recommend(self, users: Tensor, k: int = 10, exclude_seen: bool = True, *,
                  source: Graph | None = None,
                  candidates: Tensor | None = None) -> tuple[Tensor, Tensor]: ...


class RankingMetrics:
    """Top-K metrics accumulated over batches of users: `update`, `compute`, `reset`."""

    def __init__(self, n_items: int, ks: tuple[int, ...] = KS,
                 candidates: Tensor | None = None) -> None:
        self.ks = tuple(sorted(ks))
        self.n_items = n_items
        self.candidates = candidates
        self.reset()

    def reset(self) -> None:
        self.sums = {f"{m}@{k}": 0.0 for m in METRICS for k in self.ks}
        self.users = 0
        self.counts = {k: torch.zeros(self.n_items, dtype=torch.long) for k in self.ks}

    def update(self, hits: Tensor, n_relevant: Tensor, items: Tensor | None = None) -> None:
        """`hits` [B, K] bool (is the item at rank r relevant), `n_relevant` [B] (>= 1),
        `items` [B, K] the recommended item indices (for coverage and Gini)."""
        kmax = self.ks[-1]
        if hits.size(1) < kmax:  # fewer candidates than K: the missing ranks are misses
            hits = torch.cat([hits, hits.new_zeros(hits.size(0), kmax - hits.size(1))], 1)
        hits = hits[:, :kmax].float()
        n_rel = n_relevant.float()
        discount = 1.0 / torch.log2(torch.arange(kmax, dtype=torch.float) + 2.0)
        ideal = torch.cumsum(discount, 0)  # ideal[j] = IDCG with j + 1 relevant items
        for k in self.ks:
            h = hits[:, :k]
            n_hit = h.sum(1)
            idcg = ideal[(n_rel.clamp(max=k) - 1).long()]
            first = torch.where(h.any(1), h.argmax(1).float() + 1.0, torch.inf)
            self.sums[f"recall@{k}"] += float((n_hit / n_rel).sum())
            self.sums[f"precision@{k}"] += float((n_hit / k).sum())
            self.sums[f"hr@{k}"] += float((n_hit > 0).float().sum())
            self.sums[f"ndcg@{k}"] += float(((h * discount[:k]).sum(1) / idcg).sum())
            self.sums[f"mrr@{k}"] += float((1.0 / first).sum())
            if items is not None:
                top = items[:, :k].reshape(-1)
                top = top[top >= 0]
                self.counts[k] += torch.bincount(top, minlength=self.n_items)
        self.users += hits.size(0)

    def compute(self) -> dict[str, float]:
        out = {name: (s / self.users if self.users else 0.0) for name, s in self.sums.items()}
        for k in self.ks:
            counts = self.counts[k] if self.candidates is None else self.counts[k][self.candidates]
            if int(counts.sum()):
                out[f"coverage@{k}"] = float((counts > 0).float().mean())
                out[f"gini@{k}"] = gini(counts)
        out["users"] = self.users
        return out


def gini(counts: Tensor) -> float:
    """Gini coefficient of non-negative counts (0: all equal; -> 1: all on one)."""
    c = counts.double().sort().values
    n, total = c.numel(), float(c.sum())
    if n == 0 or total == 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.double)
    return float(((2 * i - n - 1) * c).sum() / (n * total))


def evaluate(model: Ranker, graph: Graph, relevant: Tensor, candidates: Tensor | None = None,
             ks: tuple[int, ...] = KS, batch: int = 4096,
             exclude_seen: bool = True) -> dict[str, float]:
    """Rank `candidates` (bool mask, None = all items) for every user of `relevant` ([2, E]
    held-out (user, item) pairs) on `graph`, its history excluded; metrics averaged over users."""
    n_items = graph.n_items
    keys = pair_keys(relevant, n_items).unique()  # sorted
    users = relevant[0].unique()
    n_rel = torch.bincount(relevant[0], minlength=graph.n_users)
    metrics = RankingMetrics(n_items, ks, candidates)
    k = max(ks)
    batch = max(1, min(batch, SCORE_BLOCK // max(n_items, 1)))  # bound the score block
    for chunk in users.split(batch):
        items, _ = model.recommend(chunk, k=k, exclude_seen=exclude_seen, source=graph,
                                   candidates=candidates)
        hits = is_member(chunk[:, None] * n_items + items, keys) & (items >= 0)
        metrics.update(hits, n_rel[chunk], items)
    return metrics.compute()


def evaluate_split(model: Ranker, split: Split, ks: tuple[int, ...] = KS,
                   batch: int = 4096) -> dict[str, float]:
    """Test metrics on the warm items, plus the cold-start slice and its baseline."""
    graph = split.eval_graph
    out = evaluate(model, graph, split.test, split.warm_items, ks, batch)
    out["test_users"] = out.pop("users")
    if split.cold_test.size(1):
        cold = ~split.warm_items
        # a model that cannot score items without interactions (pop, mf, lightgcn, itemknn)
        # would rank them in tie order: it reports no cold metric (null), not that number
        out["cold_item_recall@20"] = out["cold_item_ndcg@10"] = None
        if getattr(model, "scores_cold_items", True):
            cm = evaluate(model, graph, split.cold_test, cold, (10, 20), batch)
            out["cold_item_recall@20"], out["cold_item_ndcg@10"] = cm["recall@20"], cm["ndcg@10"]
        base = CategoryPopularity(graph)
        out["cold_item_recall@20_baseline"] = evaluate(base, graph, split.cold_test, cold, (20,),
                                                       batch)["recall@20"]
    return out


def topk_scores(scores: Tensor, k: int, history: Tensor | None, users: Tensor,
                candidates: Tensor | None) -> tuple[Tensor, Tensor]:
    """Top-k of a [B, n_items] score block (modified in place): history pairs of `users` and
    non-candidates get -inf; ranks past the last finite score come back as item -1."""
    if candidates is not None:
        scores[:, ~candidates] = -torch.inf
    if history is not None and history.numel():
        rows, items = history_of(history, users)
        scores[rows, items] = -torch.inf
    k = min(k, scores.size(1))
    val, items = scores.topk(k, dim=1)
    items[torch.isinf(val) & (val < 0)] = -1
    return items, val


class CategoryPopularity:
    """Cold-start baseline: items of the categories the user interacted with most; ties (and users
    with no overlap) by how popular the item's categories are. Needs no training."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        et = ("item", "in_category", "category")
        n_items, n_cats = graph.n_items, int(graph.data["category"].num_nodes) \
            if "category" in graph.data.node_types else 0
        ic = graph.data[et].edge_index if et in graph.data.edge_types else \
            torch.empty(2, 0, dtype=torch.long)
        member = torch.zeros(n_items, max(n_cats, 1))
        member[ic[0], ic[1]] = 1.0
        h = graph.history
        item_pop = torch.bincount(h[1], minlength=n_items).float()
        self.member = member
        # per category: how many interactions its items have; per item: mean over its categories
        cat_pop = item_pop @ member
        n_cat = member.sum(1).clamp(min=1)
        self.item_prior = (member @ cat_pop) / n_cat
        self.item_prior = self.item_prior / self.item_prior.max().clamp(min=1.0)
        self.history = h

    def recommend(self, users: Tensor, k: int = 10, exclude_seen: bool = True, *,
                  source: Graph | None = None,
                  candidates: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.history
        rows, items = history_of(h, users)
        hist = torch.zeros(len(users), self.graph.n_items)
        hist[rows, items] = 1.0
        profile = hist @ self.member  # [B, n_cats]
        scores = profile @ self.member.T + self.item_prior * 0.5  # prior < 1: only breaks ties
        return topk_scores(scores, k, h if exclude_seen else None, users, candidates)


