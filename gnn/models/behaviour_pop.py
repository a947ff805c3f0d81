"""`behaviour-pop`: no learning. The user's own non-target items (cart, favourite, view, review)
first, weighted by behaviour type and recency, then popularity:

    own(u, i)   = sum_b w_b r_b(u, i)        r_b: recency of the edge in [0.5, 1] (1 if unknown)
    score(u, i) = own(u, i) + [own(u, i) > 0] + pop(i) / (max pop + 1)

The popularity term is < 1 and an own item gets + 1, so the user's own items always come first,
ordered by their weighted behaviours (popularity breaks ties); then everything else by
popularity (target-relation counts of the current graph). The weights (`WEIGHTS`) are the ones
picked on Tmall's validation purchases by the issue-9 prototype (carts 2, favourites 1: within
0.1 % of the best of a 36-point grid); views count half, as the weakest signal.

`behaviour-knn`: the same, with item-item co-occurrence over every behaviour (`itemknn` with
`behaviours=all`) instead of popularity after the user's own items — the strongest no-learning
heuristic of the multi-behaviour signal we know (Tmall, issue 9):

    score(u, i) = own(u, i) + [own(u, i) > 0] + 0.999 knn(u, i) / max_j knn(u, j) + 0.001 pop(i)
"""

from __future__ import annotations

from dataclasses import replace as changed

import torch
from torch import Tensor

from gnn.behaviours import BehaviourIndex, SeesBehaviours, resolve
from gnn.data import Graph
from gnn.models.base import MemoryRecommender, Source
from gnn.models.itemknn import ItemKNN

WEIGHTS = {"carted": 2.0, "favorited": 1.0, "viewed": 0.5}  # any other behaviour: 1


class BehaviourPop(SeesBehaviours, MemoryRecommender):
    name = "behaviour-pop"

    @property
    def dot_product_only(self) -> bool:
        return False

    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        counts = torch.bincount(graph.history[1], minlength=graph.n_items).float()
        return torch.ones(graph.n_users, 1), (counts / (counts.max() + 1)).view(-1, 1)

    def index(self, graph: Graph) -> BehaviourIndex:
        """The graph's auxiliary behaviours, with recency values (built once per graph)."""
        rels = self.behaviour_relations(graph)[1:]
        key = f"behaviour-pop:{rels}"
        if key not in graph.cache:
            graph.cache[key] = BehaviourIndex.build(graph, rels, recency=True)
        return graph.cache[key]

    def weights(self, index: BehaviourIndex) -> Tensor:
        return torch.tensor([WEIGHTS.get(et[1], 1.0) for et in index.relations])

    def tail(self, users: Tensor, graph: Graph) -> Tensor:
        """[len(users), n_items] scores in [0, 1) that order what is not the user's own."""
        return super().score_users(users, graph)

    def score_users(self, users: Tensor, source: Source = None) -> Tensor:
        graph = self._graph(source)
        scores = self.tail(users, graph)
        index = self.index(graph)
        own = torch.zeros_like(scores)
        for r, w in enumerate(self.weights(index).tolist()):
            own += w * index.block(users, r)
        return scores + own + (own > 0).float()

    def score(self, users: Tensor, items: Tensor, source: Source = None) -> Tensor:
        if self.scores_by_row:  # a tail normalised per user: from whole rows
            return super().score(users, items, source)
        graph = self._graph(source)
        index = self.index(graph)
        own = (index.features(users, items) * self.weights(index)).sum(-1)
        return super().score(users, items, graph) + own + (own > 0).float()


class BehaviourKNN(BehaviourPop):
    name = "behaviour-knn"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.knn = ItemKNN(changed(cfg, behaviours=resolve(cfg.behaviours, self.name)))

    def tail(self, users: Tensor, graph: Graph) -> Tensor:
        knn = self.knn.score_users(users, graph)
        knn = knn / knn.amax(dim=1, keepdim=True).clamp_(min=1e-12)
        return knn.mul_(0.999).add_(super().tail(users, graph), alpha=1e-3)

    @property
    def scores_by_row(self) -> bool:
        return True  # the tail is normalised by each user's largest co-occurrence score
