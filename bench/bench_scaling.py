"""Benchmark: how training cost grows with the graph (issue 10, item 10).

Synthetic power-law shops of 0.2M, 1M and 4M interactions, shaped like Amazon Beauty per
interaction (users = E / 8.9, items = E / 16.4; Zipf item popularity and user activity; 25% of
the edges labelled test) with a knowledge graph proportional to the items as in Beauty (per
item: 19.8 also_bought, 12.8 also_viewed, 0.75 bought_together, 4.1 categories, 0.8 brands;
brands = items / 5.9, categories = items / 49). Each (size, model) runs in its own process
through the real `gnn.trainer.Trainer`: build the split and the model's inputs, then a fixed
number of optimizer steps (the first is a warm-up and not timed), then one validation chunk.
Per size it reports seconds per step, steps per epoch, seconds per epoch (steps x seconds per
step, and the validation of every validation user extrapolated from the chunk), the setup time,
and the process's peak RSS; and per model the growth exponent b of cost ~ E^b (least squares
on log-log). Seconds are the process's CPU seconds (one thread: the wall time on an idle core;
unlike wall time, not inflated by other work on a shared machine); wall times are kept beside
them.

    OMP_NUM_THREADS=1 python bench/bench_scaling.py [--sizes 200000 1000000 4000000]
        [--models lightgcn hgt] [--steps 4] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import child_env, provenance

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PER_ITEM = {"ALSO_BOUGHT": 19.8, "ALSO_VIEWED": 12.8, "BOUGHT_TOGETHER": 0.75}
SHAPE = {"users_per_edge": 1 / 8.9, "items_per_edge": 1 / 16.4, "categories_per_item": 4.1,
         "brand_share": 0.82, "items_per_brand": 5.9, "items_per_category": 49,
         "test_share": 0.25, "zipf_items": 0.9, "zipf_users": 0.7}


def zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities proportional to rank^-exponent, ranks shuffled over the ids."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    rng.shuffle(w)
    return w / w.sum()


def pairs(n: int, p_src: np.ndarray, p_dst: np.ndarray, rng: np.random.Generator,
          no_loops: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """About `n` distinct (src, dst) pairs drawn from the two distributions."""
    src = rng.choice(len(p_src), int(n * 1.4), p=p_src)
    dst = rng.choice(len(p_dst), int(n * 1.4), p=p_dst)
    keys = np.unique(src.astype(np.int64) * len(p_dst) + dst)
    if no_loops:
        keys = keys[keys // len(p_dst) != keys % len(p_dst)]
    keys = rng.permutation(keys)[:n]
    return keys // len(p_dst), keys % len(p_dst)


def synthetic_snapshot(edges: int, seed: int = 0):
    """A GraphSnapshot of about `edges` user-item interactions and a proportional KG."""
    import pandas as pd

    from gnn.snapshot import build_snapshot

    rng = np.random.default_rng(seed)
    n_users = int(edges * SHAPE["users_per_edge"])
    n_items = int(edges * SHAPE["items_per_edge"])
    n_brands = int(n_items / SHAPE["items_per_brand"])
    n_cats = max(int(n_items / SHAPE["items_per_category"]), 2)
    p_item = zipf_weights(n_items, SHAPE["zipf_items"], rng)
    p_user = zipf_weights(n_users, SHAPE["zipf_users"], rng)
    u, i = pairs(edges, p_user, p_item, rng)
    test = rng.random(len(u)) < SHAPE["test_share"]
    ids = {"user": [f"u{x}" for x in range(n_users)], "item": [f"i{x}" for x in range(n_items)],
           "brand": [f"b{x}" for x in range(n_brands)],
           "category": [f"c{x}" for x in range(n_cats)]}
    item_ids = np.array(ids["item"], dtype=object)
    frames = {"REVIEWED": pd.DataFrame({"src": np.array(ids["user"], dtype=object)[u],
                                        "dst": item_ids[i], "count": 1,
                                        "split": np.where(test, "test", "train")})}
    for rel, rate in PER_ITEM.items():
        s, d = pairs(int(rate * n_items), p_item, p_item, rng, no_loops=True)
        frames[rel] = pd.DataFrame({"src": item_ids[s], "dst": item_ids[d]})
    has_brand = np.flatnonzero(rng.random(n_items) < SHAPE["brand_share"])
    frames["HAS_BRAND"] = pd.DataFrame({
        "src": item_ids[has_brand],
        "dst": np.array(ids["brand"], dtype=object)[
            rng.choice(n_brands, len(has_brand), p=zipf_weights(n_brands, 1.0, rng))]})
    s, d = pairs(int(SHAPE["categories_per_item"] * n_items), np.full(n_items, 1 / n_items),
                 zipf_weights(n_cats, 1.0, rng), rng)
    frames["IN_CATEGORY"] = pd.DataFrame({"src": item_ids[s],
                                          "dst": np.array(ids["category"], dtype=object)[d]})
    return build_snapshot(ids, frames)


# ------------------------------------------------------------------------------ one process

class _Enough(Exception):
    """Raised from the step callback once the steps to measure are done."""


def worker(snapshot_dir: Path, model_name: str, steps: int, eval_users: int,
           settings: list[str]) -> dict:
    """Train `model_name` for `steps` steps on the saved snapshot, then validate one chunk of
    `eval_users` users; everything in this process (its peak RSS is the run's)."""
    import torch

    from gnn.config import TrainConfig, parse_settings
    from gnn.data import make_split
    from gnn.evaluate import evaluate
    from gnn.models import create
    from gnn.runtime import peak_rss_mb, seed_everything
    from gnn.snapshot import GraphSnapshot
    from gnn.trainer import Trainer, epoch_batches

    t0 = time.perf_counter()
    snap = GraphSnapshot.load(snapshot_dir)
    cfg = TrainConfig.for_model(model_name, {"max_minutes": None, **parse_settings(settings)},
                                device="cpu", dataset="synthetic")
    seed_everything(cfg.seed)
    split = make_split(snap, cfg)
    split_seconds = time.perf_counter() - t0
    stamps: list[float] = []
    cpu_stamps: list[float] = []

    def on_step(step: str, done: int, total: int) -> None:
        if not done:  # a notice ("validating"), not a step
            return
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        if len(stamps) > steps:
            raise _Enough

    model = create(model_name, cfg)
    start = time.perf_counter()
    try:
        Trainer(on_step=on_step).fit(model, split)
    except _Enough:
        pass
    rss_train = peak_rss_mb()
    step_times = np.diff(stamps)  # the first step (warm-up, from `start`) is left out
    per_step = float(np.median(step_times))
    cpu_per_step = float(np.median(np.diff(cpu_stamps)))
    setup = stamps[0] - start - per_step  # building the inputs (adjacency, KG blocks)
    n_steps = len(epoch_batches(split.train.size(1), cfg.batch_size, cfg.seed, 0))

    model.net.to("cpu")
    model.invalidate()
    val_users = split.val[0].unique()
    chunk = val_users[torch.randperm(len(val_users))[:eval_users]]
    keep = torch.isin(split.val[0], chunk)
    t1, c1 = time.perf_counter(), time.process_time()
    evaluate(model, split.train_graph, split.val[:, keep], split.warm_items, (20,),
             cfg.eval_batch)
    eval_seconds, eval_cpu = time.perf_counter() - t1, time.process_time() - c1
    share = len(val_users) / max(len(chunk), 1)
    return {"model": model_name, "threads": torch.get_num_threads(),
            "train_edges": int(split.train.size(1)), "batch_size": cfg.batch_size,
            "split_seconds": round(split_seconds, 2),
            "setup_seconds": round(setup, 2),  # inputs: adjacency, KG blocks, first forward
            # CPU seconds: this process's CPU time (with 1 thread, the wall time it would take
            # on an idle core; robust to other load on a shared machine); wall: as measured
            "seconds_per_step": round(cpu_per_step, 3),
            "wall_seconds_per_step": round(per_step, 3),
            "wall_step_seconds": [round(float(x), 3) for x in step_times],
            "steps_per_epoch": n_steps,
            "train_seconds_per_epoch": round(cpu_per_step * n_steps, 1),
            "val_users": int(len(val_users)), "eval_chunk_users": int(len(chunk)),
            "eval_chunk_seconds": round(eval_cpu, 2),
            "eval_chunk_wall_seconds": round(eval_seconds, 2),
            "eval_seconds_per_epoch": round(eval_cpu * share, 1),
            "seconds_per_epoch": round(cpu_per_step * n_steps + eval_cpu * share, 1),
            "wall_seconds_per_epoch": round(per_step * n_steps + eval_seconds * share, 1),
            "peak_rss_mb_training": round(rss_train, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def exponent(x: list[float], y: list[float]) -> float | None:
    """b of y ~ x^b (least squares on log-log); None with fewer than two points."""
    if len(x) < 2:
        return None
    return round(float(np.polyfit(np.log(x), np.log(y), 1)[0]), 2)


def run_child(args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"[scaling] {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000, 4_000_000])
    p.add_argument("--models", nargs="+", default=["lightgcn", "hgt"])
    p.add_argument("--steps", type=int, default=4, help="timed steps per run (after a warm-up)")
    p.add_argument("--eval-users", type=int, default=1024, help="validation users timed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="scaling")
    p.add_argument("--work", type=Path, help="where the snapshots go (default: a temp dir; "
                   "snapshots already there are reused)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig setting for every run (e.g. --set batch_size=32768)")
    p.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # child: build a snapshot
    p.add_argument("--worker", nargs=2, metavar=("SNAPSHOT", "MODEL"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.build is not None:
        t0 = time.perf_counter()
        snap = synthetic_snapshot(a.sizes[0])
        snap.save(a.build)
        from gnn.runtime import peak_rss_mb

        counts = {t: int(snap.data[t].num_nodes) for t in snap.data.node_types}
        edges = {et[1]: int(snap.data[et].edge_index.size(1)) for et in snap.data.edge_types
                 if not et[1].startswith("rev_")}
        print(json.dumps({"nodes": counts, "edges": edges,
                          "build_seconds": round(time.perf_counter() - t0, 1),
                          "build_peak_rss_mb": round(peak_rss_mb(), 1)}))
        return 0
    if a.worker is not None:
        print(json.dumps(worker(Path(a.worker[0]), a.worker[1], a.steps, a.eval_users,
                                a.set)))
        return 0

    env = child_env(OMP_NUM_THREADS=str(a.threads))
    work = a.work or Path(tempfile.mkdtemp(prefix="kgrec-scaling-"))
    results: dict[str, dict] = {}
    for size in a.sizes:
        snap = work / f"synthetic-{size}"
        info_file = snap / "bench_info.json"
        if not info_file.exists():
            print(f"[scaling] building {size:,} interactions", file=sys.stderr, flush=True)
            info = run_child(["--build", str(snap), "--sizes", str(size)], env)
            info_file.write_text(json.dumps(info))
        results[str(size)] = {"graph": json.loads(info_file.read_text()), "runs": {}}
        for model in a.models:
            print(f"[scaling] {model} on {size:,}", file=sys.stderr, flush=True)
            r = run_child(["--worker", str(snap), model, "--steps", str(a.steps),
                           "--eval-users", str(a.eval_users),
                           *[x for item in a.set for x in ("--set", item)]], env)
            results[str(size)]["runs"][model] = r
            print(f"[scaling] {model} on {size:,}: {r['seconds_per_step']} s/step, "
                  f"{r['steps_per_epoch']} steps/epoch, {r['seconds_per_epoch']} s/epoch, "
                  f"{r['peak_rss_mb']:,.0f} MB", file=sys.stderr, flush=True)
    growth = {}
    for model in a.models:
        xs = [int(s) for s in results if model in results[s]["runs"]]
        runs = [results[str(s)]["runs"][model] for s in xs]
        growth[model] = {key: exponent(xs, [r[key] for r in runs])
                         for key in ("seconds_per_step", "train_seconds_per_epoch",
                                     "eval_seconds_per_epoch", "seconds_per_epoch",
                                     "peak_rss_mb")}
    data = {"description": "synthetic power-law shops shaped like Amazon Beauty per "
                           "interaction, with a proportional KG (see the script's docstring)",
            "shape": SHAPE, "kg_per_item": PER_ITEM, "seed": 0}
    out = {**provenance(data), "steps": a.steps, "threads": a.threads, "settings": a.set,
           "sizes": results,
           "growth_exponent": growth}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(out, indent=2) + "\n")
    (a.out / f"{a.name}.md").write_text(markdown(out))
    sys.stdout.write(markdown(out))
    return 0


def markdown(out: dict) -> str:
    lines = [f"Training cost on synthetic power-law shops ({out['threads']} thread; seconds are "
             "CPU seconds of the process, see bench_scaling.py); "
             f"commit {out['commit']}, {out['date']}: `{out['command']}`", "",
             "| interactions | model | s/step | steps/epoch | train s/epoch | validation s/epoch "
             "| s/epoch | setup s | peak RSS MB |", "|---" * 9 + "|"]
    for size, entry in out["sizes"].items():
        for model, r in entry["runs"].items():
            lines.append(f"| {int(size):,} | {model} | {r['seconds_per_step']} | "
                         f"{r['steps_per_epoch']} | {r['train_seconds_per_epoch']} | "
                         f"{r['eval_seconds_per_epoch']} | {r['seconds_per_epoch']} | "
                         f"{r['setup_seconds']} | {r['peak_rss_mb']:,.0f} |")
    lines += ["", "Growth exponents (cost ~ interactions^b): " +
              json.dumps(out["growth_exponent"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
