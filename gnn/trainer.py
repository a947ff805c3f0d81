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
from gnn.models.base import Batch, MemoryRecommender, Recommender, TorchRecommender
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
    calibration: list[dict[str, Any]] = field(default_factory=list)  # the blend's search


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
            if rank_world()[0] == 0:
                self._calibrate(model, split, res)
        else:
            res = self._fit_memory(model, split)
        model.use(split.eval_graph)
        return res

    # ------------------------------------------------------------------ memory-based models
    def _fit_memory(self, model: Recommender, split: Split) -> FitResult:
        """Nothing to fit but the model's few weights (`fit`, on validation); validation measured
        once, for the record."""
        t0 = time.perf_counter()
        search = model.fit(split, self.on_step if rank_world()[0] == 0 else None) \
            if isinstance(model, MemoryRecommender) else []
        val = None
        if split.val.size(1):
            val = evaluate(model, split.train_graph, split.val, split.warm_items, (20,),
                           model.cfg.eval_batch)
        seconds = time.perf_counter() - t0
        score = val["ndcg@20"] if val else float("nan")
        res = FitResult(1, 1, score, seconds, seconds,
                        [{"epoch": 1, "seconds": round(seconds, 2),
                          **{f"val_{k}": v for k, v in (val or {}).items() if k != "users"},
                          **({"search": search} if search else {})}])
        if self.on_epoch and rank_world()[0] == 0:
            self.on_epoch(EpochLog(1, None, val, seconds, best=True))
        return res

    def _calibrate(self, model: TorchRecommender, split: Split, res: FitResult) -> None:
        """The fitting that follows the network's (the blend); its time counts as training."""
        t0 = time.perf_counter()
        record = model.calibrate(split, self.on_step)
        if record:
            seconds = time.perf_counter() - t0
            res.seconds += seconds
            res.seconds_to_best += seconds
            res.calibration = record

    # ------------------------------------------------------------------ neural models
    def _fit_net(self, model: TorchRecommender, split: Split, resume: bool) -> FitResult:
        run = _NetFit(model, split)
        if resume:
            run.resume(self.state)
        for epoch in range(run.start_epoch, model.cfg.epochs):
            stats = run.train_epoch(epoch, self.on_step)
            val, evaluated, out_of_time = run.validate(epoch, stats["loss"], self.on_step)
            stop = run.keep_best(epoch, evaluated)
            entry = run.record(epoch, stats, val)
            if run.rank == 0 and self.state is not None and evaluated:
                self.state.save_train_state(run.train_state(epoch))
            if self.on_epoch and run.rank == 0:
                self.on_epoch(EpochLog(epoch + 1, stats["loss"], val, run.res.seconds,
                                       best=run.res.best_epoch == epoch + 1 and val is not None,
                                       steps=entry["steps"], terms=stats["terms"]))
            if stop or out_of_time:
                log.info("stopping after epoch %d (%s)", epoch + 1,
                         "no improvement" if stop else "time limit")
                break
        return run.finish()


