"""Benchmark: train and evaluate models on the bundled Beauty graph (published split), over
seeds and evaluation protocols, with the ablations of hgt.

Each run trains in its own process (`python -m gnn.train`), so its peak RSS is its own; each
writes a normal run directory `RUNS/bench-VARIANT-PROTOCOL-sSEED`. The results land in
bench/results/NAME.json (every run's metrics and config, the table, the targets) and NAME.md:

    python bench/bench_models.py --snapshot SNAPSHOT_DIR [--models hgt kglink ...]
        [--seeds 0 1 2] [--protocol published|warmcold|both] [--ablations]
    python bench/bench_models.py            # exports the graph from the store first

Protocols: `warmcold` (the product's default: 10 % of the items are cold, the warm evaluation
ranks the other items, the cold slice ranks the cold ones) and `published` (`--set
cold_item_fraction=0`: every test pair over every item, as RecBole and PGPR evaluate, so the
numbers can be set beside theirs; no cold slice). The table gives mean ± std (sample std) over
the seeds. `--ablations` adds the hgt variants of `ABLATIONS`.

Per-model settings are `gnn.config.MODEL_DEFAULTS`; `--set KEY=VALUE` passes extra TrainConfig
fields to every run (e.g. --set epochs=3 for a smoke run). The JSON records the commit, the
command line, the date, the machine and a fingerprint of the snapshot (bench/provenance.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from provenance import child_env, fingerprint, footer, provenance

REPO = Path(__file__).resolve().parent.parent
MODELS = ("pop", "itemknn", "mf", "lightgcn", "lightgcn-kg", "kglink", "hgt")
BASELINES = ("lightgcn", "lightgcn-kg", "kglink", "mf", "itemknn")  # issue 13: hgt vs the best
PROTOCOLS = {"warmcold": [], "published": ["cold_item_fraction=0"]}
# hgt ablations (issue 13): what each part of the model buys. `hgt-network` is the network
# without the score blend (what the blend buys); the others take one part out of that network
ABLATIONS = {
    "hgt-network": ["blend=off"],
    "hgt-uniform-attention": ["blend=off", "attention=false"],
    "hgt-no-item-item": ["blend=off", "kg_exclude=item-item"],
    "hgt-no-brand-category": ["blend=off", "kg_exclude=brand,category"],
    "hgt-no-id-dropout": ["blend=off", "id_dropout=0"],
}
COLUMNS = ("ndcg@10", "recall@20", "hr@10", "mrr@10", "precision@10", "coverage@20",
           "cold_item_recall@20", "cold_item_ndcg@10", "cold_item_recall@20_baseline",
           "val_ndcg@20", "epochs", "seconds_to_best", "train_seconds", "peak_rss_mb")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, help="saved GraphSnapshot (default: export)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--protocol", choices=("published", "warmcold", "both"), default="both")
    p.add_argument("--ablations", action="store_true", help="add the hgt ablations")
    p.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="models", help="result file stem")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--reuse", action="store_true",
                   help="take a run directory that already holds a finished run with the same "
                        "model, seed and settings instead of training it again")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (OMP_NUM_THREADS); default: torch's choice")
    a = p.parse_args(argv)

    snapshot = a.snapshot or export_snapshot()
    variants = {m: [] for m in a.models}
    if a.ablations:
        variants.update(ABLATIONS)
    protocols = list(PROTOCOLS) if a.protocol == "both" else [a.protocol]
    data = {"dataset": "amazon-beauty (5-core, published PGPR/JRL split)",
            "snapshot": str(snapshot), "snapshot_sha256": fingerprint(snapshot / "graph.pt",
                                                                      snapshot / "ids.json"),
            "threads_per_run": a.threads}
    runs: list[dict] = []
    for protocol in protocols:
        for variant, extra in variants.items():
            for seed in a.seeds:
                model = "hgt" if variant in ABLATIONS else variant
                settings = ["dataset=amazon-beauty", *PROTOCOLS[protocol], *extra, *a.set]
                run_dir = a.runs_dir / f"bench-{variant}-{protocol}-s{seed}"
                metrics = (a.reuse and reused_run(run_dir, model, settings, seed)) or \
                    train_one(snapshot, model, run_dir, settings, seed, a.threads)
                runs.append({"variant": variant, "protocol": protocol, "seed": seed,
                             "run_dir": str(run_dir), **metrics})
                # written after every run: a long benchmark that is stopped keeps what it has
                out = write(a.out, a.name, data, a.seeds, protocols, runs)
    sys.stdout.write(markdown(out))
    return 0


def write(folder: Path, name: str, data: dict, seeds: list[int], protocols: list[str],
          runs: list[dict]) -> dict:
    rows = table(runs)
    out = {**provenance(data), "seeds": seeds, "protocols": protocols, "runs": runs,
           "table": rows, "targets": targets(rows)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    (folder / f"{name}.md").write_text(markdown(out))
    return out


def export_snapshot() -> Path:
    from core.config import Config
    from gnn.rundir import RunDir
    from graph.store import GraphStore

    cfg = Config.from_env()
    rd = RunDir.named(cfg.runs_dir, "bench-beauty")
    rd.snapshot(lambda: GraphStore(cfg.graph), fresh=True)
    return rd.snapshot_dir


def reused_run(run_dir: Path, model: str, settings: list[str], seed: int) -> dict | None:
    """The metrics of a finished run in `run_dir` trained as asked (model, seed and every
    KEY=VALUE of `settings` equal in its config.json), marked `reused`; else None. A field the
    run predates counts as equal when it is asked at the model's default (a new field defaults
    to the behaviour before it). Code changes since are not detected: the result files list
    the reused runs."""
    from gnn.config import TrainConfig, parse_settings

    if not (run_dir / "metrics.json").exists() or not (run_dir / "config.json").exists():
        return None
    config = json.loads((run_dir / "config.json").read_text())
    want = TrainConfig.for_model(model, {**parse_settings(settings), "seed": seed}).to_dict()
    default = TrainConfig.for_model(model).to_dict()
    if any(config.get(k, default[k]) != v for k, v in want.items() if k != "device"):
        return None
    print(f"[bench] {run_dir.name}: reusing the finished run", file=sys.stderr, flush=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {**metrics, "config": config, "reused": True}


def train_one(snapshot: Path, model: str, run_dir: Path, settings: list[str], seed: int,
              threads: int | None = None) -> dict:
    """Train `model` in its own process (`python -m gnn.train`); its metrics.json, with the
    run's config and the wall seconds of the process."""
    env = child_env()
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "gnn.train", "--snapshot", str(snapshot), "--model", model,
           "--run-dir", str(run_dir), "--overwrite", "--no-progress", "--seed", str(seed)]
    for item in settings:
        cmd += ["--set", item]
    t0 = time.perf_counter()
    print(f"[bench] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"[bench] {model} failed (exit {proc.returncode})")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["config"] = json.loads((run_dir / "config.json").read_text())
    metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"[bench] {run_dir.name}: ndcg@10 {metrics['ndcg@10']:.4f} recall@20 "
          f"{metrics['recall@20']:.4f} ({metrics['wall_seconds']} s)", file=sys.stderr,
          flush=True)
    return metrics


