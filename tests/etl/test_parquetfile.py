"""Parquet columns become exact text in Arrow: ids with nulls, big integers, any timestamp."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import InputFileError
from etl.readers.parquetfile import read_parquet_chunks
from etl.readers.textfile import LINE, Header

HEADER = Header(("id",), "test", optional=("when", "price", "label"))
BIG = 9007199254740993  # 2^53 + 1: float64 cannot hold it


def _read(tmp_path, table: pa.Table, chunk_rows=None):
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    return list(read_parquet_chunks(path, HEADER, chunk_rows=chunk_rows))


def test_int64_ids_with_nulls_stay_exact_strings(tmp_path):
    ids = pa.array([BIG, None, 42, BIG + 2, -7], pa.int64())
    [frame] = _read(tmp_path, pa.table({"id": ids}))
    assert frame["id"].tolist() == [str(BIG), "", "42", str(BIG + 2), "-7"]
    assert frame[LINE].tolist() == [1, 2, 3, 4, 5]


def test_timestamps_of_any_unit_and_year_become_unix_seconds(tmp_path):
    utc = dt.UTC
    when = [dt.datetime(2019, 10, 1, 0, 0, 4, 900_000, tzinfo=utc),
            dt.datetime(2999, 1, 1, tzinfo=utc),  # past pandas' nanosecond range: no crash
            None,
            dt.datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=utc)]  # floored, not truncated
    for unit in ("us", "ms"):
        table = pa.table({"id": ["a", "b", "c", "d"], "when": pa.array(when, pa.timestamp(unit, "UTC"))})
        [frame] = _read(tmp_path, table)
        assert frame["when"].tolist() == ["1569888004", "32472144000", "", "-1"], unit
    naive = pa.table({"id": ["a"], "when": pa.array([dt.date(2024, 3, 1)], pa.date32())})
    assert _read(tmp_path, naive)[0]["when"].tolist() == ["1709251200"]


def test_other_scalar_types_as_text_and_nested_ones_refused(tmp_path):
    table = pa.table({
        "id": pa.array(["x", "y", None]).dictionary_encode(),
        "price": pa.array([12.5, 3.0, None]),
        "label": pa.array([True, False, None]),
    })
    frame = _read(tmp_path, table, chunk_rows=2)
    assert [f["id"].tolist() for f in frame] == [["x", "y"], [""]]
    assert frame[0]["price"].tolist() == ["12.5", "3"] and frame[0]["label"].tolist() == ["true", "false"]
    nested = pa.table({"id": pa.array([[1, 2]], pa.list_(pa.int64()))})
    refused = r"t\.parquet: column id has type list<\w+: int64>, which cannot be read as text"
    with pytest.raises(InputFileError, match=refused):
        _read(tmp_path, nested)
