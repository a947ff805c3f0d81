"""gnn.trainer: batches divided between ranks, early stopping, the time budget, and the two
extension points (a model's extra loss terms; pairwise features added to the dot product)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from gnn_fixtures import checkerboard, fast_config

from gnn.checkpoint import load_model, save_model
from gnn.data import graph_from_snapshot, make_split
from gnn.models import create
from gnn.models.lightgcn import LightGCN
from gnn.score import Scorer
from gnn.trainer import Trainer, epoch_batches, lr_factor


@pytest.mark.parametrize("n,batch,world", [(1000, 64, 2), (1001, 64, 2), (997, 100, 3),
                                           (5, 4, 4)])
def test_ranks_take_different_batches(n, batch, world):
    """DistributedSampler semantics: each rank takes a disjoint share of one permutation
    (padded by wrapping), all ranks the same number of steps, 1/world of one process's."""
    shares = [torch.cat(epoch_batches(n, batch, seed=0, epoch=3, rank=r, world=world))
              for r in range(world)]
    per_rank = math.ceil(n / world)
    assert all(len(s) == per_rank for s in shares)
    steps = {len(epoch_batches(n, batch, 0, 3, r, world)) for r in range(world)}
    assert steps == {math.ceil(per_rank / batch)}
    assert math.ceil(per_rank / batch) <= math.ceil(math.ceil(n / batch) / world) + 1
    together = torch.cat(shares)
    assert set(together.tolist()) == set(range(n))  # every positive is taken
    assert len(together) - len(set(together.tolist())) == per_rank * world - n  # padding only
    # one process: the whole permutation, in order; the same one the ranks divide
    single = torch.cat(epoch_batches(n, batch, 0, 3))
    assert sorted(single.tolist()) == list(range(n))
    assert shares[0].tolist() == single[::world].tolist()
    # another epoch, another order
    assert not torch.equal(torch.cat(epoch_batches(n, batch, 0, 4)), single)


def test_learning_rate_scaling():
    assert lr_factor("none", 4) == 1.0 and lr_factor("sqrt", 4) == 2.0
    assert lr_factor("linear", 4) == 4.0 and lr_factor("linear", 1) == 1.0


@pytest.fixture(scope="module")
def board_split():
    cfg = fast_config("mf", val_fraction=0.15)
    return make_split(checkerboard(), cfg)


def test_early_stopping_and_time_budget(board_split):
    # a learning rate too small to move the validation score: the first epoch stays best, then
    # `patience` evaluations without improvement stop the run
    cfg = fast_config("mf", epochs=20, lr=1e-12, patience=2)
    logs = []
    res = Trainer(on_epoch=logs.append).fit(create("mf", cfg), board_split)
    assert res.epochs == 3 and res.best_epoch == 1
    assert [e.best for e in logs] == [True, False, False]
    # a budget already spent after the first epoch: it is validated, then training stops
    cfg = fast_config("mf", epochs=20, max_minutes=1e-9)
    res = Trainer().fit(create("mf", cfg), board_split)
    assert res.epochs == 1 and res.best_epoch == 1


def test_steps_are_reported(board_split):
    calls = []
    cfg = fast_config("mf", epochs=2, batch_size=32)
    res = Trainer(on_step=lambda *a: calls.append(a)).fit(create("mf", cfg), board_split)
    steps = math.ceil(board_split.train.size(1) / 32)
    assert [h["steps"] for h in res.history] == [steps, steps]
    assert [c for c in calls if c[1] == 1] == [("epoch 1/2", 1, steps)] * steps + \
        [("epoch 2/2", 1, steps)] * steps


class ShrinkItems(LightGCN):
    """A model that adds a loss term: pulls the item embeddings towards 0."""

    name = "lightgcn"

    def loss_terms(self, out, batch):
        return {**super().loss_terms(out, batch), "shrink": 10.0 * out.item.pow(2).mean()}


