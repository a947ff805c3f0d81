"""gnn.models.kglink: weights fitted on validation only, cold items scored from the KG, and the
real entry point writing a run."""

from __future__ import annotations

import dataclasses
import json

import torch
from gnn_fixtures import fast_config

from gnn.data import make_split
from gnn.evaluate import evaluate, evaluate_split
from gnn.models import create
from gnn.trainer import Trainer


def fit(snapshot, split=None, on_step=None, **over):
    cfg = fast_config("kglink", epochs=1, **over)
    split = split or make_split(snapshot, cfg)
    model = create("kglink", cfg)
    result = Trainer(on_step=on_step).fit(model, split)
    return model, split, result


def test_weights_are_fitted_on_validation_only(slice_snapshot):
    steps = []
    model, split, result = fit(slice_snapshot, on_step=lambda *a: steps.append(a))
    search = result.history[0]["search"]
    assert len(steps) == len(search)  # each evaluation of the search is reported
    assert len(search) > 1 and set(model.weights) == set(model.meta["features"])
    # the recorded scores are validation scores on the training graph: the chosen weights
    # reproduce the best of them
    again = evaluate(model, split.train_graph, split.val, split.warm_items, (20,))["ndcg@20"]
    assert abs(again - max(s["val_ndcg@20"] for s in search)) < 1e-9
    # the test edges play no part: scrambling them (test and cold slice) changes nothing ...
    n = split.train_graph.n_items
    scrambled = dataclasses.replace(split, test=torch.stack([split.test[0],
                                                            (split.test[1] + 7) % n]),
                                    cold_test=split.cold_test[:, :0])
    other, _, res2 = fit(slice_snapshot, scrambled)
    assert other.weights == model.weights
    assert record(res2.history[0]["search"]) == record(search)
    # ... while the validation edges drive the search (fitting on the test edges as validation,
    # the leak this guards against, gives another record)
    leaked, _, res3 = fit(slice_snapshot, dataclasses.replace(split, val=split.test))
    assert record(res3.history[0]["search"]) != record(search)


def record(search: list[dict]) -> list[tuple]:
    """The search without its timings."""
    return [(s["weights"], s["val_ndcg@20"], s["val_recall@20"]) for s in search]


def test_cold_items_are_scored_from_their_links(slice_snapshot):
    model, split, _ = fit(slice_snapshot, cold_item_fraction=0.2)
    assert model.scores_cold_items
    metrics = evaluate_split(model, split)
    assert 0 < metrics["cold_item_recall@20"] <= 1
    # a cold item linked (also_bought) to a user's history outscores it once the link is gone
    g = split.eval_graph
    cold = set(split.cold_items.tolist())
    ei = g.data["item", "also_bought", "item"].edge_index
    hist = g.history
    for j, c in ei.t().tolist():
        if c in cold:
            u = int(hist[0][hist[1] == j][0]) if (hist[1] == j).any() else None
            if u is not None:
                break
    else:
        raise AssertionError("the slice has no also_bought edge into a cold item")
    before = float(model.score(torch.tensor([u]), torch.tensor([c])))
    data = g.data.clone()
    for et in g.kg_edge_types():
        if et[0] == et[2] == "item":
            e = data[et].edge_index
            data[et].edge_index = e[:, (e[0] != c) & (e[1] != c)]
    from gnn.data import Graph

    cut = Graph(data, g.ids, g.target)
    assert float(model.score(torch.tensor([u]), torch.tensor([c]), source=cut)) < before


def test_entry_point_writes_the_run(slice_dir, tmp_path):
    from gnn.train import main

    assert main(["--snapshot", str(slice_dir), "--model", "kglink", "--run-dir",
                 str(tmp_path / "k"), "--no-progress", "--set", "epochs=1"]) == 0
    metrics = json.loads((tmp_path / "k" / "metrics.json").read_text())
    assert metrics["model"] == "kglink" and 0 < metrics["ndcg@10"] <= 1
    assert metrics["cold_item_recall@20"] is not None
    history = json.loads((tmp_path / "k" / "history.json").read_text())
    assert history[0]["search"]  # the weight search is part of the run's record
    meta = json.loads((tmp_path / "k" / "checkpoint" / "meta.json").read_text())
    assert set(meta["weights"]) == set(meta["features"])
