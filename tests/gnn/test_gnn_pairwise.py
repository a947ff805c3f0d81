"""gnn.models.pairwise.LinkFeatures: the KG link counts, checked by hand on a tiny shop."""

from __future__ import annotations

import math

import pandas as pd
import torch

from gnn.data import graph_from_snapshot
from gnn.models.pairwise import link_features
from gnn.snapshot import build_snapshot


def shop():
    """u0 bought i0 and i1. i0 -also_bought-> i2, i1 -also_bought-> i2, i3 -also_bought-> i0;
    i0, i2 share brand b0; i1, i2, i3 are in the leaf category `leaf`, every item in `root`."""
    items = ["i0", "i1", "i2", "i3"]
    edges = {
        "REVIEWED": pd.DataFrame({"src": ["u0", "u0", "u1"], "dst": ["i0", "i1", "i3"]}),
        "ALSO_BOUGHT": pd.DataFrame({"src": ["i0", "i1", "i3"], "dst": ["i2", "i2", "i0"]}),
        "HAS_BRAND": pd.DataFrame({"src": ["i0", "i2", "i3"], "dst": ["b0", "b0", "b1"]}),
        "IN_CATEGORY": pd.DataFrame({"src": items + ["i1", "i2", "i3"],
                                     "dst": ["root"] * 4 + ["leaf"] * 3}),
    }
    nodes = {"user": ["u0", "u1"], "item": items, "brand": ["b0", "b1"],
             "category": ["leaf", "root"]}
    return graph_from_snapshot(build_snapshot(nodes, edges))


def test_each_feature_counts_links_to_the_history():
    g = shop()
    f = link_features(g)
    assert f.names == ["also_bought", "rev_also_bought", "brand", "category", "pop"]
    u0 = f.users(torch.tensor([0]))

    def feature(name: str) -> list[float]:
        return [round(v, 5) for v in f.weighted(u0, {name: 1.0})[0].tolist()]

    def log(x: float) -> float:
        return round(math.log1p(x), 5)

    assert feature("also_bought") == [0, 0, log(2), 0]  # i0 and i1 both list i2
    assert feature("rev_also_bought") == [0, 0, 0, log(1)]  # i3 lists i0
    assert feature("brand") == [0, 0, log(1), 0]  # i2 shares i0's brand (i0 itself: no)
    idf_leaf, idf_root = math.log(4 / 3), math.log(4 / 4)
    # u0's history has root twice (i0, i1) and leaf once (i1)
    assert feature("category") == [log(2 * idf_root)] + [log(2 * idf_root + idf_leaf)] * 3
    assert feature("pop") == [log(1), log(1), 0, log(1)]  # i2 has no interaction
    # weights add the features up
    both = f.weighted(u0, {"also_bought": 2.0, "pop": 0.5})[0]
    assert torch.allclose(both, 2 * torch.tensor(feature("also_bought")) +
                          0.5 * torch.tensor(feature("pop")), atol=1e-5)


def test_features_are_cached_per_graph_and_follow_the_graph():
    g = shop()
    assert link_features(g) is link_features(g)
    other = shop()
    assert link_features(other) is not link_features(g)
