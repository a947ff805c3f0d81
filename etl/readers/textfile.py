"""Reading CSV source files in chunks, quarantining what cannot be parsed.

CSV (optionally gzip-compressed) is read line by line from the binary file, so that:
- a file that is not text (binary, UTF-16, a Parquet file named .csv) is refused with one line
  saying so, before anything is read; an empty file is called empty;
- each line is decoded on its own: a line with invalid UTF-8 is quarantined, the rest load;
- every record keeps the physical line number where it starts (header = line 1), also when a
  quoted field spans lines;
- rows with the wrong number of fields are quarantined, with the expected and the actual count;
- a field longer than `FIELD_LIMIT` characters is quarantined (`field too long`), shorter ones
  load, also past the csv module's own limit;
- a quoted field that opens on a line and does not close into a row of the header's width within
  `MAX_RECORD_LINES` lines is an unterminated quote: that first line is quarantined and the
  lines after it are read again, each as a row of its own. Every line is therefore scanned at
  most twice: linear time, whatever the quoting (no re-joining of a growing record);
- only one chunk of rows is in memory at a time (no second copy of the raw text).
Lines without a quote are split on commas directly (the common, fast case); records with quotes
go through the `csv` module in strict mode.

Parquet files are read by `etl.readers.parquetfile`, into the same chunks. A chunk is a DataFrame
with the header's columns as strings plus `LINE` (int64).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import logging
from collections import deque
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
FIELD_LIMIT = 1_000_000  # characters in one field; longer ones are quarantined
SNIFF_BYTES = 1 << 16  # bytes looked at to tell text from binary

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


def check_text(path: Path, fmt: str, expected: str) -> None:
    """Refuse, in one line, a file that is not CSV text: binary, UTF-16 or Parquet.

    Looks at the first `SNIFF_BYTES` (after gunzip): text has no NUL bytes and its first line
    is UTF-8. Later undecodable lines are only quarantined (one bad line is not a bad file)."""
    head = b""
    with open_binary(path, fmt) as fh, contextlib.suppress(OSError, EOFError):
        # a broken stream is reported by the line reader, with the line where it breaks
        while len(head) < SNIFF_BYTES and (part := fh.read1(SNIFF_BYTES - len(head))):
            head += part
    wanted = f"--format {fmt} expects CSV text (UTF-8) with the header {expected}"
    if head.startswith(b"PAR1"):
        raise InputFileError(f"{path}: a Parquet file, not CSV text: name it "
                             f"{path.name.split('.')[0]}.parquet where the format takes Parquet")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputFileError(f"{path}: UTF-16 text: save it as UTF-8 ({wanted})")
    first = head.split(b"\n", 1)[0]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(first, final=b"\n" in head)
        text = b"\x00" not in head
    except UnicodeDecodeError:
        text = False
    if not text:
        raise InputFileError(f"{path}: not a text (CSV) file: its first bytes are binary, not "
                             f"UTF-8 text; {wanted}")


def _quote_open(text: str, inside: bool) -> bool:
    """Whether a quoted field is open at the end of `text`, given whether one was open at its
    start. As the csv module reads RFC 4180: a quote opens a field only at the field's start
    (elsewhere it is a literal character); inside a quoted field `""` is one quote and a single
    quote closes the field. Visits the quotes only."""
    i = text.find('"')
    while i != -1:
        if inside:
            if text.startswith('"', i + 1):
                i = text.find('"', i + 2)
                continue
            inside = False
        elif i == 0 or text[i - 1] == ",":
            inside = True
        i = text.find('"', i + 1)
    return inside


def _parse(text: str) -> tuple[list[str] | None, str, str]:
    """(fields, "", "") of one complete record's text, or (None, reason, detail)."""
    if '"' not in text:
        fields = text.rstrip("\r\n").split(",")
    else:
        limit = csv.field_size_limit()
        if len(text) > limit:  # the csv module would refuse a field that fits FIELD_LIMIT
            csv.field_size_limit(len(text))
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as err:
            return None, q.UNPARSABLE_ROW, str(err)
        finally:
            csv.field_size_limit(limit)
    if len(text) > FIELD_LIMIT:
        longest = max(len(f) for f in fields)
        if longest > FIELD_LIMIT:
            return None, q.FIELD_TOO_LONG, f"{longest:,} characters (limit {FIELD_LIMIT:,})"
    return fields, "", ""


