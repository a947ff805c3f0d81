"""hgt's cold-item map (gnn/models/cold_map.py): the features against a brute-force count, and
the map in a real training run (fitted after training, applied to items without interactions
only, saved and loaded with the model, off with `cold_map=false`)."""

from __future__ import annotations

import numpy as np
import torch
from gnn_fixtures import checkerboard, fast_config, own_kind_share

from gnn.checkpoint import load_model, save_model
from gnn.data import make_split
from gnn.models import cold_map, create
from gnn.trainer import Trainer


def brute_force(graph, emb, known, part):
    """x(c) of one part for every item, by loops over the edges (the docstring's definition)."""
    n, ei = graph.n_items, {}
    for et in graph.data.edge_types:
        ei[et] = graph.data[et].edge_index.numpy()
    out = np.zeros_like(emb)
    if part in ("brand", "category"):
        et = ("item", "has_brand", "brand") if part == "brand" else ("item", "in_category",
                                                                       "category")
        src, dst = ei[et]
        size = np.bincount(dst, minlength=int(graph.data[et[2]].num_nodes))
        for c in range(n):
            acc, wsum = np.zeros(emb.shape[1]), 0.0
            for grp in set(dst[src == c]):
                mates = [j for j in set(src[dst == grp]) if j != c and known[j]]
                if mates:
                    w = np.log(n / size[grp])
                    acc += w * emb[mates].mean(0)
                    wsum += w
            out[c] = acc / wsum if wsum else 0.0
        return out
    src, dst = ei[("item", part, "item")]
    for c in range(n):
        nb = {int(j) for j in dst[src == c]} | {int(j) for j in src[dst == c]}
        nb = [j for j in nb if j != c and known[j]]
        out[c] = emb[nb].mean(0) if nb else 0.0
    return out


def test_features_are_the_means_of_the_known_neighbours_without_the_item_itself():
    board = checkerboard()
    split = make_split(board, fast_config("hgt", cold_item_fraction=0.2))
    g = split.train_graph
    kg = g.kg_edge_types()
    names = sorted(cold_map.parts(g, kg))
    assert names == ["also_bought", "brand", "category"]
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(g.n_items, 3)).astype(np.float32)
    known = cold_map.with_interactions(g)
    assert not known[split.cold_items.numpy()].any() and known.sum() > g.n_items // 2
    x = cold_map.features(g, emb, known, kg, names)
    assert x.shape == (g.n_items, len(names) * 4 + 1)
    for k, name in enumerate(names):
        want = brute_force(g, emb, known, name)
        np.testing.assert_allclose(x[:, 4 * k:4 * k + 3], want, rtol=1e-5, atol=1e-6)
        assert ((x[:, 4 * k + 3] == 1) == (np.abs(want).sum(1) > 0)).all()
    assert (x[:, -1] == 1).all()
    # a part the model does not see is not a feature
    no_brand = [et for et in kg if "brand" not in et]
    assert "brand" not in cold_map.parts(g, no_brand)


def test_hgt_maps_only_the_items_without_interactions_and_saves_the_map(tmp_path):
    board = checkerboard()
    cfg = fast_config("hgt", epochs=20, batch_size=32, cold_item_fraction=0.2, blend="off",
                      cold_head=False)  # the map's own scores (the scorer: test_cold_head.py)
    split = make_split(board, cfg)
    model = create("hgt", cfg)
    Trainer().fit(model, split)
    rec = model.meta["cold_map"]
    assert rec["fitted"] and rec["parts"] == ["also_bought", "brand", "category"]
    assert rec["warm_items"] == int(split.warm_items.sum())
    g = split.eval_graph
    cold = split.cold_items
    _, mapped = model.embeddings(g)
    # the same network without the map: warm items identical, cold items not
    weight, model.cold_weight = model.cold_weight, None
    model.invalidate()
    _, own = model.embeddings(g)
    model.cold_weight = weight
    model.invalidate()
    warm = split.warm_items
    assert torch.equal(mapped[warm], own[warm])
    assert not torch.allclose(mapped[cold], own[cold])
    # mapped = x(c) W, from the final embeddings of the items with interactions
    known = cold_map.with_interactions(g)
    x = cold_map.features(g, own.numpy(), known, model.meta["kg_edge_types"], rec["parts"])
    torch.testing.assert_close(mapped[cold], torch.from_numpy(x[cold.numpy()]) @ weight)
    # known answer: among the cold items, a user's first is of the user's own kind
    assert own_kind_share(board, model, g, ~warm) >= 0.9
    users = torch.arange(g.n_users)
    # saved and loaded with the model: the same scores
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert torch.equal(back.cold_weight, weight)
    torch.testing.assert_close(back.score_users(users, g), model.score_users(users, g))


def test_cold_map_off_keeps_the_networks_own_cold_embedding(tmp_path):
    board = checkerboard()
    cfg = fast_config("hgt", epochs=2, batch_size=32, cold_item_fraction=0.2, blend="off",
                      cold_map=False)
    split = make_split(board, cfg)
    model = create("hgt", cfg)
    Trainer().fit(model, split)
    assert model.cold_weight is None and "cold_map" not in model.meta
    assert model.COLD_MAP not in model.state_tensors()
    save_model(model, tmp_path / "m")
    assert load_model(tmp_path / "m").cold_weight is None
