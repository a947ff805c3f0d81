"""Benchmark: data-parallel training divides the work (issue 10, item 5).

For each model, `torchrun --standalone --nproc_per_node=N -m gnn.train` for N = 1 and 2 (one
thread per process, no time budget, a fixed number of epochs) on a saved snapshot; from each
run's history.json: steps per epoch (per process), the wall seconds of an epoch's steps, the
CPU seconds of rank 0's steps (on a shared machine the CPU time shows the work each process did,
whatever else ran), the epoch's total wall seconds with validation, and the test metrics.

    python bench/bench_ddp.py --snapshot SNAPSHOT_DIR [--models lightgcn hgt] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from provenance import child_env, fingerprint, provenance

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, required=True)
    p.add_argument("--models", nargs="+", default=["lightgcn", "hgt"])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="ddp")
    a = p.parse_args(argv)
    env = child_env(OMP_NUM_THREADS="1")
    results: dict[str, dict] = {}
    for model in a.models:
        for n in a.procs:
            run = a.runs_dir / f"bench-ddp-{model}-{n}"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={n}", "-m", "gnn.train", "--snapshot", str(a.snapshot),
                   "--model", model, "--run-dir", str(run), "--overwrite", "--no-progress",
                   "--set", f"epochs={a.epochs}", "--set", "max_minutes=null"]
            print(f"[ddp] {model} x{n}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"[ddp] {model} x{n} failed:\n{proc.stderr[-4000:]}")
            history = json.loads((run / "history.json").read_text())
            metrics = json.loads((run / "metrics.json").read_text())
            results[f"{model} x{n}"] = {
                "model": model, "processes": n,
                "steps_per_epoch": [h["steps"] for h in history],
                "step_wall_seconds": [h["step_seconds"] for h in history],
                "step_cpu_seconds_rank0": [h["step_cpu_seconds"] for h in history],
                "epoch_wall_seconds": [round(h["seconds"] - (history[i - 1]["seconds"]
                                                             if i else 0.0), 2)
                                       for i, h in enumerate(history)],
                "val_ndcg@20": [h.get("val_ndcg@20") for h in history],
                "ndcg@10": metrics["ndcg@10"], "recall@20": metrics["recall@20"],
                "peak_rss_mb_rank0": metrics["peak_rss_mb"],
                "wall_seconds": round(time.perf_counter() - t0, 1)}
            print(f"[ddp] {model} x{n}: {results[f'{model} x{n}']}", file=sys.stderr)
    data = {"snapshot": str(a.snapshot),
            "snapshot_sha256": fingerprint(a.snapshot / "graph.pt", a.snapshot / "ids.json"),
            "epochs": a.epochs}
    out = {**provenance(data), "runs": results}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
