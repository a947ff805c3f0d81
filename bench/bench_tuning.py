"""Equal tuning (issue 13): one validation-only grid search per learned model, the same budget
for every model, then test metrics for the chosen settings only.

    python bench/bench_tuning.py --snapshot SNAPSHOT_DIR [--models mf lightgcn lightgcn-kg hgt]
        [--lr 1e-3 5e-3 2e-2] [--reg 1e-5 1e-4] [--dim 64 128] [--search-minutes M]
        [--threads N] [--set KEY=VALUE ...]

For each model, every configuration of the grid (lr x reg x dim, at most `MAX_CONFIGS` = 12) is
trained in this process on the split's training edges and scored by its best validation
NDCG@20 (`gnn.trainer.Trainer`; the test edges are never scored during the search), each
configuration of every model under the same wall-clock budget (`--search-minutes`, the best
validation state within it counts; the default: the model's own `max_minutes`; the network
alone, no blend). The
configuration with the best validation score is then trained once more through the normal
entry point (`python -m gnn.train`, bench_models.train_one) with the model's own budget and
settings (blend included), which writes its test metrics.
Everything lands in bench/results/tuning-DATASET-MODEL.json: provenance (commit, command line,
date, machine, data fingerprint), the grid, every configuration's validation record, the chosen
settings and the chosen run's test metrics. `kglink` fits its weights on validation inside every
run and `pop` has nothing to tune, so they are not searched here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from bench_models import REPO, train_one
from provenance import fingerprint, provenance

LEARNED = ("mf", "lightgcn", "lightgcn-kg", "hgt")
MAX_CONFIGS = 12


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, required=True, help="saved GraphSnapshot")
    p.add_argument("--dataset", default="amazon-beauty", help="label of the result files")
    p.add_argument("--models", nargs="+", default=list(LEARNED), choices=LEARNED)
    p.add_argument("--lr", nargs="+", type=float, default=[1e-3, 5e-3, 2e-2])
    p.add_argument("--reg", nargs="+", type=float, default=[1e-5, 1e-4])
    p.add_argument("--dim", nargs="+", type=int, default=[64, 128])
    p.add_argument("--search-minutes", type=float, default=None,
                   help="wall-clock budget of every configuration in the search (the same for "
                        "every model); default: each model's own max_minutes")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the search and of the test run (OMP_NUM_THREADS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra TrainConfig fields for every configuration (e.g. epochs=1)")
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = p.parse_args(argv)
    grid = [{"lr": lr, "reg": reg, "dim": dim}
            for lr, reg, dim in itertools.product(a.lr, a.reg, a.dim)]
    if len(grid) > MAX_CONFIGS:
        p.error(f"the grid has {len(grid)} configurations; the budget is {MAX_CONFIGS} per "
                "model (the same for every model)")
    import torch

    from gnn.config import parse_settings
    from gnn.snapshot import GraphSnapshot

    if a.threads:
        torch.set_num_threads(a.threads)
    # settings of the search only: the same wall-clock budget for every configuration, and the
    # network scored alone (hgt's blend weights are fitted on validation after training; the
    # test run has them)
    budget = {"blend": "off",
              **({} if a.search_minutes is None else {"max_minutes": a.search_minutes})}
    snapshot = GraphSnapshot.load(a.snapshot)
    extra = parse_settings(a.set)
    data = {"dataset": a.dataset, "snapshot": str(a.snapshot),
            "snapshot_sha256": fingerprint(a.snapshot / "graph.pt", a.snapshot / "ids.json")}
    for model in a.models:
        search = [validate(snapshot, model, {**extra, **budget, **c, "seed": a.seed})
                  for c in grid]
        i = max(range(len(grid)), key=lambda j: search[j]["val_ndcg@20"])
        best = search[i]
        # the test run: the caller's settings and the chosen grid point (not the search-only ones)
        chosen = {**extra, **grid[i], "seed": a.seed}
        settings = [f"dataset={a.dataset}", *(f"{k}={json.dumps(v)}" for k, v in chosen.items()
                                              if k != "seed")]
        test = train_one(a.snapshot, model, a.runs_dir / f"tuned-{model}", settings, a.seed,
                         a.threads)
        out = {**provenance(data), "model": model, "grid": grid, "budget": MAX_CONFIGS,
               "search_only_settings": budget,
               "threads": a.threads,
               "selection": "best validation NDCG@20 (test edges never scored in the search)",
               "search": search, "chosen": chosen, "test": test}
        a.out.mkdir(parents=True, exist_ok=True)
        path = a.out / f"tuning-{a.dataset}-{model}.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"[tuning] {model}: chose {chosen} (val ndcg@20 {best['val_ndcg@20']:.4f}, test "
              f"ndcg@10 {test['ndcg@10']:.4f}) -> {path}", file=sys.stderr, flush=True)
    return 0


def validate(snapshot, model: str, settings: dict) -> dict:
    """Train one configuration on the training edges; its validation record (no test)."""
    from gnn.config import TrainConfig
    from gnn.data import make_split
    from gnn.models import create
    from gnn.runtime import seed_everything
    from gnn.trainer import Trainer

    cfg = TrainConfig.for_model(model, settings)
    seed_everything(cfg.seed)
    split = make_split(snapshot, cfg)
    t0 = time.perf_counter()
    res = Trainer().fit(create(model, cfg), split)
    record = {"settings": settings, "val_ndcg@20": res.best_score, "best_epoch": res.best_epoch,
              "epochs": res.epochs, "seconds": round(time.perf_counter() - t0, 1)}
    print(f"[tuning] {model} {settings}: val ndcg@20 {res.best_score:.4f}", file=sys.stderr,
          flush=True)
    return record


if __name__ == "__main__":
    sys.exit(main())
