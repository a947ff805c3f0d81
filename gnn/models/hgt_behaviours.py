"""How `hgt` learns from several user-item behaviours (issue 9): typed relations with learned
weights in the propagation, a learned "already in the cart" pair term in the score, and the
step's own target edges left out of the message passing.

    relations  each behaviour present (the target, e.g. purchased, then carted, favorited,
               viewed, reviewed) is a typed relation b of the user-item graph
    attention  a_vb = softmax_b(theta_b,side + <x_v, k_b,side>) over the behaviours node v has
               (semantic attention per node, HAN-style, as MBGCN's user-behaviour weights): a user
               whose favourites predict purchases listens to them more
    gains      g_b = softplus(gain_b) (1 at the start: the merged graph), one per behaviour
    propagate  one weighted graph: the entry (d, s) is the sum over the behaviours b linking d
               and s of g_b a_db n_d (n_d: how many behaviours d has, so that a_db averages to 1),
               symmetric-normalised by the weighted degrees (LightGCN on the weighted graph)
    pair term  score(u, i) += sum_b [u has behaviour b with i] (beta_b + <x_u, r_b> + <x_i, s_b>)
               (`BehaviourPair`): the direct "already in the cart / favourites" signal that makes
               the behaviour-pop heuristic strong, learned per behaviour and modulated per user
               and item from their layer-0 embeddings
    masking    in training, each step's positive target edges are subtracted from the
               propagation (`held_edges`), so a positive is predicted as a test edge is: without
               its own edge in the graph

Why this scheme: it is the best of the variants measured by the issue-9 prototype on Tmall
(published protocol, HR@10): per-behaviour normalised graphs mixed per node ("mix") 0.1127
without and 0.1181 with batch masking but 1683 s to the best epoch; the weighted merged graph
with masking 0.1177 in 852 s; adding an auxiliary BPR loss per behaviour (multi-task, as CRGCN /
MB-CGCN) 0.1136 — so no auxiliary loss by default (`aux_weight` still adds one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnn.behaviours import BehaviourIndex, behaviour_edges
from gnn.data import EdgeType, Graph
from gnn.models.pairwise import KGLinkCounts
from gnn.models.sparse_attention import Pattern, spmm


@dataclass
class BehaviourInputs:
    """The behaviour relations of one graph as one sparse pattern over [users; items]: per
    (relation, direction) entry its position in the pattern, destination and relation index;
    per node which behaviours it has."""

    pattern: Pattern
    pos: Tensor  # [E2] entry -> position in the pattern
    dst: Tensor  # [E2]
    rel: Tensor  # [E2]
    has: Tensor  # [n_users + n_items, R] bool

    @classmethod
    def build(cls, graph: Graph, relations: list[EdgeType],
              device: torch.device | str = "cpu") -> BehaviourInputs:
        nu, n = graph.n_users, graph.n_users + graph.n_items
        dsts, srcs, rels, has = [], [], [], []
        for b, et in enumerate(relations):
            ei = behaviour_edges(graph, et)
            u, i = ei[0], ei[1] + nu
            dsts += [u, i]
            srcs += [i, u]
            rels.append(torch.full((2 * ei.size(1),), b, dtype=torch.long))
            has.append(torch.bincount(torch.cat([u, i]), minlength=n) > 0)
        dst, src = torch.cat(dsts), torch.cat(srcs)
        uniq, pos = torch.unique(dst * n + src, return_inverse=True)  # sorted: CSR order
        pattern = Pattern.from_edges(uniq // n, uniq % n, n, n)
        return cls(pattern.to(device), pos.to(device), dst.to(device),
                   torch.cat(rels).to(device), torch.stack(has, 1).to(device))


class BehaviourPropagation(nn.Module):
    """The learned weights of the behaviour relations: per-node attention over them and a gain
    per behaviour; `values` gives the weighted, normalised graph for the current embeddings."""

    def __init__(self, n_behaviours: int, dim: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(2, n_behaviours))  # (user, item) side x behaviour
        self.gain = nn.Parameter(torch.zeros(n_behaviours))
        self.att_k = nn.Parameter(torch.zeros(2, n_behaviours, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.theta)
        nn.init.constant_(self.gain, math.log(math.e - 1.0))  # softplus(gain) = 1
        nn.init.normal_(self.att_k, std=0.01)

    def attention(self, x_user: Tensor, x_item: Tensor, has: Tensor) -> Tensor:
        """[n_users + n_items, R]: each node's softmax over the behaviours it has (0 elsewhere)."""
        out = []
        for side, x in enumerate((x_user, x_item)):
            logits = self.theta[side] + x.float() @ self.att_k[side].T
            mask = has[:x.size(0)] if side == 0 else has[x_user.size(0):]
            w = torch.softmax(logits.masked_fill(~mask, -torch.inf), 1)
            out.append(torch.nan_to_num(w, nan=0.0))  # nodes with no behaviour at all
        return torch.cat(out)

    def values(self, x_user: Tensor, x_item: Tensor, g: BehaviourInputs
               ) -> tuple[Tensor, Tensor, Tensor]:
        """(values of `g.pattern`, each node's degree normaliser, the weight a target edge has
        at each node): what the propagation and `held_edges` need."""
        gain = F.softplus(self.gain)
        m = self.attention(x_user, x_item, g.has) * g.has.sum(1, keepdim=True)
        c = gain[g.rel] * m[g.dst, g.rel]
        pat = g.pattern
        raw = torch.zeros(pat.col.numel(), dtype=c.dtype, device=c.device).index_add(0, g.pos, c)
        deg = torch.zeros(pat.shape[0], dtype=c.dtype, device=c.device).index_add(0, pat.row,
                                                                                 raw)
        inv = deg.clamp_min(1e-12).pow(-0.5) * (deg > 0)
        return raw * inv[pat.row] * inv[pat.col], inv, gain[0] * m[:, 0]

    def describe(self) -> dict[str, list[float]]:
        with torch.no_grad():
            return {"gain": F.softplus(self.gain).tolist(),
                    "user_prior": torch.softmax(self.theta[0], 0).tolist(),
                    "item_prior": torch.softmax(self.theta[1], 0).tolist()}


