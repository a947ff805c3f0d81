"""search.engine without a graph: known answers, the query's words first, score parts, the
cold-aware popularity prior, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from search.blend import Blend
from search.config import QueryError, SearchConfig
from search.engine import SearchEngine, popularity_prior, zscore
from search.personal import Personal

ROSE, LAVENDER = np.array([1.0, 0.0]), np.array([0.0, 1.0])


@pytest.fixture
def flip_engine(catalogue) -> SearchEngine:
    """Two face creams with the same text score; the lavender one is far more popular. Ann likes
    rose things, Bob lavender things."""
    cat = catalogue(["Rose Face Cream", "Lavender Face Cream", "Rose Perfume", "Lavender Soap",
                     "Hand Cream Deluxe Tube"])
    items = np.stack([ROSE, LAVENDER, ROSE, LAVENDER, 0.5 * (ROSE + LAVENDER)])
    personal = Personal.aligned(["ann", "bob"], np.stack([ROSE, LAVENDER]), cat.ids, items, cat)
    blend = Blend(personal={"text": 0.3, "personal": 0.5, "popularity": 0.2},
                  anonymous={"text": 0.5, "personal": 0.0, "popularity": 0.5})
    return SearchEngine(cat, popularity=np.array([10, 50, 5, 5, 5]), personal=personal,
                        blend=blend, history={"ann": np.array([2]), "bob": np.array([3])})


def ids(result) -> list[str]:
    return [h.item_id for h in result.hits]


# ----------------------------------------------------------------------------- known answers

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
    assert ann.weights == {"text": 0.3, "personal": 0.5, "popularity": 0.2}
    assert anonymous.weights["personal"] == 0.0 and not ann.weights_fitted


def test_without_a_personal_weight_nothing_flips(flip_engine):
    flip_engine.blend = Blend(personal={"text": 0.5, "personal": 0.0, "popularity": 0.5},
                              anonymous=flip_engine.blend.anonymous)
    assert ids(flip_engine.search("face cream", user="ann", k=2)) == ["i01", "i00"]


def test_score_parts_are_weight_times_feature_and_sum_to_the_score(flip_engine):
    r = flip_engine.search("face cream", user="ann", k=5)
    with_parts = [h for h in r.hits if h.parts is not None]
    assert len(with_parts) == 3  # the three items matching a query word are the candidates
    for h in with_parts:
        assert set(h.parts) == {"text", "personal", "popularity"}
        assert sum(h.parts.values()) == pytest.approx(h.score)
    past = [h for h in r.hits if h.parts is None]
    assert len(past) == 2 and all(np.isnan(h.score) for h in past)


# ----------------------------------------------------------------------------- the words first

@pytest.fixture
def popular_partial_matches(catalogue):
    """One item has both words of "face cream" and few buyers; popular items have one word."""
    cat = catalogue(["Face Wash Gel", "Cream Blush", "Day Face Cream", "Face Primer",
                     "Hand Cream"], categories=[["Beauty"]] * 5)
    pop = np.array([900, 800, 5, 700, 600])
    blend = Blend(anonymous={"text": 0.1, "personal": 0.0, "popularity": 0.9})
    return cat, pop, blend


def test_items_with_more_of_the_query_words_rank_first(popular_partial_matches):
    cat, pop, blend = popular_partial_matches
    engine = SearchEngine(cat, popularity=pop, blend=blend)
    r = engine.search("face cream", k=5)
    assert ids(r)[0] == "i02" and r.hits[0].matched == ["face", "cream"]
    assert all(len(h.matched) == 1 for h in r.hits[1:])
    assert r.hits[0].reason.startswith("matches face, cream") and r.hits[0].popularity == 5
    # the order within one level is the blend's: popularity (0.9) decides among one-word items
    assert ids(r)[1:] == ["i00", "i01", "i03", "i04"]


def test_without_match_first_popularity_can_outrank_the_query_words(popular_partial_matches):
    cat, pop, blend = popular_partial_matches
    engine = SearchEngine(cat, popularity=pop, blend=blend, cfg=SearchConfig(match_first=False))
    assert ids(engine.search("face cream", k=5))[0] != "i02"


def test_text_ranking_is_bm25_alone(popular_partial_matches):
    cat, pop, blend = popular_partial_matches
    engine = SearchEngine(cat, popularity=pop, blend=blend)
    r = engine.text_ranking("face cream", k=10)
    assert r.mode == "bm25" and r.matches == 5 and len(r.hits) == 5
    assert ids(r)[0] == "i02"
    scores = [h.text_score for h in r.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.parts is None and h.score == h.text_score for h in r.hits)


# ----------------------------------------------------------------------------- popularity prior

def test_items_without_interactions_get_the_median_prior_not_the_lowest():
    prior = popularity_prior(np.array([0.0, 1.0, 9.0, 99.0]))
    assert prior[0] == pytest.approx(np.log(10.0))  # the median of log(2), log(10), log(100)
    assert prior[1] < prior[0] < prior[3]
    assert popularity_prior(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_a_new_item_is_not_ranked_below_every_known_one(catalogue):
    cat = catalogue(["face cream"] * 4)
    engine = SearchEngine(cat, popularity=np.array([1, 10, 0, 1000]),
                          cfg=SearchConfig(candidates=2))
    # ties at the candidate cut are broken by the prior: the new item (median) beats the 1
    assert engine.candidates(engine.match("face cream")).tolist() == [3, 1]
    r = engine.search("face cream", k=4)
    assert ids(r) == ["i03", "i01", "i02", "i00"]


def test_a_new_item_is_ranked_by_what_is_known_about_it(catalogue):
    """Popularity is unknown for an item without interactions: its weight goes to its text
    (anonymous), so it lands between a popular and an unpopular item of equal text."""
    engine = SearchEngine(catalogue(["face cream"] * 3), popularity=np.array([1000, 1, 0]),
                          blend=Blend(anonymous={"text": 0.5, "personal": 0.0,
                                                 "popularity": 0.5}))
    r = engine.search("face cream", k=3)
    assert ids(r) == ["i00", "i02", "i01"]
    new = r.hits[1]
    assert new.parts == {"text": 0.0, "personal": 0.0, "popularity": 0.0}
    assert r.hits[0].parts["popularity"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- history, bad input

def test_results_are_deterministic_and_history_can_be_hidden(flip_engine):
    a = flip_engine.search("rose lavender cream perfume soap", user="ann", k=5)
    b = flip_engine.search("rose lavender cream perfume soap", user="ann", k=5)
    assert ids(a) == ids(b) and len(a.hits) == 5
    assert "i02" in ids(a)  # Ann's own perfume is shown (and says so)...
    assert "you have it already" in a.hits[ids(a).index("i02")].reason
    hidden = flip_engine.search("rose lavender cream perfume soap", user="ann", k=5,
                                exclude_history=True)
    assert "i02" not in ids(hidden) and len(hidden.hits) == 4  # ...or left out


@pytest.mark.parametrize("query", ["", "   ", "\t\n ", "!!! ??? &&&", "the and of"])
def test_empty_or_wordless_queries_are_refused_with_a_clear_message(flip_engine, query):
    with pytest.raises(QueryError, match="empty|no searchable words"):
        flip_engine.search(query)
    with pytest.raises(QueryError, match="empty|no searchable words"):
        flip_engine.text_ranking(query)


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
    except QueryError as e:  # emoji alone are not words: a clear refusal is fine too
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


def test_items_unknown_to_the_model_get_no_personal_score(catalogue):
    cat = catalogue(["Rose Face Cream", "Brand New Face Cream"])
    personal = Personal.aligned(["ann"], ROSE[None], ["i00"], ROSE[None], cat)
    engine = SearchEngine(cat, popularity=np.array([1, 0]), personal=personal, blend=Blend())
    r = engine.search("face cream", user="ann")
    new = r.hits[ids(r).index("i01")]
    assert new.personal_score is None and "new to the model" in new.reason
    assert r.hits[ids(r).index("i00")].personal_score == pytest.approx(1.0)


def test_bad_k_is_refused(flip_engine):
    with pytest.raises(QueryError, match="'k' must be >= 1"):
        flip_engine.search("cream", k=0)


def test_candidates_cut_ties_by_popularity_then_catalogue_order(catalogue):
    engine = SearchEngine(catalogue(["face cream"] * 5), popularity=np.array([1, 5, 5, 2, 3]),
                          cfg=SearchConfig(candidates=2))
    m = engine.match("face cream")
    assert len(set(m.scores.round(6))) == 1
    assert engine.candidates(m).tolist() == [1, 2]
    assert engine.candidates(m, exclude=np.array([1])).tolist() == [2, 4]


def test_an_index_of_another_size_is_refused(catalogue):
    from search.index import TextIndex

    with pytest.raises(ValueError, match="the index has 2 items"):
        SearchEngine(catalogue(["a b", "c d", "e f"]), index=TextIndex.build(["a b", "c d"]))


def test_zscore_handles_constant_and_unknown_values():
    assert zscore(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]
    assert zscore(np.array([1.0, np.nan, 3.0])).tolist() == [-1.0, 0.0, 1.0]
    assert zscore(np.array([])).tolist() == []
