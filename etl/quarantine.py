"""Rejected input rows: nothing malformed crashes a load, and nothing vanishes.

Every reader hands the rows it cannot use to a `Quarantine` with the file, the 1-based physical
line number (the header is line 1; for Parquet, the 1-based row number), a short reason from
the fixed vocabulary below, an optional detail ("expected 9 fields, got 10") and the raw text (or
fields) of the row. `write()` puts them in one CSV per source, overwritten on every load so that
loads stay idempotent, readable by the owner only (the rows hold raw user ids).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from core.io import PRIVATE_FILE, atomic_write, private_dir

log = logging.getLogger(__name__)

# The reasons, one constant each so tests and reports can refer to them.
INVALID_ENCODING = "invalid encoding"
WRONG_FIELD_COUNT = "wrong number of fields"
UNPARSABLE_ROW = "unparsable row"
UNTERMINATED_QUOTE = "unterminated quoted field"
FIELD_TOO_LONG = "field too long"
MISSING_USER_ID = "missing user_id"
MISSING_ITEM_ID = "missing item_id"
MISSING_RELATED_ITEM_ID = "missing related_item_id"
UNPARSABLE_TIMESTAMP = "unparsable timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp out of range"
UNPARSABLE_PRICE = "unparsable price"
NEGATIVE_PRICE = "negative price"
UNPARSABLE_RATING = "unparsable rating"
UNKNOWN_EVENT_TYPE = "unknown event type"
UNKNOWN_RELATION = "unknown relation"
UNKNOWN_SPLIT = "unknown split"
DUPLICATE_EVENT = "duplicate event"
DUPLICATE_ID = "duplicate id"

COLUMNS = ("file", "line", "reason", "detail", "raw")


def join_fields(fields: Iterable[object]) -> str:
    """One CSV line (without line break) from a row's fields, quoted as needed."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(["" if f is None else f for f in fields])
    return buf.getvalue()


class Rejected(NamedTuple):
    file: str
    line: int
    reason: str  # one of the constants above
    raw: str
    detail: str = ""  # what exactly was wrong, when the reason alone does not say it


@dataclass
class Quarantine:
    """Collects rejected rows; see the module docstring."""

    rows: list[Rejected] = field(default_factory=list)

    def add(self, file: str | Path, line: int, reason: str, raw: str | Sequence[object],
            detail: str = "") -> None:
        text = raw if isinstance(raw, str) else join_fields(raw)
        self.rows.append(Rejected(str(file), int(line), reason, text, detail))

    def add_many(self, file: str | Path, lines: Iterable[int], reason: str, raws: Iterable[str],
                 details: Iterable[str] | None = None) -> None:
        name = str(file)
        lines = list(lines)
        details = [""] * len(lines) if details is None else details
        self.rows.extend(Rejected(name, int(n), reason, r, d)
                         for n, r, d in zip(lines, raws, details, strict=True))

    def counts(self) -> dict[str, int]:
        """Number of rejected rows by reason."""
        return dict(Counter(r.reason for r in self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, directory: str | Path, source_name: str) -> Path:
        """Write `directory/<source_name>.csv` (file,line,reason,detail,raw), replacing any
        earlier one atomically (a unique temporary file beside it), mode 0600 in a directory
        created 0700.

        The file is written even when nothing was rejected, so a clean reload clears old rejects.
        """
        out = private_dir(directory) / f"{source_name}.csv"

        def write(tmp: Path) -> None:
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(COLUMNS)
                writer.writerows((r.file, r.line, r.reason, r.detail, r.raw)
                                 for r in sorted(self.rows, key=lambda r: (r.file, r.line)))

        atomic_write(out, write, mode=PRIVATE_FILE)
        if self.rows:
            log.warning("%d rows quarantined in %s: %s", len(self.rows), out, self.counts())
        return out
