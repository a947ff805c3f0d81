"""The search protocol on a trained run (`kgrec search-eval`): fit the blend on the run's
validation pairs, evaluate on its test pairs (warm and cold items), write the results.

The engines see what the run's split lets them see: the validation engine the training graph
(its history and popularity = the training pairs), the test engine the evaluation graph (training
+ validation pairs); the user's history is left out of every ranking. Writes, through the RunDir:
`search/queries_val.csv`, `search/queries_test.csv`, `search/blend.json` and
`search_metrics.json` (every method overall and per slice, the re-ranked/BM25 ratios, latency, the
blend and how it was fitted, the protocol and the config).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from core.progress import Progress
from gnn.rundir import RunDir
from search.assets import BLEND, OpenStore
from search.blend import Blend, fit_blend
from search.catalogue import Catalogue
from search.config import METHODS, SearchConfig
from search.index import TextIndex
from search.protocol import build_queries, evaluate, latency, read_queries
from search.serving import RunAssets

QUERIES_VAL, QUERIES_TEST = "queries_val.csv", "queries_test.csv"


def split_assets(rd: RunDir, open_store: OpenStore | None = None):
    """(split, validation assets, test assets, snapshot) of a trained run."""
    from gnn.data import make_split
    from gnn.runtime import seed_everything

    model = rd.load_model()
    snapshot = rd.snapshot(open_store)
    seed_everything(model.cfg.seed)
    split = make_split(snapshot, model.cfg)
    return (split, RunAssets.from_model(model, split.train_graph),
            RunAssets.from_model(model, split.eval_graph), snapshot)


def _pairs(snapshot, pairs, slice_name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    p = pairs.numpy()
    return snapshot.ids["user"][p[0]], snapshot.ids["item"][p[1]], [slice_name] * p.shape[1]


def fit_run_blend(rd: RunDir, catalogue: Catalogue, index: TextIndex,
                  cfg: SearchConfig | None = None, assets=None,
                  open_store: OpenStore | None = None) -> Blend:
    """Fit the blend on (a seeded sample of `fit_queries`) validation queries; save it."""
    cfg = cfg or SearchConfig()
    split, val_assets, _, snapshot = assets or split_assets(rd, open_store)
    q, skipped = build_queries(catalogue, *_pairs(snapshot, split.val, "val"))
    if len(q) > cfg.fit_queries:
        q = q.sample(cfg.fit_queries, random_state=cfg.seed).sort_index().reset_index(drop=True)
    rd.search_dir.mkdir(parents=True, exist_ok=True)
    q.to_csv(rd.search_file(QUERIES_VAL), index=False)
    blend = fit_blend(val_assets.engine(catalogue, cfg=cfg, index=index), q, cfg)
    blend.fitted["skipped"] = skipped
    blend.save(rd.search_file(BLEND))
    return blend


def evaluate_run(rd: RunDir, catalogue: Catalogue, index: TextIndex,
                 cfg: SearchConfig | None = None, queries_file: Path | None = None,
                 progress: Progress | None = None, open_store: OpenStore | None = None) -> dict[str, Any]:
    """The protocol on a trained run: fit the blend on validation queries, evaluate on the test
    pairs (or on `queries_file`: user_id, item_id, query[, slice]), time the pipeline; writes
    the queries, blend.json and search_metrics.json. Returns the metrics."""
    cfg = cfg or SearchConfig()
    t0 = time.perf_counter()
    assets = split_assets(rd, open_store)
    split, _, test_assets, snapshot = assets
    step = "fit the blend on validation queries"
    if progress:
        progress(step, 0, 1)
    blend = fit_run_blend(rd, catalogue, index, cfg, assets)
    if progress:
        progress(step, 1, 1)
    engine = test_assets.engine(catalogue, blend=blend, cfg=cfg, index=index)
    if queries_file is not None:
        queries, skipped = read_queries(queries_file, engine)
    else:
        u1, i1, s1 = _pairs(snapshot, split.test, "warm")
        u2, i2, s2 = _pairs(snapshot, split.cold_test, "cold")
        queries, skipped = build_queries(catalogue, np.r_[u1, u2], np.r_[i1, i2], s1 + s2)
        queries.to_csv(rd.search_file(QUERIES_TEST), index=False)
    total = len(queries)
    if cfg.eval_queries is not None and total > cfg.eval_queries:
        queries = queries.sample(cfg.eval_queries, random_state=cfg.seed).sort_index()
        queries = queries.reset_index(drop=True)
    if queries.empty:
        raise DataError(f"no test query left to evaluate (see the skipped counts: {skipped})")
    def count(n: int) -> None:
        if progress:
            progress("evaluate test queries", n, len(queries))

    metrics = evaluate(engine, queries, cfg, progress=count)
    out: dict[str, Any] = {
        "run": rd.name, "model": rd.model_name(),
        **{k: v for k, v in metrics.items() if k != "slices"},
        **latency(engine, queries, cfg.latency_queries, cfg.seed),
        **ratios(metrics, cfg.k),
        "slices": {s: {**m, **ratios(m, cfg.k)} for s, m in metrics.get("slices", {}).items()},
        "queries_available": total, "skipped": skipped,
        "blend": {"personal": blend.personal, "anonymous": blend.anonymous,
                  "fitted": blend.fitted},
        "protocol": {
            "query": "the target item's category names, lower-cased, stop words and repeated "
                     "words removed (Ai et al., SIGIR 2017)",
            "queries_file": str(queries_file or rd.search_file(QUERIES_TEST)),
            "pairs": "held-out test (user, item) pairs of the run's split (warm + cold items)"
            if queries_file is None else "from the queries file",
            "history_excluded": True,
            "ties": "expected value under a random order of tied items",
            "item_text": "title + brand + category names (the BM25 baseline and the "
                         "re-ranker's candidates index the same text)",
            "methods": list(METHODS),
            "catalogue_source": catalogue.source, "catalogue_items": len(catalogue),
        },
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = nan_safe(out)
    rd.write_json(RunDir.SEARCH_METRICS, out)
    return out


def ratios(metrics: dict[str, Any], k: int) -> dict[str, float | None]:
    """Re-ranked (and anonymous) NDCG@k over BM25's, when BM25's is positive."""
    base = metrics.get(f"bm25.ndcg@{k}") or 0.0
    return {f"ratio.{m}_vs_bm25.ndcg@{k}": metrics[f"{m}.ndcg@{k}"] / base if base > 0 else None
            for m in ("reranked", "anonymous")}


def nan_safe(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: nan_safe(v) for k, v in d.items()}
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def read_queries_csv(rd: RunDir, name: str = QUERIES_TEST) -> pd.DataFrame:
    """A protocol queries file the run saved (for benchmarks)."""
    return pd.read_csv(rd.search_file(name), dtype=str, keep_default_na=False)
