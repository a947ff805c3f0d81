"""Training losses of the embedding models, as plain functions of scores.

A model's `loss_terms` returns named terms that the trainer adds up (and records per epoch), so
a model adds a loss by adding a term: `behaviour_bpr` is one, the auxiliary BPR losses of
multi-behaviour learning (a user's views, carts, favourites of the graph as extra positives,
each against uniform negatives; Jin et al., MBGCN, SIGIR 2020, and the auxiliary-task
family that followed it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.data import Graph, is_user_item, pair_keys, sample_negatives


def bpr(pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking: mean of softplus(neg - pos) over `neg` [B, k], `pos` [B]."""
    return F.softplus(neg - pos.unsqueeze(1)).mean()


def sampled_softmax(pos: Tensor, neg: Tensor, temperature: float) -> Tensor:
    """Cross-entropy of the positive [B] against the negatives [B, K] (-inf masks a negative)."""
    logits = torch.cat([pos.unsqueeze(1), neg], 1).float() / temperature
    return F.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=pos.device))


def behaviour_edges(graph: Graph) -> dict[str, tuple[Tensor, Tensor]]:
    """{relation: (edges [2, E], their sorted pair keys)} for every user->item relation of
    `graph` besides the target (the auxiliary behaviours); cached on the graph."""
    key = "losses:behaviours"
    if key not in graph.cache:
        out = {}
        for et in graph.data.edge_types:
            if et[0] == "user" and is_user_item(et) and et != graph.target:
                ei = graph.data[et].edge_index
                if ei.size(1):
                    out[et[1]] = (ei, pair_keys(ei, graph.n_items).sort().values)
        graph.cache[key] = out
    return graph.cache[key]


def behaviour_bpr(score, graph: Graph, n: int, pool: Tensor, generator: torch.Generator,
                  device: torch.device) -> dict[str, Tensor]:
    """One BPR term per auxiliary behaviour of `graph`: `n` of its edges drawn at random, each
    against one uniform negative from `pool` (not a known edge of that behaviour);
    `score(users, items)` gives the model's scores ([B], [B, k] broadcast)."""
    terms = {}
    for rel, (edges, keys) in behaviour_edges(graph).items():
        pick = torch.randint(edges.size(1), (n,), generator=generator)
        u, i = edges[0, pick], edges[1, pick]
        neg = sample_negatives(u, 1, keys, pool, graph.n_items, generator)
        u, i, neg = u.to(device), i.to(device), neg.to(device)
        terms[f"aux_{rel}"] = bpr(score(u, i), score(u.unsqueeze(1), neg))
    return terms
