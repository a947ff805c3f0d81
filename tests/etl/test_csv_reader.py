import shutil
from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError, InputFileError
from etl import quarantine as q
from etl.quarantine import Quarantine
from etl.readers import READERS, read

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GENERIC = FIXTURES / "generic_small"


def _check(tables):
    assert tables.counts() == {
        "users": 4,  # u4 has no events
        "items": 5,  # sku-9 only appears in events
        "brands": 2,  # Generic is no brand
        "categories": 7,
        "category_parents": 6,
        "item_categories": 4,
        "events": 12,
        "item_relations": 2,  # sku-404 is outside the catalogue
    }
    assert tables.stats["item_relations_out_of_catalogue"] == 1
    assert tables.stats["items_added_from_events"] == 1
    ev = tables.events
    assert ev["ts"].tolist()[:4] == [1709287200, 1709287320, 1709287500, 1709805600]
    assert ev["ts"].iloc[10] == 1709632800  # 12:00+02:00
    assert pd.isna(ev["ts"].iloc[11])
    assert ev["rating"].dropna().tolist() == [4.5, 3.0]
    assert ev["split"].value_counts().to_dict() == {"train": 6, "test": 5}
    assert ev["session"].isna().sum() == 3
    items = tables.items.set_index("item_id")
    assert items.loc["sku-2", "title"] == "Volume Mascara & Primer"
    assert items.loc["sku-1", "brand_id"] == items.loc["sku-4", "brand_id"] == "l'oreal paris"
    assert pd.isna(items.loc["sku-3", "price"]) and items.loc["sku-4", "price"] == 29.90
    cats = tables.categories.set_index("category_id")["name"]
    assert cats["beauty > skin care > face"] == "Face"
    assert ("beauty > skin care > face", "beauty > skin care") in set(
        map(tuple, tables.category_parents.to_numpy())
    )


def test_csv_input():
    qq = Quarantine()
    _check(read("csv", GENERIC, qq))
    assert len(qq) == 0


def test_parquet_input(tmp_path):
    events = pd.read_csv(GENERIC / "events.csv", dtype=str, keep_default_na=False)
    # a real timestamp column (tz-aware, microseconds) instead of text
    unix = pd.to_numeric(events["timestamp"], errors="coerce")
    iso = events["timestamp"].where(unix.isna() & (events["timestamp"] != ""))
    events["timestamp"] = pd.to_datetime(unix, unit="s", utc=True).fillna(
        pd.to_datetime(iso, format="ISO8601", utc=True)
    )
    assert str(events["timestamp"].dtype).startswith("datetime64")
    events["rating"] = pd.to_numeric(events["rating"])
    events.to_parquet(tmp_path / "events.parquet")
    items = pd.read_csv(GENERIC / "items.csv")
    items.to_parquet(tmp_path / "items.parquet")
    for name in ("users", "item_relations"):
        pd.read_csv(GENERIC / f"{name}.csv").to_parquet(tmp_path / f"{name}.parquet")
    qq = Quarantine()
    parquet = read("csv", tmp_path, qq)
    _check(parquet)
    csv_tables = read("csv", GENERIC, Quarantine())
    for name, frame in csv_tables.tables().items():
        pd.testing.assert_frame_equal(frame, parquet.tables()[name], obj=name)


def test_bad_rows(tmp_path):
    shutil.copytree(GENERIC, tmp_path / "in")
    with (tmp_path / "in" / "events.csv").open("a") as fh:
        fh.write("u1,sku-1,view,yesterday,,,\n")  # 14
        fh.write("u1,sku-1,review,1709805600,five,,\n")  # 15
        fh.write("u1,sku-1,view,1709805600,,dev,\n")  # 16
        fh.write("u1,sku-1,click,1709805600,,,\n")  # 17
        fh.write("u1,sku-1,review,1709805600,4.5,test,\n")  # 18: repeats line 5
    with (tmp_path / "in" / "items.csv").open("a") as fh:
        fh.write("sku-1,Again,1,,\nsku-5,Free,abc,,\n")  # 6, 7
    with (tmp_path / "in" / "users.csv").open("a") as fh:
        fh.write("u1\n \n")  # 6, 7
    with (tmp_path / "in" / "item_relations.csv").open("a") as fh:
        fh.write("sku-1,similar,sku-2\nsku-1,also_bought,\n")  # 5, 6
    qq = Quarantine()
    tables = read("csv", tmp_path / "in", qq)
    got = sorted((path.rsplit("/", 1)[-1], line, reason) for path, line, reason, *_ in qq.rows)
    assert got == [
        ("events.csv", 14, q.UNPARSABLE_TIMESTAMP),
        ("events.csv", 15, q.UNPARSABLE_RATING),
        ("events.csv", 16, q.UNKNOWN_SPLIT),
        ("events.csv", 17, q.UNKNOWN_EVENT_TYPE),
        ("events.csv", 18, q.DUPLICATE_EVENT),
        ("item_relations.csv", 5, q.UNKNOWN_RELATION),
        ("item_relations.csv", 6, q.MISSING_RELATED_ITEM_ID),
        ("items.csv", 6, q.DUPLICATE_ID),
        ("items.csv", 7, q.UNPARSABLE_PRICE),
        ("users.csv", 6, q.DUPLICATE_ID),
        ("users.csv", 7, q.MISSING_USER_ID),
    ]
    assert len(tables.events) == 12


def test_format_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown --format 'xml': expected one of amazon-kg, csv, rees46"):
        read("xml", tmp_path, Quarantine())
    assert set(READERS) == {"amazon-kg", "rees46", "csv"}
    with pytest.raises(InputFileError, match="missing events.csv .* required by --format csv"):
        read("csv", tmp_path, Quarantine())
    (tmp_path / "events.csv").write_text("user,item,type,time\n")
    expected = (
        r"events\.csv: expected columns user_id,item_id,event_type,timestamp "
        r"\(optional: rating,split,session\) for --format csv, got user,item,type,time"
    )
    with pytest.raises(InputFileError, match=expected):
        read("csv", tmp_path, Quarantine())
    pd.DataFrame({"user_id": ["u"]}).to_parquet(tmp_path / "events.parquet")
    with pytest.raises(InputFileError, match="both events.csv and events.parquet exist"):
        read("csv", tmp_path, Quarantine())
