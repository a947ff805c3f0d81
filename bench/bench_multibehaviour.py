"""Benchmark (issue 9): learning purchases from every behaviour, on Tmall's published protocol.

Every variant trains in its own process (`python -m gnn.train`, a normal run directory), so its
peak RSS is its own. The protocol of the multi-behaviour papers: the given split, full ranking
over all items, only the user's training purchases excluded (carted / favourited items stay
candidates), no cold items (`cold_item_fraction=0`). Learned models share one setting, the one
the equal tuning search chose for each (`LEARNED`): sampled softmax over 1,000 negatives, lr
5e-3, dim 128, patience 2, at most `--max-minutes` of training.

    python bench/bench_multibehaviour.py --snapshot SNAPSHOT_DIR [--seeds 0 1 2]
        [--models pop behaviour-pop lightgcn lightgcn-all hgt hgt-target] [--jobs 2]

Variants: pop; behaviour-pop (the user's own carts / favourites / views first, then popularity);
itemknn-all (item-item co-occurrence over every behaviour) and behaviour-knn (the user's own
items first, then itemknn-all): the no-learning heuristics of the same signal; lightgcn (target
relation only); lightgcn-all (`behaviours=all`: every behaviour merged into one relation);
lightgcn-all-blend (the same with hgt's blend: the information-equal check of the blend); hgt
(every behaviour as a typed relation, blended); hgt-network (without the blend); hgt-target
(the ablation: the target relation only); *-drop (the held-out pairs' own auxiliary edges
removed: `aux_test_edges=drop`).
Writes bench/results/NAME.json and NAME.md: per variant and seed the run's metrics.json, mean
and std over seeds of HR@10/NDCG@10/HR@50/NDCG@50, seconds to the best validation, peak RSS, the
learned behaviour weights of hgt, and the targets of issue 9 checked; with provenance (commit,
command, date, machine, the snapshot's sha256).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_models import reused_run, train_one
from provenance import fingerprint, footer, provenance

REPO = Path(__file__).resolve().parent.parent
COMMON = ["cold_item_fraction=0", "split=given", "eval_batch=2048", "dataset=tmall"]
# every learned model the same (batch 4096: what these results were measured with; hgt's
# default became 8192 later, for Beauty's time budget). lr / dim: what the equal tuning search
# on Tmall chose for each of hgt, lightgcn with every behaviour and lightgcn on the target
# (lr {5e-3, 2e-2} x dim {64, 128}, reg 1e-4, 4 minutes per configuration, validation NDCG@20:
# bench/results/tuning-tmall-hgt.json, tuning-tmall-all-lightgcn.json, tuning-tmall-lightgcn.json)
LEARNED = ["loss=softmax", "neg_samples=1000", "lr=0.005", "reg=0.0001", "dim=128",
           "patience=2", "batch_size=4096"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "pop": ("pop", []),
    "behaviour-pop": ("behaviour-pop", []),
    "behaviour-pop-drop": ("behaviour-pop", ["aux_test_edges=drop"]),
    # no learning, every behaviour: item-item co-occurrence, and the same after the own items
    "itemknn-all": ("itemknn", ["behaviours=all"]),
    "behaviour-knn": ("behaviour-knn", []),
    "lightgcn": ("lightgcn", LEARNED + ["behaviours=target"]),
    "lightgcn-all": ("lightgcn", LEARNED + ["behaviours=all"]),
    "hgt": ("hgt", LEARNED + ["behaviours=all"]),
    "hgt-network": ("hgt", LEARNED + ["behaviours=all", "blend=off"]),  # without the blend
    "hgt-target": ("hgt", LEARNED + ["behaviours=target"]),
    # the information-equal check of the blend: lightgcn with every behaviour and the same blend
    "lightgcn-all-blend": ("lightgcn", LEARNED + ["behaviours=all", "blend=auto"]),
    "hgt-drop": ("hgt", LEARNED + ["behaviours=all", "aux_test_edges=drop"]),
}
DEFAULT = ("hgt", "hgt-network", "hgt-target", "lightgcn-all-blend", "lightgcn-all", "lightgcn",
           "behaviour-knn", "itemknn-all", "behaviour-pop", "behaviour-pop-drop", "pop")
SUMMARY = ("hr@10", "ndcg@10", "hr@50", "ndcg@50", "recall@20", "seconds_to_best",
           "train_seconds", "epochs", "peak_rss_mb")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, required=True, help="saved Tmall GraphSnapshot")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--models", nargs="+", default=list(DEFAULT), choices=list(VARIANTS))
    p.add_argument("--max-minutes", type=float, default=14.0,
                   help="training budget of every learned model")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each 1 thread)")
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="multibehaviour", help="result file stem")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra TrainConfig fields for every run (e.g. epochs=1 for a smoke run)")
    p.add_argument("--reuse", action="store_true",
                   help="read a variant/seed whose run directory holds a finished run trained "
                        "with the same model, seed and settings instead of training it again "
                        "(add seeds to a finished benchmark)")
    a = p.parse_args(argv)

    jobs = [(v, s) for v in a.models for s in a.seeds]
    snap = a.snapshot
    data = {"dataset": "tmall_multibehavior (purchases, carts, favourites; given split)",
            "snapshot": str(snap),
            "snapshot_sha256": fingerprint(snap / "graph.pt", snap / "ids.json")}
    runs: dict[str, dict[str, dict]] = {}

    def one(job: tuple[str, int]) -> None:
        variant, seed = job
        runs.setdefault(variant, {})[str(seed)] = run(variant, seed, a)
        write(a, data, {v: runs[v] for v in a.models if v in runs})  # partial results too

    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        list(pool.map(one, jobs))
    sys.stdout.write(markdown(json.loads((a.out / f"{a.name}.json").read_text())))
    return 0


def write(a: argparse.Namespace, data: dict, runs: dict[str, dict[str, dict]]) -> None:
    summary = {v: summarise(r) for v, r in runs.items()}
    out = {**provenance(data), "protocol": {"common": COMMON, "learned": LEARNED,
                                            "max_minutes": a.max_minutes, "extra": a.set},
           "variants": {v: {"model": VARIANTS[v][0], "settings": VARIANTS[v][1]}
                        for v in runs},
           "summary": summary, "targets": targets(summary), "runs": runs}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(out, indent=2) + "\n")
    (a.out / f"{a.name}.md").write_text(markdown(out))


def run(variant: str, seed: int, a: argparse.Namespace) -> dict:
    """Train one variant with one seed in its own process; its metrics.json (+ config)."""
    model, settings = VARIANTS[variant]
    run_dir = a.runs_dir / f"bench-mb-{variant}-s{seed}"
    from gnn.models import registry

    learned = registry()[model].trainable  # the no-learning ones get no training budget
    settings = COMMON + settings + ([f"max_minutes={a.max_minutes}"] if learned else []) + a.set
    # --reuse: a finished run trained as asked (model, seed, every setting) by an earlier
    # invocation is read, not retrained
    reused = reused_run(run_dir, model, settings, seed) if a.reuse else None
    if reused is not None:
        reused["learned_weights"] = learned_weights(run_dir)
        return reused
    metrics = train_one(a.snapshot, model, run_dir, settings, seed, threads=1)
    metrics["learned_weights"] = learned_weights(run_dir)
    print(f"[bench] {variant} seed {seed}: hr@10 {metrics['hr@10']:.4f} ndcg@10 "
          f"{metrics['ndcg@10']:.4f} ({metrics['wall_seconds']} s)", file=sys.stderr, flush=True)
    return metrics


def learned_weights(run_dir: Path) -> dict:
    """hgt's learned behaviour gains, attention priors and pair weights (else {})."""
    sys.path.insert(0, str(REPO))
    from gnn.rundir import RunDir

    model = RunDir(run_dir).load_model()
    return model.describe() if hasattr(model, "describe") else {}


