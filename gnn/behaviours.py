"""The user->item behaviours of a graph (issue 9): which relations a model learns from, and fast
lookups of "user u has behaviour b with item i".

A graph's *target* relation (purchased by default, `TrainConfig.target`) is what is predicted and
excluded from rankings; every other user->item relation present (viewed, carted, favorited,
reviewed, ...) is *auxiliary*: it stays in the message-passing graph, and its items stay
rankable (the published protocol of the multi-behaviour papers: MBGCN, CRGCN, MuLe).

`TrainConfig.behaviours` chooses them:
    "auto"     the model's own default (hgt, behaviour-pop, behaviour-knn: "all"; others: "target")
    "all"      every user->item relation of the graph
    "target"   the target relation only (today's single-relation models)
    "a,b"      the target plus the named relations (e.g. "carted,favorited")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from core.errors import ConfigError
from gnn.data import EdgeType, Graph, is_member, pair_keys

AUTO_DEFAULT = {"hgt": "all", "behaviour-pop": "all", "behaviour-knn": "all"}  # any other model: "target"


def resolve(which: str, model: str) -> str:
    """`which` with "auto" replaced by `model`'s default."""
    return AUTO_DEFAULT.get(model, "target") if which == "auto" else which


def behaviour_types(graph: Graph, which: str = "all") -> list[EdgeType]:
    """The user->item relations to learn from: the target first, then the chosen auxiliary
    ones sorted by name. ConfigError for a named relation the graph lacks."""
    aux = sorted(et for et in graph.data.edge_types
                 if et[0] == "user" and et[2] == "item" and et != graph.target)
    if which == "target":
        aux = []
    elif which != "all":
        wanted = {w.strip().lower() for w in which.split(",") if w.strip()}
        wanted.discard(graph.target[1])
        missing = wanted - {et[1] for et in aux}
        if missing:
            raise ConfigError(f"'behaviours' names {', '.join(sorted(missing))}, not a user-item "
                              f"relation of the graph besides the target (there: "
                              f"{', '.join(et[1] for et in aux) or 'none'}); use all or target")
        aux = [et for et in aux if et[1] in wanted]
    return [graph.target, *aux]


def behaviour_edges(graph: Graph, et: EdgeType) -> Tensor:
    """[2, E] (user, item) edges of relation `et` in `graph` (the target: its history)."""
    if et == graph.target:
        return graph.history
    if et in graph.data.edge_types:
        return graph.data[et].edge_index
    return torch.empty(2, 0, dtype=torch.long)


def merged_pairs(graph: Graph, relations: list[EdgeType]) -> Tensor:
    """Every (user, item) pair linked by any of `relations`, once, sorted by user then item."""
    ei = torch.cat([behaviour_edges(graph, et) for et in relations], 1)
    keys = pair_keys(ei, graph.n_items).unique()
    return torch.stack([keys // graph.n_items, keys % graph.n_items])


def known_nodes(graph: Graph, relations: list[EdgeType]) -> tuple[Tensor, Tensor]:
    """Masks of the users and items with an edge of any of `relations` (a user who only
    favourites keeps its own embedding row)."""
    users = torch.zeros(graph.n_users, dtype=torch.bool)
    items = torch.zeros(graph.n_items, dtype=torch.bool)
    for et in relations:
        ei = behaviour_edges(graph, et)
        users[ei[0]] = True
        items[ei[1]] = True
    return users, items


@dataclass
class BehaviourIndex:
    """Which (user, item) pairs have an edge of each of `relations` in one graph: sorted pair
    keys for lookups of any pairs, CSR rows for dense blocks of users; `values` a weight per
    edge (1, or its recency when `recency=True`), in key order."""

    n_items: int
    relations: list[EdgeType]
    keys: list[Tensor]
    values: list[Tensor]
    rows: list[sp.csr_matrix]

    @classmethod
    def build(cls, graph: Graph, relations: list[EdgeType], recency: bool = False
              ) -> BehaviourIndex:
        n_users, n_items = graph.n_users, graph.n_items
        keys, values, rows = [], [], []
        for et in relations:
            ei = behaviour_edges(graph, et)
            k = pair_keys(ei, n_items)
            order = k.argsort()
            v = torch.ones(len(k))
            if recency and et in graph.data.edge_types and "last_ts" in graph.data[et] \
                    and ei.size(1) == graph.data[et].last_ts.numel():
                v = recency_weight(graph.data[et].last_ts)
            k, v = k[order], v[order]
            keys.append(k)
            values.append(v)
            u, i = (k // n_items).numpy(), (k % n_items).numpy()
            rows.append(sp.csr_matrix((v.numpy().astype(np.float32), (u, i)),
                                      shape=(n_users, n_items)))
        return cls(n_items, list(relations), keys, values, rows)

    def to(self, device: torch.device | str) -> BehaviourIndex:
        return BehaviourIndex(self.n_items, self.relations, [k.to(device) for k in self.keys],
                              [v.to(device) for v in self.values], self.rows)

    def features(self, users: Tensor, items: Tensor) -> Tensor:
        """[*, R]: the value of each relation's edge (0: none) for `users` and `items`
        (broadcast against each other)."""
        users, items = torch.broadcast_tensors(users, items)
        keys = users * self.n_items + items
        cols = []
        for k, v in zip(self.keys, self.values):
            if k.numel() == 0:
                cols.append(torch.zeros(keys.shape, device=keys.device))
                continue
            pos = torch.searchsorted(k, keys).clamp_(max=k.numel() - 1)
            cols.append(torch.where(is_member(keys, k), v[pos], torch.zeros((), device=v.device)))
        if not cols:
            return torch.zeros((*keys.shape, 0), device=keys.device)
        return torch.stack(cols, -1)

    def block(self, users: Tensor, r: int) -> Tensor:
        """[len(users), n_items] dense rows of relation r for `users`."""
        return torch.from_numpy(self.rows[r][users.cpu().numpy()].toarray())


def recency_weight(last_ts: Tensor) -> Tensor:
    """A weight in [0.5, 1] per edge: 1 for the latest time of the relation, 0.5 for the earliest;
    1 where the time is unknown (-1)."""
    ts = last_ts.double()
    known = ts >= 0
    if not known.any():
        return torch.ones(len(ts))
    lo, hi = ts[known].min(), ts[known].max()
    span = (hi - lo).clamp(min=1.0)
    return torch.where(known, 0.5 + 0.5 * (ts - lo) / span, torch.ones_like(ts)).float()


class SeesBehaviours:
    """Mixin of the models that `TrainConfig.behaviours` applies to: the relations they see."""

    def behaviour_relations(self, graph: Graph) -> list[EdgeType]:
        """The target first, then the auxiliary relations the model's `behaviours` names."""
        return behaviour_types(graph, resolve(self.cfg.behaviours, self.name))


class LearnsBehaviours(SeesBehaviours):
    """Mixin of the trainable models that learn from the auxiliary behaviours as well as the
    target relation: users and items with an edge of any of them keep their own embedding rows
    (`TorchRecommender.mark_known` counts only the training target edges)."""

    def mark_known(self, split) -> None:
        super().mark_known(split)
        users, items = known_nodes(split.train_graph, self.behaviour_relations(split.train_graph))
        self.net.known_user |= users.to(self.net.known_user.device)
        self.net.known_item |= items.to(self.net.known_item.device)
