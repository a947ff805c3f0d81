"""The contract every recommender keeps (one parametrised suite, like implicit's mixin tests),
and the checkerboard known answer."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from gnn_fixtures import checkerboard, fast_config

from gnn.checkpoint import load_model, save_model
from gnn.data import graph_from_snapshot, make_split
from gnn.evaluate import evaluate_split
from gnn.models import create, registry
from gnn.trainer import Trainer

MODELS = ["pop", "itemknn", "mf", "lightgcn", "hgt", "lightgcn-kg", "kglink", "behaviour-pop",
          "behaviour-knn"]
_FITTED: dict[str, tuple] = {}


def fitted(name: str):
    """(model, split, epoch logs) fitted on the checkerboard, once per test session."""
    if name not in _FITTED:
        board = checkerboard()
        cfg = fast_config(name, epochs=30, batch_size=32, val_fraction=0.15)
        split = make_split(board, cfg)
        logs = []
        model = create(name, cfg)
        result = Trainer(on_epoch=logs.append).fit(model, split)
        _FITTED[name] = (model, split, logs, result, board)
    return _FITTED[name]


def test_registry_has_every_model():
    assert sorted(registry()) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
class TestContract:
    def test_fit_reports_progress(self, name):
        model, split, logs, result, _ = fitted(name)
        assert result.epochs >= 1 and len(result.history) == result.epochs
        assert 1 <= result.best_epoch <= result.epochs
        assert logs and logs[-1].epoch == result.epochs
        assert any(e.val is not None and "ndcg@20" in e.val for e in logs)
        assert model.graph is split.eval_graph

    def test_embeddings_shapes(self, name):
        model, split, *_ = fitted(name)
        u, i = model.embeddings()
        assert u.shape[0] == split.eval_graph.n_users and i.shape[0] == split.eval_graph.n_items
        if not (u.is_sparse or i.is_sparse):
            assert u.shape[1] == i.shape[1]
            assert torch.isfinite(u).all() and torch.isfinite(i).all()

    def test_recommend_excludes_seen_and_is_sorted(self, name):
        model, split, *_ = fitted(name)
        g = split.eval_graph
        users = torch.arange(g.n_users)
        items, scores = model.recommend(users, k=5)
        assert items.shape == scores.shape == (g.n_users, 5)
        seen = set(zip(*g.history.tolist()))
        assert not any((u, i) in seen for u, row in zip(users.tolist(), items.tolist())
                       for i in row)
        assert (scores[:, :-1] >= scores[:, 1:]).all()
        # the scores are the model's pair scores
        again = model.score(users.repeat_interleave(5), items.reshape(-1)).view(-1, 5)
        assert torch.allclose(again, scores, atol=1e-5)
        # without exclusion the best items may be seen ones, and scores can only go up
        _, all_scores = model.recommend(users, k=5, exclude_seen=False)
        assert (all_scores[:, 0] >= scores[:, 0] - 1e-6).all()

    def test_similar_items(self, name):
        model, split, *_ = fitted(name)
        items = torch.tensor([0, 3, 7])
        sim, val = model.similar_items(items, k=4)
        assert sim.shape == val.shape == (3, 4)
        assert not (sim == items[:, None]).any()

    def test_save_load_round_trip(self, name, tmp_path):
        model, split, *_ = fitted(name)
        save_model(model, tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(model) and loaded.cfg == model.cfg
        users = torch.arange(split.eval_graph.n_users)
        a_items, a_scores = model.recommend(users, k=5, source=split.eval_graph)
        b_items, b_scores = loaded.recommend(users, k=5, source=split.eval_graph)
        assert torch.equal(a_items, b_items) and torch.allclose(a_scores, b_scores)
        # the checkpoint holds tensors only: weights_only loading works
        torch.load(tmp_path / "m" / "model.pt", weights_only=True)

    def test_snapshot_input_maps_by_id(self, name):
        """A later snapshot with a new user: ids are mapped, the new user gets a ranking."""
        model, split, _, _, board = fitted(name)

        extra = {"VIEWED": pd.DataFrame({"src": ["zz-new"], "dst": [board.ids["item"][0]],
                                         "count": 1, "first_ts": 1, "last_ts": 1})}
        later = checkerboard(extra=extra)  # the new user has a view, no review
        g = graph_from_snapshot(later)
        assert "zz-new" in set(g.ids["user"])
        u, i = model.embeddings(later)
        assert u.shape[0] == later.data["user"].num_nodes
        items, _ = model.recommend(torch.arange(g.n_users), k=3, source=later)
        assert (items >= 0).all()


@pytest.mark.parametrize("name", ["itemknn", "mf", "lightgcn", "hgt", "lightgcn-kg", "kglink"])
def test_checkerboard_known_answer(name):
    """Users are recommended an item of their own kind first (every user has >= 2 unseen warm
    items of its kind left, so this is always possible)."""
    model, split, _, _, board = fitted(name)
    users = torch.arange(split.eval_graph.n_users)
    items, _ = model.recommend(users, k=1, candidates=split.warm_items)
    own = [board.ids["item"][i][0] == board.ids["user"][u][0]
           for u, i in zip(users.tolist(), items[:, 0].tolist())]
    assert sum(own) / len(own) >= 0.9


@pytest.mark.parametrize("name,kg_links", [("pop", False), ("itemknn", False), ("mf", False),
                                           ("lightgcn", False), ("mf", True), ("hgt", False),
                                           ("lightgcn-kg", False), ("kglink", False)])
def test_cold_metric_only_for_models_that_score_cold_items(name, kg_links):
    """A model that sees no KG would rank cold items in tie order: no cold metric (null)."""
    board = checkerboard()
    cfg = fast_config(name, epochs=1, batch_size=32, kg_links=kg_links, cold_item_fraction=0.2)
    split = make_split(board, cfg)
    assert split.cold_test.size(1)
    model = create(name, cfg)
    Trainer().fit(model, split)
    metrics = evaluate_split(model, split)
    sees_kg = name in ("hgt", "lightgcn-kg", "kglink") or kg_links
    assert model.scores_cold_items == sees_kg
    assert (metrics["cold_item_recall@20"] is not None) == sees_kg
    assert (metrics["cold_item_ndcg@10"] is not None) == sees_kg
    assert metrics["cold_item_recall@20_baseline"] is not None  # the split's baseline stays


def test_hgt_ablation_switches_change_the_model():
    board = checkerboard()
    base = fast_config("hgt", epochs=1, batch_size=32)
    split = make_split(board, base)

    def fitted_net(**over):
        model = create("hgt", base.replace(**over))
        Trainer().fit(model, split)
        return model

    full = fitted_net()
    assert any(k.startswith("attention.q") for k in full.net.state_dict())
    # attention off: only the relation weights are left of the attention module
    uniform = fitted_net(attention=False)
    assert [k for k in uniform.net.state_dict() if k.startswith("attention.")] == \
        ["attention.w_rel"]
    # relations excluded from the model's graph: neither in its meta nor in its inputs
    for exclude, gone in (("item-item", lambda et: et[0] == et[2] == "item"),
                          ("brand,category", lambda et: {"brand", "category"} & {et[0], et[2]})):
        model = fitted_net(kg_exclude=exclude)
        kept = [tuple(et) for et in model.meta["kg_edge_types"]]
        assert kept and not any(gone(et) for et in kept)
        assert any(gone(et) for et in full.meta["kg_edge_types"])
        block = model.inputs(split.eval_graph, torch.device("cpu")).kg_block
        assert block is not None and not any(gone(et) for et in block.relations)
    # and the scores differ from the full model's
    users = torch.arange(split.eval_graph.n_users)
    assert not torch.allclose(full.score_users(users), uniform.score_users(users))
