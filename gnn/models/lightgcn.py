"""`lightgcn`: PyG's `LightGCN` (He et al., SIGIR 2020) over the user-item history graph.

The PyG module holds the embedding table and the layer weights alpha = 1 / (L + 1). Layer-0
embeddings are looked up by row (users/items unseen in training get a default row), then
propagated over a pre-normalised sparse adjacency D^-1/2 A D^-1/2 (built once per graph; CSR
`torch.sparse.mm`, no dense N x N, the same product as PyG's LGConv but with a symmetric backward)
and averaged over layers.
A user's embedding is therefore recomputed from its current neighbourhood.

`--set behaviours=all` (the multi-behaviour baseline of issue 9): the graph propagated over is
every user-item behaviour merged into one relation (a (user, item) pair is one edge whatever its
types: views, carts, favourites, purchases); positives and the ranking's exclusions stay the
target relation's. Default ("auto"): the target relation only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn.models import LightGCN as PygLightGCN

from gnn.behaviours import LearnsBehaviours, merged_pairs
from gnn.data import Graph
from gnn.models.base import IdRows, NetOut, TorchRecommender, known_buffers
from gnn.models.sparse_attention import BWD_UNDER_AUTOCAST, FP32_UNDER_AUTOCAST


def normalized_adjacency(history: Tensor, n_users: int, n_items: int,
                         device: torch.device | str = "cpu") -> Tensor:
    """Symmetric-normalised bipartite adjacency over [users; items] as a sparse CSR tensor."""
    u, i = history[0], history[1] + n_users
    return symmetric_normalized(torch.cat([u, i]), torch.cat([i, u]), n_users + n_items, device)


def symmetric_normalized(row: Tensor, col: Tensor, n: int,
                         device: torch.device | str = "cpu") -> Tensor:
    """D^-1/2 A D^-1/2 as a sparse CSR tensor for the n x n adjacency A given by its (row, col)
    entries (both directions listed; degrees counted over `row`)."""
    deg = torch.bincount(row, minlength=n).float()
    inv = deg.pow(-0.5)
    inv[torch.isinf(inv)] = 0.0
    adj = torch.sparse_coo_tensor(torch.stack([row, col]), inv[row] * inv[col], (n, n),
                                  check_invariants=False)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we want
        warnings.simplefilter("ignore", UserWarning)
        return adj.coalesce().to_sparse_csr().to(device)


class _SymmetricSpMM(torch.autograd.Function):
    """y = A x for a symmetric sparse A. Autograd through `torch.sparse.mm` would build A^T for
    the backward pass; since A^T = A the backward is one more A g (about 10x faster on CPU)."""

    @staticmethod
    @FP32_UNDER_AUTOCAST
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    @BWD_UNDER_AUTOCAST
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, torch.sparse.mm(ctx.adj, grad.contiguous())


def propagate(alpha: Tensor, x: Tensor, adj: Tensor) -> Tensor:
    """sum_l alpha_l A^l x: LightGCN's layer combination, A symmetric-normalised (exactly what
    PyG's LGConv computes with normalize=False on a pre-normalised adjacency)."""
    x = x.float()  # sparse mm has no bf16 kernel everywhere: propagate in fp32
    out = x * alpha[0]
    for layer in range(1, len(alpha)):
        x = _SymmetricSpMM.apply(adj, x)
        out = out + x * alpha[layer]
    return out


@dataclass
class PropagationInputs(IdRows):
    """Inputs of the propagation models: id rows and the normalised user-item adjacency."""

    adj: Tensor  # sparse CSR [n_users + n_items, n_users + n_items]


class LightGCNNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, layers: int) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        # rows: users, default user, items, default item
        self.lightgcn = PygLightGCN(n_users + 1 + n_items + 1, dim, layers, normalize=False)
        known_buffers(self, n_users, n_items)
        nn.init.normal_(self.lightgcn.embedding.weight, std=0.1)

    def forward(self, inputs: PropagationInputs) -> NetOut:
        rows = torch.cat([inputs.user, inputs.item + self.n_users + 1])
        x0 = self.lightgcn.embedding(rows)
        out = propagate(self.lightgcn.alpha, x0, inputs.adj)
        nu = inputs.user.numel()
        return NetOut(out[:nu], out[nu:], x0[:nu], x0[nu:])


class LightGCN(LearnsBehaviours, TorchRecommender):
    name = "lightgcn"

    def _build_net(self) -> nn.Module:
        n = self.meta["num_nodes"]
        return LightGCNNet(n["user"], n["item"], self.cfg.dim, self.cfg.layers)

    def _inputs(self, graph: Graph, device: torch.device) -> PropagationInputs:
        return PropagationInputs(
            self.node_rows(graph, "user").to(device), self.node_rows(graph, "item").to(device),
            normalized_adjacency(self.message_pairs(graph), graph.n_users, graph.n_items,
                                 device))

    def message_pairs(self, graph: Graph) -> Tensor:
        """The (user, item) edges propagated over: the history, or every chosen behaviour."""
        rels = self.behaviour_relations(graph)
        return graph.history if len(rels) == 1 else merged_pairs(graph, rels)
