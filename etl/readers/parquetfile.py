"""Reading Parquet source files into the same chunks as CSV (`etl.readers.textfile`).

Every column becomes text in Arrow, before pandas sees it, so values stay exactly what the file
holds: an int64 id column with nulls stays integers (pandas would make it float64 and turn
9007199254740993 into 9007199254740992.0, 42 into "42.0"), decimals keep their digits.
Timestamp and date columns become unix seconds (naive ones taken as UTC; any unit, any year:
range checks belong to the readers). Null -> "". `LINE` is the 1-based row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.errors import InputFileError
from etl.readers.textfile import CHUNK_ROWS, LINE, Header

UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def as_text(array: pa.Array, where: str) -> pa.Array:
    """A column as an Arrow string array (nulls kept); `where` names it in errors."""
    t = array.type
    if pa.types.is_dictionary(t):
        return as_text(array.dictionary_decode(), where)
    if pa.types.is_date(t):
        return as_text(pc.cast(array, pa.timestamp("s")), where)
    if pa.types.is_timestamp(t):
        ticks = pc.cast(array, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        seconds = np.floor_divide(ticks, UNIT_PER_SECOND[t.unit])  # floor, also before 1970
        nulls = array.is_null().to_numpy(zero_copy_only=False)
        return pc.cast(pa.array(seconds, type=pa.int64(), mask=nulls), pa.string())
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise InputFileError(f"{where} has type {t}, which cannot be read as text: store it as "
                             f"a string or number column ({err})") from None


def read_parquet_chunks(
    path: Path, header: Header, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Chunks of a Parquet file, every column as text; `LINE` = 1-based row number."""
    chunk_rows = chunk_rows or CHUNK_ROWS
    if not path.is_file():
        raise InputFileError(f"{path}: file not found (needed by --format {header.fmt})")
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for a non-Parquet file
        raise InputFileError(f"{path}: not a readable Parquet file ({err})") from err
    columns = list(pf.schema_arrow.names)
    header.check(path, columns)
    offset = 0
    for batch in pf.iter_batches(batch_size=chunk_rows):
        frame = pd.DataFrame({
            c: pd.Series(as_text(batch.column(i), f"{path}: column {c}").fill_null("")
                         .to_numpy(zero_copy_only=False), dtype="str")
            for i, c in enumerate(columns)})
        frame[LINE] = np.arange(offset + 1, offset + len(frame) + 1, dtype=np.int64)
        offset += len(frame)
        yield frame
    if offset == 0:
        empty = {c: pd.Series(dtype="str") for c in columns}
        yield pd.DataFrame(empty | {LINE: pd.Series(dtype="int64")})
