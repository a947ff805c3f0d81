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

Why this shape: on Beauty, LightGCN-style linear propagation trains faster and better than
stacks of transformed attention layers (a residual HGT layer in front of LightGCN was measured
below LightGCN alone), while the KG relations carry most of the signal LightGCN lacks. The
attention decides how much each related item counts; propagation spreads it to users.

`kg_conv="hgt"` / `"gat"` instead put one PyG HGTConv / GATv2Conv-per-relation (HeteroConv)
layer, residual, in front of the LightGCN propagation (slower on CPU: ~8 s per step on Beauty).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv, HeteroConv, HGTConv

from gnn.data import EdgeType, Graph
from gnn.models.base import NetOut, TorchRecommender, known_buffers
from gnn.models.lightgcn import _SymmetricSpMM, normalized_adjacency, propagate
from gnn.models.sparse_attention import DstBlock, RelationAttention, aggregate, build_blocks


@dataclass
class HGTInputs:
    """Inputs of the heterogeneous models: id rows per node type, the normalised user-item
    adjacency, and the KG relations ending in an item, as a sparse block (`kg_conv="sparse"`)
    or as PyG edge indices (`"hgt"` / `"gat"`); None / empty when the graph has none."""

    rows: dict[str, Tensor]  # node type -> row of each node in that type's embedding table
    adj: Tensor  # sparse CSR [n_users + n_items, n_users + n_items]
    kg_block: DstBlock | None = None
    kg_edges: dict[EdgeType, Tensor] | None = None


class HGTNet(nn.Module):
    def __init__(self, num_nodes: dict[str, int], kg_edge_types: list[EdgeType], dim: int,
                 layers: int, heads: int, kg_conv: str = "sparse", dropout: float = 0.0,
                 id_dropout: float = 0.0, attention: bool = True) -> None:
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
        self.register_buffer("alpha", torch.full((layers + 1,), 1.0 / (layers + 1)))
        known_buffers(self, num_nodes["user"], num_nodes["item"])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for e in self.emb.values():
            nn.init.normal_(e.weight, std=0.1)
        if self.attention is not None:
            self.attention.reset_parameters()

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
        if self.kg_conv != "sparse":
            return self._forward_pyg(x, inputs, nu)
        adj = inputs.adj
        block = inputs.kg_block
        weights = self.attention(x, block, "item") if block is not None and \
            self.attention is not None else None
        h = torch.cat([x["user"], x["item"]]).float()
        out = h * self.alpha[0]
        for layer in range(1, self.layers + 1):
            nxt = _SymmetricSpMM.apply(adj, h)
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

    def _forward_pyg(self, x: dict[str, Tensor], inputs: HGTInputs, nu: int) -> NetOut:
        """A PyG HGTConv / GATv2Conv layer (residual) over the KG, then LightGCN."""
        item0 = x["item"]
        if self.attention is not None and inputs.kg_edges:
            kg_x = {t: x[t] for t in {t for et in self.kg_edge_types for t in (et[0], et[2])}}
            out = self.attention(kg_x, inputs.kg_edges)
            if out.get("item") is not None:
                item0 = item0 + out["item"]
        out = propagate(self.alpha, torch.cat([x["user"], item0]), inputs.adj)
        return NetOut(out[:nu], out[nu:], x["user"], x["item"])


class HGT(TorchRecommender):
    name = "hgt"
    cold_start = True  # a cold item's embedding comes from its KG neighbours

    def _build_net(self) -> nn.Module:
        c = self.cfg
        return HGTNet(self.meta["num_nodes"], [tuple(et) for et in self.meta["kg_edge_types"]],
                      c.dim, c.layers, c.heads, c.kg_conv, c.dropout, c.id_dropout,
                      attention=c.attention)

    def _inputs(self, graph: Graph, device: torch.device) -> HGTInputs:
        pin = device.type == "cuda"

        def move(t: Tensor) -> Tensor:
            return (t.pin_memory() if pin else t).to(device, non_blocking=pin)

        mine = [tuple(et) for et in self.meta["kg_edge_types"]]
        kg = {et: graph.data[et].edge_index for et in graph.kg_edge_types() if et in mine}
        inputs = HGTInputs(
            rows={t: move(self.node_rows(graph, t)) for t in self.meta["num_nodes"]},
            adj=normalized_adjacency(graph.history, graph.n_users, graph.n_items, device))
        if self.cfg.kg_conv == "sparse":
            num = {t: int(graph.data[t].num_nodes) for t in graph.data.node_types}
            item_rels = [et for et in mine if et[2] == "item" and et in kg]
            blocks = build_blocks(kg, num, item_rels)
            if "item" in blocks:
                inputs.kg_block = blocks["item"].to(device)
        else:
            inputs.kg_edges = {et: move(ei) for et, ei in kg.items()}
        return inputs
