"""`Trainer`: the training loop every model shares (models are networks + scoring).

    Trainer(on_epoch=..., on_step=..., state=run_dir).fit(model, split, resume=False) -> FitResult

What it owns:
- **seeds**: the initial weights depend on `cfg.seed` only; each epoch reseeds its permutation,
  its negatives and its dropout, so a resumed run continues exactly;
- **batches and negatives**: the training positives in mini-batches of `batch_size`, uniform
  negatives from the warm items (BPR: per positive, known positives redrawn; softmax: shared by
  the batch); each step is one full-graph forward, then the model's `loss_terms`, summed;
- **data-parallel** (torchrun, gloo on CPU / nccl on GPU): DistributedSampler semantics — every
  rank permutes the positives with the same seed and takes every N-th (padded by wrapping to
  a multiple of N), so the ranks take *different* batches, each of `batch_size`, and an epoch
  has 1/N of the steps; DDP all-reduces (averages) the gradients. The effective batch is
  N x batch_size; `scale_lr` ("none" | "sqrt" | "linear") scales the learning rates by 1, sqrt(N)
  or N. Validation, early stopping and the time budget are decided on rank 0 and broadcast;
- **early stopping** on validation NDCG@20 (`patience` evaluations without improvement; the best
  state is kept), the **time budget** (`max_minutes`), **bf16 autocast** on CUDA;
- **checkpoints**: after every evaluation rank 0 hands the training state to `state` (a
  `RunDir`: gnn.checkpoint writes it) for `resume`.

Progress goes to callbacks only: `on_epoch(EpochLog)` after each epoch and `on_step(step, done,
total)` (a core.progress.Progress) after each step, both on rank 0.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn

from core.progress import Progress
from gnn.data import Split, pair_keys, sample_negatives
from gnn.evaluate import evaluate
from gnn.models.base import Batch, Recommender, TorchRecommender
from gnn.runtime import rank_world, resolve_device

log = logging.getLogger(__name__)


@dataclass
class EpochLog:
    epoch: int  # 1-based
    loss: float | None
    val: dict[str, float] | None  # validation metrics when this epoch was evaluated
    seconds: float  # since the start of fit
    best: bool = False
    steps: int = 0  # optimizer steps in this epoch (per process)
    terms: dict[str, float] = field(default_factory=dict)  # mean of each loss term


@dataclass
class FitResult:
    epochs: int = 0
    best_epoch: int = 0
    best_score: float = float("nan")  # validation NDCG@20 at best_epoch
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


EpochCallback = Callable[[EpochLog], None]


class TrainStateStore(Protocol):
    """Where the training state goes between epochs (RunDir is one)."""

    def save_train_state(self, state: dict[str, Any]) -> Any: ...

    def load_train_state(self, device: torch.device | str = "cpu") -> dict[str, Any] | None: ...


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0,
                  world: int = 1) -> list[Tensor]:
    """Positions of the positives each step of `epoch` takes on `rank` of `world`: one
    permutation per epoch, the same on every rank; rank r takes positions r, r + N, ... of it
    (padded by wrapping to a multiple of N, as DistributedSampler does), in batches."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_009 + epoch))
    if world > 1:
        total = math.ceil(n / world) * world
        order = order.repeat(math.ceil(total / n))[:total][rank::world]
    return list(order.split(batch_size))


def lr_factor(scaling: str, world: int) -> float:
    return {"none": 1.0, "sqrt": math.sqrt(world), "linear": float(world)}[scaling]


