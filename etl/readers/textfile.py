"""Reading tabular source files in chunks, quarantining what cannot be parsed.

CSV (optionally gzip-compressed) is read line by line from the binary file, so that:
- each line is decoded on its own: a line with invalid UTF-8 is quarantined, the rest load;
- every record keeps the physical line number where it starts (header = line 1), also when a
  quoted field spans lines;
- rows with the wrong number of fields are quarantined;
- only one chunk of rows is in memory at a time (no second copy of the raw text).
Lines without a quote are split on commas directly (the common, fast case); lines with quotes go
through the `csv` module in strict mode.

Parquet is read in record batches; its "line" is the 1-based row number. Every value becomes a
string (NA -> ""), so both kinds of input are checked by the same code.

A chunk is a DataFrame with the header's columns as strings plus `LINE` (int64).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from core.errors import InputFileError
from etl import quarantine as q
from etl.quarantine import Quarantine

log = logging.getLogger(__name__)

LINE = "_line"
CHUNK_ROWS = 200_000
MAX_RECORD_LINES = 1_000  # a quoted field spanning more lines is taken as unterminated


@dataclass(frozen=True)
class Header:
    """The columns a file must have; `fmt` is the --format named in error messages."""

    required: tuple[str, ...]
    fmt: str
    optional: tuple[str, ...] = ()
    exact: bool = False  # the header must be `required`, in this order, and nothing else

    def check(self, path: Path, got: list[str]) -> None:
        if self.exact:
            ok = got == list(self.required)
        else:
            ok = set(self.required) <= set(got) and len(set(got)) == len(got)
        if not ok:
            expected = ",".join(self.required)
            if not self.exact:
                expected = f"{expected} (optional: {','.join(self.optional) or 'none'})"
            raise InputFileError(
                f"{path}: expected columns {expected} for --format {self.fmt}, got {','.join(got)}"
            )


def find_source(
    directory: Path, stem: str, fmt: str, *, required: bool = True, parquet: bool = False
) -> Path | None:
    """`directory/stem.csv`, `.csv.gz` (or `.parquet`); None when optional and absent."""
    suffixes = (".csv", ".csv.gz") + ((".parquet",) if parquet else ())
    found = [directory / f"{stem}{s}" for s in suffixes if (directory / f"{stem}{s}").is_file()]
    if len(found) > 1:
        names = " and ".join(p.name for p in found)
        raise InputFileError(f"{directory}: both {names} exist for --format {fmt}; keep one")
    if found:
        return found[0]
    if required:
        others = ", ".join(stem + s for s in suffixes[1:])
        raise InputFileError(
            f"{directory}: missing {stem}{suffixes[0]} (or {others}) required by --format {fmt}"
        )
    return None


def open_binary(path: Path, fmt: str) -> BinaryIO:
    if not path.is_file():
        raise InputFileError(f"{path}: file not found (needed by --format {fmt})")
    with path.open("rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    if not compressed:
        return path.open("rb")
    # GzipFile.readline is slow Python code; a buffer in front of it reads lines in C.
    return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 20)  # type: ignore[arg-type]


def _split(text: str) -> list[str] | None:
    """Fields of one record's text; None while a quoted field is still open."""
    if '"' not in text:
        return text.rstrip("\r\n").split(",")
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as err:
        if str(err) == "unexpected end of data":
            return None
        raise


def _lines(path: Path, fmt: str, quarantine: Quarantine) -> Iterator[tuple[int, str]]:
    """(physical line number, text) of every line that is valid UTF-8; the others are
    quarantined with their bytes shown as \\xNN."""
    number = 0
    with open_binary(path, fmt) as fh:
        try:
            for number, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    bad = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
                    quarantine.add(path, number, q.INVALID_ENCODING, bad)
                    continue
                yield number, text.removeprefix("\ufeff") if number == 1 else text
        except (OSError, EOFError) as err:  # e.g. a truncated or corrupt gzip stream
            raise InputFileError(f"{path}: unreadable after line {number} ({err})") from err


def records(path: Path, fmt: str, quarantine: Quarantine) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) of every non-blank record of a CSV file."""
    pending: list[str] = []  # lines of a record whose quoted field is still open
    start = 0
    for number, text in _lines(path, fmt, quarantine):
        if pending:
            pending.append(text)
            text = "".join(pending)
        else:
            start = number
        try:
            fields = _split(text)
        except csv.Error:
            quarantine.add(path, start, q.UNPARSABLE_ROW, text.rstrip("\r\n"))
            pending = []
            continue
        if fields is None:
            if len(pending) < MAX_RECORD_LINES:
                pending = pending or [text]
                continue
            quarantine.add(path, start, q.UNTERMINATED_QUOTE, text.rstrip("\r\n"))
            pending = []
            continue
        pending = []
        if fields != [""]:  # a blank line carries no data
            yield start, fields
    if pending:
        quarantine.add(path, start, q.UNTERMINATED_QUOTE, "".join(pending).rstrip("\r\n"))


def _frame(rows: list[list[str]], lines: list[int], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns, dtype="str")
    frame[LINE] = np.asarray(lines, dtype=np.int64)
    return frame


def read_csv_chunks(
    path: Path, header: Header, quarantine: Quarantine, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Chunks of a CSV file whose header satisfies `header` (else `InputFileError`)."""
    chunk_rows = chunk_rows or CHUNK_ROWS  # read at call time, so tests can make it small
    rows_iter = records(path, header.fmt, quarantine)
    first = next(rows_iter, None)
    if first is None:
        expected = ",".join(header.required)
        raise InputFileError(
            f"{path}: empty file, expected a header {expected} for --format {header.fmt}"
        )
    columns = [c.strip() for c in first[1]]
    header.check(path, columns)
    width = len(columns)
    rows: list[list[str]] = []
    lines: list[int] = []
    chunks = 0
    for line, fields in rows_iter:
        if len(fields) != width:
            quarantine.add(path, line, q.WRONG_FIELD_COUNT, fields)
            continue
        rows.append(fields)
        lines.append(line)
        if len(rows) >= chunk_rows:
            yield _frame(rows, lines, columns)
            rows, lines, chunks = [], [], chunks + 1
    if rows or not chunks:
        yield _frame(rows, lines, columns)


def _as_text(column: pd.Series) -> pd.Series:
    """A Parquet column as strings; timestamps become unix seconds (naive ones taken as UTC)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        dt = column if column.dt.tz is not None else column.dt.tz_localize("UTC")
        column = ((dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("Int64")
    return column.astype("str").fillna("")


def read_parquet_chunks(
    path: Path, header: Header, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Chunks of a Parquet file, every column as text; `LINE` = 1-based row number."""
    import pyarrow.parquet as pq

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
        raw = batch.to_pandas()
        frame = pd.DataFrame({c: _as_text(raw[c]) for c in columns}).astype("str")
        frame[LINE] = np.arange(offset + 1, offset + len(frame) + 1, dtype=np.int64)
        offset += len(frame)
        yield frame
    if offset == 0:
        empty = {c: pd.Series(dtype="str") for c in columns}
        yield pd.DataFrame(empty | {LINE: pd.Series(dtype="int64")})


def read_chunks(path: Path, header: Header, quarantine: Quarantine) -> Iterator[pd.DataFrame]:
    if path.suffix == ".parquet":
        return read_parquet_chunks(path, header)
    return read_csv_chunks(path, header, quarantine)


def read_all(path: Path, header: Header, quarantine: Quarantine) -> pd.DataFrame:
    """The whole file as one frame (for files that are small next to the event log)."""
    return pd.concat(list(read_chunks(path, header, quarantine)), ignore_index=True)
