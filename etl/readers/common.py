"""Row checks and table assembly shared by the readers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputFileError
from etl import quarantine as q
from etl.canonical import EVENT_TYPES, RELATIONS, SPLITS, conform, isin
from etl.quarantine import Quarantine, join_fields
from etl.readers.textfile import LINE, open_binary

log = logging.getLogger(__name__)

EVENT_KEY = ["user_id", "item_id", "event_type", "ts", "session"]
EARLIEST = 631_152_000  # 1990-01-01 00:00:00 UTC: no shop log we read starts earlier
LATEST_AFTER_NOW_S = 86_400  # events may be stamped up to a day after the load (time zones)
ISO_OR_UNIX = "unix seconds or ISO-8601 (2024-03-01T10:00:00Z)"


def not_a_directory(path: Path, fmt: str, expected: str) -> InputFileError:
    what = "not found" if not path.exists() else "not a directory"
    return InputFileError(f"{path}: {what}; --format {fmt} expects a directory with {expected}")


def blank(values: pd.Series) -> pd.Series:
    """True where a text value is NA or only whitespace."""
    return values.isna() | (values.str.strip() == "")


def stripped(values: pd.Series) -> pd.Series:
    """Stripped text, "" -> NA."""
    s = values.str.strip()
    return s.where(s != "").astype("str")


def parse_float(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 values with NaN for empty, mask of non-empty values that are not finite numbers)."""
    text = stripped(values)
    num = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = text.notna() & ~np.isfinite(num)
    return num.where(~bad), bad


def unix_seconds(dt: pd.Series) -> pd.Series:
    """float64 unix seconds (floored) of a tz-aware datetime series, NaN for NaT. Any unit and
    any year: nothing goes through nanoseconds, whose range ends in 2262."""
    naive = dt.dt.tz_convert("UTC").dt.tz_localize(None)
    micros = naive.to_numpy(dtype="datetime64[us]")
    seconds = np.floor_divide(micros.view("int64"), 1_000_000).astype("float64")
    seconds[np.isnat(micros)] = np.nan
    return pd.Series(seconds, index=dt.index)