class _NetFit:
    """One fit of a neural model: the network, its optimizer, the data of the steps, and the
    state early stopping keeps (best score and weights, evaluations without improvement)."""

    def __init__(self, model: TorchRecommender, split: Split) -> None:
        self.model, self.split, self.cfg = model, split, model.cfg
        self.rank, self.world = rank_world()
        self.device = device = resolve_device(self.cfg.device)
        torch.manual_seed(self.cfg.seed)  # the initial weights depend on the seed only
        self.net = net = model.build()
        model.mark_known(split)
        net.to(device)
        self.forward: nn.Module = net
        if self.world > 1:
            self.forward = nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None)
        groups = model.parameter_groups()
        for g in groups:
            g["lr"] *= lr_factor(self.cfg.scale_lr, self.world)
        self.opt = torch.optim.AdamW(groups, lr=self.cfg.lr)
        self.res, self.best_state, self.start_epoch, self.bad = FitResult(), None, 0, 0
        self.score = float("nan")  # the last validation score (all ranks agree on it)
        self.graph = g = split.train_graph
        self.inputs = model.inputs(g, device)
        self.pos = split.train
        self.known = pair_keys(self.pos, g.n_items).sort().values
        self.pool = torch.nonzero(split.warm_items).view(-1)  # cold items are never negatives
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16,
                                       enabled=device.type == "cuda")
        self.t0 = time.perf_counter()

    def resume(self, store: TrainStateStore | None) -> None:
        st = store.load_train_state(self.device) if store is not None else None
        if st is None:
            log.warning("resume: no saved training state, starting from scratch")
            return
        self.net.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.res = FitResult(**json.loads(st["result"]))
        self.best_state, self.start_epoch, self.bad = st["best_model"], int(st["epoch"]), \
            int(st["bad"])
        self.t0 = time.perf_counter() - self.res.seconds
        log.info("resuming after epoch %d (best %.4f at %d)", self.start_epoch,
                 self.res.best_score, self.res.best_epoch)

    def train_epoch(self, epoch: int, on_step: Progress | None) -> dict[str, Any]:
        """One pass over this rank's batches: {loss (mean over ranks), terms, steps, seconds
        and CPU seconds of the steps}."""
        cfg, g, pos, device = self.cfg, self.graph, self.pos, self.device
        # per-epoch seeds: an exact resume; dropout and negatives differ between ranks
        torch.manual_seed(cfg.seed * 100_003 + epoch * 7 + self.rank)
        batches = epoch_batches(pos.size(1), cfg.batch_size, cfg.seed, epoch, self.rank,
                                self.world)
        neg_gen = torch.Generator().manual_seed(cfg.seed * 10_007 + epoch * 101 + self.rank)
        self.net.train()
        total, sums = 0.0, {}
        wall, cpu = time.perf_counter(), time.process_time()
        for idx in batches:
            u, i = pos[0, idx], pos[1, idx]
            if cfg.loss == "softmax":
                # one set of negatives shared by the whole batch: a [B, K] matmul instead of a
                # [B, K, D] gather, so K can be large
                neg = self.pool[torch.randint(len(self.pool), (cfg.neg_samples,),
                                              generator=neg_gen)]
            else:
                neg = sample_negatives(u, cfg.neg_samples, self.known, self.pool, g.n_items,
                                       neg_gen)
            batch = Batch(u.to(device), i.to(device), neg.to(device), g, self.pool, neg_gen)
            with self.autocast:
                out = self.forward(self.model.step_inputs(self.inputs, batch))
                terms = self.model.loss_terms(out, batch)
                loss = _total(terms)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
            for name, t in terms.items():
                sums[name] = sums.get(name, 0.0) + t.detach().float()
            if on_step and self.rank == 0:
                on_step(f"epoch {epoch + 1}/{cfg.epochs}", 1, len(batches))
        self.model.invalidate()
        steps = max(len(batches), 1)
        return {"loss": _mean_over_ranks(total / steps, device), "steps": len(batches),
                "terms": {k: float(v) / steps for k, v in sums.items()},
                "step_seconds": time.perf_counter() - wall,
                "step_cpu_seconds": time.process_time() - cpu}

    def validate(self, epoch: int, loss: float, on_step: Progress | None
                 ) -> tuple[dict[str, float] | None, bool, bool]:
        """Rank 0 decides whether to validate (schedule, last epoch, out of time) and scores;
        every rank gets the decision: (val metrics on rank 0, evaluated, out of time)."""
        cfg = self.cfg
        val, score, evaluated, out_of_time = None, float("nan"), 0.0, 0.0
        if self.rank == 0:
            out_of_time = float(cfg.max_minutes is not None and
                                time.perf_counter() - self.t0 > cfg.max_minutes * 60)
            if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or out_of_time:
                evaluated = 1.0
                if on_step:
                    on_step(f"epoch {epoch + 1}/{cfg.epochs}: validating", 0, 0)
                if self.split.val.size(1):
                    val = evaluate(self.model, self.graph, self.split.val,
                                   self.split.warm_items, (20,), cfg.eval_batch)
                    score = val["ndcg@20"]
                else:
                    score = -loss  # no validation set: keep the last state
        evaluated, self.score, out_of_time = _broadcast([evaluated, score, out_of_time],
                                                        self.device)
        return val, bool(evaluated), bool(out_of_time)

    def keep_best(self, epoch: int, evaluated: bool) -> bool:
        """Keep the weights of a better validation score; True when patience has run out."""
        if not evaluated:
            return False
        res = self.res
        if not (self.score <= res.best_score):  # also true for the first (nan best)
            res.best_score, res.best_epoch = self.score, epoch + 1
            res.seconds_to_best = time.perf_counter() - self.t0
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.bad = 0
        else:
            self.bad += 1
        return self.bad >= self.cfg.patience

    def record(self, epoch: int, stats: dict[str, Any], val: dict[str, float] | None
               ) -> dict[str, Any]:
        res = self.res
        res.epochs = epoch + 1
        res.seconds = time.perf_counter() - self.t0
        entry = {"epoch": epoch + 1, "loss": stats["loss"], "seconds": round(res.seconds, 2),
                 "steps": stats["steps"], "step_seconds": round(stats["step_seconds"], 2),
                 # this process's CPU time in the steps (not inflated by other load)
                 "step_cpu_seconds": round(stats["step_cpu_seconds"], 2),
                 **{f"loss_{k}": v for k, v in stats["terms"].items()}}
        if val is not None:
            entry.update({f"val_{k}": v for k, v in val.items() if k != "users"})
        res.history.append(entry)
        return entry

    def train_state(self, epoch: int) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                "best_model": self.best_state, "epoch": epoch + 1, "bad": self.bad,
                "result": json.dumps(asdict(self.res))}

    def finish(self) -> FitResult:
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        self.net.to("cpu")
        return self.res


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
