"""The bad-input suite: every kind of broken row we know of, loaded through the real `kgrec etl
load` into the real embedded server. Each data row must end up either loaded (in the event store
and the graph) or quarantined with the expected reason - never lost, never a crash.

Each case is (row bytes, expected reason or None for "loaded"); a row's user id is unique, so
its fate can be looked up in the event store. Line numbers are counted while the file is built.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from etl_cli import frame, ids, kgrec

from etl import quarantine as q
from graph import queries as Q

OUT = q.TIMESTAMP_OUT_OF_RANGE
BIG = 9007199254740993  # 2^53 + 1

GENERIC_HEADER = b"user_id,item_id,event_type,timestamp,rating,split,session"
GENERIC = [
    # loaded
    (b"g01,i1,view,1709287200,,train,s1", None),
    (b"g02,i1,purchase,2024-03-01T10:00:00Z,,test,", None),
    (b"g03,i2,fav,2024-03-01 10:00:00+02:00,,,", None),
    (b"g04,i2,collect,1709287200,,,", None),
    (b"g05,i2,wishlist,1709287200,,,", None),
    (b"g06,i2,favorite,,,,", None),  # no time: allowed
    (b" g07 ,i3,VIEW,1709287200.7,,,", None),  # id stripped, type any case, time floored
    (b"007,i3,view,1709287200,,,", None),  # an id stays the exact text
    (str(BIG).encode() + b",i3,view,1709287200,,,", None),
    (b'g10,i1,view,1709287200,,,"a session\nover two lines"', None),
    (b'g11,i1,review,1709287200,4.5,train,"' + b"s" * 200_000 + b'"', None),  # > csv's limit
    (b"g12,i1,view,1709287200,,train,s1\r", None),  # CRLF
    # quarantined
    (b"b13,i1,view,1e20,,,", OUT),
    (b"b14,i1,view,9.3e18,,,", OUT),
    (b"b15,i1,view,2999-01-01T00:00:00Z,,,", OUT),
    (b"b16,i1,view,2999-01-01 00:00:00 UTC,,,", OUT),
    (b"b17,i1,view,2200-06-01T00:00:00Z,,,", OUT),
    (b"b18,i1,view,-5,,,", OUT),
    (b"b19,i1,view,1e15,,,", OUT),
    (b"b20,i1,view,1709287200000,,,", OUT),  # milliseconds
    (b"b21,i1,view,1989-12-31T23:59:59Z,,,", OUT),
    (b"b22,i1,view,yesterday,,,", q.UNPARSABLE_TIMESTAMP),
    (b"b23,i1,view,inf,,,", q.UNPARSABLE_TIMESTAMP),
    (b",i1,view,1709287200,,,", q.MISSING_USER_ID),
    (b"   ,i1,view,1709287200,,,", q.MISSING_USER_ID),
    (b"b26,,view,1709287200,,,", q.MISSING_ITEM_ID),
    (b"b27,i1,click,1709287200,,,", q.UNKNOWN_EVENT_TYPE),
    (b"b28,i1,review,1709287200,five,,", q.UNPARSABLE_RATING),
    (b"b29,i1,view,1709287200,,dev,", q.UNKNOWN_SPLIT),
    (b"b30,i1,view,1709287200", q.WRONG_FIELD_COUNT),
    (b"b31,i1,view,1709287200,,,,extra", q.WRONG_FIELD_COUNT),
    (b"b32,caf\xe9,view,1709287200,,,", q.INVALID_ENCODING),
    (b'b33,"a"b,view,1709287200,,,', q.UNPARSABLE_ROW),
    (b'b34,i1,view,1709287200,,,"' + b"x" * 1_000_001 + b'"', q.FIELD_TOO_LONG),
    (b",,,,,,", q.MISSING_USER_ID),
    (b"g01,i1,view,1709287200,,train,s1", q.DUPLICATE_EVENT),
    (b'b37,i1,view,1709287200,,,"never closed', q.UNTERMINATED_QUOTE),
    # loaded: the rows after an unterminated quote are not swallowed by it
    (b"g38,i4,cart,1709287200,,,", None),
    (b"g39,i4,addtocart,1709287200,,,", None),
    (b"g40,i4,buy,1709287200,,,", None),
]

REES46_HEADER = (b"event_time,event_type,product_id,category_id,category_code,brand,price,"
                 b"user_id,user_session")
R = b",2053013555631882655,electronics.smartphone,apple,"
REES46 = [
    (b"2019-10-01 00:00:04 UTC,view,1004237" + R + b"1081.98,501,s1", None),
    (b"2019-10-01 00:00:05 UTC,cart,1004237" + R + b"1081.98,502,s1", None),
    (b"2019-10-01 00:00:06 UTC,purchase,1004237" + R + b",503,s1", None),
    (b"2019-10-01 00:00:07 UTC,remove_from_cart,1004237" + R + b"1081.98,504,s1", None),
    (b"2019-10-01 00:00:08 UTC,view,5100816,2053013553375346967,,,4.99,505,s2", None),
    (b"2999-01-01 00:00:00 UTC,view,1004237" + R + b"1081.98,506,s1", OUT),
    (b"2200-01-01 00:00:00 UTC,view,1004237" + R + b"1081.98,507,s1", OUT),
    (b"1989-12-31 23:59:59 UTC,view,1004237" + R + b"1081.98,508,s1", OUT),
    (b"2019-10-01T00:00:00Z,view,1004237" + R + b"1081.98,509,s1", q.UNPARSABLE_TIMESTAMP),
    (b",view,1004237" + R + b"1081.98,510,s1", q.UNPARSABLE_TIMESTAMP),
    (b"2019-10-01 00:00:11 UTC,favorite,1004237" + R + b"1081.98,511,s1", q.UNKNOWN_EVENT_TYPE),
    (b"2019-10-01 00:00:12 UTC,view,1004237" + R + b"1e400,512,s1", q.UNPARSABLE_PRICE),
    (b"2019-10-01 00:00:13 UTC,view,1004237" + R + b"-1,513,s1", q.NEGATIVE_PRICE),
    (b"2019-10-01 00:00:14 UTC,view,1004237" + R + b"1081.98,,s1", q.MISSING_USER_ID),
    (b"2019-10-01 00:00:15 UTC,view,1004237,515,s1", q.WRONG_FIELD_COUNT),
]


def _write(path: Path, header: bytes, cases) -> dict[int, tuple[bytes, str | None]]:
    """Write header + rows (a blank line in the middle: not a row); {first line: case}."""
    lines, data, number = {}, [header], 2
    for i, (row, reason) in enumerate(cases):
        if i == len(cases) // 2:
            data.append(b"")
            number += 1
        lines[number] = (row, reason)
        data.append(row)
        number += row.count(b"\n") + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(data) + b"\n")
    return lines


def _fates(cli_env, name: str, file: str) -> tuple[pd.DataFrame, dict[int, tuple[str, str]]]:
    """The event store, and {line: (reason, detail)} of the quarantined rows of `file`."""
    events = pd.read_parquet(Path(cli_env["KGREC_HOME"]) / "events.parquet")
    rejected = pd.read_csv(Path(cli_env["KGREC_QUARANTINE_DIR"]) / f"{name}.csv", dtype=str,
                           keep_default_na=False)
    rejected = rejected[rejected["file"].map(lambda f: Path(f).name) == file]
    return events, {int(r.line): (r.reason, r.detail) for r in rejected.itertuples()}


def _check_every_row(lines, events, rejected, user_of) -> None:
    loaded = [n for n, (_, reason) in lines.items() if reason is None]
    assert len(events) == len(loaded)  # nothing loaded twice, nothing extra
    assert len(loaded) + len(rejected) == len(lines)  # every data row has one fate
    for n, (row, reason) in lines.items():
        if reason is None:
            assert user_of(row) in set(events["user_id"]), (n, row[:60])
            assert n not in rejected, (n, row[:60])
        else:
            assert rejected.get(n, ("loaded",))[0] == reason, (n, row[:60])


def test_generic_csv_every_row_is_loaded_or_quarantined(empty_store, cli_env, tmp_path):
    lines = _write(tmp_path / "bad_generic" / "events.csv", GENERIC_HEADER, GENERIC)
    kgrec(cli_env, "etl", "load", "--format", "csv", str(tmp_path / "bad_generic"))
    events, rejected = _fates(cli_env, "bad_generic", "events.csv")
    _check_every_row(lines, events, rejected, lambda row: row.split(b",")[0].strip().decode())
    assert set(events.loc[events["user_id"].isin(["g03", "g04", "g05", "g06"]), "event_type"]) \
        == {"favorite"}
    by_user = events.set_index("user_id")
    assert by_user.loc["g07", "event_type"] == "view" and by_user.loc["g07", "ts"] == 1709287200
    assert by_user.loc["g38", "event_type"] == by_user.loc["g39", "event_type"] == "cart"
    assert by_user.loc["g40", "event_type"] == "purchase"
    assert len(by_user.loc["g11", "session"]) == 200_000
    assert by_user.loc["g10", "session"] == "a session\nover two lines"
    details = {reason: detail for reason, detail in rejected.values()}
    assert details[q.WRONG_FIELD_COUNT] in ("expected 7 fields, got 4", "expected 7 fields, got 8")
    millis = next(n for n, (row, _) in lines.items() if row.startswith(b"b20,"))
    assert "looks like milliseconds" in rejected[millis][1]
    users = ids(empty_store, "User")
    assert users == set(events["user_id"])  # ids as text: "007", 2^53 + 1 exactly
    assert {"007", str(BIG)} <= users
    favorites = frame(empty_store, Q.BEHAVIOUR_EDGES["FAVORITED"])
    assert set(favorites["src"]) == {"g03", "g04", "g05", "g06"}


def test_rees46_every_row_is_loaded_or_quarantined(empty_store, cli_env, tmp_path):
    lines = _write(tmp_path / "bad_rees46.csv", REES46_HEADER, REES46)
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(tmp_path / "bad_rees46.csv"))
    events, rejected = _fates(cli_env, "bad_rees46", "bad_rees46.csv")
    _check_every_row(lines, events, rejected, lambda row: row.split(b",")[7].decode())
    assert "2053013553375346967" in ids(empty_store, "Category")  # a category id above 2^53, exact


def test_parquet_ids_with_nulls_stay_exact_and_bad_times_are_quarantined(empty_store, cli_env,
                                                                         tmp_path):
    utc = dt.UTC
    ok = dt.datetime(2019, 10, 1, tzinfo=utc)
    rows = [  # user_id, item_id, event_type, timestamp, expected
        (BIG, 11, "view", ok, None),
        (BIG + 2, 11, "view", ok, None),  # a neighbour that a float would merge with BIG
        (42, 7, "fav", None, None),
        (43, BIG, "cart", ok, None),
        (None, 11, "view", ok, q.MISSING_USER_ID),
        (44, None, "view", ok, q.MISSING_ITEM_ID),
        (45, 11, "purchase", dt.datetime(2999, 1, 1, tzinfo=utc), OUT),
        (46, 11, "view", dt.datetime(1980, 1, 1, tzinfo=utc), OUT),
    ]
    folder = tmp_path / "bad_parquet"
    folder.mkdir()
    pq.write_table(pa.table({
        "user_id": pa.array([r[0] for r in rows], pa.int64()),
        "item_id": pa.array([r[1] for r in rows], pa.int64()),
        "event_type": [r[2] for r in rows],
        "timestamp": pa.array([r[3] for r in rows], pa.timestamp("us", "UTC")),
    }), folder / "events.parquet")
    pq.write_table(pa.table({"item_id": pa.array([BIG, 42, None], pa.int64()),
                             "title": ["big", "answer", "no id"]}), folder / "items.parquet")
    kgrec(cli_env, "etl", "load", "--format", "csv", str(folder))
    events, rejected = _fates(cli_env, "bad_parquet", "events.parquet")
    lines = {i + 1: (str(r[0]).encode(), r[4]) for i, r in enumerate(rows)}  # line = row number
    _check_every_row(lines, events, rejected, lambda row: row.decode())
    assert _fates(cli_env, "bad_parquet", "items.parquet")[1] == {3: (q.MISSING_ITEM_ID, "")}
    assert ids(empty_store, "User") == {str(BIG), str(BIG + 2), "42", "43"}
    assert ids(empty_store, "Item") == {"11", "7", str(BIG), "42"}
    titles = {r["id"]: r["title"] for r in empty_store.read(Q.ITEM_TITLES, ids=[str(BIG), "42"])}
    assert titles == {str(BIG): "big", "42": "answer"}
