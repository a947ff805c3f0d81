"""Where the cold-start slice's hits come from (issue 13): the cold test pairs split by whether
the item has a direct knowledge-graph link to one of the user's training items, and the hit rate
of each scorer on each part.

    python bench/bench_cold.py --snapshot SNAPSHOT_DIR --run HGT_RUN_DIR [--kglink-run DIR]
        [--name cold-sources]

For every cold test pair (u, c) of the run's split (cold items ranked among the cold items, the
user's history excluded, as the benchmark's cold metric): `linked` = c has an item-item edge
(any relation, either direction) to an item of u's training history. Per scorer, the share of
pairs with c in the user's top 20, on the linked pairs, the unlinked ones and all: the
`kglink` baseline (its own run's fitted weights), hgt's network alone (the blend off) and hgt
as it scores (network + blend). Two bounds of any way of combining the baseline's and the
network's lists per pair: `route` (the baseline on linked pairs, the network on unlinked ones)
and `either` (a hit when either list has it). Pair-level hit rates (the benchmark's
cold Recall@20 averages per user: close, not equal).
With `--recalibrate` the saved network is calibrated again with the current code before it is
scored (`model.calibrate`: hgt's cold-item map, then the blend weights on validation, as a
training run at this commit does after restoring its best state): rows `network + map`,
`hgt + map` (the blend, without the cold-item scorer), `hgt + map + scorer` (the product: the
scorer orders the cold items) and `scorer on links only` (the ablation: the same scorer fitted
the same way on the KG link features alone, no network feature: what a learned link count
reaches). Several `--run` (with as many `--kglink-run`) give one table per run and the
benchmark's own cold metric (cold Recall@20, per user, `gnn.evaluate`) as mean ± std.
Writes bench/results/NAME.json and .md with the commit, the command, the data fingerprint, the
date and the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from provenance import REPO, fingerprint, footer, provenance

from gnn.data import make_split
from gnn.evaluate import evaluate, topk_scores
from gnn.models import cold_head
from gnn.models.pairwise import history_matrix, item_relations, relation_matrix
from gnn.rundir import RunDir
from gnn.snapshot import GraphSnapshot

K = 20


def top_hits(scores: torch.Tensor, split, users: torch.Tensor, k: int = K) -> torch.Tensor:
    """[cold test pairs] bool: the pair's item is in its user's top k of the cold items (the
    evaluation's own top-k: history and non-candidates masked)."""
    pairs = split.cold_test
    top, _ = topk_scores(scores.clone(), k, split.eval_graph.history, users, ~split.warm_items)
    return (top[torch.searchsorted(users, pairs[0])] == pairs[1][:, None]).any(1)


def linked_pairs(split, users: torch.Tensor) -> torch.Tensor:
    """[cold test pairs] bool: an item-item edge (any relation, either direction) joins the item
    and the user's history (kglink's link matrices)."""
    g, pairs = split.eval_graph, split.cold_test
    adj = sp.csr_matrix((g.n_items, g.n_items), dtype=np.float32)
    for et in item_relations(g):
        m = relation_matrix(g, et)
        adj = adj + m + m.T
    links = history_matrix(g)[users.numpy()] @ adj  # [users, items]: links from the history
    rows = np.array(torch.searchsorted(users, pairs[0]))
    return torch.from_numpy(np.asarray(links[rows, np.array(pairs[1])]).ravel() > 0)


def rates(hit: torch.Tensor, linked: torch.Tensor) -> dict[str, float]:
    return {"linked": round(float(hit[linked].float().mean()), 4),
            "unlinked": round(float(hit[~linked].float().mean()), 4),
            "all": round(float(hit.float().mean()), 4)}


def cold_recall(model, split) -> float:
    """The benchmark's cold metric: cold Recall@20 per user over the cold items."""
    cold = evaluate(model, split.eval_graph, split.cold_test, ~split.warm_items, (20,), 2048)
    return round(cold["recall@20"], 4)


def one_run(snapshot, run: Path, kglink_run: Path | None, recalibrate: bool) -> dict:
    """The pair-level table and the benchmark's cold metric of one hgt run."""
    model = RunDir(run).load_model()
    split = make_split(snapshot, model.cfg)
    g = split.eval_graph
    users = split.cold_test[0].unique()
    kglink = RunDir(kglink_run).load_model() if kglink_run else model.blend.prior("kglink")
    linked = linked_pairs(split, users)

    def network_and_blended() -> tuple[torch.Tensor, torch.Tensor]:
        u, i = model.embeddings(g)
        with torch.no_grad():
            return (u[users] @ i.T).float(), model.score_users(users, g).float()

    network, blended = network_and_blended()
    hits = {"kglink": top_hits(kglink.score_users(users, g).float(), split, users),
            "network": top_hits(network, split, users), "hgt": top_hits(blended, split, users)}
    metric = {"kglink": cold_recall(kglink, split), "hgt": cold_recall(model, split)}
    calibration = None
    if recalibrate:
        model.calibrate(split)
        head, model.cold_head = model.cold_head, None  # the map alone first
        calibration = {k: model.meta.get(k) for k in ("cold_map", "blend", "cold_head")}
        network, blended = network_and_blended()
        hits["network + map"] = top_hits(network, split, users)
        hits["hgt + map"] = top_hits(blended, split, users)
        metric["hgt + map"] = cold_recall(model, split)
        if head is not None:
            model.cold_head = head
            hits["hgt + map + scorer"] = top_hits(model.score_users(users, g).float(), split,
                                                  users)
            metric["hgt + map + scorer"] = cold_recall(model, split)
            # ablation: the same scorer, fitted the same way, on the KG link features alone
            user, item = model.embeddings(split.train_graph)
            links = [n for n in model.meta["cold_head"]["features"]
                     if n not in cold_head.NETWORK]
            model.cold_head, links_record = cold_head.fit(
                split, user, item, model.cold_weight, model.meta["kg_edge_types"],
                model.meta["cold_map"]["parts"], model.cfg.seed, names=links)
            model.meta["cold_head"] = calibration["cold_head_links_only"] = links_record
            hits["scorer on links only"] = top_hits(model.score_users(users, g).float(),
                                                    split, users)
            metric["scorer on links only"] = cold_recall(model, split)

    out = {name: rates(h, linked) for name, h in hits.items()}
    out["route (bound)"] = rates(torch.where(linked, hits["kglink"], hits["network"]), linked)
    out["either (bound)"] = rates(hits["kglink"] | hits["network"], linked)
    return {"run": str(run), "kglink_run": str(kglink_run) if kglink_run else None,
            "blend": model.meta.get("blend") if not recalibrate else None,
            "recalibrated": calibration, "cold_pairs": int(linked.numel()),
            "linked_share": round(float(linked.float().mean()), 4),
            "cold_items": int((~split.warm_items).sum()), "cold_users": len(users),
            "hit@20": out, "cold_recall@20": metric}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True, action="append",
                   help="an hgt run directory (blended); repeat for several seeds")
    p.add_argument("--kglink-run", type=Path, action="append", default=[],
                   help="the kglink baseline's run directory, one per --run (default: the hgt "
                        "run's own kglink prior)")
    p.add_argument("--recalibrate", action="store_true",
                   help="calibrate the saved network again with the current code (cold map, "
                        "blend) and score it too")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="cold-sources")
    a = p.parse_args(argv)
    if a.kglink_run and len(a.kglink_run) != len(a.run):
        p.error("give one --kglink-run per --run (or none)")
    snapshot = GraphSnapshot.load(a.snapshot)
    kg_runs = a.kglink_run or [None] * len(a.run)
    runs = [one_run(snapshot, r, k, a.recalibrate) for r, k in zip(a.run, kg_runs)]
    metric = {name: [r["cold_recall@20"][name] for r in runs]
              for name in runs[0]["cold_recall@20"]}
    summary = {name: {"mean": round(statistics.fmean(v), 4),
                      "std": round(statistics.stdev(v), 4) if len(v) > 1 else 0.0}
               for name, v in metric.items()}
    result = {**provenance({"snapshot": fingerprint(a.snapshot)}), "runs": runs,
              "cold_recall@20": summary}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Cold-start slice: where the hits come from", ""]
    if len(runs) > 1 or a.recalibrate:
        base = summary["kglink"]["mean"]
        lines += [f"The benchmark's cold Recall@20 (per user, cold items ranked among the cold "
                  f"items), mean ± std over {len(runs)} run(s):", "",
                  "| scorer | cold Recall@20 | × kglink |", "|---|---|---|"]
        lines += [f"| {n} | {m['mean']:.4f} ± {m['std']:.4f} | {m['mean'] / base:.3f} |"
                  for n, m in summary.items()]
        lines.append("")
    for r in runs:
        lines += [f"## `{Path(r['run']).name}`", "",
                  f"{r['cold_pairs']:,} cold test pairs of {r['cold_users']:,} users over "
                  f"{r['cold_items']:,} cold items; **{r['linked_share']:.1%}** have a direct "
                  "item-item link to the user's training history. Pair-level hit@20 (the item "
                  "in the user's top 20 of the cold items):", "",
                  "| scorer | linked pairs | unlinked pairs | all | × kglink |",
                  "|---|---|---|---|---|"]
        base_all = r["hit@20"]["kglink"]["all"]
        for name, x in r["hit@20"].items():
            lines.append(f"| {name} | {x['linked']:.4f} | {x['unlinked']:.4f} | {x['all']:.4f} "
                         f"| {x['all'] / base_all:.3f} |")
        lines.append("")
    lines += footer(result, "threads as torch chose")
    (a.out / f"{a.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
