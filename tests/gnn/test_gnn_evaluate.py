"""gnn.evaluate: metrics against answers computed by hand, exclusion of history, baselines."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.config import TrainConfig
from gnn.data import make_split
from gnn.evaluate import CategoryPopularity, RankingMetrics, evaluate, gini, topk_scores

# three users, six items; rankings fixed, relevant sets by hand
TOP = {0: [3, 1, 4, 0, 5, 2], 1: [0, 2, 1, 3, 4, 5], 2: [4, 5, 0, 1, 2, 3]}
REL = {0: [1, 5], 1: [0], 2: [2, 3, 1]}
L2, L3, L5 = 1 / math.log2(3), 0.5, 1 / math.log2(5)  # discounts at ranks 1, 2, 3 (0-based)


class FixedRanker:
    def recommend(self, users, k=10, exclude_seen=True, *, source=None, candidates=None):
        items = torch.tensor([TOP[int(u)][:k] for u in users])
        return items, -torch.arange(k).float().expand(len(users), k)


class FakeGraph:
    n_items, n_users = 6, 3


def expected() -> dict[str, float]:
    # user 0: hit at rank 1 (item 1); item 5 at rank 4 is beyond K = 4
    # user 1: hit at rank 0; user 2: nothing in the top 2, item 1 at rank 3
    ndcg2 = [L2 / (1 + L2), 1.0, 0.0]
    ndcg4 = [L2 / (1 + L2), 1.0, L5 / (1 + L2 + L3)]
    return {
        "recall@2": (1 / 2 + 1 + 0) / 3, "precision@2": (1 / 2 + 1 / 2 + 0) / 3,
        "hr@2": 2 / 3, "ndcg@2": sum(ndcg2) / 3, "mrr@2": (1 / 2 + 1 + 0) / 3,
        "recall@4": (1 / 2 + 1 + 1 / 3) / 3, "precision@4": (1 / 4 + 1 / 4 + 1 / 4) / 3,
        "hr@4": 1.0, "ndcg@4": sum(ndcg4) / 3, "mrr@4": (1 / 2 + 1 + 1 / 4) / 3,
        # top 2: every item once; top 4: counts 3, 3, 1, 2, 2, 1
        "coverage@2": 1.0, "gini@2": 0.0, "coverage@4": 1.0, "gini@4": 16 / 72,
    }


def test_metrics_known_answer():
    relevant = torch.tensor([[u, i] for u, items in REL.items() for i in items]).T
    got = evaluate(FixedRanker(), FakeGraph(), relevant, ks=(2, 4))
    for key, value in expected().items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got["users"] == 3


def test_metrics_accumulate_over_batches_and_reset():
    m = RankingMetrics(6, (2, 4))
    items = torch.tensor([TOP[u][:4] for u in range(3)])
    hits = torch.tensor([[i in REL[u] for i in TOP[u][:4]] for u in range(3)])
    n_rel = torch.tensor([len(REL[u]) for u in range(3)])
    m.update(hits[:1], n_rel[:1], items[:1])
    m.update(hits[1:], n_rel[1:], items[1:])
    assert m.compute()["ndcg@4"] == pytest.approx(expected()["ndcg@4"])
    m.reset()
    assert m.compute()["users"] == 0


def test_gini():
    assert gini(torch.tensor([5, 5, 5, 5])) == 0.0
    assert gini(torch.tensor([0, 0, 0, 12])) == pytest.approx(0.75)  # (n - 1) / n
    assert gini(torch.tensor([0, 0])) == 0.0


def test_topk_excludes_history_and_non_candidates():
    scores = torch.tensor([[5.0, 4, 3, 2, 1], [1.0, 2, 3, 4, 5]])
    history = torch.tensor([[0, 1, 1], [0, 4, 3]])  # sorted by user
    candidates = torch.tensor([True, True, True, True, False])
    items, vals = topk_scores(scores.clone(), 3, history, torch.tensor([0, 1]), candidates)
    assert items.tolist() == [[1, 2, 3], [2, 1, 0]]
    # fewer candidates than k: padded with -1
    items, _ = topk_scores(scores.clone(), 5, history, torch.tensor([0, 1]), candidates)
    assert items.tolist() == [[1, 2, 3, -1, -1], [2, 1, 0, -1, -1]]
    # users given out of order / a subset
    items, _ = topk_scores(scores[[1]].clone(), 2, history, torch.tensor([1]), None)
    assert items.tolist() == [[2, 1]]


def test_category_popularity_prefers_the_users_categories(board):
    split = make_split(board, TrainConfig(cold_item_fraction=0.0))
    base = CategoryPopularity(split.eval_graph)
    ids = board.ids["item"]
    users = torch.arange(split.eval_graph.n_users)
    items, _ = base.recommend(users, k=3)
    for u, row in zip(users.tolist(), items.tolist()):
        kind = board.ids["user"][u][0]
        assert all(ids[i][0] == kind for i in row)
