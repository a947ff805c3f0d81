"""hgt's cold-item scorer (gnn/models/cold_head.py): its features against a brute-force
computation, and the scorer in a real training run (fitted on validation pairs after training,
re-ordering only the items without interactions, their per-user mean and spread kept, saved and
loaded with the model, off with `cold_head=false` or without the cold-item map)."""

from __future__ import annotations

import numpy as np
import torch
from gnn_fixtures import checkerboard, fast_config, own_kind_share

from gnn.checkpoint import load_model, save_model
from gnn.data import make_split
from gnn.models import cold_head, create
from gnn.models.pairwise import link_features
from gnn.trainer import Trainer


def test_features_match_their_definitions():
    split = make_split(checkerboard(), fast_config("hgt", cold_item_fraction=0.2))
    g = split.train_graph
    rng = np.random.default_rng(0)
    user_emb = torch.from_numpy(rng.normal(size=(g.n_users, 4)).astype(np.float32))
    item_emb = torch.from_numpy(rng.normal(size=(g.n_items, 4)).astype(np.float32))
    users = torch.tensor([0, 3, 7, 20])
    items = np.array([1, 4, 5, 9, 12, 18])
    lf = link_features(g)
    names = [*cold_head.NETWORK, *cold_head.link_names(lf)]
    assert cold_head.link_names(lf) == ["also_bought", "rev_also_bought", "brand", "category"]
    x = cold_head.features(g, users, items, user_emb, item_emb, names)
    assert x.shape == (len(users), len(items), len(names))
    hist = g.history.numpy()

    def z(row: np.ndarray) -> np.ndarray:
        return (row - row.mean()) / row.std(ddof=1)

    for b, u in enumerate(users.tolist()):
        h = hist[1][hist[0] == u]
        e, c = item_emb.numpy(), item_emb.numpy()[items]
        unit = e / np.linalg.norm(e, axis=1, keepdims=True)
        want = {"network": z(c @ user_emb.numpy()[u]),
                "history_mean": z(c @ e[h].mean(0)),
                "history_cosine": z(unit[items] @ unit[h].sum(0))}
        for k, name in enumerate(cold_head.NETWORK):
            np.testing.assert_allclose(x[b, :, k].numpy(), want[name], rtol=1e-4, atol=1e-5)
    # the link features are kglink's (pairwise.LinkFeatures), on the candidates' columns
    rows = lf.users(users)
    for k, name in enumerate(names[3:], start=3):
        torch.testing.assert_close(x[..., k], lf.weighted(rows, {name: 1.0})[:, items])


def trained(**over):
    board = checkerboard()
    cfg = fast_config("hgt", **{"epochs": 20, "batch_size": 32, "cold_item_fraction": 0.2,
                                **over})
    split = make_split(board, cfg)
    model = create("hgt", cfg)
    Trainer().fit(model, split)
    return board, split, model


def test_hgt_reorders_only_the_cold_items_and_saves_the_scorer(tmp_path):
    board, split, model = trained(blend="off")
    rec = model.meta["cold_head"]
    assert rec["fitted"] and rec["features"][:3] == list(cold_head.NETWORK)
    assert rec["pairs"] > 0 and 0 <= rec["held_out_recall@20"]["head"] <= 1
    g, warm, cold = split.eval_graph, split.warm_items, split.cold_items
    users = torch.arange(g.n_users)
    with_head = model.score_users(users, g)
    head, model.cold_head = model.cold_head, None
    without = model.score_users(users, g)
    model.cold_head = head
    # warm columns untouched; the cold columns keep each user's mean and spread, not the order
    assert torch.equal(with_head[:, warm], without[:, warm])
    torch.testing.assert_close(with_head[:, cold].mean(1), without[:, cold].mean(1))
    torch.testing.assert_close(with_head[:, cold].std(1), without[:, cold].std(1))
    assert not torch.equal(with_head[:, cold].argsort(1), without[:, cold].argsort(1))
    # pairs score as their rows do
    pick = torch.tensor([1, 2, 3])
    torch.testing.assert_close(model.score(users[:3], cold[pick]), with_head[users[:3], cold[pick]])
    # known answer: among the cold items, a user's first is of the user's own kind
    assert own_kind_share(board, model, g, ~warm) >= 0.9
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.cold_head is not None
    torch.testing.assert_close(back.score_users(users, g), with_head)


def test_no_scorer_when_off_or_without_the_map():
    for over in ({"cold_head": False}, {"cold_map": False}):
        _, _, model = trained(blend="off", epochs=2, **over)
        assert model.cold_head is None and "cold_head" not in model.meta
        assert not any(k.startswith(model.COLD_HEAD) for k in model.state_tensors())
