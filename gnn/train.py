"""Train and evaluate one model on a graph snapshot; write the run directory.

    runs/NAME/config.json          the TrainConfig
    runs/NAME/metrics.json         test metrics (warm items), cold-start slice, timings, memory
    runs/NAME/history.json         loss and validation metrics per epoch
    runs/NAME/checkpoint/          model.pt + config.json + meta.json + ids.json (the model), and
                                   train_state.pt (optimizer, epoch, best state) for --resume

Entry point, also under torchrun for data-parallel training (gloo on CPU, nccl on GPU; every
rank takes a shard of each batch of positive edges, DDP all-reduces the gradients, rank 0
validates and writes the run):

    python -m gnn.train --snapshot SNAPSHOT_DIR --model hgt --run NAME [--epochs N ...]
    torchrun --nproc_per_node=2 -m gnn.train --snapshot SNAPSHOT_DIR --model mf --run NAME
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from core.config import Config
from gnn.config import TrainConfig
from gnn.data import make_split
from gnn.evaluate import evaluate_split
from gnn.models import create
from gnn.models.base import EpochLog
from gnn.rundir import RunDir
from gnn.runtime import init_distributed, peak_rss_mb, rank_world, seed_everything
from gnn.snapshot import GraphSnapshot
from graph.store import GraphStore

log = logging.getLogger(__name__)

def train_run(snapshot: GraphSnapshot, cfg: TrainConfig, rd: RunDir | Path,
              progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Split, fit, evaluate on the test edges, save. Returns metrics (empty on ranks > 0)."""
    rank, world = rank_world()
    seed_everything(cfg.seed)
    rd = rd if isinstance(rd, RunDir) else RunDir(rd)
    saved = rd.load_config() if resume else None
    if saved is not None:
        if saved.replace(epochs=cfg.epochs) != cfg.replace(epochs=cfg.epochs):
            log.warning("--resume: using the run's saved config (only --epochs may change)")
        cfg = saved.replace(epochs=cfg.epochs)
    split = make_split(snapshot, cfg)
    model = create(cfg.model, cfg)
    if rank == 0:
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.save_config(cfg)
    with _progress_bar(cfg, enabled=progress and rank == 0) as on_epoch:
        res = model.fit(split, cfg, on_epoch, checkpoint_dir=rd.checkpoint_dir, resume=resume)
    if rank != 0:
        return {}
    t0 = time.perf_counter()
    metrics = evaluate_split(model, split, batch=cfg.eval_batch)
    rd.save_model(model)
    out = {"model": cfg.model, "dataset": cfg.dataset, "split": split.mode,
           "epochs": res.epochs, "best_epoch": res.best_epoch,
           "train_seconds": round(res.seconds, 2),
           "seconds_to_best": round(res.seconds_to_best, 2),
           "eval_seconds": round(time.perf_counter() - t0, 2),
           "val_ndcg@20": res.best_score, "world_size": world, **metrics,
           "peak_rss_mb": round(peak_rss_mb(), 1)}
    rd.save_metrics(out)
    rd.save_history(res.history)
    log.info("run %s: %s", rd.path, {k: out[k] for k in ("ndcg@10", "recall@20") if k in out})
    return out


def evaluate_run(snapshot: GraphSnapshot, rd: RunDir | Path) -> dict[str, Any]:
    """Re-evaluate a trained run on `snapshot` (the split is rebuilt from the saved config) and
    rewrite its metrics.json, keeping the training fields."""
    rd = rd if isinstance(rd, RunDir) else RunDir(rd)
    model = rd.load_model()
    cfg = model.cfg
    seed_everything(cfg.seed)
    split = make_split(snapshot, cfg)
    t0 = time.perf_counter()
    metrics = evaluate_split(model, split, batch=cfg.eval_batch)
    old = rd.load_metrics() or {}
    out = {**old, "model": cfg.model, "dataset": cfg.dataset, "split": split.mode, **metrics,
           "eval_seconds": round(time.perf_counter() - t0, 2)}
    out.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    rd.save_metrics(out)
    return out


class _progress_bar:
    """A tqdm bar over epochs with the loss and validation NDCG@20 (off when not a terminal);
    also logs each epoch."""

    def __init__(self, cfg: TrainConfig, enabled: bool) -> None:
        self.cfg, self.enabled = cfg, enabled and sys.stderr.isatty()
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.cfg.epochs, desc=f"train {self.cfg.model}", unit="epoch")
        return self

    def __call__(self, e: EpochLog) -> None:
        post = {}
        if e.loss is not None:
            post["loss"] = f"{e.loss:.4f}"
        if e.val:
            post.update({"val_ndcg@20": f"{e.val['ndcg@20']:.4f}",
                         "val_recall@20": f"{e.val['recall@20']:.4f}"})
        log.info("epoch %d (%.0fs): %s%s", e.epoch, e.seconds, post, " *" if e.best else "")
        if self.bar is not None:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------- command line

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gnn.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, help="a saved GraphSnapshot directory "
                   "(default: export the graph from the store)")
    p.add_argument("--model", default="hgt")
    p.add_argument("--run", help="run name (under $KGREC_RUNS_DIR, default runs/)")
    p.add_argument("--run-dir", type=Path, help="run directory (instead of --run)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--dim", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--loss", choices=("bpr", "softmax"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig field (JSON value), repeatable")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    extra: dict[str, Any] = {}
    for item in a.set:
        key, _, raw = item.partition("=")
        try:
            extra[key] = json.loads(raw)
        except json.JSONDecodeError:
            extra[key] = raw
    flags = dict(epochs=a.epochs, dim=a.dim, lr=a.lr, batch_size=a.batch_size, loss=a.loss,
                 device=a.device, seed=a.seed)
    return TrainConfig.for_model(a.model, **{**flags, **extra})  # --set wins over a flag


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    distributed = init_distributed()
    cfg = config_from_args(a)
    env = Config.from_env()
    rd = RunDir(a.run_dir) if a.run_dir is not None else \
        RunDir.named(env.runs_dir, a.run or f"{cfg.model}-{cfg.seed}")
    if a.snapshot is not None:
        snapshot = GraphSnapshot.load(a.snapshot)
    else:
        # export from the store once (rank 0), saved in the run folder for the other ranks
        if rank_world()[0] == 0:
            rd.snapshot(lambda: GraphStore(env.graph), fresh=not a.resume)
        if distributed:
            import torch.distributed as dist

            dist.barrier()
        snapshot = rd.load_snapshot()
    try:
        metrics = train_run(snapshot, cfg, rd, progress=not a.no_progress, resume=a.resume)
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    if metrics:
        sys.stdout.write(json.dumps({k: metrics[k] for k in ("model", "ndcg@10", "recall@20",
                                                              "train_seconds") if k in metrics})
                         + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
