"""One small interface for every recommender, and the training loop the neural ones share.

    model.fit(split, cfg, callback)            -> FitResult
    model.embeddings(graph | snapshot | None)  -> (user_emb, item_emb)   score = <user, item>
    model.score(users, items)                  -> scores of (user, item) pairs
    model.recommend(users, k, exclude_seen)    -> (items [B, k], scores [B, k])
    model.similar_items(items, k)              -> (items [B, k], scores [B, k])
    model.save(path) / Recommender.load(path)  -> a directory: model.pt (tensors only, loaded with
                                                  weights_only=True), config.json, meta.json,
                                                  ids.json (the id maps of the training graph)

Indices are those of the *current graph* (`model.graph`, set by `fit` to the split's eval graph,
or by `model.use(graph_or_snapshot)`): a snapshot exported later may order nodes differently,
so models map it onto their own rows by id, and nodes they never saw get a default row.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import RunNotFound
from gnn.config import TrainConfig
from gnn.data import Graph, Split, graph_from_snapshot, pair_keys, sample_negatives
from gnn.evaluate import evaluate, topk_scores
from gnn.runtime import rank_world, resolve_device
from gnn.snapshot import GraphSnapshot

log = logging.getLogger(__name__)

Source = Graph | GraphSnapshot | None
FORMAT = 1


@dataclass
class EpochLog:
    epoch: int  # 1-based
    loss: float | None
    val: dict[str, float] | None  # validation metrics when this epoch was evaluated
    seconds: float  # since the start of fit
    best: bool = False


@dataclass
class FitResult:
    epochs: int = 0
    best_epoch: int = 0
    best_score: float = float("nan")  # validation NDCG@20 at best_epoch
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


Callback = Callable[[EpochLog], None]


class Recommender(abc.ABC):
    name: ClassVar[str]

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.ids: dict[str, np.ndarray] = {}  # id maps of the training graph
        self.meta: dict[str, Any] = {}  # what rebuilds the model besides cfg (meta.json)
        self.graph: Graph | None = None
        self._emb: tuple[Graph, Tensor, Tensor] | None = None
        self._snap: tuple[GraphSnapshot, Graph] | None = None

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def fit(self, split: Split, cfg: TrainConfig | None = None, callback: Callback | None = None,
            *, checkpoint_dir: Path | None = None, resume: bool = False) -> FitResult: ...

    @abc.abstractmethod
    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        """(user_emb, item_emb) for the nodes of `graph`, on the CPU."""

    @abc.abstractmethod
    def state_tensors(self) -> dict[str, Tensor]: ...

    @abc.abstractmethod
    def load_state_tensors(self, state: dict[str, Tensor]) -> None: ...

    # ------------------------------------------------------------------ graphs
    def _setup(self, split: Split) -> None:
        g = split.train_graph
        self.ids = g.ids
        self.meta = {"target": list(g.target),
                     "num_nodes": {t: int(g.data[t].num_nodes) for t in g.data.node_types},
                     "kg_edge_types": [list(et) for et in g.kg_edge_types()]}

    def _graph(self, source: Source) -> Graph:
        if source is None:
            if self.graph is None:
                raise RuntimeError("no current graph: call fit() or use(graph_or_snapshot) first")
            return self.graph
        if isinstance(source, GraphSnapshot):
            if self._snap is None or self._snap[0] is not source:
                self._snap = (source, graph_from_snapshot(source, self.meta["target"][1]))
            return self._snap[1]
        return source

    def use(self, source: Graph | GraphSnapshot) -> Graph:
        """Make `source` the current graph (history and neighbourhoods for recommend/score)."""
        self.graph = self._graph(source)
        return self.graph

    def rows(self, graph: Graph, node_type: str) -> Tensor:
        """Row of the model's tables for each node of `graph` (-1: unknown to the model)."""
        mine = self.ids[node_type]
        theirs = graph.ids[node_type]
        if theirs is mine or (len(theirs) == len(mine) and (theirs == mine).all()):
            return torch.arange(len(mine))
        return torch.from_numpy(pd.Index(mine).get_indexer(theirs).astype(np.int64))

    def _invalidate(self) -> None:
        self._emb = None

    # ------------------------------------------------------------------ inference
    def embeddings(self, source: Source = None) -> tuple[Tensor, Tensor]:
        graph = self._graph(source)
        if self._emb is None or self._emb[0] is not graph:
            self._emb = (graph, *self._embed(graph))
        return self._emb[1], self._emb[2]

    def score_users(self, users: Tensor, source: Source = None) -> Tensor:
        """[len(users), n_items] scores (embeddings may be sparse, e.g. itemknn)."""
        u, i = self.embeddings(source)
        if i.is_sparse:
            rows = u.index_select(0, users).to_dense() if u.is_sparse else u[users]
            return torch.sparse.mm(i, rows.T.contiguous()).T.contiguous()
        return u[users] @ i.T

    def score(self, users: Tensor, items: Tensor, source: Source = None) -> Tensor:
        u, i = self.embeddings(source)
        if u.is_sparse or i.is_sparse:
            block = self.score_users(users, source)
            return block.gather(1, items.view(-1, 1)).view(-1)
        return (u[users] * i[items]).sum(-1)

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
    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu().contiguous() for k, v in self.state_tensors().items()},
                   path / "model.pt")
        self.cfg.save(path / "config.json")
        (path / "meta.json").write_text(json.dumps({"format": FORMAT, "model": self.name,
                                                    **self.meta}, indent=1))
        (path / "ids.json").write_text(json.dumps({t: v.tolist() for t, v in self.ids.items()}))

    @classmethod
    def load(cls, path: Path) -> Recommender:
        from gnn.models import create

        path = Path(path)
        if not (path / "model.pt").exists():
            raise RunNotFound(f"no saved model in {path} (expected model.pt): train it first")
        cfg = TrainConfig.load(path / "config.json")
        meta = json.loads((path / "meta.json").read_text())
        meta.pop("format", None)
        meta.pop("model", None)
        model = create(cfg.model, cfg)
        model.meta = meta
        model.ids = {t: np.array(v, dtype=object) for t, v in
                     json.loads((path / "ids.json").read_text()).items()}
        model.load_state_tensors(torch.load(path / "model.pt", weights_only=True,
                                            map_location="cpu"))
        return model


