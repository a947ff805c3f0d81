"""Train and evaluate one model on a graph snapshot; write the run directory (`RunDir`).

    runs/NAME/config.json          the TrainConfig
    runs/NAME/metrics.json         test metrics (warm items), cold-start slice, timings, memory
    runs/NAME/history.json         loss (and each loss term), steps and validation metrics per
                                   epoch
    runs/NAME/checkpoint/          the model, and train_state.pt for --resume

The loop is `gnn.trainer.Trainer`'s. Entry point, also under torchrun for data-parallel training
(gloo on CPU, nccl on GPU; every rank takes different batches of the positive edges, DDP
all-reduces the gradients, rank 0 validates and writes the run; see gnn/trainer.py for how the
learning rate follows the effective batch):

    python -m gnn.train --snapshot SNAPSHOT_DIR --model hgt --run NAME [--epochs N] [--set K=V]
    torchrun --standalone --nproc_per_node=2 -m gnn.train --snapshot SNAPSHOT_DIR --model mf --run NAME
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
from core.errors import KgrecError
from core.progress import Progress
from gnn.config import TrainConfig, parse_settings
from gnn.data import check_trainable, make_split
from gnn.evaluate import evaluate_split
from gnn.models import create
from gnn.rundir import RunDir
from gnn.runtime import init_distributed, peak_gpu_mb, peak_rss_mb, rank_world, seed_everything
from gnn.snapshot import GraphSnapshot
from gnn.trainer import EpochCallback, EpochLog, Trainer
from graph.store import GraphStore

log = logging.getLogger(__name__)


def train_run(snapshot: GraphSnapshot, cfg: TrainConfig, rd: RunDir | Path,
              progress: EpochCallback | bool | None = None, resume: bool = False,
              on_step: Progress | None = None) -> dict[str, Any]:
    """Split, fit, evaluate on the test edges, save. `progress`: called after each epoch
    (rank 0; False/None: nothing but the log). Returns metrics (empty on ranks > 0)."""
    rank, world = rank_world()
    seed_everything(cfg.seed)
    rd = rd if isinstance(rd, RunDir) else RunDir(rd)
    saved = rd.load_config() if resume else None
    if saved is not None:
        if saved.replace(epochs=cfg.epochs) != cfg.replace(epochs=cfg.epochs):
            log.warning("--resume: using the run's saved config (only --epochs may change)")
        cfg = saved.replace(epochs=cfg.epochs)
    check_trainable(snapshot)
    split = make_split(snapshot, cfg)
    model = create(cfg.model, cfg)
    if rank == 0:
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.save_config(cfg)

    def on_epoch(e: EpochLog) -> None:
        log_epoch(e)
        if callable(progress):
            progress(e)

    res = Trainer(on_epoch, on_step, state=rd).fit(model, split, resume=resume)
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
           "peak_rss_mb": round(peak_rss_mb(), 1),
           **({"peak_gpu_mb": round(gpu, 1)} if (gpu := peak_gpu_mb()) is not None else {}),
           **{k: model.meta[k] for k in ("blend", "cold_map", "cold_head") if model.meta.get(k)}}
    rd.save_metrics(out)
    rd.save_history(res.history)
    if res.calibration:
        rd.write_json(rd.CALIBRATION, res.calibration)
    log.info("run %s: %s", rd.path, {k: out[k] for k in ("ndcg@10", "recall@20") if k in out})
    return out


def log_epoch(e: EpochLog) -> None:
    """Every epoch in the log (the CLI draws its own progress from the same callback)."""
    post = {} if e.loss is None else {"loss": round(e.loss, 4), "steps": e.steps}
    if e.val:
        post.update({k: round(e.val[k], 4) for k in ("ndcg@20", "recall@20") if k in e.val})
    log.info("epoch %d (%.0fs): %s%s", e.epoch, e.seconds, post, " *" if e.best else "")


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
                   help="any TrainConfig field, repeatable (e.g. --set cold_item_fraction=0)")
    p.add_argument("--resume", action="store_true", help="continue the run's last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")
    p.add_argument("--no-progress", action="store_true", help="no line per epoch on stderr")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    flags = dict(epochs=a.epochs, dim=a.dim, lr=a.lr, batch_size=a.batch_size, loss=a.loss,
                 device=a.device, seed=a.seed)
    return TrainConfig.for_model(a.model, parse_settings(a.set), **flags)  # --set wins


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not a.no_progress:
        log.setLevel(logging.INFO)  # one line per epoch (log_epoch)
    try:
        cfg = config_from_args(a)
        env = Config.from_env()
        rd = RunDir(a.run_dir) if a.run_dir is not None else \
            RunDir.named(env.runs_dir, a.run or f"{cfg.model}-{cfg.seed}")
        rd.check_can_train(cfg.model, a.resume, a.overwrite)
    except KgrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    distributed = init_distributed()
    if a.overwrite and rank_world()[0] == 0:
        rd.clear()
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
        metrics = train_run(snapshot, cfg, rd, resume=a.resume)
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
