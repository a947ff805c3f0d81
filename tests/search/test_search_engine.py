"""search.engine without a graph: the engine, its known answers, bad input, metrics and fitting."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from search import engine as S


def catalogue(titles: list[str], categories: list[list[str]] | None = None,
              brands: list[str] | None = None) -> S.Catalogue:
    n = len(titles)
    return S.Catalogue(ids=np.array([f"i{j:02d}" for j in range(n)], dtype=object),
                       titles=list(titles), brands=brands or [""] * n,
                       categories=categories or [["Beauty"]] * n)


# ----------------------------------------------------------------------------- known answer

ROSE, LAVENDER = np.array([1.0, 0.0]), np.array([0.0, 1.0])


@pytest.fixture
def flip_engine() -> S.SearchEngine:
    """Two face creams with the same text score; the lavender one is far more popular. Ann likes
    rose things, Bob lavender things."""
    cat = catalogue(["Rose Face Cream", "Lavender Face Cream", "Rose Perfume", "Lavender Soap",
                     "Hand Cream Deluxe Tube"])
    items = np.stack([ROSE, LAVENDER, ROSE, LAVENDER, 0.5 * (ROSE + LAVENDER)])
    personal = S.Personal.aligned(["ann", "bob"], np.stack([ROSE, LAVENDER]), cat.ids, items, cat)
    blend = S.Blend(personal={"text": 0.3, "personal": 0.5, "popularity": 0.2},
                    anonymous={"text": 0.5, "personal": 0.0, "popularity": 0.5})
    return S.SearchEngine(cat, popularity=np.array([10, 50, 5, 5, 5]), personal=personal,
                          blend=blend, history={"ann": np.array([2]), "bob": np.array([3])})


def ids(result: S.SearchResult) -> list[str]:
    return [h.item_id for h in result.hits]


def test_known_answer_the_personal_score_flips_the_order(flip_engine):
    anonymous = flip_engine.search("face cream", k=3)
    ann = flip_engine.search("face cream", user="ann", k=3)
    bob = flip_engine.search("face cream", user="bob", k=3)
    assert anonymous.mode == "anonymous" and ann.mode == "personal"
    # same text score for both creams: popularity decides without a user...
    assert anonymous.hits[0].text_score == pytest.approx(anonymous.hits[1].text_score)
    assert ids(anonymous)[:2] == ["i01", "i00"]
    # ...and Ann's taste puts the rose cream first, Bob's keeps the lavender one first
    assert ids(ann)[:2] == ["i00", "i01"]
    assert ids(bob)[:2] == ["i01", "i00"]
    assert ann.hits[0].personal_score == pytest.approx(1.0)
    assert ann.hits[1].personal_score == pytest.approx(0.0)
    assert anonymous.hits[0].personal_score is None
    assert "like 'Rose Perfume' you reviewed" in ann.hits[0].reason
    assert "popular (50 shoppers)" in anonymous.hits[0].reason


def test_without_a_personal_weight_nothing_flips(flip_engine):
    flip_engine.blend = S.Blend(personal={"text": 0.5, "personal": 0.0, "popularity": 0.5},
                                anonymous=flip_engine.blend.anonymous)
    assert ids(flip_engine.search("face cream", user="ann", k=2)) == ["i01", "i00"]


def test_results_are_deterministic_and_history_can_be_hidden(flip_engine):
    a = flip_engine.search("rose lavender cream perfume soap", user="ann", k=5)
    b = flip_engine.search("rose lavender cream perfume soap", user="ann", k=5)
    assert ids(a) == ids(b) and len(a.hits) == 5
    assert "i02" in ids(a)  # Ann's own perfume is shown (and says so)...
    assert "you have it already" in a.hits[ids(a).index("i02")].reason
    hidden = flip_engine.search("rose lavender cream perfume soap", user="ann", k=5,
                                exclude_history=True)
    assert "i02" not in ids(hidden) and len(hidden.hits) == 4  # ...or left out


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("query", ["", "   ", "\t\n ", "!!! ??? &&&", "the and of"])
def test_empty_or_wordless_queries_are_refused_with_a_clear_message(flip_engine, query):
    with pytest.raises(S.QueryError, match="empty|no searchable words"):
        flip_engine.search(query)


def test_a_10k_character_query_is_cut_and_still_answers(flip_engine):
    r = flip_engine.search("face cream " * 1000)  # 11,000 characters
    assert ids(r)[:2] == ["i01", "i00"]
    assert any("only the first 1,000 were used" in n for n in r.notes)
    rng = np.random.default_rng(0)
    noise = "".join(rng.choice(list("abcdefghij klmnop"), 10_000))
    r = flip_engine.search(noise, k=3)
    assert len(r.hits) == 3 and len(r.terms) <= flip_engine.cfg.max_query_terms


@pytest.mark.parametrize("query", ["面霜", "крем для лица", "كريم الوجه", "🌹🌹"])
def test_non_latin_queries_fall_back_to_popular_items(flip_engine, query):
    try:
        r = flip_engine.search(query, k=3)
    except S.QueryError as e:  # emoji alone are not words: a clear refusal is fine too
        assert "no searchable words" in str(e)
        return
    assert r.matches == 0
    assert any("no item matches" in n and "popular items" in n for n in r.notes)
    assert ids(r) == ["i01", "i00", "i02"]  # by popularity, then catalogue order
    assert all(h.reason.startswith("no text match") for h in r.hits)


def test_a_query_matching_nothing_shows_the_users_picks(flip_engine):
    r = flip_engine.search("shampoo", user="bob", k=2)
    assert r.matches == 0 and any("picked for this user" in n for n in r.notes)
    # Bob's best items by personal score: the lavender cream and his own soap tie (1.0),
    # catalogue order decides; the half-half tube (0.5) comes next
    assert ids(r) == ["i01", "i03"]
    assert ids(flip_engine.search("shampoo", user="bob", k=2, exclude_history=True)) == \
        ["i01", "i04"]


def test_unknown_user_gets_anonymous_results_and_a_note(flip_engine):
    r = flip_engine.search("face cream", user="nobody", k=2)
    assert r.mode == "anonymous" and ids(r) == ["i01", "i00"]
    assert any("unknown user 'nobody'" in n for n in r.notes)


def test_items_unknown_to_the_model_get_no_personal_score():
    cat = catalogue(["Rose Face Cream", "Brand New Face Cream"])
    personal = S.Personal.aligned(["ann"], ROSE[None], ["i00"], ROSE[None], cat)
    engine = S.SearchEngine(cat, popularity=np.array([1, 0]), personal=personal,
                            blend=S.Blend())
    r = engine.search("face cream", user="ann")
    new = r.hits[ids(r).index("i01")]
    assert new.personal_score is None and "new to the model" in new.reason
    assert r.hits[ids(r).index("i00")].personal_score == pytest.approx(1.0)


def test_bad_k_is_refused(flip_engine):
    with pytest.raises(S.QueryError, match="'k' must be >= 1"):
        flip_engine.search("cream", k=0)


# ----------------------------------------------------------------------------- candidates, metrics

def test_candidates_cut_ties_by_popularity_then_catalogue_order():
    cat = catalogue(["face cream"] * 5)
    engine = S.SearchEngine(cat, popularity=np.array([1, 5, 5, 0, 3]),
                            cfg=S.SearchConfig(candidates=2))
    text = engine.index.scores(["face", "cream"])
    assert len(set(text.round(6))) == 1
    assert engine.candidates(text).tolist() == [1, 2]
    assert engine.candidates(text, exclude=np.array([1])).tolist() == [2, 4]


def _brute_force(g: int, t: int, k: int) -> tuple[float, float, float]:
    """Average over every position of the target in its tie group."""
    ranks = np.arange(g + 1, g + t + 1)
    return ((1 / ranks).mean(), np.where(ranks <= k, 1 / np.log2(ranks + 1), 0).mean(),
            (ranks <= k).mean())


@pytest.mark.parametrize("g,t", [(0, 1), (0, 2), (9, 2), (3, 40), (120, 7), (0, 12000)])
def test_tie_aware_metrics_are_the_expectation_over_tied_orders(g, t):
    m = S.tie_aware(np.array([g]), np.array([t]), 10)
    rr, ndcg, hr = _brute_force(g, t, 10)
    assert m["mrr"][0] == pytest.approx(rr)
    assert m["ndcg@10"][0] == pytest.approx(ndcg)
    assert m["hr@10"][0] == pytest.approx(hr)


def test_rank_stats_count_better_and_tied_items_within_the_mask():
    s = np.array([3.0, 5.0, 3.0, 1.0, 3.0, np.nan])
    assert S.rank_stats(s, 0) == (1, 3)
    mask = np.array([True, False, True, True, True, True])
    assert S.rank_stats(s, 0, mask) == (0, 3)
    assert S.rank_stats(s, 5) == (5, 1)  # an unscored target ranks last


def test_evaluate_matches_a_hand_computed_example():
    cat = catalogue(["face cream", "face cream", "face wash", "hand soap"])
    engine = S.SearchEngine(cat, popularity=np.array([1, 2, 3, 4]))
    q = pd.DataFrame({"user_id": ["u"], "item_id": ["i01"], "query": ["face cream"],
                      "slice": ["test"]})
    m = S.evaluate(engine, q)
    assert m["bm25.mrr"] == pytest.approx(0.75)  # tied first with i00
    assert m["bm25.hr@10"] == pytest.approx(1.0)
    assert m["popularity.mrr"] == pytest.approx(1 / 3)  # i03, i02 are more popular
    assert m["gnn.mrr"] == pytest.approx(_brute_force(0, 4, 10)[0])  # no model: all tied
    # the pipeline: candidates i00, i01 (text tie), then i02; popularity breaks the tie
    assert m["anonymous.mrr"] == pytest.approx(1.0)
    assert m["queries"] == 1


# ----------------------------------------------------------------------------- fitting

def _synthetic(signal: str, n_items: int = 40, n_users: int = 60, seed: int = 0):
    """Every item has the same text; the target of each user's query is the item with the best
    personal score (signal="personal") or the most popular one (signal="popularity")."""
    rng = np.random.default_rng(seed)
    cat = catalogue(["face cream"] * n_items)
    users = [f"u{j}" for j in range(n_users)]
    ue, ie = rng.normal(size=(n_users, 8)), rng.normal(size=(n_items, 8))
    pop = rng.integers(0, 1000, n_items).astype(float)
    personal = S.Personal.aligned(users, ue, cat.ids, ie, cat)
    engine = S.SearchEngine(cat, popularity=pop, personal=personal,
                            cfg=S.SearchConfig(grid_step=0.1))
    if signal == "personal":
        targets = (ue @ ie.T).argmax(1)
    else:
        targets = np.full(n_users, int(pop.argmax()))
    q = pd.DataFrame({"user_id": users, "item_id": cat.ids[targets], "query": "face cream",
                      "slice": "val"})
    return engine, q


@pytest.mark.parametrize("signal", ["personal", "popularity"])
def test_fit_blend_finds_the_signal_that_decides(signal):
    engine, q = _synthetic(signal)
    blend = S.fit_blend(engine, q)
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
    m = S.evaluate(engine, q)
    assert m["reranked.ndcg@10"] == pytest.approx(fitted["val_ndcg@10"])


def test_fit_blend_refuses_no_queries():
    engine, q = _synthetic("personal")
    with pytest.raises(Exception, match="no validation queries"):
        S.fit_blend(engine, q.iloc[:0])


def test_simplex_grid_covers_the_simplex():
    g = S._simplex(0.25, 3)
    assert len(g) == 15 and np.allclose(g.sum(1), 1) and (g >= 0).all()
    assert {tuple(x) for x in g} >= {(1, 0, 0), (0, 1, 0), (0, 0, 1)}


def test_blend_round_trips(tmp_path):
    b = S.Blend(personal={"text": 0.2, "personal": 0.7, "popularity": 0.1},
                fitted={"queries": 3})
    b.save(tmp_path / "blend.json")
    assert S.Blend.load(tmp_path / "blend.json") == b


def test_build_queries_skips_and_counts():
    cat = catalogue(["a", "b", "c"], categories=[["Beauty", "Skin Care"], [], ["&"]])
    q, skipped = S.build_queries(cat, ["u1", "u2", "u3", "u4"], ["i00", "i01", "i02", "zz"])
    assert q["query"].tolist() == ["beauty skin care"]
    assert skipped == {"item_not_in_catalogue": 1, "empty_query": 2}


def test_catalogue_from_snapshot_uses_id_maps(tmp_path):
    import torch

    from gnn.snapshot import build_snapshot

    snap = build_snapshot(
        {"user": ["u"], "item": ["a", "b"], "category": ["beauty", "skin care"],
         "brand": ["rosa"]},
        {"IN_CATEGORY": pd.DataFrame({"src": ["a", "a", "b"],
                                      "dst": ["skin care", "beauty", "beauty"]}),
         "SUBCATEGORY_OF": pd.DataFrame({"src": ["skin care"], "dst": ["beauty"]}),
         "HAS_BRAND": pd.DataFrame({"src": ["a"], "dst": ["rosa"]})})
    cat = S.Catalogue.from_snapshot(snap)
    assert cat.ids.tolist() == ["a", "b"] and cat.source == "snapshot"
    assert cat.categories == [["beauty", "skin care"], ["beauty"]]  # broadest first
    assert cat.text(0) == "rosa beauty skin care"
    cat.save(tmp_path / "c.parquet")
    back = S.Catalogue.load(tmp_path / "c.parquet")
    assert back.categories == cat.categories and back.source == "snapshot"
    assert isinstance(snap.data["item"].num_nodes, int) and torch.is_tensor(
        snap.data["item", "in_category", "category"].edge_index)


def test_search_config_validates():
    with pytest.raises(Exception, match="'candidates' must be >= 1"):
        S.SearchConfig(candidates=0)
    with pytest.raises(Exception, match="'grid_step'"):
        S.SearchConfig(grid_step=0)


def test_zscore_handles_constant_and_unknown_values():
    assert S._zscore(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]
    z = S._zscore(np.array([1.0, np.nan, 3.0]))
    assert z.tolist() == [-1.0, 0.0, 1.0]
    assert list(itertools.chain(S._zscore(np.array([])))) == []