def held_edges(users: Tensor, items: Tensor, inv: Tensor, target_weight: Tensor, n_users: int
               ) -> tuple[Pattern, Tensor]:
    """The target edges (users[k], items[k]) of a training step as a pattern with the values
    they have in the propagation graph (subtracted from it in that step)."""
    n = inv.numel()
    i = items + n_users
    norm = inv[users] * inv[i]
    dst, src = torch.cat([users, i]), torch.cat([i, users])
    order = torch.argsort(dst * n + src)  # Pattern.from_edges's order
    values = torch.cat([norm * target_weight[users], norm * target_weight[i]])[order]
    return Pattern.from_edges(dst, src, n, n), values


def propagation_step(adj_values: Tensor, g: BehaviourInputs,
                     held: tuple[Pattern, Tensor] | None):
    """h -> A h on the weighted behaviour graph (minus the step's held edges)."""
    def step(h: Tensor) -> Tensor:
        out = spmm(g.pattern, adj_values, h)
        return out - spmm(held[0], held[1], h) if held is not None else out

    return step


@dataclass
class PairTable:
    """What `BehaviourPair` reads of one graph: the auxiliary edges, the model's embedding row
    of every node, and the KG link counts when `kg_links` is on."""

    index: BehaviourIndex
    user_rows: Tensor
    item_rows: Tensor
    kg: Any = None


class BehaviourPair(nn.Module):
    """The pairwise scorer of a multi-behaviour `hgt` (the `net.pair` of `TorchRecommender`):

        pair(u, i) = sum_b x_b(u, i) (beta_b + <e_u, r_b> + <e_i, s_b>)  (+ KG link counts)

    x_b(u, i) = 1 if user u has auxiliary behaviour b with item i, e_u / e_i the layer-0 id
    embeddings (read from the network's tables, not owned: `bind`). Starts at 0."""

    def __init__(self, relations: list[EdgeType], dim: int,
                 kg: KGLinkCounts | None = None) -> None:
        super().__init__()
        self.relations = [tuple(r) for r in relations]
        self.beta = nn.Parameter(torch.zeros(len(relations)))
        self.user_w = nn.Parameter(torch.zeros(len(relations), dim))
        self.item_w = nn.Parameter(torch.zeros(len(relations), dim))
        self.kg = kg
        self._bound: tuple[Any, Any] | None = None  # (embedding tables, rows function)

    def reset_parameters(self) -> None:
        for p in (self.beta, self.user_w, self.item_w):
            nn.init.zeros_(p)

    def bind(self, emb: nn.ModuleDict, rows_of) -> None:
        """The network's embedding tables and `rows_of(graph, node_type)` (the model's
        `node_rows`): kept out of the module tree (they belong to the network)."""
        self._bound = (emb, rows_of)

    @property
    def weight(self) -> Tensor:  # the device of the scorer (read by TorchRecommender.score)
        return self.beta

    def table(self, graph: Graph, device: torch.device | str = "cpu") -> PairTable:
        emb, rows_of = self._bound
        key = f"behaviour-pair:{self.relations}:{device}:{id(self)}"
        if key not in graph.cache:
            base = f"behaviour-pair:{self.relations}"
            if base not in graph.cache:
                graph.cache[base] = BehaviourIndex.build(graph, self.relations)
            graph.cache[key] = PairTable(graph.cache[base].to(device),
                                         rows_of(graph, "user").to(device),
                                         rows_of(graph, "item").to(device))
        t = graph.cache[key]
        t.kg = self.kg.table(graph, device) if self.kg is not None else None
        return t

    def node_weights(self, t: PairTable, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """beta_b + <e_u, r_b> per user and <e_i, s_b> per item, on the scorer's device."""
        emb, _ = self._bound
        dev = self.beta.device
        ru, ri = t.user_rows[users.to(t.user_rows.device)], t.item_rows[items.to(
            t.item_rows.device)]
        bu = self.beta + emb["user"](ru.to(dev)).float() @ self.user_w.T
        bi = emb["item"](ri.to(dev)).float() @ self.item_w.T
        return bu, bi

    def forward(self, t: PairTable, users: Tensor, items: Tensor) -> Tensor:
        """The pair scores of `users` x `items` (broadcast against each other)."""
        x = t.index.features(users, items)  # [*, R]
        bu, bi = self.node_weights(t, users, items)
        out = (x * (bu + bi)).sum(-1)
        return out + self.kg(t.kg, users, items) if self.kg is not None else out

    def block(self, t: PairTable, users: Tensor) -> Tensor:
        """[len(users), n_items]: the pair scores of every item for `users` (CPU)."""
        users = users.cpu()
        bu, bi = self.node_weights(t, users, torch.arange(t.index.n_items))
        bu, bi = bu.cpu(), bi.cpu()
        out = torch.zeros(len(users), t.index.n_items)
        for r in range(len(self.relations)):
            x = t.index.block(users, r)
            out += x * (bu[:, r:r + 1] + bi[:, r])
        return out + self.kg.block(t.kg, users) if self.kg is not None else out

    def describe(self) -> dict[str, list[float]]:
        return {"beta": self.beta.detach().tolist()}
