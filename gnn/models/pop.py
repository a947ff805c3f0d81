"""`pop`: every user gets the items with the most interactions in the current graph."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.data import Graph
from gnn.models.base import MemoryRecommender, Source


class Popularity(MemoryRecommender):
    name = "pop"

    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        counts = torch.bincount(graph.history[1], minlength=graph.n_items).float()
        # score = 1 * count: the same ranking for everyone
        return torch.ones(graph.n_users, 1), counts.view(-1, 1)

    def similar_items(self, items: Tensor, k: int = 10,
                      source: Source = None) -> tuple[Tensor, Tensor]:
        """Popularity knows no similarity: the most popular other items."""
        _, counts = self.embeddings(source)
        items = torch.as_tensor(items, dtype=torch.long).view(-1)
        scores = counts.view(1, -1).repeat(len(items), 1)
        scores[torch.arange(len(items)), items] = -torch.inf
        val, idx = scores.topk(min(k, scores.size(1) - 1), dim=1)
        return idx, val
