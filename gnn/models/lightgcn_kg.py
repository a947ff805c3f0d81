"""`lightgcn-kg`: LightGCN over one graph made of the user-item history *and* the knowledge
graph: item-item relations (also_bought / also_viewed / bought_together as undirected edges,
several relations between the same pair counted once), item-brand, item-category and
category-parent edges; brands and categories are extra nodes with their own embeddings.

Why it exists: it is the information-equal baseline of `hgt` (issue 13): the same inputs,
propagated without attention, relation types or transforms (symmetric normalisation
D^-1/2 A D^-1/2, layer mean), trained exactly like `lightgcn`. A cold item (no interactions)
keeps its KG edges, so its propagated embedding comes from its related items, brand and
categories (its own id row is the learned default row, as in `hgt`). `kg_exclude` drops parts of
the KG (the relations are read from `meta["kg_edge_types"]`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gnn.data import Graph
from gnn.models.base import NetOut, TorchRecommender, known_buffers
from gnn.models.lightgcn import propagate, symmetric_normalized

KG_NODE_TYPES = ("brand", "category")


def joint_adjacency(graph: Graph, relations: list[tuple[str, str, str]],
                    device: torch.device | str = "cpu") -> Tensor:
    """Symmetric-normalised adjacency (CSR) over [users; items; brands; categories] from the
    history and the KG `relations` present in `graph` (reverse types skipped: every edge is made
    undirected; self loops and duplicate pairs dropped)."""
    nu, ni = graph.n_users, graph.n_items
    offset = {"user": 0, "item": nu}
    total = nu + ni
    for t in KG_NODE_TYPES:
        if t in graph.data.node_types:
            offset[t] = total
            total += int(graph.data[t].num_nodes)
    h = graph.history
    rows, cols = [h[0]], [h[1] + nu]
    for et in relations:
        s, rel, d = et
        if rel.startswith("rev_") or s not in offset or d not in offset or \
                et not in graph.data.edge_types:
            continue
        ei = graph.data[et].edge_index
        rows.append(ei[0] + offset[s])
        cols.append(ei[1] + offset[d])
    r, c = torch.cat(rows), torch.cat(cols)
    keep = r != c
    r, c = torch.cat([r[keep], c[keep]]), torch.cat([c[keep], r[keep]])
    key = torch.unique(r * total + c)  # one edge per node pair
    return symmetric_normalized(key // total, key % total, total, device)


@dataclass
class JointInputs:
    """Inputs of `lightgcn-kg`: the row of each node in its type's part of the embedding table
    (users, items, brands, categories; unknown nodes: the type's default row) and the joint
    adjacency."""

    rows: dict[str, Tensor]
    adj: Tensor  # sparse CSR [total nodes, total nodes]


class LightGCNKGNet(nn.Module):
    def __init__(self, num_nodes: dict[str, int], dim: int, layers: int) -> None:
        super().__init__()
        self.types = ["user", "item"] + [t for t in KG_NODE_TYPES if t in num_nodes]
        # one table: each type's rows, then its default row
        self.base: dict[str, int] = {}
        total = 0
        for t in self.types:
            self.base[t] = total
            total += num_nodes[t] + 1
        self.emb = nn.Embedding(total, dim)
        self.register_buffer("alpha", torch.full((layers + 1,), 1.0 / (layers + 1)))
        known_buffers(self, num_nodes["user"], num_nodes["item"])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.emb.weight, std=0.1)

    def forward(self, inputs: JointInputs) -> NetOut:
        x0 = self.emb(torch.cat([inputs.rows[t] + self.base[t] for t in self.types]))
        out = propagate(self.alpha, x0, inputs.adj)
        nu, ni = inputs.rows["user"].numel(), inputs.rows["item"].numel()
        return NetOut(out[:nu], out[nu:nu + ni], x0[:nu], x0[nu:nu + ni])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.emb.num_embeddings}, types={self.types})"


class LightGCNKG(TorchRecommender):
    name = "lightgcn-kg"
    cold_start = True  # a cold item's embedding comes from its KG neighbours

    def _build_net(self) -> nn.Module:
        return LightGCNKGNet(self.meta["num_nodes"], self.cfg.dim, self.cfg.layers)

    def _inputs(self, graph: Graph, device: torch.device) -> JointInputs:
        rows = {t: self.node_rows(graph, t) for t in ("user", "item")}
        for t in KG_NODE_TYPES:
            if t in self.meta["num_nodes"]:
                r = self.rows(graph, t)
                rows[t] = torch.where(r >= 0, r, torch.full_like(r, len(self.ids[t])))
        relations = [tuple(et) for et in self.meta["kg_edge_types"]]
        return JointInputs({t: r.to(device) for t, r in rows.items()},
                           joint_adjacency(graph, relations, device))
