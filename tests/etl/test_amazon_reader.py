import gzip
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputFileError
from etl import quarantine as q
from etl.quarantine import Quarantine
from etl.readers import read

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATA = Path(__file__).resolve().parents[2] / "data" / "amazon_beauty"
SMALL = FIXTURES / "amazon_small"


@pytest.fixture(scope="module")
def full():
    qq = Quarantine()
    started = time.perf_counter()
    tables = read("amazon-kg", DATA, qq)
    return tables, qq, time.perf_counter() - started


def test_full_bundled_dataset(full):
    tables, qq, elapsed = full
    assert elapsed < 60, f"reading the bundled data took {elapsed:.1f} s"  # ~7-11 s on 2 cores
    assert tables.counts() == {
        "users": 22_363,
        "items": 12_101,
        "brands": 2_040,  # 2,076 raw names -> 2,043 after unescape+casefold, minus generic/unknown
        "categories": 248,
        "category_parents": 260,
        "item_categories": 49_756,  # = sum of n_categories in items.csv
        "events": 198_502,
        "item_relations": 403_716,
    }
    assert len(qq) == 0
    assert tables.events["split"].value_counts().to_dict() == {"train": 149_844, "test": 48_658}
    assert tables.events["ts"].notna().all()
    assert tables.item_relations["relation"].value_counts().to_dict() == {
        "also_bought": 239_345,
        "also_viewed": 155_350,
        "bought_together": 9_021,
    }
    assert tables.stats["item_relations_out_of_catalogue"] == 1_055_553 - 403_716
    assert tables.items["price"].notna().sum() == 11_516
    assert tables.items["brand_id"].notna().sum() == 12_101 - 2_098 - 46  # empty, generic/unknown


def test_small_slice():
    tables = read("amazon-kg", SMALL, Quarantine())
    assert tables.counts() == {
        "users": 50,
        "items": 404,
        "brands": 190,
        "categories": 137,
        "category_parents": 143,
        "item_categories": 1_654,
        "events": 426,
        "item_relations": 1_298,
    }
    assert tables.stats["item_relations_out_of_catalogue"] == 100  # see make_amazon_small.py
    assert tables.events["event_type"].eq("review").all()
    assert tables.events["split"].value_counts().to_dict() == {"train": 324, "test": 102}
    # independent check against the raw files
    raw = pd.read_csv(SMALL / "interactions.csv.gz", dtype=str)
    assert tables.users["user_id"].sort_values().tolist() == sorted(raw["user_id"].unique())
    times = pd.read_csv(SMALL / "interactions_timestamps.csv.gz", dtype=str)
    merged = tables.events.merge(times, on=["user_id", "item_id"])
    assert (merged["ts"].astype(str) == merged["unix_review_time"]).all() and len(merged) == 426


def test_brands_titles_and_prices():
    tables = read("amazon-kg", SMALL, Quarantine())
    brands = tables.brands.set_index("brand_id")["name"]
    assert brands["l'oreal paris"] == "L'Oreal Paris"  # from L&#39;Oreal Paris
    assert brands["burt's bees"] == "Burt's Bees"
    assert not brands.index.isin(["generic", "unknown", ""]).any()
    assert not brands.str.contains("&#").any()
    items = tables.items.set_index("item_id")
    raw = pd.read_csv(SMALL / "items.csv", dtype=str, keep_default_na=False).set_index("item_id")
    no_brand = raw.index[raw["brand"].str.casefold().isin(["generic", "unknown", ""])]
    assert len(no_brand) and items.loc[no_brand, "brand_id"].isna().all()
    assert not items["title"].dropna().str.contains("&amp;|&#39;|  ").any()
    assert (items["price"].dropna() > 0).all()


