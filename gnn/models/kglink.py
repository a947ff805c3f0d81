"""`kglink`: no gradient training; a candidate's score is a weighted count of its knowledge-graph
links to the user's history plus a popularity prior (`gnn.models.pairwise.LinkFeatures`):

    score(u, c) = sum_r w_r log(1 + #history items j with (j, r, c))   each item-item relation,
                                                                         each direction
                + w_brand log(1 + #history items of c's brand)
                + w_category log(1 + IDF-weighted categories shared with the history)
                + w_pop log(1 + interactions of c)

Why it exists: it is the information-equal baseline of the KG models (issue 13). On Beauty,
Amazon's item-item lists link 39 % of the test pairs to the user's training items, so counting
links is a strong recommender that a KG model must beat to show it learns something.

The few weights are fitted on the validation edges only: coordinate ascent over `GRID`, scored
by validation NDCG@20 on the split's training graph (`fit`; `epochs` = passes; every validation
user unless `fit_users` is set); the test edges are never looked at. Memory-based like
itemknn: features are recomputed from the current graph, so a cold item (no interactions, but
its KG edges) is scored like any other, and fold-in is free.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.progress import Progress
from gnn.data import Graph, Split
from gnn.evaluate import evaluate
from gnn.models.ascent import coordinate_ascent, sampled_validation
from gnn.models.base import MemoryRecommender, Source
from gnn.models.pairwise import link_features

log = logging.getLogger(__name__)

GRID = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


class KGLink(MemoryRecommender):
    name = "kglink"
    cold_start = True  # scores items without interactions from their KG links

    def fit(self, split: Split, on_step: Progress | None = None) -> list[dict[str, Any]]:
        split = sampled_validation(split, self.cfg.fit_users, self.cfg.seed)
        g = split.train_graph
        names = link_features(g).names
        self.meta["features"] = names
        w = {n: (0.1 if n == "pop" else 1.0) for n in names}
        t0 = time.perf_counter()
        search: list[dict[str, Any]] = []
        per_pass = len(names) * (len(GRID) - 1)  # evaluations of one pass (at most)

        def score(weights: dict[str, float]) -> float:
            self.weights = dict(weights)
            val = evaluate(self, g, split.val, split.warm_items, (20,), self.cfg.eval_batch)
            search.append({"weights": dict(weights), "val_ndcg@20": val["ndcg@20"],
                           "val_recall@20": val["recall@20"],
                           "seconds": round(time.perf_counter() - t0, 2)})
            if on_step:
                on_step(f"weight search (pass {len(search) // per_pass + 1})", 1, per_pass)
            return val["ndcg@20"]

        best = float("nan")
        if split.val.size(1):
            w, best = coordinate_ascent(w, GRID, score, passes=self.cfg.epochs)
        self.weights = w
        log.info("kglink weights %s (val ndcg@20 %.4f, %d evaluations)", w, best, len(search))
        return search

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.meta.get("weights", {}))

    @weights.setter
    def weights(self, w: dict[str, float]) -> None:
        self.meta["weights"] = {k: float(v) for k, v in w.items()}

    @property
    def dot_product_only(self) -> bool:
        return False

    @property
    def scores_by_row(self) -> bool:
        return True  # from the link features of the user's history, a row at a time

    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        """No embeddings: sparse stand-ins (the history [users, items] and the item-item link
        counts [items, items]); the scores come from `score_users`."""
        feats = link_features(graph)
        h = feats.history.tocoo()
        links = sum(feats.matrices.values()) if feats.matrices else None
        links = links.tocoo() if links is not None else None

        def sparse(m, shape) -> Tensor:
            if m is None:
                return torch.sparse_coo_tensor(torch.empty(2, 0, dtype=torch.long), [], shape,
                                               check_invariants=False)
            idx = torch.from_numpy(np.vstack([m.row, m.col]).astype(np.int64))
            return torch.sparse_coo_tensor(idx, torch.from_numpy(m.data.astype(np.float32)),
                                           shape, check_invariants=False)

        return sparse(h, (graph.n_users, graph.n_items)), sparse(links, (graph.n_items,) * 2)

    def score_users(self, users: Tensor, source: Source = None) -> Tensor:
        feats = link_features(self._graph(source))
        return feats.weighted(feats.users(torch.as_tensor(users).view(-1)), self.weights)

    def similar_items(self, items: Tensor, k: int = 10,
                      source: Source = None) -> tuple[Tensor, Tensor]:
        """The items most linked to each item (the same weights, one item as the history)."""
        feats = link_features(self._graph(source))
        items = torch.as_tensor(items, dtype=torch.long).view(-1)
        scores = feats.weighted(feats.items(items), {**self.weights, "pop": 0.0})
        scores += 1e-6 * feats.pop  # ties (no links) by popularity
        scores[torch.arange(len(items)), items] = -torch.inf
        val, idx = scores.topk(min(k, scores.size(1) - 1), dim=1)
        return idx, val
