"""Batch top-K scoring (gnn.score) on a tiny real hgt run: exact against a brute-force ranking,
seen items excluded, chunking invisible in the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.models.base import Recommender
from gnn.score import Scorer, bound_topk
from gnn.snapshot import GraphSnapshot


@pytest.fixture(scope="module")
def scorer(recgraph):
    model = Recommender.load(recgraph.hgt_dir / "checkpoint")
    return Scorer(model, GraphSnapshot.load(recgraph.hgt_dir / "snapshot"))


@pytest.mark.parametrize("run", ["hgt", "mf"])
def test_topk_equals_brute_force_ranking_without_seen_items(recgraph, run):
    """hgt (its score blend: the model's own scoring) and mf (a bare matmul of its vectors)."""
    rd = recgraph.hgt_dir if run == "hgt" else recgraph.mf_dir
    scorer = Scorer(Recommender.load(rd / "checkpoint"), GraphSnapshot.load(rd / "snapshot"))
    assert scorer.dense == (run == "mf") and scorer.user_emb is not None
    users = torch.arange(len(scorer.user_ids))
    items, scores = scorer.topk(users, 10)
    full = scorer.model.score_users(users, scorer.graph).numpy()
    if run == "mf":
        u, i = scorer.model.embeddings(scorer.graph)
        np.testing.assert_allclose(full, (u @ i.T).numpy(), rtol=1e-5, atol=1e-6)
    hist = scorer.graph.history.numpy()
    seen = {(a, b) for a, b in zip(hist[0], hist[1])}
    assert len(seen) > 1000  # the history is real: every user has >= 6 reviews
    for row in range(0, len(users), 37):
        mask = np.array([(row, j) in seen for j in range(full.shape[1])])
        ranked = np.argsort(-np.where(mask, -np.inf, full[row]), kind="stable")[:10]
        assert set(items[row].tolist()).isdisjoint(np.flatnonzero(mask))
        np.testing.assert_allclose(scores[row].numpy(), full[row, ranked], rtol=1e-5)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # ranked by score


def test_chunks_give_the_same_result_as_one_block(scorer):
    users = torch.arange(len(scorer.user_ids))
    items, scores = scorer.topk(users, 7)
    got = list(scorer.chunks(users, 7, chunk_users=64))
    assert [len(c[0]) for c in got][:-1] == [64] * (len(got) - 1)
    assert torch.equal(torch.cat([c[1] for c in got]), items)
    assert torch.allclose(torch.cat([c[2] for c in got]), scores)


def test_exclude_all_and_none(scorer):
    users = torch.arange(20)
    none_items, _ = Scorer(scorer.model, scorer.graph, exclude="none").topk(users, 5)
    hist = scorer.graph.history.numpy()
    seen_in_top = sum(int(((hist[0] == u) & np.isin(hist[1], none_items[u].numpy())).any())
                      for u in range(20))
    assert seen_in_top > 0  # without exclusion a model ranks known items high
    with pytest.raises(Exception, match="exclude"):
        Scorer(scorer.model, scorer.graph, exclude="some")


def test_frame_long_format_and_bound(scorer):
    users = torch.arange(5)
    items, scores = scorer.topk(users, 4)
    f = scorer.frame(users, items, scores, "hgt", "run-x")
    assert list(f.columns) == ["user_id", "item_id", "score", "rank", "model", "run_id"]
    assert len(f) == 20 and f["rank"].tolist()[:4] == [1, 2, 3, 4]
    assert f["user_id"].iloc[0] == scorer.user_ids[0]
    assert bound_topk(scorer.user_emb, scorer.item_emb, torch.arange(100), 4, 32) == 100


def test_unknown_users_are_reported(scorer):
    rows, missing = scorer.user_index([scorer.user_ids[3], "no-such-user"])
    assert rows.tolist() == [3] and missing == ["no-such-user"]


def test_any_order_of_users_gives_the_rows_of_the_full_ranking(scorer):
    """Consecutive users take the sliced-mask fast path; any other list the general one."""
    users = torch.arange(len(scorer.user_ids))
    items, scores = scorer.topk(users, 6)
    pick = torch.tensor([40, 3, 17, 3, 250, 499])
    got_items, got_scores = scorer.topk(pick, 6)
    assert torch.equal(got_items, items[pick])
    assert torch.allclose(got_scores, scores[pick])
    part_items, _ = scorer.topk(torch.arange(100, 164), 6)
    assert torch.equal(part_items, items[100:164])


@pytest.mark.parametrize("run", ["hgt", "mf"])
def test_users_in_any_order_get_the_rows_of_the_whole_ranking(recgraph, run):
    """A `--users` request (not a consecutive range) masks each user's own history."""
    rd = recgraph.hgt_dir if run == "hgt" else recgraph.mf_dir
    scorer = Scorer(Recommender.load(rd / "checkpoint"), GraphSnapshot.load(rd / "snapshot"))
    every_items, every_scores = scorer.topk(torch.arange(len(scorer.user_ids)), 6)
    some = torch.tensor([7, 2, 11, 3, 2])
    items, scores = scorer.topk(some, 6)
    assert torch.equal(items, every_items[some])
    assert torch.allclose(scores, every_scores[some])


def test_scoring_device(scorer, recgraph):
    """The top-k runs on the asked device (`kgrec recommend --device`); results come back on the
    CPU; a model scored by its own code stays on the CPU; CUDA asked for without one: an error
    that says what to do."""
    mf = Scorer(Recommender.load(recgraph.mf_dir / "checkpoint"), scorer.graph, device="auto")
    assert mf.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    items, scores = mf.topk(torch.arange(9), 5)
    assert items.device.type == "cpu" and scores.device.type == "cpu"
    assert not scorer.dense and scorer.device.type == "cpu"  # hgt + blend: its own scoring
    if not torch.cuda.is_available():
        with pytest.raises(Exception, match="--device auto or cpu"):
            Scorer(mf.model, scorer.graph, device="cuda")