def _lines(path: Path, fmt: str, quarantine: Quarantine) -> Iterator[tuple[int, str]]:
    """(physical line number, text) of every line that is valid UTF-8; the others are
    quarantined with their bytes shown as \\xNN."""
    number = 0
    with open_binary(path, fmt) as fh:
        try:
            for number, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    bad = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
                    quarantine.add(path, number, q.INVALID_ENCODING, bad,
                                   f"byte {err.start + 1} of the line")
                    continue
                yield number, text.removeprefix("\ufeff") if number == 1 else text
        except (OSError, EOFError) as err:  # e.g. a truncated or corrupt gzip stream
            raise InputFileError(f"{path}: unreadable after line {number} ({err})") from err


def records(path: Path, fmt: str, quarantine: Quarantine) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) of every non-blank record of a CSV file. The first record
    is the header; every later one has the header's number of fields (the others are
    quarantined). See the module docstring for quotes that never close."""
    lines = _lines(path, fmt, quarantine)
    again: deque[tuple[int, str]] = deque()  # lines to read again, each as a row of its own
    width: int | None = None
    while again or (nxt := next(lines, None)) is not None:
        alone = bool(again)
        number, text = again.popleft() if alone else nxt
        if '"' in text and _quote_open(text, False):
            if alone:
                quarantine.add(path, number, q.UNTERMINATED_QUOTE, text.rstrip("\r\n"),
                               "opens a quoted field while lines after an earlier "
                               "unterminated quote are read one by one")
                continue
            span = [(number, text)]
            inside = True
            while inside and len(span) < MAX_RECORD_LINES:
                if (more := next(lines, None)) is None:
                    break
                span.append(more)
                inside = _quote_open(more[1], True)
            fields, _, detail = (None, "", "") if inside else _parse("".join(t for _, t in span))
            if fields is not None and (width is None or len(fields) == width):
                yield number, fields
                continue
            if inside:
                why = (f"still open after {len(span):,} lines" if len(span) == MAX_RECORD_LINES
                       else "still open at the end of the file")
            elif fields is None:
                why = f"closes on line {span[-1][0]} into a row that does not parse ({detail})"
            else:
                why = (f"closes on line {span[-1][0]} into a row of {len(fields)} fields, "
                       f"expected {width}")
            quarantine.add(path, number, q.UNTERMINATED_QUOTE, text.rstrip("\r\n"),
                           f"{why}; the lines after it are read as rows of their own")
            again.extend(span[1:])
            continue
        fields, reason, detail = _parse(text)
        if fields is None:
            quarantine.add(path, number, reason, text.rstrip("\r\n"), detail)
        elif fields == [""]:  # a blank line carries no data
            continue
        elif width is None:
            width = len(fields)
            yield number, fields
        elif len(fields) != width:
            quarantine.add(path, number, q.WRONG_FIELD_COUNT, text.rstrip("\r\n"),
                           f"expected {width} fields, got {len(fields)}")
        else:
            yield number, fields


def _frame(rows: list[list[str]], lines: list[int], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns, dtype="str")
    frame[LINE] = np.asarray(lines, dtype=np.int64)
    return frame


def read_csv_chunks(
    path: Path, header: Header, quarantine: Quarantine, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Chunks of a CSV file whose header satisfies `header` (else `InputFileError`)."""
    chunk_rows = chunk_rows or CHUNK_ROWS  # read at call time, so tests can make it small
    expected = ",".join(header.required)
    check_text(path, header.fmt, expected)
    rows_iter = records(path, header.fmt, quarantine)
    first = next(rows_iter, None)
    if first is None:
        raise InputFileError(
            f"{path}: empty file, expected a header {expected} for --format {header.fmt}"
        )
    columns = [c.strip() for c in first[1]]
    header.check(path, columns)
    rows: list[list[str]] = []
    lines: list[int] = []
    chunks = 0
    for line, fields in rows_iter:
        rows.append(fields)
        lines.append(line)
        if len(rows) >= chunk_rows:
            yield _frame(rows, lines, columns)
            rows, lines, chunks = [], [], chunks + 1
    if rows or not chunks:
        yield _frame(rows, lines, columns)


def read_chunks(path: Path, header: Header, quarantine: Quarantine) -> Iterator[pd.DataFrame]:
    if path.suffix == ".parquet":
        from etl.readers.parquetfile import read_parquet_chunks

        return read_parquet_chunks(path, header)
    return read_csv_chunks(path, header, quarantine)


def read_all(path: Path, header: Header, quarantine: Quarantine) -> pd.DataFrame:
    """The whole file as one frame (for files that are small next to the event log)."""
    return pd.concat(list(read_chunks(path, header, quarantine)), ignore_index=True)