def parse_timestamp(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 unix seconds, NaN where empty or bad; mask of unparsable values) from unix
    seconds (integer or decimal, floored) or ISO-8601 text.

    Empty -> NaN (allowed). ISO times without an offset are taken as UTC; a trailing " UTC"
    (REES46 style) is accepted. Huge or far-future values parse (the range is checked apart).
    """
    text = stripped(values)
    num = pd.to_numeric(text, errors="coerce").astype("float64")
    seconds = pd.Series(np.floor(num), index=text.index).where(np.isfinite(num))
    iso = text.notna() & num.isna()
    if iso.any():
        dt = pd.to_datetime(
            text[iso].str.removesuffix(" UTC"), format="ISO8601", utc=True, errors="coerce"
        )
        seconds[iso] = unix_seconds(dt)
    return seconds, text.notna() & seconds.isna()


def plausible_range(now: float | None = None) -> tuple[int, int]:
    """(earliest, latest) unix seconds an event may have: `EARLIEST` to one day after `now`
    (default: the time of the call, i.e. the load). Outside: quarantined, never loaded."""
    latest = (time.time() if now is None else now) + LATEST_AFTER_NOW_S
    return EARLIEST, int(latest)


def _day(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def out_of_range(seconds: pd.Series, lo: int, hi: int) -> tuple[pd.Series, pd.Series]:
    """(mask of known times outside [lo, hi], a detail for each of them)."""
    before, after = seconds < lo, seconds > hi
    detail = pd.Series(f"before {_day(lo)}, the earliest accepted", index=seconds.index)
    detail[after] = f"after {_day(hi)}, one day after the load"
    millis = after & (seconds / 1000).between(lo, hi)
    detail[millis] += "; it looks like milliseconds, and the format wants seconds"
    mask = before | after
    return mask, detail[mask]


@dataclass
class Checker:
    """Quarantines rows of frames derived from `source`, a frame as read from `path`.

    Checks may rewrite columns (strip, parse); the raw text always comes from `source`, matched
    by index, so derived frames must keep the index of the rows they came from.
    """

    path: Path
    quarantine: Quarantine
    source: pd.DataFrame  # the file's columns as text, plus LINE

    def reject(self, frame: pd.DataFrame, mask: pd.Series, reason: str,
               detail: str | pd.Series = "") -> pd.DataFrame:
        """Quarantine the rows of `frame` where `mask` holds (with `detail`: one text, or one
        per row by index); return the others."""
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return frame
        index = frame.index[mask.to_numpy()]
        rows = self.source.loc[index]
        columns = [c for c in rows.columns if c != LINE]
        raws = [join_fields(row) for row in rows[columns].itertuples(index=False)]
        details = (detail.reindex(index).fillna("").tolist() if isinstance(detail, pd.Series)
                   else [detail] * len(raws))
        self.quarantine.add_many(self.path, rows[LINE], reason, raws, details)
        return frame.loc[~mask]

    def require(self, frame: pd.DataFrame, column: str, reason: str) -> pd.DataFrame:
        return self.reject(frame, blank(frame[column]), reason)

    def drop_duplicates(self, frame: pd.DataFrame, key: list[str], reason: str) -> pd.DataFrame:
        """Quarantine the 2nd and later rows with the same key (in file order)."""
        return self.reject(frame, frame.duplicated(key, keep="first"), reason)


TimeParser = Callable[[pd.Series], tuple[pd.Series, pd.Series]]


def check_time(chunk: pd.DataFrame, check: Checker, time_col: str,
               parse: TimeParser = parse_timestamp, expected: str = ISO_OR_UNIX) -> pd.DataFrame:
    """Adds `ts` (Int64 unix seconds, NA where empty) parsed from `time_col`; quarantines
    unparsable times (saying `expected`) and times outside `plausible_range()`."""
    seconds, bad = parse(chunk[time_col])
    chunk = check.reject(chunk.assign(ts=seconds), bad, q.UNPARSABLE_TIMESTAMP,
                         f"expected {expected}")
    outside, detail = out_of_range(chunk["ts"], *plausible_range())
    chunk = check.reject(chunk, outside, q.TIMESTAMP_OUT_OF_RANGE, detail)
    return chunk.assign(ts=chunk["ts"].astype("Int64"))


def check_events(
    chunk: pd.DataFrame, check: Checker, time_col: str, parse: TimeParser = parse_timestamp,
    types: frozenset[str] = EVENT_TYPES, aliases: Mapping[str, str] | None = None,
    expected_time: str = ISO_OR_UNIX,
) -> pd.DataFrame:
    """Ids present, event type one of `types` (after mapping `aliases`), time parsable and
    plausible; adds the parsed `ts` column."""
    chunk = check.require(chunk, "user_id", q.MISSING_USER_ID)
    chunk = check.require(chunk, "item_id", q.MISSING_ITEM_ID)
    event_type = chunk["event_type"].str.strip().str.lower()
    if aliases:
        event_type = event_type.replace(dict(aliases))
    chunk = chunk.assign(
        user_id=chunk["user_id"].str.strip(),
        item_id=chunk["item_id"].str.strip(),
        event_type=event_type,
    )
    chunk = check.reject(chunk, ~chunk["event_type"].isin(types), q.UNKNOWN_EVENT_TYPE,
                         f"expected one of {', '.join(sorted(types))}")
    return check_time(chunk, check, time_col, parse, expected_time)


def check_split(chunk: pd.DataFrame, check: Checker, column: str = "split") -> pd.DataFrame:
    split = stripped(chunk[column]).str.lower()
    chunk = chunk.assign(split=split)
    return check.reject(chunk, split.notna() & ~split.isin(SPLITS), q.UNKNOWN_SPLIT)


def check_price(chunk: pd.DataFrame, check: Checker, column: str = "price") -> pd.DataFrame:
    price, bad = parse_float(chunk[column])
    chunk = check.reject(chunk.assign(price=price), bad, q.UNPARSABLE_PRICE)
    return check.reject(chunk, chunk["price"] < 0, q.NEGATIVE_PRICE)


def _source_lines(path: Path, wanted: set[int]) -> dict[int, str]:
    """The text of some physical lines of a CSV file (a second pass, for quarantine only)."""
    found: dict[int, str] = {}
    with open_binary(path, "any") as fh:
        for number, raw in enumerate(fh, start=1):
            if number in wanted:
                found[number] = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
                if len(found) == len(wanted):
                    break
    return found


def drop_duplicate_events(events: pd.DataFrame, path: Path, quarantine: Quarantine) -> pd.DataFrame:
    """Quarantine exact repeats (same user, item, type, ts, session) after the first, in file order.

    Done once over the whole file, so repeats in different chunks are found too. The raw text of
    the repeats is read back from the file (CSV) or rebuilt from the event's fields (Parquet).
    """
    events = events.sort_values(LINE, kind="stable")
    key = [c for c in EVENT_KEY if c in events]  # a source without sessions has none
    dup = events.duplicated(key, keep="first")
    if dup.any():
        lines = events.loc[dup, LINE]
        if path.suffix == ".parquet":
            raws = [join_fields(r) for r in events.loc[dup, key].itertuples(index=False)]
        else:
            text = _source_lines(path, set(lines.tolist()))
            raws = [text.get(n, "") for n in lines]
        quarantine.add_many(path, lines, q.DUPLICATE_EVENT, raws)
    return events.loc[~dup]


def finish_events(events: pd.DataFrame) -> pd.DataFrame:
    """Canonical events from checked rows (missing optional columns become NA)."""
    for col, dtype in (("rating", "Float64"), ("split", "str"), ("session", "str")):
        if col not in events:
            events = events.assign(**{col: pd.Series(pd.NA, index=events.index, dtype=dtype)})
    events = events.assign(session=stripped(events["session"].astype("str")))
    return conform("events", events)


def check_relations(chunk: pd.DataFrame, check: Checker) -> pd.DataFrame:
    chunk = check.require(chunk, "item_id", q.MISSING_ITEM_ID)
    chunk = check.require(chunk, "related_item_id", q.MISSING_RELATED_ITEM_ID)
    chunk = chunk.assign(
        item_id=chunk["item_id"].str.strip(),
        related_item_id=chunk["related_item_id"].str.strip(),
        relation=chunk["relation"].str.strip().str.lower(),
    )
    return check.reject(chunk, ~chunk["relation"].isin(RELATIONS), q.UNKNOWN_RELATION)


def finish_relations(
    relations: pd.DataFrame, catalogue: pd.Series, stats: dict[str, int]
) -> pd.DataFrame:
    """Keep relations whose both ends are catalogue items; count what is dropped in `stats`."""
    inside = isin(relations["item_id"], catalogue) & isin(relations["related_item_id"], catalogue)
    relations = relations.loc[inside]
    dup = relations.duplicated(["item_id", "relation", "related_item_id"])
    stats["item_relations_out_of_catalogue"] = int((~inside).sum())
    stats["item_relations_duplicates"] = int(dup.sum())
    if stats["item_relations_out_of_catalogue"]:
        log.info("dropped %d item relations to items outside the catalogue",
                 stats["item_relations_out_of_catalogue"])
    return conform("item_relations", relations.loc[~dup])


def complete_items(items: pd.DataFrame, item_ids: pd.Series, stats: dict[str, int]) -> pd.DataFrame:
    """Add a minimal row (id only) for every referenced item the item files do not describe."""
    extra = pd.Series(pd.unique(item_ids.dropna()), dtype="str")
    extra = extra[~isin(extra, items["item_id"])]
    stats["items_added_from_events"] = len(extra)
    if len(extra):
        log.info("%d items appear only in events: added with no attributes", len(extra))
        items = pd.concat([items, conform("items", pd.DataFrame({"item_id": extra}).reindex(
            columns=["item_id", "title", "price", "brand_id"]))], ignore_index=True)
    return conform("items", items)


def users_of(events: pd.DataFrame, listed: pd.Series | None = None) -> pd.DataFrame:
    ids = events["user_id"] if listed is None else pd.concat([listed, events["user_id"]])
    return conform("users", pd.DataFrame({"user_id": pd.unique(ids.dropna())}))

