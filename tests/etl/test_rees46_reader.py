import gzip
from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputFileError
from etl import quarantine as q
from etl.quarantine import Quarantine
from etl.readers import read, textfile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SMALL = FIXTURES / "rees46_small.csv"
BAD = FIXTURES / "rees46_bad.csv"


def test_small_file():
    qq = Quarantine()
    tables = read("rees46", SMALL, qq)
    assert len(qq) == 0
    assert tables.counts() == {
        "users": 5,
        "items": 12,
        "brands": 6,
        "categories": 15,
        "category_parents": 9,
        "item_categories": 12,
        "events": 30,
        "item_relations": 0,
    }
    assert tables.events["event_type"].value_counts().to_dict() == {
        "view": 18, "cart": 6, "purchase": 4, "remove_from_cart": 2
    }
    ev = tables.events
    assert ev["ts"].iloc[0] == 1569888000  # 2019-10-01 00:00:00 UTC
    assert ev["split"].isna().all() and ev["rating"].isna().all()
    assert ev.loc[ev["user_id"] == "535871217", "session"].nunique() == 2


def test_items_prices_and_brands():
    tables = read("rees46", SMALL, Quarantine())
    items = tables.items.set_index("item_id")
    assert items.loc["1004237", "price"] == 1079.00  # the last price seen
    assert items.loc["1307067", "price"] == 251.74  # a later empty price does not erase it
    assert items.loc["1480613", "price"] == 899.00
    assert items["title"].isna().all()
    assert pd.isna(items.loc["4804056", "brand_id"])  # "Generic"
    assert pd.isna(items.loc["17200506", "brand_id"])  # no brand
    assert items.loc["5877454", "brand_id"] == items.loc["5877455", "brand_id"] == "l'oreal"
    names = tables.brands.set_index("brand_id")["name"]
    assert names["l'oreal"] == "L'Oreal"  # L&#39;Oreal x3 beats l'oreal x1
    assert "generic" not in names.index


def test_categories_from_category_code():
    tables = read("rees46", SMALL, Quarantine())
    names = tables.categories.set_index("category_id")["name"]
    assert names["electronics"] == "electronics"
    assert names["electronics.audio.headphone"] == "headphone"
    assert names["2103807459595387724"] == "2103807459595387724"  # no category_code
    edges = set(map(tuple, tables.category_parents.to_numpy()))
    assert ("electronics.audio.headphone", "electronics.audio") in edges
    assert ("electronics.audio", "electronics") in edges
    assert ("furniture.living_room.sofa", "furniture.living_room") in edges
    item_cat = tables.item_categories.set_index("item_id")["category_id"]
    assert item_cat["4804056"] == "electronics.audio.headphone"
    assert item_cat["5877454"] == "1487580005092295511"


def test_every_bad_row_is_quarantined_with_its_line(tmp_path):
    qq = Quarantine()
    tables = read("rees46", BAD, qq)
    assert sorted((line, reason) for _, line, reason, *_ in qq.rows) == [
        (3, q.MISSING_USER_ID),
        (4, q.MISSING_ITEM_ID),
        (5, q.UNPARSABLE_TIMESTAMP),
        (6, q.UNPARSABLE_PRICE),
        (7, q.NEGATIVE_PRICE),
        (8, q.UNKNOWN_EVENT_TYPE),
        (9, q.WRONG_FIELD_COUNT),
        (10, q.WRONG_FIELD_COUNT),
        (11, q.INVALID_ENCODING),
        (13, q.DUPLICATE_EVENT),
        (15, q.DUPLICATE_EVENT),
    ]
    # the good rows (2, 12, 14, 16) load; nothing is lost: 4 + 11 = 15 data lines
    assert len(tables.events) == 4
    raw = {line: text for _, line, _, text, _ in qq.rows}
    lines = BAD.read_bytes().decode("utf-8", errors="backslashreplace").splitlines()
    for line in (3, 6, 7, 11, 13):
        assert raw[line] == lines[line - 1]
    out = qq.write(tmp_path, "rees46_bad")
    assert len(pd.read_csv(out)) == 11


def test_gzip_and_duplicates_across_chunks(tmp_path, monkeypatch):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(BAD.read_bytes()))
    monkeypatch.setattr(textfile, "CHUNK_ROWS", 2)  # line 13 and 15 repeat line 12 in other chunks
    qq = Quarantine()
    tables = read("rees46", path, qq)
    assert len(tables.events) == 4
    assert qq.counts()[q.DUPLICATE_EVENT] == 2 and len(qq) == 11


def test_wrong_header_and_missing_file(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputFileError) as err:
        read("rees46", bad, Quarantine())
    assert str(err.value) == (
        f"{bad}: expected columns event_time,event_type,product_id,category_id,category_code,"
        "brand,price,user_id,user_session for --format rees46, got a,b,c"
    )
    with pytest.raises(InputFileError, match=r"missing\.csv: file not found \(needed by --format rees46\)"):
        read("rees46", tmp_path / "missing.csv", Quarantine())
