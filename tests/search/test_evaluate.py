"""search.evaluate on the real embedded graph and a real trained run: the protocol end to end."""

from __future__ import annotations

import contextlib

import pandas as pd

from gnn.rundir import RunDir
from search import assets as A
from search.blend import Blend
from search.config import SearchConfig
from search.evaluate import QUERIES_TEST, QUERIES_VAL, evaluate_run
from search.index import TextIndex


def test_evaluate_run_writes_metrics_queries_and_a_validation_only_blend(tiny_run, tiny_shop,
                                                                         reviews):
    rd = RunDir(tiny_run)
    cat, notes = A.catalogue_for(rd.search_file, None, rd.load_snapshot)
    assert cat.source == "snapshot" and any("no titles" in n for n in notes)

    def open_store(start: bool = True):
        return contextlib.nullcontext(tiny_shop)

    cat, _ = A.catalogue_for(rd.search_file, open_store, refresh=True)
    assert cat.source == "graph"
    index = TextIndex.build(cat.texts(), fingerprint=cat.fingerprint())
    out = evaluate_run(rd, cat, index, SearchConfig(latency_queries=20))
    assert rd.read_json(RunDir.SEARCH_METRICS) == out
    for key in ("bm25.ndcg@10", "reranked.ndcg@10", "reranked.mrr", "popularity.mrr",
                "gnn.hr@10", "anonymous.ndcg@10", "latency_p50_ms", "latency_p95_ms",
                "ratio.reranked_vs_bm25.ndcg@10"):
        assert isinstance(out[key], float), key
    assert out["skipped"] == {"item_not_in_catalogue": 0, "empty_query": 1}  # e1
    test = pd.read_csv(rd.search_file(QUERIES_TEST), dtype=str)
    n_test = sum(r["split"] == "test" for r in reviews)
    assert len(test) == out["queries"] == n_test - 1
    assert set(test["query"]) == {"beauty fragrance", "beauty bath body"}
    # the blend saw validation pairs only: none of them is a test pair
    val = pd.read_csv(rd.search_file(QUERIES_VAL), dtype=str)
    assert len(val) == out["blend"]["fitted"]["queries"] > 0
    test_pairs = {(r["src"], r["dst"]) for r in reviews if r["split"] == "test"}
    assert not set(zip(val["user_id"], val["item_id"])) & test_pairs
    assert Blend.load(rd.search_file(A.BLEND)).personal == out["blend"]["personal"]
    # every test target is a rose item for A users, a lavender one for B users: the trained
    # vectors know which, BM25 on "beauty fragrance" cannot
    assert out["gnn.mrr"] > out["bm25.mrr"]
    assert out["reranked.ndcg@10"] >= out["bm25.ndcg@10"]
    assert out["protocol"]["item_text"].startswith("title + brand + category names")
