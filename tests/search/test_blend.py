"""search.blend: the grid fit finds the signal that decides, keeps personal weights only beyond
noise, and what it reports is what the protocol then measures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from search.blend import Blend, combine, fit_blend, simplex
from search.config import SearchConfig
from search.engine import SearchEngine
from search.personal import Personal
from search.protocol import evaluate


def _synthetic(catalogue, signal: str, n_items: int = 40, n_users: int = 60, seed: int = 0):
    """Every item has the same text; the target of each user's query is the item with the best
    personal score (signal="personal") or the most popular one (signal="popularity")."""
    rng = np.random.default_rng(seed)
    cat = catalogue(["face cream"] * n_items)
    users = [f"u{j}" for j in range(n_users)]
    ue, ie = rng.normal(size=(n_users, 8)), rng.normal(size=(n_items, 8))
    pop = rng.integers(1, 1000, n_items).astype(float)
    personal = Personal.aligned(users, ue, cat.ids, ie, cat)
    engine = SearchEngine(cat, popularity=pop, personal=personal,
                          cfg=SearchConfig(grid_step=0.1))
    targets = (ue @ ie.T).argmax(1) if signal == "personal" else \
        np.full(n_users, int(pop.argmax()))
    q = pd.DataFrame({"user_id": users, "item_id": cat.ids[targets], "query": "face cream",
                      "slice": "val"})
    return engine, q


@pytest.mark.parametrize("signal", ["personal", "popularity"])
def test_fit_blend_finds_the_signal_that_decides(catalogue, signal):
    engine, q = _synthetic(catalogue, signal)
    blend = fit_blend(engine, q)
    w = blend.personal
    assert w[signal] == max(w.values()) and w[signal] >= 0.5
    assert sum(w.values()) == pytest.approx(1.0)
    assert blend.anonymous["personal"] == 0.0
    fitted = blend.fitted["personal"]
    assert fitted["val_ndcg@10"] > fitted["val_text_only_ndcg@10"] + 0.3
    # the personal weights are kept only when they beat the anonymous ones beyond noise
    assert fitted["personal_weights_used"] is (signal == "personal")
    if signal == "popularity":
        assert blend.fitted["anonymous"]["val_ndcg@10"] == pytest.approx(1.0)
        assert blend.personal == blend.anonymous
    else:
        assert fitted["gain_over_anonymous"] > 3 * fitted["gain_se"]
    engine.blend = blend  # the fitted blend does on these queries what the fit reported
    m = evaluate(engine, q)
    assert m["reranked.ndcg@10"] == pytest.approx(fitted["val_ndcg@10"])


def test_the_fit_ranks_match_levels_first_as_the_engine_does(catalogue):
    """Targets that match one query word among items matching two: no blend lifts them past
    the two-word items, so the fit reports what the engine then measures."""
    cat = catalogue(["face cream", "face cream", "face wash", "cream blush"])
    engine = SearchEngine(cat, popularity=np.array([1.0, 2.0, 500.0, 400.0]),
                          cfg=SearchConfig(grid_step=0.25))
    q = pd.DataFrame({"user_id": ["u"] * 2, "item_id": ["i02", "i03"],
                      "query": ["face cream"] * 2, "slice": "val"})
    blend = fit_blend(engine, q)
    engine.blend = blend
    m = evaluate(engine, q)
    assert m["anonymous.ndcg@10"] == pytest.approx(blend.fitted["anonymous"]["val_ndcg@10"])
    assert m["anonymous.mrr"] == pytest.approx((1 / 3 + 1 / 4) / 2)  # ranks 3 and 4 at best


def test_fit_blend_refuses_no_queries(catalogue):
    engine, q = _synthetic(catalogue, "personal")
    with pytest.raises(DataError, match="no validation queries"):
        fit_blend(engine, q.iloc[:0])


def test_simplex_grid_covers_the_simplex():
    g = simplex(0.25, 3)
    assert len(g) == 15 and np.allclose(g.sum(1), 1) and (g >= 0).all()
    assert {tuple(x) for x in g} >= {(1, 0, 0), (0, 1, 0), (0, 0, 1)}


def test_blend_round_trips(tmp_path):
    b = Blend(personal={"text": 0.2, "personal": 0.7, "popularity": 0.1}, fitted={"queries": 3})
    b.save(tmp_path / "blend.json")
    assert Blend.load(tmp_path / "blend.json") == b
    assert Blend().vector(True).sum() == pytest.approx(1.0)


def test_combine_renormalises_the_weights_over_the_known_features():
    f = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 2.0, 3.0]])
    known = np.array([[True, True, True], [True, True, False], [True, False, False]])
    w = np.array([0.2, 0.3, 0.5])
    parts = combine(f, known, w)
    assert parts[0].tolist() == pytest.approx([0.2, 0.6, 1.5])
    assert parts[1].tolist() == pytest.approx([0.4, 1.2, 0.0])  # 0.2 and 0.3 over 0.5
    assert parts[2].tolist() == pytest.approx([4.0, 0.0, 0.0])
    no_text = combine(f[2:], known[2:], np.array([0.0, 0.0, 1.0]))  # nothing known is weighted
    assert no_text[0].tolist() == [4.0, 0.0, 0.0]
