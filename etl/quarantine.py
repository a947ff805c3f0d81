"""Rejected input rows: nothing malformed crashes a load, and nothing vanishes.

Every reader hands the rows it cannot use to a `Quarantine` with the file, the 1-based physical
line number (the header is line 1; for Parquet, the 1-based row number), a short reason from
the fixed vocabulary below and the raw text (or fields) of the row. `write()` puts them in one CSV
per source, overwritten on every load so that loads stay idempotent.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# The reasons, one constant each so tests and reports can refer to them.
INVALID_ENCODING = "invalid encoding"
WRONG_FIELD_COUNT = "wrong number of fields"
UNPARSABLE_ROW = "unparsable row"
UNTERMINATED_QUOTE = "unterminated quoted field"
MISSING_USER_ID = "missing user_id"
MISSING_ITEM_ID = "missing item_id"
MISSING_RELATED_ITEM_ID = "missing related_item_id"
UNPARSABLE_TIMESTAMP = "unparsable timestamp"
UNPARSABLE_PRICE = "unparsable price"
NEGATIVE_PRICE = "negative price"
UNPARSABLE_RATING = "unparsable rating"
UNKNOWN_EVENT_TYPE = "unknown event type"
UNKNOWN_RELATION = "unknown relation"
UNKNOWN_SPLIT = "unknown split"
DUPLICATE_EVENT = "duplicate event"
DUPLICATE_ID = "duplicate id"

COLUMNS = ("file", "line", "reason", "raw")


def join_fields(fields: Iterable[object]) -> str:
    """One CSV line (without line break) from a row's fields, quoted as needed."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(["" if f is None else f for f in fields])
    return buf.getvalue()


@dataclass
class Quarantine:
    """Collects rejected rows; see the module docstring."""

    rows: list[tuple[str, int, str, str]] = field(default_factory=list)

    def add(self, file: str | Path, line: int, reason: str, raw: str | Sequence[object]) -> None:
        text = raw if isinstance(raw, str) else join_fields(raw)
        self.rows.append((str(file), int(line), reason, text))

    def add_many(
        self, file: str | Path, lines: Iterable[int], reason: str, raws: Iterable[str]
    ) -> None:
        name = str(file)
        self.rows.extend((name, int(n), reason, r) for n, r in zip(lines, raws, strict=True))

    def counts(self) -> dict[str, int]:
        """Number of rejected rows by reason."""
        return dict(Counter(reason for _, _, reason, _ in self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def write(self, directory: str | Path, source_name: str) -> Path:
        """Write `directory/<source_name>.csv` (file,line,reason,raw), replacing any earlier one.

        The file is written even when nothing was rejected, so a clean reload clears old rejects.
        """
        out = Path(directory) / f"{source_name}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".csv.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows(sorted(self.rows, key=lambda r: (r[0], r[1])))
        tmp.replace(out)
        if self.rows:
            log.warning("%d rows quarantined in %s: %s", len(self.rows), out, self.counts())
        return out