def summarise(by_seed: dict[str, dict]) -> dict:
    """Mean and (with >= 2 seeds) standard deviation over seeds of the SUMMARY fields."""
    out: dict = {"seeds": len(by_seed)}
    for key in SUMMARY:
        values = [m[key] for m in by_seed.values() if m.get(key) is not None]
        if values:
            out[key] = statistics.fmean(values)
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def targets(s: dict[str, dict]) -> dict:
    """Issue 9: hgt HR@10 >= 0.15, >= 1.3 x behaviour-pop, >= 1.15 x lightgcn-all; best
    validation in < 15 minutes; peak RSS < 6 GB; the ablation (all behaviours vs target); and
    the ratios to the baselines of the same information (no target: said as they are)."""
    if "hgt" not in s:
        return {}
    hgt = s["hgt"]
    out: dict = {"hgt_hr@10": round(hgt["hr@10"], 4),
                 "hr@10_at_least_0.15": hgt["hr@10"] >= 0.15,
                 "seconds_to_best": round(hgt["seconds_to_best"], 1),
                 "under_15_minutes": hgt["seconds_to_best"] < 15 * 60,
                 "peak_rss_mb": round(hgt["peak_rss_mb"], 1),
                 "under_6_gb": hgt["peak_rss_mb"] < 6 * 1024}
    for base, factor in (("behaviour-pop", 1.3), ("lightgcn-all", 1.15), ("hgt-target", None),
                         ("behaviour-knn", None), ("itemknn-all", None),
                         ("lightgcn-all-blend", None)):
        if base in s and s[base]["hr@10"] > 0:
            ratio = hgt["hr@10"] / s[base]["hr@10"]
            out[f"hr@10_vs_{base}"] = round(ratio, 3)
            if factor:
                out[f"hr@10_at_least_{factor}x_{base}"] = ratio >= factor
    return out


def markdown(out: dict) -> str:
    cols = ("hr@10", "ndcg@10", "hr@50", "ndcg@50", "recall@20")
    lines = [f"Dataset: {out['data']['dataset']}. Published protocol: full ranking over all "
             "items, training purchases excluded, no cold items. Mean ± std over "
             f"{max(v['seeds'] for v in out['summary'].values())} seed(s).", "",
             "| variant | seeds | " + " | ".join(cols) + " | epochs | s to best | train s | "
             "peak RSS MB |", "|---" * (len(cols) + 6) + "|"]
    for v, m in out["summary"].items():
        cells = [f"{m[c]:.4f} ± {m[c + '_std']:.4f}" if c in m else "–" for c in cols]
        cells += [f"{m['epochs']:.0f}", f"{m['seconds_to_best']:,.0f}",
                  f"{m['train_seconds']:,.0f}", f"{m['peak_rss_mb']:,.0f}"]
        lines.append(f"| {v} | {m['seeds']} | " + " | ".join(cells) + " |")
    if out["targets"]:
        lines += ["", "Targets (issue 9): " + json.dumps(out["targets"])]
    weights = {v: r.get("learned_weights") for v, by in out["runs"].items()
               for r in list(by.values())[:1] if r.get("learned_weights")}
    if weights:
        lines += ["", "Learned behaviour weights (first seed): " + json.dumps(weights)]
    reused = sorted({f"{v} (seed {seed})" for v, by in out["runs"].items()
                     for seed, r in by.items() if r.get("reused")})
    if reused:
        lines += ["", "Reused from an earlier invocation (`--reuse`, not retrained; check that "
                  "the code of these variants did not change since): " + ", ".join(reused)]
    lines += footer(out, "OMP_NUM_THREADS=1 per run")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
