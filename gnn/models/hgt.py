"""`hgt`: the product model, a heterogeneous attention GNN over users, items, categories, brands.

    layer 0   learned id embeddings for every node type, plus one default row per type for nodes
              unseen in training (`id_dropout` trains it by hiding item ids at random)
    attention HGT-style attention over the knowledge-graph relations that end in an item
              (also_bought / also_viewed / bought_together and their reverses, category -> item,
              brand -> item): type-specific queries/keys, relation-specific key matrices and
              priors, a softmax per relation and a learned weight per relation
              (`sparse_attention.RelationAttention`, computed from the layer-0 embeddings)
    propagate `layers` rounds over the joint graph, LightGCN-style (no transforms, layer mean):
                  user  <- normalised sum of its items                     (user-item history)
                  item  <- normalised sum of its users
                           + attention-weighted sum of its KG neighbours   (item-item, brand,
                                                                            categories)
              so an item with no interactions still gets an embedding from its brand, categories
              and related items (cold start), and a user's embedding is recomputed from its
              current history (fold-in: `embeddings(new_snapshot)` maps nodes by id)
    score     dot product of the final user and item embeddings

Every user-item behaviour (views, carts, favourites, purchases, reviews; `behaviours`, default
all): with more than one, the user-item graph is one typed relation per behaviour, with learned
per-node attention over the behaviours and a learned gain per behaviour, a learned pair term for
"u already has behaviour b with i", and each training step's own target edges masked out of the
propagation (`hgt_behaviours.py`, where the choice of scheme is explained). With the target
relation only (`--set behaviours=target`, or a graph with one behaviour) the network is exactly
the single-relation model above.

Why this shape: on Beauty, LightGCN-style linear propagation trains faster and better than
stacks of transformed attention layers (a residual HGT layer in front of LightGCN was measured
below LightGCN alone), while the KG relations carry most of the signal LightGCN lacks. The
attention decides how much each related item counts; propagation spreads it to users.

`kg_conv="hgt"` / `"gat"` instead put one PyG HGTConv / GATv2Conv-per-relation (HeteroConv)
layer, residual, in front of the LightGCN propagation (slower on CPU: ~8 s per step on Beauty).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv, HeteroConv, HGTConv

from core.progress import Progress
from gnn.behaviours import LearnsBehaviours
from gnn.data import EdgeType, Graph, Split
from gnn.models import cold_head, cold_map
from gnn.models.base import Batch, NetOut, Source, TorchRecommender, known_buffers
from gnn.models.hgt_behaviours import (
    BehaviourInputs,
    BehaviourPair,
    BehaviourPropagation,
    held_edges,
    propagation_step,
)
from gnn.models.lightgcn import _SymmetricSpMM, normalized_adjacency
from gnn.models.sparse_attention import DstBlock, RelationAttention, aggregate, build_blocks

log = logging.getLogger(__name__)


@dataclass
class HGTInputs:
    """Inputs of the heterogeneous models: id rows per node type, the normalised user-item
    adjacency, and the KG relations ending in an item, as a sparse block (`kg_conv="sparse"`)
    or as PyG edge indices (`"hgt"` / `"gat"`); None / empty when the graph has none."""

    rows: dict[str, Tensor]  # node type -> row of each node in that type's embedding table
    adj: Tensor | None  # sparse CSR [n_users + n_items, n_users + n_items] (one behaviour)
    kg_block: DstBlock | None = None
    kg_edges: dict[EdgeType, Tensor] | None = None
    behaviour: BehaviourInputs | None = None  # several behaviours (instead of `adj`)
    batch: tuple[Tensor, Tensor] | None = None  # training: the step's positive target edges


class HGTNet(nn.Module):
    def __init__(self, num_nodes: dict[str, int], kg_edge_types: list[EdgeType], dim: int,
                 layers: int, heads: int, kg_conv: str = "sparse", dropout: float = 0.0,
                 id_dropout: float = 0.0, n_behaviours: int = 1, attention: bool = True) -> None:
        super().__init__()
        self.num_nodes = dict(num_nodes)
        self.id_dropout = id_dropout
        self.kg_conv = kg_conv
        self.layers = layers
        self.emb = nn.ModuleDict({t: nn.Embedding(n + 1, dim) for t, n in num_nodes.items()})
        self.kg_edge_types = [tuple(et) for et in kg_edge_types]
        # relations that end in an item: what the item side of the propagation listens to
        self.item_relations = [et for et in self.kg_edge_types if et[2] == "item"]
        self.attention: nn.Module | None = None
        if kg_conv == "sparse" and self.item_relations:
            self.attention = RelationAttention("item", self.item_relations, dim, heads,
                                               uniform=not attention)
        elif kg_conv in ("hgt", "gat") and self.kg_edge_types:
            nodes = sorted({t for et in self.kg_edge_types for t in (et[0], et[2])})
            if kg_conv == "hgt":
                self.attention = HGTConv(dim, dim, (nodes, self.kg_edge_types), heads=heads)
            else:
                self.attention = HeteroConv(
                    {et: GATv2Conv(dim, dim // heads, heads=heads, add_self_loops=False,
                                   dropout=dropout) for et in self.kg_edge_types}, aggr="mean")
        self.behaviour = BehaviourPropagation(n_behaviours, dim) if n_behaviours > 1 else None
        self.register_buffer("alpha", torch.full((layers + 1,), 1.0 / (layers + 1)))
        known_buffers(self, num_nodes["user"], num_nodes["item"])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for e in self.emb.values():
            nn.init.normal_(e.weight, std=0.1)
        for m in (self.attention, self.behaviour):
            if m is not None:
                m.reset_parameters()

    def forward(self, inputs: HGTInputs) -> NetOut:
        rows = inputs.rows
        if self.training and self.id_dropout > 0:
            # hide some item ids (and a few user ids) behind the default row, so that the
            # default row and the KG path learn to stand in for ids (cold items, new users)
            rows = dict(rows)
            for t, rate in (("item", self.id_dropout), ("user", self.id_dropout / 4)):
                hide = torch.rand(rows[t].shape, device=rows[t].device) < rate
                rows[t] = torch.where(hide, torch.full_like(rows[t], self.num_nodes[t]), rows[t])
        x = {t: self.emb[t](r) for t, r in rows.items()}
        nu = rows["user"].numel()
        step = self._user_item_step(x, inputs)
        if self.kg_conv != "sparse":
            return self._forward_pyg(x, inputs, nu, step)
        block = inputs.kg_block
        weights = self.attention(x, block, "item") if block is not None and \
            self.attention is not None else None
        h = torch.cat([x["user"], x["item"]]).float()
        out = h * self.alpha[0]
        for layer in range(1, self.layers + 1):
            nxt = step(h)
            if weights is not None:
                # sources stacked in the block's relation order: item-item relations read the
                # items' current layer, category/brand relations their (layer-0) embeddings
                src = torch.cat([h[nu:] if r[0] == "item" else x[r[0]].float()
                                 for r in block.relations])
                kg = aggregate(block, weights, src)
                nxt = torch.cat([nxt[:nu], nxt[nu:] + kg])
            h = nxt
            out = out + h * self.alpha[layer]
        return NetOut(out[:nu], out[nu:], x["user"], x["item"])

    def _user_item_step(self, x: dict[str, Tensor], inputs: HGTInputs
                        ) -> Callable[[Tensor], Tensor]:
        """h -> A h over the user-item graph: the normalised history, or the weighted graph of
        every behaviour (minus the training step's own target edges)."""
        if self.behaviour is None or inputs.behaviour is None:
            return lambda h: _SymmetricSpMM.apply(inputs.adj, h)
        g = inputs.behaviour
        values, inv, target_weight = self.behaviour.values(x["user"], x["item"], g)
        held = None
        if inputs.batch is not None:
            held = held_edges(*inputs.batch, inv, target_weight, x["user"].size(0))
        return propagation_step(values, g, held)

    def _forward_pyg(self, x: dict[str, Tensor], inputs: HGTInputs, nu: int,
                     step: Callable[[Tensor], Tensor]) -> NetOut:
        """A PyG HGTConv / GATv2Conv layer (residual) over the KG, then LightGCN."""
        item0 = x["item"]
        if self.attention is not None and inputs.kg_edges:
            kg_x = {t: x[t] for t in {t for et in self.kg_edge_types for t in (et[0], et[2])}}
            out = self.attention(kg_x, inputs.kg_edges)
            if out.get("item") is not None:
                item0 = item0 + out["item"]
        h = torch.cat([x["user"], item0]).float()  # then LightGCN's layer combination
        out = h * self.alpha[0]
        for layer in range(1, self.layers + 1):
            h = step(h)
            out = out + h * self.alpha[layer]
        return NetOut(out[:nu], out[nu:], x["user"], x["item"])


class HGT(LearnsBehaviours, TorchRecommender):
    name = "hgt"
    cold_start = True  # a cold item's embedding comes from its KG neighbours
    COLD_MAP = "cold_map.weight"  # the cold-item map's key among the saved tensors
    COLD_HEAD = "cold_head."  # the prefix of the cold-item scorer's saved tensors

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.cold_weight: Tensor | None = None  # the fitted cold-item map (`cold_map.py`)
        self.cold_head: cold_head.ColdHead | None = None  # its scorer (`cold_head.py`)

    def calibrate(self, split: Split, on_step: Progress | None = None) -> list[dict[str, Any]]:
        """After the network is fitted: the cold-item map (`cfg.cold_map`), the blend, then the
        cold-item scorer (`cfg.cold_head`, on the map)."""
        self.cold_weight, self.cold_head = None, None
        for key in ("cold_map", "cold_head"):
            self.meta.pop(key, None)
        self.invalidate()
        if self.cfg.cold_map:
            item = self.embeddings(split.train_graph)[1]
            self.cold_weight, self.meta["cold_map"] = cold_map.fit(
                split.train_graph, item, self.meta["kg_edge_types"], self.cfg.seed)
            log.info("cold-item map: %s", self.meta["cold_map"])
            self.invalidate()
        record = super().calibrate(split, on_step)
        if self.cfg.cold_head and self.cold_weight is not None:
            if on_step:
                on_step("cold-item scorer", 0, 1)
            user, item = self.embeddings(split.train_graph)
            self.cold_head, self.meta["cold_head"] = cold_head.fit(
                split, user, item, self.cold_weight, self.meta["kg_edge_types"],
                self.meta["cold_map"]["parts"], self.cfg.seed)
            log.info("cold-item scorer: %s", self.meta["cold_head"])
        return record

    @property
    def scores_by_row(self) -> bool:
        return super().scores_by_row or self.cold_head is not None

    def score_users(self, users: Tensor, source: Source = None) -> Tensor:
        scores = super().score_users(users, source)
        if self.cold_head is None:
            return scores
        graph = self._graph(source)
        user, item = self.embeddings(graph)
        return cold_head.apply(self.cold_head, self.meta["cold_head"]["features"], scores,
                               users, graph, user, item)

    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        user, item = super()._embed(graph)
        if self.cold_weight is not None:
            item = cold_map.apply(graph, item, self.cold_weight, self.meta["kg_edge_types"],
                                  self.meta["cold_map"]["parts"])
        return user, item

    def state_tensors(self) -> dict[str, Tensor]:
        state = super().state_tensors()
        if self.cold_weight is not None:
            state[self.COLD_MAP] = self.cold_weight
        if self.cold_head is not None:
            state.update({self.COLD_HEAD + k: v for k, v in self.cold_head.state_dict().items()})
        return state

    def restore(self, meta: dict[str, Any], ids: dict[str, np.ndarray],
                state: dict[str, Tensor]) -> None:
        state = dict(state)
        self.cold_weight = state.pop(self.COLD_MAP, None)
        head = {k[len(self.COLD_HEAD):]: state.pop(k) for k in list(state)
                if k.startswith(self.COLD_HEAD)}
        self.cold_head = None
        if head:
            self.cold_head = cold_head.ColdHead(len(meta["cold_head"]["features"]))
            self.cold_head.load_state_dict(head)
            self.cold_head.eval()
        super().restore(meta, ids, state)

    def prepare(self, split: Split) -> None:
        super().prepare(split)
        self.meta["behaviours"] = [list(et) for et in
                                   self.behaviour_relations(split.train_graph)]

    def behaviours(self) -> list[EdgeType]:
        """The behaviour relations the network was built for (target first)."""
        return [tuple(et) for et in self.meta.get("behaviours", [self.meta["target"]])]

    def _build_net(self) -> nn.Module:
        c = self.cfg
        return HGTNet(self.meta["num_nodes"], [tuple(et) for et in self.meta["kg_edge_types"]],
                      c.dim, c.layers, c.heads, c.kg_conv, c.dropout, c.id_dropout,
                      len(self.behaviours()), attention=c.attention)

    def build(self) -> nn.Module:
        """With several behaviours the pairwise scorer is `BehaviourPair` (wrapping the KG link
        counts when `kg_links` is on)."""
        net = super().build()
        if net.behaviour is not None:
            net.pair = BehaviourPair(self.behaviours()[1:], self.cfg.dim, kg=net.pair)
            net.pair.bind(net.emb, self.node_rows)
        return net

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The behaviour weights (gains, attention priors, pair weights) get `behaviour_lr`."""
        groups = super().parameter_groups()
        if self.net.behaviour is None:
            return groups
        special = [self.net.behaviour.theta, self.net.behaviour.gain, self.net.pair.beta,
                   self.net.pair.user_w, self.net.pair.item_w]
        ids = {id(p) for p in special}
        for g in groups:
            g["params"] = [p for p in g["params"] if id(p) not in ids]
        return [*groups, {"params": special, "weight_decay": 0.0, "lr": self.cfg.behaviour_lr}]

    def step_inputs(self, inputs: HGTInputs, batch: Batch) -> HGTInputs:
        """Training: the step's positive edges are left out of the propagation."""
        if inputs.behaviour is None:
            return inputs
        step = copy.copy(inputs)  # shallow: the graph's tensors are shared, not copied
        step.batch = (batch.users, batch.items)
        return step

    def describe(self) -> dict[str, Any]:
        """The learned behaviour weights, by relation name (empty with one behaviour)."""
        if self.net is None or self.net.behaviour is None:
            return {}
        names = [et[1] for et in self.behaviours()]
        out = {k: dict(zip(names, v)) for k, v in self.net.behaviour.describe().items()}
        out["pair_beta"] = dict(zip(names[1:], self.net.pair.describe()["beta"]))
        return out

    def _inputs(self, graph: Graph, device: torch.device) -> HGTInputs:
        pin = device.type == "cuda"

        def move(t: Tensor) -> Tensor:
            return (t.pin_memory() if pin else t).to(device, non_blocking=pin)

        mine = [tuple(et) for et in self.meta["kg_edge_types"]]
        kg = {et: graph.data[et].edge_index for et in graph.kg_edge_types() if et in mine}
        rows = {t: move(self.node_rows(graph, t)) for t in self.meta["num_nodes"]}
        if len(self.behaviours()) > 1:
            inputs = HGTInputs(rows, None, behaviour=BehaviourInputs.build(
                graph, self.behaviours(), device))
        else:
            inputs = HGTInputs(rows, normalized_adjacency(graph.history, graph.n_users,
                                                          graph.n_items, device))
        if self.cfg.kg_conv == "sparse":
            num = {t: int(graph.data[t].num_nodes) for t in graph.data.node_types}
            item_rels = [et for et in mine if et[2] == "item" and et in kg]
            blocks = build_blocks(kg, num, item_rels)
            if "item" in blocks:
                inputs.kg_block = blocks["item"].to(device)
        else:
            inputs.kg_edges = {et: move(ei) for et, ei in kg.items()}
        return inputs