class Trainer:
    def __init__(self, on_epoch: EpochCallback | None = None, on_step: Progress | None = None,
                 state: TrainStateStore | None = None) -> None:
        self.on_epoch = on_epoch
        self.on_step = on_step
        self.state = state

    def fit(self, model: Recommender, split: Split, resume: bool = False) -> FitResult:
        """Fit `model` on `split` (its `cfg` says how); the model ends on the CPU with its best
        validation state, its current graph the split's eval graph."""
        model.prepare(split)
        if isinstance(model, TorchRecommender):
            res = self._fit_net(model, split, resume)
        else:
            res = self._fit_memory(model, split)
        model.use(split.eval_graph)
        return res

    # ------------------------------------------------------------------ memory-based models
    def _fit_memory(self, model: Recommender, split: Split) -> FitResult:
        """Nothing to fit: validation measured once, for the record."""
        t0 = time.perf_counter()
        val = None
        if split.val.size(1):
            val = evaluate(model, split.train_graph, split.val, split.warm_items, (20,),
                           model.cfg.eval_batch)
        seconds = time.perf_counter() - t0
        score = val["ndcg@20"] if val else float("nan")
        res = FitResult(1, 1, score, seconds, seconds,
                        [{"epoch": 1, "seconds": round(seconds, 2),
                          **{f"val_{k}": v for k, v in (val or {}).items() if k != "users"}}])
        if self.on_epoch and rank_world()[0] == 0:
            self.on_epoch(EpochLog(1, None, val, seconds, best=True))
        return res

    # ------------------------------------------------------------------ neural models
    def _fit_net(self, model: TorchRecommender, split: Split, resume: bool) -> FitResult:
        cfg = model.cfg
        rank, world = rank_world()
        device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
        net = model.build()
        model.mark_known(split)
        net.to(device)
        forward: nn.Module = net
        if world > 1:
            forward = nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None)
        groups = model.parameter_groups()
        for g in groups:
            g["lr"] *= lr_factor(cfg.scale_lr, world)
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
        res, best_state, start_epoch, bad = self._resume(net, opt, device) if resume else \
            (FitResult(), None, 0, 0)

        g = split.train_graph
        inputs = model.inputs(g, device)
        pos = split.train
        known = pair_keys(pos, g.n_items).sort().values
        pool = torch.nonzero(split.warm_items).view(-1)  # cold items are never negatives
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
        t0 = time.perf_counter() - res.seconds
        for epoch in range(start_epoch, cfg.epochs):
            # per-epoch seeds: an exact resume; dropout and negatives differ between ranks
            torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + rank)
            batches = epoch_batches(pos.size(1), cfg.batch_size, cfg.seed, epoch, rank, world)
            neg_gen = torch.Generator().manual_seed(cfg.seed * 10_007 + epoch * 101 + rank)
            net.train()
            total, sums = 0.0, {}
            wall, cpu = time.perf_counter(), time.process_time()
            for idx in batches:
                u, i = pos[0, idx], pos[1, idx]
                if cfg.loss == "softmax":
                    # one set of negatives shared by the whole batch: a [B, K] matmul instead of
                    # a [B, K, D] gather, so K can be large
                    neg = pool[torch.randint(len(pool), (cfg.neg_samples,), generator=neg_gen)]
                else:
                    neg = sample_negatives(u, cfg.neg_samples, known, pool, g.n_items, neg_gen)
                batch = Batch(u.to(device), i.to(device), neg.to(device), g, pool, neg_gen)
                with autocast:
                    out = forward(inputs)
                    terms = model.loss_terms(out, batch)
                    loss = _total(terms)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                for name, t in terms.items():
                    sums[name] = sums.get(name, 0.0) + t.detach().float()
                if self.on_step and rank == 0:
                    self.on_step(f"epoch {epoch + 1}/{cfg.epochs}", 1, len(batches))
            model.invalidate()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            steps = len(batches)
            loss_avg = _mean_over_ranks(total / max(steps, 1), device)
            term_avg = {k: float(v) / max(steps, 1) for k, v in sums.items()}

            # rank 0 decides (validation, budget); every rank follows
            val, score, evaluated, out_of_time = None, float("nan"), 0.0, 0.0
            if rank == 0:
                out_of_time = float(cfg.max_minutes is not None and
                                    time.perf_counter() - t0 > cfg.max_minutes * 60)
                if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or out_of_time:
                    evaluated = 1.0
                    if self.on_step:
                        self.on_step(f"epoch {epoch + 1}/{cfg.epochs}: validating", 0, 0)
                    if split.val.size(1):
                        val = evaluate(model, g, split.val, split.warm_items, (20,),
                                       cfg.eval_batch)
                        score = val["ndcg@20"]
                    else:
                        score = -loss_avg  # no validation set: keep the last state
            evaluated, score, out_of_time = _broadcast([evaluated, score, out_of_time], device)
            stop = False
            if evaluated:
                if not (score <= res.best_score):  # also true for the first (nan best)
                    res.best_score, res.best_epoch = score, epoch + 1
                    res.seconds_to_best = time.perf_counter() - t0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    bad = 0
                else:
                    bad += 1
                stop = bad >= cfg.patience
            res.epochs = epoch + 1
            res.seconds = time.perf_counter() - t0
            entry = {"epoch": epoch + 1, "loss": loss_avg, "seconds": round(res.seconds, 2),
                     "steps": steps, "step_seconds": round(wall, 2),
                     "step_cpu_seconds": round(cpu, 2),  # this process's CPU time in the steps
                     **{f"loss_{k}": v for k, v in term_avg.items()}}
            if val is not None:
                entry.update({f"val_{k}": v for k, v in val.items() if k != "users"})
            res.history.append(entry)
            if rank == 0 and self.state is not None and evaluated:
                self.state.save_train_state(
                    {"model": net.state_dict(), "optimizer": opt.state_dict(),
                     "best_model": best_state, "epoch": epoch + 1, "bad": bad,
                     "result": json.dumps(asdict(res))})
            if self.on_epoch and rank == 0:
                self.on_epoch(EpochLog(epoch + 1, loss_avg, val, res.seconds,
                                       best=res.best_epoch == epoch + 1 and val is not None,
                                       steps=steps, terms=term_avg))
            if stop or out_of_time:
                log.info("stopping after epoch %d (%s)", epoch + 1,
                         "no improvement" if stop else "time limit")
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.to("cpu")
        return res

    def _resume(self, net: nn.Module, opt: torch.optim.Optimizer, device: torch.device
                ) -> tuple[FitResult, dict[str, Tensor] | None, int, int]:
        st = self.state.load_train_state(device) if self.state is not None else None
        if st is None:
            log.warning("resume: no saved training state, starting from scratch")
            return FitResult(), None, 0, 0
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        res = FitResult(**json.loads(st["result"]))
        log.info("resuming after epoch %d (best %.4f at %d)", st["epoch"], res.best_score,
                 res.best_epoch)
        return res, st["best_model"], int(st["epoch"]), int(st["bad"])


def _total(terms: dict[str, Tensor]) -> Tensor:
    values = iter(terms.values())
    total = next(values)
    for t in values:
        total = total + t
    return total


def _broadcast(values: list[float], device: torch.device) -> list[float]:
    """Rank 0's values on every rank (early-stopping decisions must agree)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64,
                     device=device if device.type == "cuda" else "cpu")
    dist.broadcast(t, 0)
    return t.tolist()


def _mean_over_ranks(value: float, device: torch.device) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64,
                     device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()