def table(runs: list[dict]) -> list[dict]:
    """One row per (protocol, variant): mean and sample std over the seeds of every column
    (std None with one seed; a column no run reports, e.g. a cold metric of a model that cannot
    score cold items, stays None)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["protocol"], r["variant"]), []).append(r)
    rows = []
    for (protocol, variant), rs in groups.items():
        row = {"protocol": protocol, "variant": variant, "seeds": [r["seed"] for r in rs]}
        for c in COLUMNS:
            vals = [float(r[c]) for r in rs if isinstance(r.get(c), (int, float))]
            row[c] = statistics.fmean(vals) if vals else None
            row[f"{c}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        rows.append(row)
    return rows


def targets(rows: list[dict]) -> dict:
    """Issue 13, per protocol: hgt NDCG@10 >= 1.10 x the best of the baselines (means over the
    seeds); in the warm/cold protocol hgt cold Recall@20 >= 1.10 x kglink's; hgt's seconds to
    its best validation < 10 minutes."""
    out: dict = {}
    for protocol in sorted({r["protocol"] for r in rows}):
        by = {r["variant"]: r for r in rows if r["protocol"] == protocol}
        hgt = by.get("hgt")
        if hgt is None:
            continue
        t: dict = {"hgt_seconds_to_best": hgt["seconds_to_best"],
                   "hgt_under_10_minutes": hgt["seconds_to_best"] is not None
                   and hgt["seconds_to_best"] < 600}
        base = {m: by[m]["ndcg@10"] for m in BASELINES if m in by}
        if base:
            best = max(base, key=base.get)
            t.update({"best_baseline": best, "ndcg@10_ratio": round(hgt["ndcg@10"] / base[best], 4),
                      "ndcg@10_at_least_1.10x": hgt["ndcg@10"] >= 1.1 * base[best]})
        kg = by.get("kglink", {}).get("cold_item_recall@20")
        if kg and hgt.get("cold_item_recall@20") is not None:
            t.update({"cold_recall@20_ratio_vs_kglink": round(hgt["cold_item_recall@20"] / kg, 4),
                      "cold_at_least_1.10x_kglink": hgt["cold_item_recall@20"] >= 1.1 * kg})
        out[protocol] = t
    return out


def _cell(row: dict, c: str) -> str:
    v, sd = row.get(c), row.get(f"{c}_std")
    if v is None:
        return "–"
    digits = 4 if "@" in c else 0 if c in ("peak_rss_mb", "epochs") else 1
    return f"{v:,.{digits}f}" + ("" if sd is None else f" ± {sd:,.{digits}f}")


def markdown(out: dict) -> str:
    cols = ("ndcg@10", "recall@20", "hr@10", "mrr@10", "coverage@20", "cold_item_recall@20",
            "cold_item_ndcg@10", "epochs", "seconds_to_best", "peak_rss_mb")
    seeds = out["seeds"]
    lines = [f"Dataset: {out['data']['dataset']}; test metrics over the candidate items (full "
             f"ranking, training items excluded); seeds {seeds}"
             f"{' (mean ± sample std)' if len(seeds) > 1 else ' (one seed: no std)'}.",
             "Protocols: `warmcold` = 10 % of items cold (warm metrics rank the warm items, the "
             "cold slice the cold ones); `published` = every test pair over every item "
             "(`cold_item_fraction=0`). `–`: not reported (a model that cannot score items "
             "without interactions has no cold metric)."]
    for protocol in out["protocols"]:
        rows = [r for r in out["table"] if r["protocol"] == protocol]
        if not rows:
            continue
        lines += ["", f"### {protocol}", "", "| model | " + " | ".join(cols) + " |",
                  "|---" * (len(cols) + 1) + "|"]
        lines += [f"| {r['variant']} | " + " | ".join(_cell(r, c) for c in cols) + " |"
                  for r in rows]
        base = next((r["cold_item_recall@20_baseline"] for r in rows
                     if r.get("cold_item_recall@20_baseline") is not None), None)
        if base is not None:
            lines += ["", "Cold-start slice baseline (most popular in the user's categories): "
                      f"cold_item_recall@20 = {base:.4f}"]
    reused = [f"{r['variant']} {r['protocol']} seed {r['seed']}" for r in out["runs"]
              if r.get("reused")]
    if reused:
        lines += ["", "Reused from an earlier invocation (`--reuse`: same model, seed and "
                  "settings; not retrained): " + ", ".join(reused)]
    if out["targets"]:
        lines += ["", "Targets (issue 13): " + json.dumps(out["targets"])]
    per_run = out["data"].get("threads_per_run")
    lines += footer(out, f"OMP_NUM_THREADS={per_run} per run" if per_run else
                    f"threads per run: torch's choice ({out['machine']['torch_threads']})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
