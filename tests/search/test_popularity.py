"""search.popularity: one definition (target relation, training split) from both sources."""

from __future__ import annotations

import numpy as np
import pandas as pd

from search import popularity as P


def test_training_popularity_counts_the_target_relation_without_test_pairs():
    f = pd.DataFrame({"relation": ["REVIEWED", "reviewed", "reviewed", "viewed", "reviewed"],
                      "item_id": ["a", "a", "b", "b", "c"],
                      "split": ["train", None, "test", "train", "train"], "n": [2, 1, 5, 7, 1]})
    assert P.training_popularity(["a", "b", "c", "d"], f).tolist() == [3.0, 0.0, 1.0, 0.0]
    assert P.training_popularity(["b"], f, target="viewed").tolist() == [7.0]
    f.loc[0, "relation"] = "purchased"  # purchases are the target when there are any
    assert P.training_popularity(["a", "b"], f).tolist() == [2.0, 0.0]
    assert P.training_popularity(["a"], f.iloc[:0]).tolist() == [0.0]


def test_the_target_rule_is_gnn_datas(tiny_run):
    from gnn.data import target_edge_type
    from gnn.rundir import RunDir

    snap = RunDir(tiny_run).load_snapshot()
    rels = [et[1] for et in snap.data.edge_types if et[0] == "user" and et[2] == "item"]
    assert P.target_relation(rels) == target_edge_type(snap.data)[1] == "reviewed"


def test_snapshot_and_graph_give_the_same_popularity(tiny_shop, tiny_run, reviews):
    from gnn.rundir import RunDir

    snap = RunDir(tiny_run).load_snapshot()
    items = snap.ids["item"]
    from_graph = P.from_store(tiny_shop, items)
    np.testing.assert_array_equal(P.from_snapshot(snap, items), from_graph)
    expected = pd.Series([r["dst"] for r in reviews if r["split"] != "test"]).value_counts()
    assert from_graph.tolist() == [float(expected.get(i, 0)) for i in items]
    assert from_graph.sum() < len(reviews)  # the test pairs are not counted
