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
Writes bench/results/NAME.json and .md with the commit, the command, the data fingerprint, the
date and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from provenance import REPO, fingerprint, footer, provenance

from gnn.data import make_split
from gnn.evaluate import topk_scores
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True, help="an hgt run directory (blended)")
    p.add_argument("--kglink-run", type=Path, help="the kglink baseline's run directory "
                   "(default: the hgt run's own kglink prior)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--name", default="cold-sources")
    a = p.parse_args(argv)
    snapshot = GraphSnapshot.load(a.snapshot)
    model = RunDir(a.run).load_model()
    split = make_split(snapshot, model.cfg)
    g = split.eval_graph
    users = split.cold_test[0].unique()
    u, i = model.embeddings(g)
    network = (u[users] @ i.T).float()
    kglink = RunDir(a.kglink_run).load_model() if a.kglink_run else model.blend.prior("kglink")
    base = kglink.score_users(users, g).float()
    with torch.no_grad():
        blended = model.score_users(users, g).float()
    linked = linked_pairs(split, users)
    hits = {"kglink": top_hits(base, split, users), "network": top_hits(network, split, users),
            "hgt": top_hits(blended, split, users)}
    out = {"kglink": rates(hits["kglink"], linked), "network": rates(hits["network"], linked),
           "hgt": rates(hits["hgt"], linked)}
    route = torch.where(linked, hits["kglink"], hits["network"])
    out["route (bound)"] = rates(route, linked)
    out["either (bound)"] = rates(hits["kglink"] | hits["network"], linked)
    result = {**provenance({"snapshot": fingerprint(a.snapshot)}),
              "run": str(a.run), "kglink_run": str(a.kglink_run) if a.kglink_run else None,
              "blend": model.meta.get("blend"), "cold_pairs": int(linked.numel()),
              "linked_share": round(float(linked.float().mean()), 4),
              "cold_items": int((~split.warm_items).sum()), "cold_users": len(users),
              "hit@20": out}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    base_all = out["kglink"]["all"]
    lines = [f"# Cold-start slice: where the hits come from (`{a.run.name}`)", "",
             f"{result['cold_pairs']:,} cold test pairs of {len(users):,} users over "
             f"{result['cold_items']:,} cold items; **{result['linked_share']:.1%}** have a direct "
             "item-item link to the user's training history. Pair-level hit@20 (the item in the "
             "user's top 20 of the cold items):", "",
             "| scorer | linked pairs | unlinked pairs | all | × kglink |", "|---|---|---|---|---|"]
    for name, r in out.items():
        lines.append(f"| {name} | {r['linked']:.4f} | {r['unlinked']:.4f} | {r['all']:.4f} | "
                     f"{r['all'] / base_all:.3f} |")
    lines += footer(result, "threads as torch chose")
    (a.out / f"{a.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
