"""The CUDA paths, measured on a machine with a GPU: bf16 training, data-parallel with nccl, batch
scoring. Every stage also runs with `--device cpu` (how it is checked on a machine without one).

    python bench/bench_cuda.py --snapshot SNAPSHOT_DIR [--epochs 3] [--budget-minutes 2]

Stages (a failing stage is recorded with its error and the next one runs; the JSON is rewritten
after each stage, so a run cut short keeps what it measured):
1. `environment`: torch, PyG, the GPU, bf16 support.
2. `epochs`: hgt's network (blend off), the same seed and `--epochs` epochs with no time budget,
   on `--device` (CUDA: bf16 autocast) and on the CPU (every core of the machine): the seconds of
   an epoch's steps, the test metrics of each, peak GPU memory.
3. `ddp`: `torchrun --nproc_per_node=G -m gnn.train` (G = the GPUs visible: nccl; on CPU, 2 gloo
   processes) for one epoch of mf; then with G + 1 processes on CUDA, which must stop with the
   one-GPU-per-process error before training.
4. `scoring`: a lightgcn run trained on `--device`; every user's top-20 (history excluded) with
   `gnn.score.Scorer` on the CPU and on `--device`: users/s of each (best of `--repeat`), the bare
   matmul + top-k bound on the device, and the share of users whose lists are identical.
5. `defaults`: hgt with its defaults (blend included) on `--device`, one process per `--seeds`
   seed, all at once (optionally another `--budget-minutes` training budget): seconds to the best
   validation state, the validation curve, test metrics, mean and std over the seeds.

Writes bench/results/cuda.json (`--out`) with the commit, the command, the data fingerprint, the
date and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_models import train_one
from provenance import REPO, child_env, fingerprint, provenance


def environment(device: str) -> dict:
    import torch
    import torch_geometric

    out = {"torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
           "cuda_available": torch.cuda.is_available(), "cpu_threads": torch.get_num_threads()}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, gpus=torch.cuda.device_count(), capability=f"{p.major}.{p.minor}",
                   memory_gb=round(p.total_memory / 2**30, 1),
                   bf16=torch.cuda.is_bf16_supported(), cuda=torch.version.cuda)
    return out


def summary(m: dict, history: list[dict] | None = None) -> dict:
    keep = ("ndcg@10", "recall@20", "cold_item_recall@20", "cold_item_ndcg@10", "epochs",
            "best_epoch", "train_seconds", "seconds_to_best", "eval_seconds", "peak_rss_mb",
            "peak_gpu_mb", "wall_seconds")
    out = {k: m[k] for k in keep if k in m}
    if history:
        out["step_seconds"] = [round(h["step_seconds"], 2) for h in history if "step_seconds" in h]
        out["val_ndcg@20"] = [round(h["val_ndcg@20"], 4) for h in history if "val_ndcg@20" in h]
    return out


def epochs_stage(a, runs: Path) -> dict:
    out = {}
    for dev in dict.fromkeys([a.device, "cpu"]):
        run = runs / f"cuda-bench-hgt-{dev}"
        m = train_one(a.snapshot, "hgt", run, [f"epochs={a.epochs}", "max_minutes=null",
                                               "blend=off", f"device={dev}"], seed=0)
        out[dev] = summary(m, json.loads((run / "history.json").read_text()))
    if a.device != "cpu":
        gpu, cpu = out[a.device]["step_seconds"], out["cpu"]["step_seconds"]
        out["cpu_over_gpu_step_seconds"] = round(sum(cpu) / max(sum(gpu), 1e-9), 2)
    return out


def ddp_stage(a, runs: Path) -> dict:
    import torch

    gpus = torch.cuda.device_count() if a.device == "cuda" else 0
    env = child_env(OMP_NUM_THREADS="1")
    out = {}
    cases = [("fits", max(gpus, 1) if gpus else 2)] + ([("over", gpus + 1)] if gpus else [])
    for name, n in cases:
        run = runs / f"cuda-bench-ddp-{n}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={n}", "-m", "gnn.train", "--snapshot", str(a.snapshot),
               "--model", "mf", "--run-dir", str(run), "--overwrite", "--no-progress",
               "--device", a.device, "--set", "epochs=1", "--set", "max_minutes=null"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        res = {"processes": n, "exit": proc.returncode,
               "wall_seconds": round(time.perf_counter() - t0, 1)}
        if proc.returncode == 0:
            metrics = json.loads((run / "metrics.json").read_text())
            res["metrics"], res["world_size"] = summary(metrics), metrics.get("world_size")
        else:
            lines = [x for x in proc.stderr.splitlines() if "per process" in x]
            res["error"] = lines[:1] if lines else proc.stderr[-1500:]
        out[name] = res
    return out


def scoring_stage(a, runs: Path) -> dict:
    import torch

    from gnn.rundir import RunDir
    from gnn.score import Scorer, bound_topk
    from gnn.snapshot import GraphSnapshot

    run = runs / "cuda-bench-lightgcn"
    m = train_one(a.snapshot, "lightgcn", run, ["epochs=3", "max_minutes=null",
                                                f"device={a.device}"], seed=0)
    model, snap = RunDir(run).load_model(), GraphSnapshot.load(a.snapshot)
    out: dict = {"train": summary(m)}
    lists = {}
    for dev in dict.fromkeys(["cpu", a.device]):
        scorer = Scorer(model, snap, device=dev)
        users = torch.arange(len(scorer.user_ids))
        best, items = float("inf"), None
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            items = torch.cat([it for _, it, _ in scorer.chunks(users, 20, 4096)])
            if dev == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        lists[dev] = items
        out[dev] = {"users": len(users), "items": len(scorer.item_ids),
                    "seconds": round(best, 4), "users_per_s": round(len(users) / best)}
        if dev == "cuda":
            u, i = scorer.user_emb.cuda(), scorer.item_emb.cuda()
            bound_topk(u, i, users.cuda(), 20, 4096)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            bound_topk(u, i, users.cuda(), 20, 4096)
            torch.cuda.synchronize()
            out["cuda_bound_users_per_s"] = round(len(users) / (time.perf_counter() - t0))
    if a.device != "cpu":
        same = (lists["cpu"] == lists[a.device]).all(dim=1)
        out["identical_lists"] = round(float(same.float().mean()), 4)
        out["same_items_any_order"] = round(float(torch.tensor([
            set(x.tolist()) == set(y.tolist())
            for x, y in zip(lists["cpu"], lists[a.device])]).float().mean()), 4)
    return out


def defaults_stage(a, runs: Path) -> dict:
    """hgt's defaults but the budget, one process per seed, all at once on the one device."""
    def one(seed: int) -> dict:
        run = runs / f"cuda-bench-hgt-defaults-s{seed}"
        m = train_one(a.snapshot, "hgt", run, [*([f"max_minutes={a.budget_minutes}"]
                                                 if a.budget_minutes else []),
                                               f"device={a.device}"], seed=seed,
                      threads=max(1, (os.cpu_count() or 1) // len(a.seeds)))
        return summary(m, json.loads((run / "history.json").read_text()))

    with ThreadPoolExecutor(len(a.seeds)) as pool:
        out = {f"seed {s}": r for s, r in zip(a.seeds, pool.map(one, a.seeds))}
    runs_ = list(out.values())
    for key in ("ndcg@10", "recall@20", "cold_item_recall@20"):
        vals = [r[key] for r in runs_ if r.get(key) is not None]
        if vals:
            out[f"mean {key}"] = round(statistics.mean(vals), 4)
            out[f"std {key}"] = round(statistics.stdev(vals), 4) if len(vals) > 1 else None
    return out


STAGES = {"environment": None, "epochs": epochs_stage, "ddp": ddp_stage,
          "scoring": scoring_stage, "defaults": defaults_stage}
if str(REPO) not in sys.path:  # the scoring stage imports the package in this process
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, required=True)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="hgt's training budget in the `defaults` stage (default: its own)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds of the `defaults` stage, trained at the same time")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cuda.json")
    a = p.parse_args(argv)
    result = {**provenance({"snapshot": fingerprint(a.snapshot)}), "stages": {}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for name in a.stages:
        t0 = time.perf_counter()
        print(f"[cuda] {name}", file=sys.stderr, flush=True)
        try:
            res = environment(a.device) if name == "environment" else STAGES[name](a, a.runs_dir)
        except (Exception, SystemExit) as e:  # recorded (train_one exits), the next stage runs
            res = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        res["stage_seconds"] = round(time.perf_counter() - t0, 1)
        result["stages"][name] = res
        a.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({name: res}, indent=1)[:3000], file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