# ---------------------------------------------------------------------- neural models

@dataclass
class NetOut:
    user: Tensor  # final embeddings, one row per node of the graph
    item: Tensor
    user0: Tensor  # layer-0 (input) embeddings: regularised
    item0: Tensor


class TorchRecommender(Recommender):
    """A recommender whose embeddings come from an `nn.Module` trained with BPR or sampled
    softmax over uniform negatives; one full-graph forward per mini-batch of positive edges
    (no neighbour sampling: pyg-lib / torch-sparse are not installed), early stopping on
    validation NDCG@20, data-parallel under torch.distributed."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self.net: nn.Module | None = None

    @abc.abstractmethod
    def _build_net(self) -> nn.Module:
        """The module, sized from `self.meta` / `self.ids` and `self.cfg`."""

    @abc.abstractmethod
    def _inputs(self, graph: Graph, device: torch.device) -> dict[str, Any]:
        """The tensors `net.forward` takes for `graph` (computed once per graph and device)."""

    # -------------------------------------------------------------- helpers for subclasses
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

    def _cached_inputs(self, graph: Graph, device: torch.device) -> dict[str, Any]:
        key = f"{self.name}:{device}:{id(self.net)}"
        if key not in graph.cache:
            graph.cache[key] = self._inputs(graph, device)
        return graph.cache[key]

    def _embed(self, graph: Graph) -> tuple[Tensor, Tensor]:
        assert self.net is not None, "model not fitted or loaded"
        device = next(self.net.parameters()).device
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            out = self.net(self._cached_inputs(graph, device))
        self.net.train(was_training)
        return out.user.float().cpu(), out.item.float().cpu()

    def state_tensors(self) -> dict[str, Tensor]:
        assert self.net is not None
        return self.net.state_dict()

    def load_state_tensors(self, state: dict[str, Tensor]) -> None:
        self.net = self._build_net()
        self.net.load_state_dict(state)

    # -------------------------------------------------------------- training
    def fit(self, split: Split, cfg: TrainConfig | None = None, callback: Callback | None = None,
            *, checkpoint_dir: Path | None = None, resume: bool = False) -> FitResult:
        cfg = self.cfg = cfg or self.cfg
        rank, world = rank_world()
        device = resolve_device(cfg.device)
        self._setup(split)
        torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
        self.net = self._build_net()
        g = split.train_graph
        n_items = g.n_items
        known_user = torch.zeros(g.n_users, dtype=torch.bool)
        known_user[split.train[0]] = True
        known_item = torch.zeros(n_items, dtype=torch.bool)
        known_item[split.train[1]] = True
        self.net.known_user.copy_(known_user)
        self.net.known_item.copy_(known_item)
        self.net.to(device)
        model: nn.Module = self.net
        if world > 1:
            model = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        opt = self._optimizer(cfg)
        res = FitResult()
        best_state: dict[str, Tensor] | None = None
        bad = 0
        start_epoch = 0
        ckpt = checkpoint_dir / "train_state.pt" if checkpoint_dir else None
        if resume and ckpt is not None and ckpt.exists():
            st = torch.load(ckpt, weights_only=True, map_location=device)
            self.net.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            best_state = st["best_model"]
            start_epoch, bad = int(st["epoch"]), int(st["bad"])
            res = FitResult(**json.loads(st["result"]))
            log.info("resuming after epoch %d (best %.4f at %d)", start_epoch, res.best_score,
                     res.best_epoch)
        elif resume:
            log.warning("--resume: no checkpoint in %s, starting from scratch", checkpoint_dir)

        inputs = self._cached_inputs(g, device)
        pos = split.train
        known = pair_keys(pos, n_items).sort().values
        pool = torch.nonzero(split.warm_items).view(-1)  # cold items are never negatives
        has_val = split.val.size(1) > 0
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
        t0 = time.perf_counter() - res.seconds
        for epoch in range(start_epoch, cfg.epochs):
            # per-epoch seeds: the same batches on every rank, and an exact resume
            torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + rank)
            order = torch.randperm(pos.size(1),
                                   generator=torch.Generator().manual_seed(cfg.seed * 1_009 + epoch))
            neg_gen = torch.Generator().manual_seed(cfg.seed * 10_007 + epoch * 101 + rank)
            self.net.train()
            total, steps = 0.0, 0
            for batch in order.split(cfg.batch_size):
                if len(batch) < world:
                    continue  # every rank must take part in every step
                idx = batch[rank::world]
                u, i = pos[0, idx], pos[1, idx]
                if cfg.loss == "softmax":
                    # one set of negatives shared by the whole batch: a [B, K] matmul instead of
                    # a [B, K, D] gather, so K can be large
                    neg = pool[torch.randint(len(pool), (cfg.neg_samples,), generator=neg_gen)]
                else:
                    neg = sample_negatives(u, cfg.neg_samples, known, pool, n_items, neg_gen)
                u, i, neg = u.to(device), i.to(device), neg.to(device)
                with autocast:
                    out = model(inputs)
                    loss = self._loss(out, u, i, neg, cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            self._invalidate()
            loss_avg = total / max(steps, 1)
            val = None
            last = epoch + 1 == cfg.epochs
            out_of_time = cfg.max_minutes is not None and \
                time.perf_counter() - t0 > cfg.max_minutes * 60
            stop = False
            if (epoch + 1) % cfg.eval_every == 0 or last or out_of_time:
                score = float("nan")
                if rank == 0:
                    if has_val:
                        val = evaluate(self, g, split.val, split.warm_items, (20,), cfg.eval_batch)
                        score = val["ndcg@20"]
                    else:
                        score = -loss_avg  # no validation set: keep the last state
                score = _broadcast(score, device)
                improved = not (score <= res.best_score)  # also true for the first (nan best)
                if improved:
                    res.best_score, res.best_epoch = score, epoch + 1
                    res.seconds_to_best = time.perf_counter() - t0
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                    bad = 0
                else:
                    bad += 1
                stop = bad >= cfg.patience
            res.epochs = epoch + 1
            res.seconds = time.perf_counter() - t0
            entry = {"epoch": epoch + 1, "loss": loss_avg, "seconds": round(res.seconds, 2)}
            if val is not None:
                entry.update({f"val_{k}": v for k, v in val.items() if k != "users"})
            res.history.append(entry)
            if rank == 0 and ckpt is not None and val is not None:
                self._checkpoint(ckpt, opt, best_state, epoch + 1, bad, res)
            if callback and rank == 0:
                callback(EpochLog(epoch + 1, loss_avg, val, res.seconds,
                                  best=res.best_epoch == epoch + 1 and val is not None))
            if stop or out_of_time:
                log.info("stopping after epoch %d (%s)", epoch + 1,
                         "no improvement" if stop else "time limit")
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.to("cpu")
        self.graph = split.eval_graph
        self._invalidate()
        return res

    def _checkpoint(self, path: Path, opt: torch.optim.Optimizer,
                    best_state: dict[str, Tensor] | None, epoch: int, bad: int,
                    res: FitResult) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"model": self.net.state_dict(), "optimizer": opt.state_dict(),
                    "best_model": best_state, "epoch": epoch, "bad": bad,
                    "result": json.dumps(asdict(res))}, tmp)
        tmp.replace(path)  # atomic: a crash mid-write leaves the previous checkpoint

    def _optimizer(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        # embeddings are regularised per batch (cfg.reg); weight decay only for dense layers
        emb_ids = {id(p) for m in self.net.modules() if isinstance(m, nn.Embedding)
                   for p in m.parameters()}
        emb = [p for p in self.net.parameters() if id(p) in emb_ids]
        dense = [p for p in self.net.parameters() if id(p) not in emb_ids]
        groups = [{"params": emb, "weight_decay": 0.0}]
        if dense:
            groups.append({"params": dense, "weight_decay": cfg.weight_decay, "lr": cfg.dense_lr})
        return torch.optim.AdamW(groups, lr=cfg.lr)

    @staticmethod
    def _loss(out: NetOut, u: Tensor, i: Tensor, neg: Tensor, cfg: TrainConfig) -> Tensor:
        """BPR over per-positive negatives `neg` [B, k], or sampled softmax over negatives
        shared by the batch `neg` [K] (a negative equal to the row's positive is masked; other
        accidental hits, ~K * 7 / 12k per row on Beauty, are left in)."""
        ue, pe = out.user[u], out.item[i]
        pos_s = (ue * pe).sum(-1)
        if cfg.loss == "bpr":
            neg_s = (ue.unsqueeze(1) * out.item[neg]).sum(-1)  # [B, k]
            loss = F.softplus(neg_s - pos_s.unsqueeze(1)).mean()
            neg_reg = out.item0[neg].pow(2).sum() / neg.size(1)
        else:
            neg_s = ue @ out.item[neg].T  # [B, K]
            neg_s = neg_s.masked_fill(neg.unsqueeze(0) == i.unsqueeze(1), -torch.inf)
            logits = torch.cat([pos_s.unsqueeze(1), neg_s], 1).float() / cfg.temperature
            loss = F.cross_entropy(logits, torch.zeros(len(u), dtype=torch.long,
                                                       device=u.device))
            neg_reg = out.item0[neg].pow(2).sum() * len(u) / neg.numel()
        if cfg.reg:
            reg = (out.user0[u].pow(2).sum() + out.item0[i].pow(2).sum() + neg_reg) / (2 * len(u))
            loss = loss + cfg.reg * reg
        return loss


def _broadcast(value: float, device: torch.device) -> float:
    """Rank 0's value on every rank (early-stopping decisions must agree)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64,
                     device=device if device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return float(t.item())


