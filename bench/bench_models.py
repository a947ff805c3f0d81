"""Benchmark: train and evaluate every model on the bundled Beauty graph (published split).

Each model trains in its own process (`python -m gnn.train`), so its peak RSS is its own; each
writes a normal run directory. The results land in bench/results/models.json and models.md:
test metrics on the warm items, the cold-start slice, train seconds (total and to the best
validation epoch) and peak RSS, plus the targets of issue 3 checked.

    python bench/bench_models.py --snapshot SNAPSHOT_DIR [--models hgt lightgcn ...]
    python bench/bench_models.py            # exports the graph from the store first

Per-model settings are `gnn.config.MODEL_DEFAULTS` (the tuned ones); `--set KEY=VALUE` passes
extra TrainConfig fields to every model (e.g. --set epochs=3 for a smoke run). The JSON records
the commit, the command line, the date, the machine and a fingerprint of the snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from provenance import fingerprint, provenance

REPO = Path(__file__).resolve().parent.parent
MODELS = ("pop", "itemknn", "mf", "lightgcn", "hgt")
COLUMNS = ("ndcg@10", "recall@20", "hr@10", "precision@10", "mrr@10", "ndcg@20", "recall@10",
           "coverage@20", "gini@20", "cold_item_recall@20", "cold_item_recall@20_baseline",
           "epochs", "best_epoch", "train_seconds", "seconds_to_best", "peak_rss_mb")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, help="saved GraphSnapshot (default: export)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="models", help="result file stem")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (OMP_NUM_THREADS); default: torch's choice")
    a = p.parse_args(argv)

    snapshot = a.snapshot
    if snapshot is None:
        from core.config import Config
        from gnn.rundir import RunDir
        from graph.store import GraphStore

        cfg = Config.from_env()
        rd = RunDir.named(cfg.runs_dir, "bench-beauty")
        rd.snapshot(lambda: GraphStore(cfg.graph), fresh=True)
        snapshot = rd.snapshot_dir
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if a.threads:
        env["OMP_NUM_THREADS"] = str(a.threads)
    results: dict[str, dict] = {}
    for model in a.models:
        run_dir = a.runs_dir / f"bench-{model}"
        cmd = [sys.executable, "-m", "gnn.train", "--snapshot", str(snapshot), "--model", model,
               "--run-dir", str(run_dir), "--overwrite", "--no-progress",
               "--set", "dataset=amazon-beauty"]
        for item in a.set:
            cmd += ["--set", item]
        t0 = time.perf_counter()
        print(f"[bench] {model}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"[bench] {model} failed (exit {proc.returncode})")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics["config"] = json.loads((run_dir / "config.json").read_text())
        metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
        results[model] = metrics
        print(f"[bench] {model}: ndcg@10 {metrics['ndcg@10']:.4f} recall@20 "
              f"{metrics['recall@20']:.4f} ({metrics['wall_seconds']} s)", file=sys.stderr)

    data = {"dataset": "amazon-beauty (5-core, published PGPR/JRL split)",
            "snapshot": str(snapshot), "snapshot_sha256": fingerprint(snapshot / "graph.pt",
                                                                      snapshot / "ids.json")}
    out = {**provenance(data), "dataset": data["dataset"], "snapshot": str(snapshot),
           "runs": results, "targets": targets(results)}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(out, indent=2) + "\n")
    (a.out / f"{a.name}.md").write_text(markdown(out))
    sys.stdout.write(markdown(out))
    return 0


def targets(results: dict[str, dict]) -> dict:
    """Issue 3: hgt >= 1.1 x the best of lightgcn/mf on NDCG@10 and Recall@20; best validation
    in < 15 min; peak RSS < 6 GB."""
    if "hgt" not in results:
        return {}
    hgt = results["hgt"]
    base = [results[m] for m in ("lightgcn", "mf") if m in results]
    out: dict = {"hgt_seconds_to_best": hgt["seconds_to_best"],
                 "hgt_under_15_minutes": hgt["seconds_to_best"] < 15 * 60,
                 "hgt_peak_rss_mb": hgt["peak_rss_mb"],
                 "hgt_under_6_gb": hgt["peak_rss_mb"] < 6 * 1024}
    for key in ("ndcg@10", "recall@20"):
        if base:
            best = max(b[key] for b in base)
            out[f"{key}_relative_gain"] = round(hgt[key] / best - 1.0, 4)
            out[f"{key}_gain_at_least_10pct"] = hgt[key] >= 1.1 * best
    return out


def markdown(out: dict) -> str:
    cols = ("ndcg@10", "recall@20", "hr@10", "mrr@10", "precision@10", "coverage@20",
            "cold_item_recall@20", "epochs", "seconds_to_best", "train_seconds", "peak_rss_mb")
    lines = [f"Dataset: {out['dataset']}; test metrics over warm items (full ranking, training "
             "items excluded).", "",
             "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for model, m in out["runs"].items():
        cells = []
        for c in cols:
            v = m.get(c)
            cells.append("–" if v is None else f"{v:.4f}" if "@" in c else
                         f"{v:,.0f}" if c in ("peak_rss_mb", "epochs") else f"{v:,.1f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    base = next(iter(out["runs"].values()), {})
    if "cold_item_recall@20_baseline" in base:
        lines += ["", "Cold-start slice baseline (most popular in the user's categories): "
                  f"cold_item_recall@20 = {base['cold_item_recall@20_baseline']:.4f}"]
    if out["targets"]:
        lines += ["", "Targets: " + json.dumps(out["targets"])]
    m = out["machine"]
    lines += ["", f"Machine: {m['cpus']} CPUs, torch {m['torch']}, threads {m['torch_threads']}"
              f" (OMP_NUM_THREADS={m['omp_num_threads']}), load average at the end "
              f"{tuple(round(x, 1) for x in m['load_average'])}",
              f"Commit {out['commit']}{' (with changes)' if out['dirty'] else ''}, {out['date']}: "
              f"`{out['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
