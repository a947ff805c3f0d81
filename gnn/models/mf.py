"""`mf`: matrix factorisation (one embedding per user and item, score = dot product), trained
by gnn.trainer (BPR or sampled softmax)."""

from __future__ import annotations

import torch
from torch import nn

from gnn.data import Graph
from gnn.models.base import IdRows, NetOut, TorchRecommender, known_buffers


class MFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        # one extra row each: the default for users/items unseen in training
        self.emb_user = nn.Embedding(n_users + 1, dim)
        self.emb_item = nn.Embedding(n_items + 1, dim)
        known_buffers(self, n_users, n_items)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Xavier-normal (std = sqrt(2 / (rows + dim)), ~0.01 on Beauty), as RecBole's BPR: at
        # std 0.1 the random dot products drown the first epochs' signal and MF sat near
        # validation NDCG@20 0.001 for ~10 epochs (0.021 after 30, against 0.041 with this
        # init; issue 13, same lr / batch / seed): early stopping ended it before it learned
        nn.init.xavier_normal_(self.emb_user.weight)
        nn.init.xavier_normal_(self.emb_item.weight)

    def forward(self, inputs: IdRows) -> NetOut:
        u = self.emb_user(inputs.user)
        i = self.emb_item(inputs.item)
        return NetOut(u, i, u, i)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.emb_user.num_embeddings - 1}, " \
               f"{self.emb_item.num_embeddings - 1}, dim={self.emb_user.embedding_dim})"


class MF(TorchRecommender):
    name = "mf"

    def _build_net(self) -> nn.Module:
        n = self.meta["num_nodes"]
        return MFNet(n["user"], n["item"], self.cfg.dim)

    def _inputs(self, graph: Graph, device: torch.device) -> IdRows:
        return IdRows(self.node_rows(graph, "user").to(device),
                      self.node_rows(graph, "item").to(device))
