"""Issue 9 on toy graphs (seconds): the split modes' handling of auxiliary behaviours, temporal
cutoffs, behaviour-pop, lightgcn over merged behaviours, and hgt learning from every behaviour
beside the knowledge graph (real PyG training through the real Trainer)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from gnn_fixtures import checkerboard, fast_config

from core.errors import ConfigError
from gnn.behaviours import behaviour_types
from gnn.data import is_member, make_split, pair_keys
from gnn.evaluate import evaluate_split
from gnn.models import create
from gnn.models.base import Batch
from gnn.snapshot import build_snapshot
from gnn.trainer import Trainer

FAV = ("user", "favorited", "item")
CART = ("user", "carted", "item")


def board_with_behaviours():
    """The checkerboard (reviews = target, brands, categories, also_bought) plus favourites and
    carts: every user favourites its test item and its first training item, and carts its
    second training item."""
    board = checkerboard()
    d = board.data
    ei, split = d["user", "reviewed", "item"].edge_index, d["user", "reviewed", "item"].split
    test, train = ei[:, split == 2], ei[:, split == 1]
    seen: dict[int, int] = {}
    first, second = [], []
    for k, u in enumerate(train[0].tolist()):
        seen[u] = seen.get(u, 0) + 1
        (first if seen[u] == 1 else second if seen[u] == 2 else []).append(k)
    users, items = board.ids["user"], board.ids["item"]

    def frame(pairs):
        return pd.DataFrame({"src": users[pairs[0].numpy()], "dst": items[pairs[1].numpy()]})

    return checkerboard(extra={"CARTED": frame(train[:, second]),
                               "FAVORITED": frame(torch.cat([test, train[:, first]], 1))})


@pytest.fixture(scope="module")
def mb_board():
    return board_with_behaviours()


def cfg(model: str, **over):
    values = dict(cold_item_fraction=0.0, split="given", val_fraction=0.1, epochs=8)
    values.update(over)
    return fast_config(model, **values)


def has_pairs(graph, et, pairs) -> torch.Tensor:
    n = graph.n_items
    keys = pair_keys(graph.data[et].edge_index, n).sort().values
    return is_member(pair_keys(pairs, n), keys)


# ----------------------------------------------------------------------------- splits

def test_given_split_keeps_or_drops_the_held_out_pairs_auxiliary_edges(mb_board):
    keep = make_split(mb_board, cfg("hgt", aux_test_edges="keep"))
    drop = make_split(mb_board, cfg("hgt", aux_test_edges="drop"))
    assert bool(has_pairs(keep.eval_graph, FAV, keep.test).all())  # "already favourited"
    assert bool(has_pairs(keep.train_graph, FAV, keep.test).all())
    assert not has_pairs(drop.eval_graph, FAV, drop.test).any()
    assert not has_pairs(drop.train_graph, FAV, drop.test).any()
    for split in (keep, drop):
        # the target relation never holds a held-out pair: no test edge reachable in training
        for g, held in ((split.train_graph, torch.cat([split.val, split.test], 1)),
                        (split.eval_graph, split.test)):
            n = g.n_items
            hist = pair_keys(g.history, n).sort().values
            assert not is_member(pair_keys(held, n), hist).any()
            assert not is_member(pair_keys(held.flip(0), g.n_users),
                                 pair_keys(g.data["item", "rev_reviewed", "user"].edge_index,
                                           g.n_users).sort().values).any()
    assert [et[1] for et in behaviour_types(keep.eval_graph)] == ["reviewed", "carted",
                                                                  "favorited"]


def timed_shop():
    """Two users, target = purchased, with times: u1 buys a (t=10), b (t=20), c (t=30, the
    test purchase under a temporal split with fraction 1/3); views and carts before and after."""
    buys = pd.DataFrame({"src": ["u1"] * 3 + ["u2"] * 3, "dst": ["a", "b", "c", "a", "c", "d"],
                         "first_ts": [10, 20, 30, 5, 15, 25]})
    views = pd.DataFrame({"src": ["u1", "u1", "u1", "u1", "u2", "u2"],
                          "dst": ["d", "c", "e", "b", "e", "b"],
                          "first_ts": [12, 25, 31, 40, 24, 26]})
    carts = pd.DataFrame({"src": ["u1", "u2"], "dst": ["e", "a"], "first_ts": [30, -1]})
    for f in (buys, views, carts):
        f["last_ts"] = f["first_ts"]
    return build_snapshot({"user": ["u1", "u2"], "item": list("abcde")},
                          {"PURCHASED": buys, "VIEWED": views, "CARTED": carts})


@pytest.mark.parametrize("val_mode", ["random", "latest"])
def test_temporal_split_removes_every_later_behaviour_of_the_user(val_mode):
    snap = timed_shop()
    split = make_split(snap, cfg("hgt", split="temporal", temporal_fraction=0.34,
                                 val_fraction=0.0 if val_mode == "random" else 0.5,
                                 val_mode=val_mode))
    users, items = snap.ids["user"], snap.ids["item"]
    tests = {(users[u], items[i]) for u, i in split.test.T.tolist()}
    assert tests == {("u1", "c"), ("u2", "d")}
    cutoff = {"u1": 30, "u2": 25}
    if val_mode == "latest":
        vals = {(users[u], items[i]) for u, i in split.val.T.tolist()}
        assert vals == {("u1", "b"), ("u2", "c")}
    for g, name in ((split.train_graph, "train"), (split.eval_graph, "eval")):
        cut = dict(cutoff)
        if name == "train" and val_mode == "latest":
            cut = {"u1": 20, "u2": 15}
        for rel in ("viewed", "carted"):
            et = ("user", rel, "item")
            src = snap.data[et]
            kept = set(map(tuple, g.data[et].edge_index.T.tolist()))
            for (u, i), t in zip(src.edge_index.T.tolist(), src.first_ts.tolist()):
                later = t >= 0 and t >= cut[users[u]]
                assert ((u, i) in kept) is not later, (name, rel, users[u], items[i], t)


# ----------------------------------------------------------------------------- models

def fit(model_name: str, snapshot, **over):
    c = cfg(model_name, **over)
    split = make_split(snapshot, c)
    model = create(model_name, c)
    res = Trainer().fit(model, split)
    return model, split, res


def test_behaviour_pop_puts_the_users_own_items_first_then_popularity(mb_board):
    model, split, _ = fit("behaviour-pop", mb_board)
    assert evaluate_split(model, split, ks=(1,))["hr@1"] == 1.0  # the favourite test item
    g = split.eval_graph
    users = torch.arange(g.n_users)
    items, _ = model.recommend(users, k=3)
    fav = g.data[FAV].edge_index
    cart = g.data[CART].edge_index
    for u in users.tolist():
        own = set(fav[1, fav[0] == u].tolist()) | set(cart[1, cart[0] == u].tolist())
        own -= set(g.history[1, g.history[0] == u].tolist())  # training targets are excluded
        top = items[u, :len(own)].tolist()
        assert set(top) == own
        if cart[1, cart[0] == u].numel() and (cart[1, cart[0] == u][0].item() in own):
            assert top[0] == cart[1, cart[0] == u][0].item()  # carts weigh more
    # pair scores agree with the block scores
    s = model.score(users, items[:, 0])
    assert torch.allclose(s, model.score_users(users)[users, items[:, 0]])


def any_behaviour_items(graph) -> dict[int, set[int]]:
    """Per user, the items of any user-item relation of `graph` (the target: its history)."""
    out: dict[int, set[int]] = {}
    for ei in [graph.history] + [graph.data[et].edge_index for et in (FAV, CART)]:
        for u, i in ei.t().tolist():
            out.setdefault(u, set()).add(i)
    return out


def test_itemknn_over_every_behaviour_counts_co_occurrence_across_them(mb_board):
    model, split, _ = fit("itemknn", mb_board, behaviours="all", knn_neighbours=10_000)
    target, _, _ = fit("itemknn", mb_board, knn_neighbours=10_000)
    g = split.eval_graph
    hist = any_behaviour_items(g)
    holders: dict[int, set[int]] = {}
    for u, items in hist.items():
        for i in items:
            holders.setdefault(i, set()).add(u)
    users = torch.arange(g.n_users)
    block = model.score_users(users, g)
    for u in range(0, g.n_users, 7):  # the definition, from the pairs themselves
        for i in range(0, g.n_items, 5):
            want = sum(len(holders[j] & holders.get(i, set()))
                       / (len(holders[j]) * len(holders.get(i, ()))) ** 0.5
                       for j in hist.get(u, ()) if j != i and holders.get(i))
            assert block[u, i].item() == pytest.approx(want, abs=1e-5)
    assert not torch.allclose(block, target.score_users(users, g))  # the target alone differs


def test_behaviour_knn_puts_own_items_first_then_itemknn_over_every_behaviour(mb_board):
    model, split, _ = fit("behaviour-knn", mb_board)
    knn, _, _ = fit("itemknn", mb_board, behaviours="all")
    assert evaluate_split(model, split, ks=(1,))["hr@1"] == 1.0  # the favourite test item
    g = split.eval_graph
    users = torch.arange(g.n_users)
    scores, by_knn = model.score_users(users, g), knn.score_users(users, g)
    own = model.index(g)
    for u in users.tolist():
        mine = set().union(*(own.rows[r][u].indices.tolist() for r in range(len(own.rows))))
        rest = [i for i in range(g.n_items) if i not in mine]
        assert all(scores[u, i] > scores[u, rest].max() for i in mine)  # own items first
        ranked = torch.as_tensor(rest)[scores[u, rest].argsort(descending=True)]
        k = by_knn[u, ranked]
        assert (k[:-1] >= k[1:] - 1e-6).all()  # then in itemknn's order
    assert torch.allclose(model.score(users, users % g.n_items),
                          scores[users, users % g.n_items])


def test_lightgcn_merges_behaviours_but_excludes_only_the_target_history(mb_board):
    model, split, _ = fit("lightgcn", mb_board, behaviours="all", epochs=3)
    adj = model.inputs(split.eval_graph, torch.device("cpu")).adj
    single, _, _ = fit("lightgcn", mb_board, epochs=1)
    assert adj._nnz() > single.inputs(split.eval_graph, torch.device("cpu")).adj._nnz()
    items, _ = model.recommend(split.test[0], k=20)
    assert (items == split.test[1].unsqueeze(1)).any(1).all()  # favourited test items rankable


def test_hgt_with_one_behaviour_is_todays_model(mb_board):
    # the network is today's (the score blend and the cold-item scorer, fitted after it, are
    # compared off)
    a, split, _ = fit("hgt", mb_board, behaviours="target", epochs=2, blend="off",
                      cold_head=False)
    b, _, _ = fit("hgt", checkerboard(), epochs=2, blend="off", cold_head=False)
    assert a.net.behaviour is None and a.dot_product_only
    ua, ia = a.embeddings()
    ub, ib = b.embeddings(b.graph)
    assert ua.shape == ub.shape and torch.allclose(ua, ub) and torch.allclose(ia, ib)


@pytest.mark.parametrize("over", [dict(), dict(loss="softmax", neg_samples=8, aux_weight=0.5,
                                               kg_links=True), dict(kg_conv="gat")])
def test_hgt_learns_from_every_behaviour_beside_the_kg(mb_board, over):
    model, split, res = fit("hgt", mb_board, **over)
    net = model.net
    assert net.behaviour is not None and net.attention is not None  # behaviours and KG
    assert res.epochs == 8
    assert evaluate_split(model, split, ks=(5,))["hr@5"] > 0.5
    learned = model.describe()
    assert set(learned["gain"]) == {"reviewed", "carted", "favorited"}
    assert learned["pair_beta"]["favorited"] > 0  # a favourite counts towards the target
    users, items = split.test
    block = model.score_users(users)[torch.arange(len(users)), items]
    assert torch.allclose(model.score(users, items), block, atol=1e-4)


def test_hgt_masks_the_steps_own_target_edges(mb_board):
    """A step's positives are predicted without their own edges in the propagation: the
    batch users' embeddings change; the graph's inputs themselves are left as they are."""
    model, split, _ = fit("hgt", mb_board, epochs=1)
    inputs = model.inputs(split.train_graph, torch.device("cpu"))
    u, i = split.train[:, :4]
    batch = Batch(u, i, i.view(-1, 1), split.train_graph, torch.arange(4), torch.Generator())
    model.net.eval()
    with torch.no_grad():
        full = model.net(inputs)
        masked = model.net(model.step_inputs(inputs, batch))
        again = model.net(inputs)
    assert inputs.batch is None
    assert not torch.allclose(full.user[u], masked.user[u])
    assert torch.equal(full.user, again.user)


def test_behaviours_naming_an_absent_relation_is_a_config_error(mb_board):
    with pytest.raises(ConfigError, match="viewed"):
        fit("hgt", mb_board, behaviours="viewed")
    with pytest.raises(ConfigError, match="behaviours"):
        cfg("hgt", behaviours="carted,,")
