"""Plain queries on the bundled Amazon Beauty catalogue (no graph, no model): a query's words
count first. With the popularity-heavy blend that was fitted before (text 0.3, popularity 0.7),
"face cream" used to show a brush, washes, a primer and a powder before any item with both words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from search.blend import Blend
from search.catalogue import Catalogue
from search.config import SearchConfig
from search.engine import SearchEngine
from search.popularity import training_popularity

DATA = Path(__file__).resolve().parents[2] / "data" / "amazon_beauty"
QUERIES = ("face cream", "argan oil shampoo", "nail polish", "eye shadow palette",
           "vitamin c serum", "hair straightener")
POPULAR_BLEND = Blend(anonymous={"text": 0.3, "personal": 0.0, "popularity": 0.7})


@pytest.fixture(scope="module")
def beauty() -> tuple[Catalogue, np.ndarray]:
    """The catalogue (titles, brands, category names with their hierarchy) and the training
    reviews per item, read straight from the bundled files."""
    items = pd.read_csv(DATA / "items.csv", dtype=str)
    titles = pd.read_csv(DATA / "items_titles.csv.gz", dtype=str)
    frame = items[["item_id", "brand"]].merge(titles[["item_id", "title", "category_path"]],
                                              on="item_id", how="left").rename(
        columns={"item_id": "id"})
    pairs, parents = [], []
    for item, flat, path in zip(frame["id"], items["categories"], frame["category_path"]):
        names = [n.strip() for n in str(flat).split("|") if n.strip()]
        steps = [n.strip() for n in str(path).split(">") if n.strip()] if isinstance(path, str) \
            else []
        pairs += [(item, n) for n in dict.fromkeys(names + steps)]
        parents += list(zip(steps[1:], steps[:-1]))
    ic = pd.DataFrame(pairs, columns=["src", "dst"])
    names = pd.DataFrame({"id": ic["dst"].unique(), "name": ic["dst"].unique()})
    cat = Catalogue.from_frames(frame, ic, names,
                                pd.DataFrame(parents, columns=["src", "dst"]).drop_duplicates())
    reviews = pd.read_csv(DATA / "interactions.csv.gz", dtype=str, usecols=["item_id", "split"])
    pop = training_popularity(cat.ids, reviews.assign(relation="reviewed", n=1))
    return cat, pop


def titles_only(cat: Catalogue) -> Catalogue:
    """The catalogue as search indexed it before issue 13: titles alone."""
    n = len(cat)
    return Catalogue(cat.ids, cat.titles, [""] * n, [[] for _ in range(n)])


@pytest.mark.parametrize("text", ["full", "titles"])
@pytest.mark.parametrize("query", QUERIES)
def test_items_with_every_word_come_first(beauty, query, text):
    cat, pop = beauty
    cat = cat if text == "full" else titles_only(cat)
    engine = SearchEngine(cat, popularity=pop, blend=POPULAR_BLEND)
    r = engine.search(query, k=10)
    levels = [len(h.matched) for h in r.hits]
    assert levels == sorted(levels, reverse=True), [(h.title, h.matched) for h in r.hits]
    assert all(n == len(r.terms) for n in levels[:5]), [(h.title, h.matched) for h in r.hits]


def test_without_match_levels_popularity_buries_face_creams(beauty):
    """Titles alone and the same blend without the match levels: the issue's symptom comes back
    (so the test above checks the feature, not the data)."""
    cat, pop = beauty
    engine = SearchEngine(titles_only(cat), popularity=pop, blend=POPULAR_BLEND,
                          cfg=SearchConfig(match_first=False))
    r = engine.search("face cream", k=5)
    assert sum(len(h.matched) == 2 for h in r.hits) < 3, [(h.title, h.matched) for h in r.hits]
