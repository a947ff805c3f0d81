"""One small interface for every recommender: networks + scoring (+ their state for saving).

    model.prepare(split)                       record the training graph's ids and shape
    model.embeddings(graph | snapshot | None)  -> (user_emb, item_emb)
    model.score_users(users)                   -> [B, n_items] scores
    model.score(users, items)                  -> scores of (user, item) pairs
    model.recommend(users, k, exclude_seen)    -> (items [B, k], scores [B, k])
    model.similar_items(items, k)              -> (items [B, k], scores [B, k])
    model.state_tensors() / model.restore(meta, ids, state)   what a checkpoint holds

Fitting is `gnn.trainer.Trainer`'s job (seeds, data-parallel, resume, early stopping, budget,
negatives, autocast); files are `gnn.checkpoint`'s (through `RunDir`): a model never opens one.
A trainable model (`TorchRecommender`) offers the trainer its network, the typed inputs of its
forward (a dataclass per model family), and its loss as named terms (`loss_terms`: add a term to
add a loss, e.g. auxiliary behaviours). Scores are the dot product of user and item embeddings
plus optional pairwise features (`gnn.models.pairwise`): `dot_product_only` tells callers
that read embeddings directly (bare matmul scoring) whether that is the whole score.

Indices are those of the *current graph* (`model.graph`, set by the trainer to the split's eval
graph, or by `model.use(graph_or_snapshot)`): a snapshot exported later may order nodes
differently, so models map it onto their own rows by id, and nodes they never saw get a
default row.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.progress import Progress
from gnn import losses
from gnn.config import TrainConfig
from gnn.data import Graph, Split, graph_from_snapshot
from gnn.evaluate import topk_scores
from gnn.models.blend import Blend
from gnn.models.pairwise import KGLinkCounts
from gnn.snapshot import GraphSnapshot

ROW_BLOCK = 1024  # pairs per block when pair scores are taken from whole rows

Source = Graph | GraphSnapshot | None


class Recommender(abc.ABC):
    name: ClassVar[str]
    trainable: ClassVar[bool] = False  # has parameters for the trainer to fit
    # True when the model scores items without interactions from what it can see (the KG);
    # the others report no cold-item metric (their cold "ranking" would be tie order)
    cold_start: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.ids: dict[str, np.ndarray] = {}  # id maps of the training graph
        self.meta: dict[str, Any] = {}  # what rebuilds the model besides cfg (meta.json)
        self.graph: Graph | None = None
        self._emb: tuple[Graph, Tensor, Tensor] | None = None
        self._snap: tuple[GraphSnapshot, Graph] | None = None

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        """(user_emb, item_emb) for the nodes of `graph`, on the CPU."""

    def state_tensors(self) -> dict[str, Tensor]:
        return {}

    def restore(self, meta: dict[str, Any], ids: dict[str, np.ndarray],
                state: dict[str, Tensor]) -> None:
        """Rebuild from a checkpoint's parts (see gnn.checkpoint)."""
        self.meta, self.ids = meta, ids
        self.invalidate()

    # ------------------------------------------------------------------ graphs
    def prepare(self, split: Split) -> None:
        """Record what the training graph fixes: id maps, node counts, relation types."""
        g = split.train_graph
        self.ids = g.ids
        self.meta = {"target": list(g.target),
                     "num_nodes": {t: int(g.data[t].num_nodes) for t in g.data.node_types},
                     "kg_edge_types": [list(et) for et in g.kg_edge_types()
                                       if kg_kept(et, self.cfg.kg_exclude)]}
        self.invalidate()

    @property
    def scores_cold_items(self) -> bool:
        """Whether an item without interactions gets a score of its own (else: no cold metric)."""
        return self.cold_start

    def _graph(self, source: Source) -> Graph:
        if source is None:
            if self.graph is None:
                raise RuntimeError("no current graph: train the model or use(graph) first")
            return self.graph
        if isinstance(source, GraphSnapshot):
            if self._snap is None or self._snap[0] is not source:
                self._snap = (source, graph_from_snapshot(source, self.meta["target"][1]))
            return self._snap[1]
        return source

    def use(self, source: Graph | GraphSnapshot) -> Graph:
        """Make `source` the current graph (history and neighbourhoods for recommend/score)."""
        self.graph = self._graph(source)
        self.invalidate()
        return self.graph

    def rows(self, graph: Graph, node_type: str) -> Tensor:
        """Row of the model's tables for each node of `graph` (-1: unknown to the model)."""
        mine = self.ids[node_type]
        theirs = graph.ids[node_type]
        if theirs is mine or (len(theirs) == len(mine) and (theirs == mine).all()):
            return torch.arange(len(mine))
        return torch.from_numpy(pd.Index(mine).get_indexer(theirs).astype(np.int64))

    def invalidate(self) -> None:
        """Forget cached embeddings (the weights or the graph changed)."""
        self._emb = None

    # ------------------------------------------------------------------ inference
    @property
    def dot_product_only(self) -> bool:
        """True when score(u, i) is exactly <user_emb[u], item_emb[i]> (no pairwise part)."""
        return True

    def embeddings(self, source: Source = None) -> tuple[Tensor, Tensor]:
        graph = self._graph(source)
        if self._emb is None or self._emb[0] is not graph:
            self._emb = (graph, *self._embed(graph))
        return self._emb[1], self._emb[2]

    @property
    def scores_by_row(self) -> bool:
        """A pair's score depends on the user's whole row (e.g. a row standardised per user):
        `score` takes each pair from `score_users`."""
        return False

    def score_users(self, users: Tensor, source: Source = None) -> Tensor:
        """[len(users), n_items] scores (embeddings may be sparse, e.g. itemknn)."""
        u, i = self.embeddings(source)
        if i.is_sparse:
            rows = u.index_select(0, users).to_dense() if u.is_sparse else u[users]
            return torch.sparse.mm(i, rows.T.contiguous()).T.contiguous()
        return u[users] @ i.T

    def score(self, users: Tensor, items: Tensor, source: Source = None) -> Tensor:
        """The scores of the pairs (users[k], items[k]): a dot product of dense embeddings, else
        (`scores_by_row`, or sparse embeddings) gathered from the users' rows, in blocks."""
        if not self.scores_by_row:
            u, i = self.embeddings(source)
            if not (u.is_sparse or i.is_sparse):
                return (u[users] * i[items]).sum(-1)
        if not len(users):
            return torch.zeros(0)
        return torch.cat([self.score_users(u, source).gather(1, i.view(-1, 1)).view(-1)
                          for u, i in zip(users.split(ROW_BLOCK), items.split(ROW_BLOCK))])

    def recommend(self, users: Tensor, k: int = 10, exclude_seen: bool = True, *,
                  source: Source = None,
                  candidates: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Top-k items per user; seen items (the graph's history) excluded; item -1 pads when
        fewer than k candidates are left."""
        graph = self._graph(source)
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        scores = self.score_users(users, graph).float()
        return topk_scores(scores, k, graph.history if exclude_seen else None, users, candidates)

    def similar_items(self, items: Tensor, k: int = 10,
                      source: Source = None) -> tuple[Tensor, Tensor]:
        """Top-k items by cosine similarity of item embeddings, the item itself excluded."""
        _, emb = self.embeddings(source)
        emb = emb.to_dense() if emb.is_sparse else emb
        items = torch.as_tensor(items, dtype=torch.long).view(-1)
        normed = F.normalize(emb.float(), dim=1)
        sims = normed[items] @ normed.T
        sims[torch.arange(len(items)), items] = -torch.inf
        val, idx = sims.topk(min(k, sims.size(1) - 1), dim=1)
        return idx, val

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(cls, path) -> Recommender:
        """The model saved in `path` (kept for callers outside gnn; the files are read by
        gnn.checkpoint: prefer `RunDir.load_model()`)."""
        from gnn.checkpoint import load_model

        return load_model(path)


class MemoryRecommender(Recommender):
    """A recommender without parameters: its scores are computed from the current graph's
    history (so fold-in is free); the trainer only records the graph and measures validation."""

    def fit(self, split: Split, on_step: Progress | None = None) -> list[dict[str, Any]]:
        """Fit what little there is (a few weights) on the split's *validation* edges with its
        training graph, reporting each evaluation to `on_step`; the record of the search (one
        entry per evaluation). Default: nothing."""
        return []


# ---------------------------------------------------------------------- neural models

@dataclass
class NetOut:
    user: Tensor  # final embeddings, one row per node of the graph
    item: Tensor
    user0: Tensor  # layer-0 (input) embeddings: regularised
    item0: Tensor


@dataclass
class IdRows:
    """Inputs of the id-embedding models (mf): each node's row in the embedding tables (unknown
    nodes: the default row)."""

    user: Tensor
    item: Tensor


@dataclass
class Batch:
    """One training step's data, as the trainer hands it to `loss_terms`."""

    users: Tensor  # [B] positives' users (on the device)
    items: Tensor  # [B] positives' items
    negatives: Tensor  # bpr: [B, neg_samples] per positive; softmax: [neg_samples] shared
    graph: Graph  # the training graph (history, auxiliary behaviours, KG)
    pool: Tensor  # the items that may be drawn as negatives (warm items)
    generator: torch.Generator  # seeded per rank and epoch: for any extra sampling


class TorchRecommender(Recommender):
    """A recommender whose embeddings come from an `nn.Module` (`self.net`), trained by
    `gnn.trainer.Trainer` with BPR or sampled softmax over uniform negatives (one full-graph
    forward per mini-batch of positive edges)."""

    trainable = True

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.net: nn.Module | None = None
        self._blend: Blend | None = None

    @abc.abstractmethod
    def _build_net(self) -> nn.Module:
        """The module, sized from `self.meta` / `self.ids` and `self.cfg`."""

    @abc.abstractmethod
    def _inputs(self, graph: Graph, device: torch.device) -> Any:
        """The typed inputs (a dataclass) `net.forward` takes for `graph`."""

    # -------------------------------------------------------------- network and inputs
    def build(self) -> nn.Module:
        """A fresh network (weights from the current torch seed), with the optional pairwise
        scorer (`pair`) as a submodule: its weights train and save with the network's."""
        net = self._build_net()
        net.pair = KGLinkCounts(self.item_relations()) if self.cfg.kg_links else None
        self.net = net
        self.invalidate()
        return net

    def mark_known(self, split: Split) -> None:
        """Record which users and items have training interactions (the others get the
        default rows)."""
        known_user = torch.zeros(split.train_graph.n_users, dtype=torch.bool)
        known_user[split.train[0]] = True
        known_item = torch.zeros(split.train_graph.n_items, dtype=torch.bool)
        known_item[split.train[1]] = True
        self.net.known_user.copy_(known_user)
        self.net.known_item.copy_(known_item)

    def item_relations(self) -> list[tuple[str, str, str]]:
        return [tuple(et) for et in self.meta["kg_edge_types"]
                if et[0] == "item" and et[2] == "item"]

    def inputs(self, graph: Graph, device: torch.device) -> Any:
        """`_inputs` computed once per graph, device and network."""
        key = f"{self.name}:{device}:{id(self.net)}"
        if key not in graph.cache:
            graph.cache[key] = self._inputs(graph, device)
        return graph.cache[key]

    def step_inputs(self, inputs: Any, batch: Batch) -> Any:
        """The inputs of one training step's forward: the graph's, unless the model changes
        them per step (multi-behaviour `hgt` leaves the step's own target edges out)."""
        return inputs

    def node_rows(self, graph: Graph, node_type: str) -> Tensor:
        """Rows for the graph's nodes; unknown nodes and nodes without training interactions
        (users/items) get the default row (the table's last)."""
        rows = self.rows(graph, node_type)
        n = len(self.ids[node_type])
        known = getattr(self.net, f"known_{node_type}", None)
        ok = rows >= 0
        if known is not None:
            ok &= known.cpu()[rows.clamp(min=0)]
        return torch.where(ok, rows, torch.full_like(rows, n))

    def state_tensors(self) -> dict[str, Tensor]:
        assert self.net is not None, "model not trained or loaded"
        return self.net.state_dict()

    def restore(self, meta: dict[str, Any], ids: dict[str, np.ndarray],
                state: dict[str, Tensor]) -> None:
        super().restore(meta, ids, state)
        self.build().load_state_dict(state)

    # -------------------------------------------------------------- scoring
    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        assert self.net is not None, "model not trained or loaded"
        device = next(self.net.parameters()).device
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            out = self.net(self.inputs(graph, device))
        self.net.train(was_training)
        return out.user.float().cpu(), out.item.float().cpu()

    @property
    def blend(self) -> Blend:
        """The fusion with the no-learning scorers (`gnn.models.blend`; fitted by `calibrate`,
        saved in `meta["blend"]`)."""
        meta = self.meta.setdefault("blend", {})
        if self._blend is None or self._blend.meta is not meta:
            self._blend = Blend(self.cfg, meta)
        return self._blend

    def calibrate(self, split: Split, on_step: Progress | None = None) -> list[dict[str, Any]]:
        """After the network is fitted: fit the blend on validation (`cfg.blend`); the record."""
        record = self.blend.fit(self, split, on_step) if self.cfg.blend != "off" else []
        self.invalidate()
        return record

    @property
    def dot_product_only(self) -> bool:
        return self.net is None or (self.net.pair is None and not self.scores_by_row)

    @property
    def scores_cold_items(self) -> bool:
        # with kg_links or a kglink blend a cold item is scored by its links to the history
        return self.cold_start or (self.cfg.kg_links and bool(self.item_relations())) or \
            "kglink" in {n for n, p in self.blend.meta.items() if p.get("alpha")}

    def score_users(self, users: Tensor, source: Source = None) -> Tensor:
        scores = super().score_users(users, source)
        graph = self._graph(source)
        if self.net is not None and self.net.pair is not None:
            pair = self.net.pair
            with torch.no_grad():
                scores = scores + pair.block(pair.table(graph), users)
        if self.blend.active:
            scores = self.blend.apply(scores, users, graph)
        return scores

    @property
    def scores_by_row(self) -> bool:
        return self.blend.active  # the blend standardises each user's row

    def score(self, users: Tensor, items: Tensor, source: Source = None) -> Tensor:
        scores = super().score(users, items, source)
        if not (self.scores_by_row or self.dot_product_only):  # add the pair term
            pair, graph = self.net.pair, self._graph(source)
            dev = pair.weight.device  # (the network may still be on the GPU mid-training)
            with torch.no_grad():
                extra = pair(pair.table(graph, dev), users.to(dev), items.to(dev))
            scores = scores + extra.cpu()
        return scores

    # -------------------------------------------------------------- training
    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimizer groups: embeddings are regularised per batch (cfg.reg), so weight decay
        and the smaller dense_lr apply to the dense (non-embedding) parameters only (the
        pairwise weights, a few scalars, move at the embeddings' rate)."""
        emb_ids = {id(p) for m in self.net.modules() if isinstance(m, (nn.Embedding,
                                                                       KGLinkCounts))
                   for p in m.parameters()}
        emb = [p for p in self.net.parameters() if id(p) in emb_ids]
        dense = [p for p in self.net.parameters() if id(p) not in emb_ids]
        groups = [{"params": emb, "weight_decay": 0.0, "lr": self.cfg.lr}]
        if dense:
            groups.append({"params": dense, "weight_decay": self.cfg.weight_decay,
                           "lr": self.cfg.dense_lr})
        return groups

    def loss_terms(self, out: NetOut, batch: Batch) -> dict[str, Tensor]:
        """The loss as named terms (summed by the trainer, each recorded per epoch): BPR over
        per-positive negatives [B, k], or sampled softmax over negatives shared by the batch [K]
        (a negative equal to the row's positive is masked; other accidental hits, ~K * 7 / 12k
        per row on Beauty, are left in); L2 on the batch's layer-0 embeddings; with
        `aux_weight`, one auxiliary BPR term per other behaviour of the graph. A subclass adds
        a loss by adding a term."""
        cfg, u, i, neg = self.cfg, batch.users, batch.items, batch.negatives
        pair = self.net.pair
        table = pair.table(batch.graph, u.device) if pair is not None else None
        ue, pe = out.user[u], out.item[i]
        pos_s = (ue * pe).sum(-1)
        if pair is not None:
            pos_s = pos_s + pair(table, u, i)
        terms: dict[str, Tensor] = {}
        if cfg.loss == "bpr":
            neg_s = (ue.unsqueeze(1) * out.item[neg]).sum(-1)  # [B, k]
            if pair is not None:
                neg_s = neg_s + pair(table, u.unsqueeze(1), neg)
            terms["bpr"] = losses.bpr(pos_s, neg_s)
            neg_reg = out.item0[neg].pow(2).sum() / neg.size(1)
        else:
            neg_s = ue @ out.item[neg].T  # [B, K]
            if pair is not None:
                neg_s = neg_s + pair(table, u.unsqueeze(1), neg.unsqueeze(0))
            neg_s = neg_s.masked_fill(neg.unsqueeze(0) == i.unsqueeze(1), -torch.inf)
            terms["softmax"] = losses.sampled_softmax(pos_s, neg_s, cfg.temperature)
            neg_reg = out.item0[neg].pow(2).sum() * len(u) / neg.numel()
        if cfg.reg:
            reg = (out.user0[u].pow(2).sum() + out.item0[i].pow(2).sum() + neg_reg) / (2 * len(u))
            terms["reg"] = cfg.reg * reg
        if cfg.aux_weight:
            def score(users: Tensor, items: Tensor) -> Tensor:
                s = (out.user[users] * out.item[items]).sum(-1)
                return s + pair(table, users, items) if pair is not None else s

            for name, term in losses.behaviour_bpr(score, batch.graph, len(u), batch.pool,
                                                   batch.generator, u.device).items():
                terms[name] = cfg.aux_weight * term
        return terms


def kg_kept(et, exclude: str) -> bool:
    """Whether the KG relation `et` stays in the model's graph under `kg_exclude` (a comma list
    of "item-item", "brand", "category": ablations drop those relations, both directions)."""
    drop = {x.strip() for x in exclude.split(",") if x.strip()}
    if "item-item" in drop and et[0] == et[2] == "item":
        return False
    return not any(t in drop for t in (et[0], et[2]))


def known_buffers(net: nn.Module, n_users: int, n_items: int) -> None:
    """Register the masks of users/items seen in training (saved with the weights)."""
    net.register_buffer("known_user", torch.ones(n_users, dtype=torch.bool))
    net.register_buffer("known_item", torch.ones(n_items, dtype=torch.bool))
