"""search.protocol: tie-aware metrics, the queries, and the methods on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InputFileError
from search.engine import SearchEngine
from search.protocol import build_queries, evaluate, latency, read_queries, tie_aware


def _brute_force(g: int, t: int, k: int) -> tuple[float, float, float]:
    """Average over every position of the target in its tie group."""
    ranks = np.arange(g + 1, g + t + 1)
    return ((1 / ranks).mean(), np.where(ranks <= k, 1 / np.log2(ranks + 1), 0).mean(),
            (ranks <= k).mean())


@pytest.mark.parametrize("g,t", [(0, 1), (0, 2), (9, 2), (3, 40), (120, 7), (0, 12000)])
def test_tie_aware_metrics_are_the_expectation_over_tied_orders(g, t):
    m = tie_aware(np.array([g]), np.array([t]), 10)
    rr, ndcg, hr = _brute_force(g, t, 10)
    assert m["mrr"][0] == pytest.approx(rr)
    assert m["ndcg@10"][0] == pytest.approx(ndcg)
    assert m["hr@10"][0] == pytest.approx(hr)


def test_evaluate_matches_a_hand_computed_example(catalogue):
    engine = SearchEngine(catalogue(["face cream", "face cream", "face wash", "hand soap"]),
                          popularity=np.array([1, 2, 3, 4]))
    q = pd.DataFrame({"user_id": ["u"], "item_id": ["i01"], "query": ["face cream"],
                      "slice": ["test"]})
    m = evaluate(engine, q)
    assert m["bm25.mrr"] == pytest.approx(0.75)  # tied first with i00
    assert m["bm25.hr@10"] == pytest.approx(1.0)
    assert m["popularity.mrr"] == pytest.approx(1 / 3)  # i03, i02 are more popular
    assert m["gnn.mrr"] == pytest.approx(_brute_force(0, 4, 10)[0])  # no model: all tied
    # the pipeline: candidates i00, i01 (both words), then i02; popularity breaks the tie
    assert m["anonymous.mrr"] == pytest.approx(1.0)
    assert m["queries"] == 1 and "slices" not in m


def test_evaluate_reports_each_slice(catalogue):
    engine = SearchEngine(catalogue(["face cream", "face wash", "hand soap"]),
                          popularity=np.array([1, 2, 3]))
    q = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["i00", "i02"],
                      "query": ["face cream", "face cream"], "slice": ["warm", "cold"]})
    m = evaluate(engine, q)
    assert m["slices"]["warm"]["bm25.mrr"] == pytest.approx(1.0)
    assert m["slices"]["cold"]["queries"] == 1
    assert m["bm25.mrr"] == pytest.approx(np.mean([1.0, m["slices"]["cold"]["bm25.mrr"]]))


def test_build_queries_skips_and_counts(catalogue):
    cat = catalogue(["a", "b", "c"], categories=[["Beauty", "Skin Care"], [], ["&"]])
    q, skipped = build_queries(cat, ["u1", "u2", "u3", "u4"], ["i00", "i01", "i02", "zz"])
    assert q["query"].tolist() == ["beauty skin care"]
    assert skipped == {"item_not_in_catalogue": 1, "empty_query": 2}


def test_read_queries_checks_the_columns(catalogue, tmp_path):
    engine = SearchEngine(catalogue(["face cream"]))
    (tmp_path / "q.csv").write_text("user,item\nu,i00\n")
    with pytest.raises(InputFileError, match="needs the columns user_id, item_id, query"):
        read_queries(tmp_path / "q.csv", engine)


def test_latency_times_the_search_call(catalogue):
    engine = SearchEngine(catalogue(["face cream", "face wash"]))
    q = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["i00"] * 3, "query": ["face"] * 3})
    out = latency(engine, q, 3)
    assert out["latency_queries"] == 3 and 0 < out["latency_p50_ms"] <= out["latency_p95_ms"]