def known_buffers(net: nn.Module, n_users: int, n_items: int) -> None:
    """Register the masks of users/items seen in training (saved with the weights)."""
    net.register_buffer("known_user", torch.ones(n_users, dtype=torch.bool))
    net.register_buffer("known_item", torch.ones(n_items, dtype=torch.bool))


class MemoryRecommender(Recommender):
    """A recommender without parameters: its scores are computed from the current graph's
    history (so fold-in is free); `fit` only records the graph and measures validation."""

    def fit(self, split: Split, cfg: TrainConfig | None = None, callback: Callback | None = None,
            *, checkpoint_dir: Path | None = None, resume: bool = False) -> FitResult:
        self.cfg = cfg or self.cfg
        t0 = time.perf_counter()
        self._setup(split)
        self._invalidate()
        val = None
        if split.val.size(1):
            val = evaluate(self, split.train_graph, split.val, split.warm_items, (20,),
                           self.cfg.eval_batch)
        seconds = time.perf_counter() - t0
        score = val["ndcg@20"] if val else float("nan")
        res = FitResult(1, 1, score, seconds, seconds,
                        [{"epoch": 1, "seconds": round(seconds, 2),
                          **{f"val_{k}": v for k, v in (val or {}).items() if k != "users"}}])
        if callback and rank_world()[0] == 0:
            callback(EpochLog(1, None, val, seconds, best=True))
        self.graph = split.eval_graph
        self._invalidate()
        return res

    def state_tensors(self) -> dict[str, Tensor]:
        return {}

    def load_state_tensors(self, state: dict[str, Tensor]) -> None:
        pass
