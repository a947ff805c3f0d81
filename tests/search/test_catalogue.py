"""search.catalogue: the item text from the real graph or a snapshot, saved with a fingerprint,
and a cheap check that notices a graph that changed behind a cached copy."""

from __future__ import annotations

import pandas as pd
import pytest

from graph import queries as Q
from search.catalogue import Catalogue, graph_signature


def test_catalogue_from_the_graph_unescapes_and_orders_categories(tiny_shop):
    cat = Catalogue.from_store(tiny_shop)
    assert cat.source == "graph" and len(cat) == 20
    i = cat.index
    assert cat.titles[i["r1"]] == "Rose & Honey Fragrance Mist No 1"  # HTML unescaped
    assert cat.categories[i["r0"]] == ["Beauty", "Skin Care", "Face", "Creams & Moisturizers"]
    assert cat.text(i["n1"]) == "R'Rosa Beauty Fragrance"  # no title: brand + categories
    assert cat.text(i["l0"]) == ("Lavender Face Cream L'Lavande Beauty Skin Care Face "
                                 "Creams & Moisturizers")
    assert cat.label(i["n1"]) == "R'Rosa · Fragrance"
    assert cat.text(i["e1"]) == "" and cat.label(i["e1"]) == "e1"
    assert cat.signature == graph_signature(tiny_shop) and cat.signature["Item"] == 20
    assert cat.changed(tiny_shop) is None


def test_a_changed_graph_is_noticed(tiny_shop):
    cat = Catalogue.from_store(tiny_shop)
    first = cat.sample_ids()[0]
    old = cat.titles[cat.index[first]]
    tiny_shop.write(Q.MERGE_ITEMS, rows=[{"id": first, "title": "Renamed", "price": 1.0}])
    try:
        assert cat.changed(tiny_shop) == f"item {first} has other text"
    finally:
        tiny_shop.write(Q.MERGE_ITEMS, rows=[{"id": first, "title": old, "price": 9.5}])
    assert cat.changed(tiny_shop) is None
    cat.signature = {**cat.signature, "Item": 19}  # as if cached before an item was added
    assert cat.changed(tiny_shop) == "counts changed: Item 19 -> 20"


def test_saved_catalogue_keeps_its_fingerprint_and_signature(catalogue, tmp_path):
    cat = catalogue(["Rose Cream", ""], categories=[["Beauty", "Face"], []],
                    brands=["Rosa", ""])
    cat.signature = {"Item": 2}
    cat.save(tmp_path / "c.json")
    back = Catalogue.load(tmp_path / "c.json")
    assert (back.ids.tolist(), back.titles, back.brands, back.categories) == \
        (cat.ids.tolist(), cat.titles, cat.brands, cat.categories)
    assert back.fingerprint() == cat.fingerprint()
    assert back.signature == {"Item": 2} and back.source == "frames"
    other = catalogue(["Rose Creams", ""], categories=[["Beauty", "Face"], []],
                      brands=["Rosa", ""])
    assert other.fingerprint() != cat.fingerprint()
    assert cat.sample_ids() == ["i00", "i01"]


def test_catalogue_from_snapshot_uses_id_maps(tmp_path):
    from gnn.snapshot import build_snapshot

    snap = build_snapshot(
        {"user": ["u"], "item": ["a", "b"], "category": ["beauty", "skin care"],
         "brand": ["rosa"]},
        {"IN_CATEGORY": pd.DataFrame({"src": ["a", "a", "b"],
                                      "dst": ["skin care", "beauty", "beauty"]}),
         "SUBCATEGORY_OF": pd.DataFrame({"src": ["skin care"], "dst": ["beauty"]}),
         "HAS_BRAND": pd.DataFrame({"src": ["a"], "dst": ["rosa"]})})
    cat = Catalogue.from_snapshot(snap)
    assert cat.ids.tolist() == ["a", "b"] and cat.source == "snapshot"
    assert cat.categories == [["beauty", "skin care"], ["beauty"]]  # broadest first
    assert cat.text(0) == "rosa beauty skin care"


def test_an_empty_item_table_is_refused():
    from core.errors import DataError

    with pytest.raises(DataError, match="the catalogue is empty"):
        Catalogue.from_frames(pd.DataFrame(columns=["id", "title", "brand"]),
                              pd.DataFrame(columns=["src", "dst"]),
                              pd.DataFrame(columns=["id", "name"]))