def test_hierarchy_from_category_path(full):
    tables = full[0]
    edges = set(map(tuple, tables.category_parents.to_numpy()))
    # 7806397051: Beauty > Makeup > Face > Concealers & Neutralizers
    assert {("makeup", "beauty"), ("face", "makeup"), ("concealers & neutralizers", "face")} <= edges
    assert ("face", "skin care") in edges  # one node per name: "Face" has several parents
    names = tables.categories.set_index("category_id")["name"]
    assert names["concealers & neutralizers"] == "Concealers & Neutralizers"
    in_cat = tables.item_categories
    assert set(in_cat.loc[in_cat["item_id"] == "B003QLRO7W", "category_id"]) == {
        "beauty", "curling irons", "styling tools", "irons", "hair care"
    }
    assert "beauty" not in set(tables.category_parents["category_id"])  # the root


def test_optional_files_absent(tmp_path):
    for name in ("interactions.csv.gz", "items.csv", "item_relations.csv.gz"):
        shutil.copy(SMALL / name, tmp_path / name)
    tables = read("amazon-kg", tmp_path, Quarantine())
    assert len(tables.events) == 426 and tables.events["ts"].isna().all()
    assert tables.items["title"].isna().all() and tables.items["price"].isna().all()
    assert len(tables.category_parents) == 0 and len(tables.categories) == 137


def test_missing_required_file_and_not_a_directory(tmp_path):
    shutil.copy(SMALL / "items.csv", tmp_path / "items.csv")
    with pytest.raises(InputFileError, match="missing interactions.csv .* required by --format amazon-kg"):
        read("amazon-kg", tmp_path, Quarantine())
    with pytest.raises(InputFileError, match="not a directory; --format amazon-kg expects a directory"):
        read("amazon-kg", tmp_path / "items.csv", Quarantine())


def _append_gz(path, lines):
    with gzip.open(path, "at", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def test_bad_rows_are_quarantined(tmp_path):
    for f in SMALL.iterdir():
        shutil.copy(f, tmp_path / f.name)
    n_items = 1 + len(pd.read_csv(SMALL / "items.csv"))
    n_inter = 1 + len(pd.read_csv(SMALL / "interactions.csv.gz"))
    n_rel = 1 + len(pd.read_csv(SMALL / "item_relations.csv.gz"))
    first = pd.read_csv(SMALL / "interactions.csv.gz", dtype=str).iloc[0]
    with (tmp_path / "items.csv").open("a") as fh:
        fh.write(f",Acme,Beauty,1\n{first.item_id},Dup,Beauty,1\n")
    pair = f"{first.user_id},{first.item_id}"
    item = first.item_id
    _append_gz(
        tmp_path / "interactions.csv.gz", [f"{pair},valid,0,1", f"{pair},train,0,1", ",X,train,0,1"]
    )
    _append_gz(tmp_path / "item_relations.csv.gz", [f"{item},similar_to,{item},1"])
    _append_gz(
        tmp_path / "items_titles.csv.gz", [f"{item},Again,1.0,,Beauty,Beauty,1", "Z9,T,-2,,,Beauty,1"]
    )
    qq = Quarantine()
    tables = read("amazon-kg", tmp_path, qq)
    got = {(path.split("/")[-1], line, reason) for path, line, reason, *_ in qq.rows}
    assert got == {
        ("items.csv", n_items + 1, q.MISSING_ITEM_ID),
        ("interactions.csv.gz", n_inter + 1, q.UNKNOWN_SPLIT),
        ("interactions.csv.gz", n_inter + 2, q.DUPLICATE_EVENT),
        ("interactions.csv.gz", n_inter + 3, q.MISSING_USER_ID),
        ("item_relations.csv.gz", n_rel + 1, q.UNKNOWN_RELATION),
        ("items_titles.csv.gz", n_items + 1, q.DUPLICATE_ID),
        ("items_titles.csv.gz", n_items + 2, q.NEGATIVE_PRICE),
        ("items.csv", n_items + 2, q.DUPLICATE_ID),
    }
    assert len(tables.events) == 426 and len(tables.items) == 404
    raw = {(path.split("/")[-1], line): text for path, line, _, text, _ in qq.rows}
    assert raw[("interactions.csv.gz", n_inter + 1)] == f"{pair},valid,0,1"
    assert raw[("items.csv", n_items + 1)] == ",Acme,Beauty,1"