def test_a_model_adds_a_loss_term(board_split):
    cfg = fast_config("lightgcn", epochs=5, batch_size=32)
    plain, shrunk = create("lightgcn", cfg), ShrinkItems(cfg)
    res_plain = Trainer().fit(plain, board_split)
    res = Trainer().fit(shrunk, board_split)
    assert "loss_shrink" in res.history[-1] and "loss_shrink" not in res_plain.history[-1]
    # the trainer summed it: the recorded loss is the sum of the terms, and it acted
    last = res.history[-1]
    assert last["loss"] == pytest.approx(last["loss_bpr"] + last["loss_reg"] +
                                         last["loss_shrink"], rel=1e-4)
    norm = lambda m: m.embeddings()[1].norm(dim=1).mean()  # noqa: E731
    assert norm(shrunk) < 0.5 * norm(plain)


def views_board():
    """The checkerboard plus views: every user viewed three items of its own kind."""
    rows = [(f"{g}u{j:02d}", f"{g}i{(j + d) % 10:02d}") for g in "AB" for j in range(12)
            for d in (0, 3, 7)]
    views = pd.DataFrame(rows, columns=["src", "dst"]).assign(count=1, first_ts=1, last_ts=1)
    return checkerboard(extra={"VIEWED": views})


def test_auxiliary_behaviour_losses():
    """aux_weight > 0: one BPR term per other behaviour of the graph (here: views), recorded
    and trained; without other behaviours, or at weight 0, no term."""
    snap = views_board()
    cfg = fast_config("mf", epochs=4, batch_size=32, aux_weight=1.0)
    split = make_split(snap, cfg)
    with_aux = create("mf", cfg)
    res = Trainer().fit(with_aux, split)
    assert "loss_aux_viewed" in res.history[0]
    assert res.history[-1]["loss_aux_viewed"] < res.history[0]["loss_aux_viewed"]
    without = create("mf", cfg.replace(aux_weight=0.0))
    res0 = Trainer().fit(without, split)
    assert not any(k.startswith("loss_aux") for k in res0.history[0])
    assert not torch.equal(with_aux.embeddings()[0], without.embeddings()[0])
    # no other behaviour in the graph: nothing to add
    res_board = Trainer().fit(create("mf", cfg), make_split(checkerboard(), cfg))
    assert not any(k.startswith("loss_aux") for k in res_board.history[0])


def test_pairwise_kg_link_features(board_split, tmp_path):
    """kg_links: a learned weight per item-item relation on log(1 + links from the user's
    history to the candidate), added to the dot product in training and in every score."""
    cfg = fast_config("lightgcn", epochs=6, batch_size=32, kg_links=True)
    model = create("lightgcn", cfg)
    Trainer().fit(model, board_split)
    pair = model.net.pair
    assert [r[1] for r in pair.relations] == ["also_bought", "rev_also_bought"]
    assert not model.dot_product_only
    assert (pair.weight > 0).all()  # same-kind rings: links predict purchases
    g = board_split.eval_graph
    users = torch.arange(g.n_users)
    u, i = model.embeddings(g)
    block = model.score_users(users, g)
    extra = block - u @ i.T
    assert extra.abs().max() > 0
    # the pairwise part is the weighted link counts of the user's history
    hist = torch.zeros(g.n_users, g.n_items)
    hist[g.history[0], g.history[1]] = 1.0
    expected = torch.zeros_like(extra)
    for w, et in zip(pair.weight.detach(), pair.relations):
        a = torch.zeros(g.n_items, g.n_items)
        ei = g.data[et].edge_index
        a[ei[0], ei[1]] = 1.0
        expected += w * torch.log1p(hist @ a)
    assert torch.allclose(extra, expected, atol=1e-5)
    items, scores = model.recommend(users, k=5)
    again = model.score(users.repeat_interleave(5), items.reshape(-1)).view(-1, 5)
    assert torch.allclose(again, scores, atol=1e-5)
    batch_items, batch_scores = Scorer(model, g).topk(users, 5)  # `kgrec recommend`'s path
    assert torch.equal(batch_items, items) and torch.allclose(batch_scores, scores, atol=1e-5)
    # saved and loaded with the network; a later snapshot's history is used as it is
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert torch.equal(loaded.net.pair.weight, pair.weight)
    assert torch.allclose(loaded.score_users(users, g), block, atol=1e-5)
    later = graph_from_snapshot(checkerboard())
    assert loaded.score_users(users, later).shape == (later.n_users, later.n_items)
