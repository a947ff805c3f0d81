"""gnn.data: splits without leakage, the message-passing graphs, negatives."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from gnn_fixtures import checkerboard

from core.errors import DataError
from gnn.config import TrainConfig
from gnn.data import (
    graph_from_snapshot,
    is_member,
    make_split,
    pair_keys,
    sample_negatives,
    target_edge_type,
)


def keyset(pairs: torch.Tensor, n_items: int) -> set[int]:
    return set(pair_keys(pairs, n_items).tolist())


def assert_no_leak(split) -> None:
    n = split.train_graph.n_items
    train_seen = keyset(split.train_graph.user_item_pairs(), n)
    eval_seen = keyset(split.eval_graph.user_item_pairs(), n)
    held_out = keyset(torch.cat([split.val, split.test, split.cold_test], 1), n)
    test = keyset(torch.cat([split.test, split.cold_test], 1), n)
    assert not train_seen & held_out, "a val/test edge is reachable in the training graph"
    assert not eval_seen & test, "a test edge is reachable in the evaluation graph"
    for g in (split.train_graph, split.eval_graph):
        pairs = g.user_item_pairs()
        assert not torch.isin(pairs[1], split.cold_items).any(), "a cold item has interactions"
        # every user-item type has its reverse, with exactly the flipped edges
        for et in g.data.edge_types:
            if et[0] == "user" and et[2] == "item":
                rev = g.data[et[2], "rev_" + et[1], et[0]].edge_index
                assert keyset(rev.flip(0), n) == keyset(g.data[et].edge_index, n)


def test_published_split_has_no_leakage(slice_snapshot):
    split = make_split(slice_snapshot, TrainConfig(val_fraction=0.2, cold_item_fraction=0.1))
    assert split.mode == "given"
    assert_no_leak(split)
    st = slice_snapshot.data["user", "reviewed", "item"]
    n = slice_snapshot.data["item"].num_nodes
    given_test = keyset(st.edge_index[:, st.split == 2], n)
    given_train = keyset(st.edge_index[:, st.split == 1], n)
    # val is carved from training edges only; test = the given test edges
    assert keyset(split.val, n) <= given_train
    assert keyset(torch.cat([split.test, split.cold_test], 1), n) == given_test
    # every training edge of a warm item is either a train positive or validation
    cold = set(split.cold_items.tolist())
    warm_train = {k for k in given_train if k % n not in cold}
    assert keyset(torch.cat([split.train, split.val], 1), n) == warm_train
    assert keyset(split.train_graph.history, n) == keyset(split.train, n)
    assert keyset(split.eval_graph.history, n) == keyset(torch.cat([split.train, split.val], 1),
                                                         n)
    # KG edges are all kept, the cold items' too
    for et in split.train_graph.kg_edge_types():
        assert torch.equal(split.train_graph.data[et].edge_index, slice_snapshot.data[et].edge_index)
    assert 0.15 < split.val.size(1) / (split.val.size(1) + split.train.size(1)) < 0.25


def test_split_is_seeded(slice_snapshot):
    a = make_split(slice_snapshot, TrainConfig(seed=1))
    b = make_split(slice_snapshot, TrainConfig(seed=1))
    c = make_split(slice_snapshot, TrainConfig(seed=2))
    assert torch.equal(a.val, b.val) and torch.equal(a.cold_items, b.cold_items)
    assert not torch.equal(a.cold_items, c.cold_items)


def test_temporal_split_takes_each_users_latest():
    snap = checkerboard()
    st = snap.data["user", "reviewed", "item"]
    st.split = torch.zeros_like(st.split)  # no labels: auto falls back to temporal
    split = make_split(snap, TrainConfig(cold_item_fraction=0.0, val_fraction=0.0,
                                         temporal_fraction=0.2))
    assert split.mode == "temporal"
    ts = dict(zip(pair_keys(st.edge_index, 20).tolist(), st.first_ts.tolist()))
    for u in range(snap.data["user"].num_nodes):
        tr = [ts[k] for k in keyset(split.train[:, split.train[0] == u], 20)]
        te = [ts[k] for k in keyset(split.test[:, split.test[0] == u], 20)]
        assert len(te) == 1  # round(0.2 * 7)
        assert max(tr) <= min(te)
    assert_no_leak(split)


def test_latest_validation_and_other_behaviours_are_filtered():
    """With `aux_test_edges=drop`, a VIEWED edge for a held-out pair must not reach the graphs;
    one for a train pair may (the default, keep, is in test_multibehaviour.py)."""
    base = checkerboard()
    st = base.data["user", "reviewed", "item"]
    users, items = base.ids["user"], base.ids["item"]
    pairs = [(users[u], items[i]) for u, i in st.edge_index.T.tolist()]
    views = pd.DataFrame(pairs, columns=["src", "dst"]).assign(count=1, first_ts=1, last_ts=1)
    snap = checkerboard(extra={"VIEWED": views})
    split = make_split(snap, TrainConfig(val_mode="latest", val_fraction=0.3,
                                         cold_item_fraction=0.1, aux_test_edges="drop"))
    assert_no_leak(split)
    viewed = keyset(split.train_graph.data["user", "viewed", "item"].edge_index, 20)
    assert viewed == keyset(split.train, 20)  # views of val/test/cold pairs are gone
    assert target_edge_type(snap.data) == ("user", "reviewed", "item")


def test_target_relation():
    snap = checkerboard()
    assert target_edge_type(snap.data) == ("user", "reviewed", "item")
    with pytest.raises(DataError, match="not in the graph"):
        target_edge_type(snap.data, "purchased")
    purchases = pd.DataFrame({"src": ["Au00"], "dst": ["Ai00"], "count": 1, "first_ts": 1,
                              "last_ts": 1})
    assert target_edge_type(checkerboard(extra={"PURCHASED": purchases}).data)[1] == "purchased"


def test_serving_graph_has_every_interaction():
    snap = checkerboard()
    g = graph_from_snapshot(snap)
    assert torch.equal(g.history, snap.data["user", "reviewed", "item"].edge_index)


def test_negatives_avoid_known_positives_and_cold_items():
    known = pair_keys(torch.tensor([[0, 0, 1], [1, 2, 3]]), 5).sort().values
    pool = torch.tensor([1, 2, 3])  # item 0 and 4: cold
    users = torch.tensor([0, 0, 1] * 50)
    neg = sample_negatives(users, 4, known, pool, 5, torch.Generator().manual_seed(0))
    assert neg.shape == (150, 4)
    assert torch.isin(neg, pool).all()
    assert not is_member(users[:, None] * 5 + neg, known).any()
