"""Search benchmark: the product-search protocol on a trained Beauty run, against the targets of
issue 5 (re-ranked NDCG@10 >= 1.3x BM25 alone; p95 latency <= 50 ms per query, index warm).

Needs the graph loaded (`kgrec demo` or `kgrec etl load`) for the item titles, and a run trained
on it (`kgrec train --run NAME`). Runs `search.engine.evaluate_run` (which also writes
runs/NAME/search_metrics.json), then times `SearchEngine.search` on more test queries, personal
and anonymous, and writes bench/results/search.json.

    .venv/bin/python bench/bench_search.py --run NAME [--latency-queries 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import Config
from search import engine as S

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3
TARGET_P95_MS = 50.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="run name under $KGREC_RUNS_DIR (default: the latest run)")
    p.add_argument("--latency-queries", type=int, default=2000)
    p.add_argument("--limit", type=int, default=0, help="test queries evaluated (0 = all)")
    p.add_argument("--snapshot", type=Path, help="the run's snapshot, if not in the run")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "search.json")
    args = p.parse_args()

    cfg = Config.from_env()
    run_dir = cfg.runs_dir / args.run if args.run else S.latest_run(cfg.runs_dir)
    if run_dir is None:
        raise SystemExit(f"no trained run in {cfg.runs_dir}: train one with kgrec train")
    S.check_run(run_dir)
    snapshot_fn = None
    if args.snapshot is not None:
        from gnn.snapshot import GraphSnapshot

        snapshot_fn = lambda: GraphSnapshot.load(args.snapshot)  # noqa: E731

    def open_store():
        from graph.store import GraphStore

        return GraphStore(cfg.graph)

    t0 = time.perf_counter()
    catalogue, notes = S.catalogue_for(run_dir, open_store, refresh=True, snapshot_fn=snapshot_fn)
    scfg = S.SearchConfig(latency_queries=500, eval_queries=args.limit or None)
    metrics = S.evaluate_run(run_dir, catalogue, scfg, snapshot_fn=snapshot_fn)
    eval_s = time.perf_counter() - t0

    # warm latency on more queries, through the same engine `kgrec search` builds
    queries = pd.read_csv(S.search_dir(run_dir) / "queries_test.csv", dtype=str)
    assets = S.serving_assets(run_dir, snapshot_fn)
    engine = assets.engine(catalogue, blend=S.Blend.load(S.search_dir(run_dir) / "blend.json"))
    personal = S.latency(engine, queries, args.latency_queries, seed=1)
    anonymous = _anonymous_latency(engine, queries, args.latency_queries)

    k = scfg.k
    ratio = metrics[f"reranked.ndcg@{k}"] / metrics[f"bm25.ndcg@{k}"]
    out = {
        "benchmark": "search (issue 5)",
        "run": run_dir.name,
        "model": metrics.get("model"),
        "run_metrics": _run_metrics(run_dir),
        "catalogue_source": catalogue.source, "catalogue_items": len(catalogue),
        "notes": notes,
        "queries": metrics["queries"], "skipped": metrics["skipped"],
        "table": {m: {name: metrics[f"{m}.{name}"] for name in ("mrr", f"ndcg@{k}", f"hr@{k}")}
                  for m in S.METHODS},
        "slices": metrics.get("slices", {}),
        "ratio_reranked_vs_bm25_ndcg@10": ratio,
        "latency_personal_ms": personal,
        "latency_anonymous_ms": anonymous,
        "blend": metrics["blend"],
        "targets": {"ratio_reranked_vs_bm25_ndcg@10": f">= {TARGET_RATIO}",
                    "latency_p95_ms": f"<= {TARGET_P95_MS}"},
        "passed": {"ratio": ratio >= TARGET_RATIO,
                   "latency": personal["latency_p95_ms"] <= TARGET_P95_MS},
        "search_metrics": str(run_dir / "search_metrics.json"),
        "eval_seconds": round(eval_s, 1),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                    "python": platform.python_version(), "platform": platform.platform()},
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"ratio": round(ratio, 3), "p95_ms": round(personal["latency_p95_ms"], 2),
                      "passed": out["passed"], "out": str(args.out)}))


def _anonymous_latency(engine: S.SearchEngine, queries: pd.DataFrame, n: int) -> dict:
    sample = queries.sample(min(n, len(queries)), random_state=2)["query"].tolist()
    engine.search(sample[0])
    times = []
    for q in sample:
        t = time.perf_counter()
        engine.search(q)
        times.append((time.perf_counter() - t) * 1e3)
    a = np.array(times)
    return {"latency_p50_ms": float(np.percentile(a, 50)),
            "latency_p95_ms": float(np.percentile(a, 95)), "latency_queries": len(a)}


def _run_metrics(run_dir: Path) -> dict:
    try:
        m = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: m.get(k) for k in ("model", "epochs", "ndcg@10", "recall@20", "split")}


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    main()
