"""`--format amazon-kg`: the layout of data/amazon_beauty (see its README and docs/formats.md).

    interactions.csv.gz            user_id,item_id,split[,seq_pos,seq_len]  -> review events
    interactions_timestamps.csv.gz user_id,item_id,unix_review_time          (optional) -> ts
    items.csv                      item_id,brand,categories (" | "-joined names)
    items_titles.csv.gz            item_id,title,price,category_path (" > ") (optional)
    item_relations.csv.gz          item_id,relation,related_item_id

Each file may be plain or gzipped (`.csv` or `.csv.gz`). Categories are one node per name (the
flattened `categories` cannot tell branches apart), id = casefolded name; the hierarchy comes
from consecutive names of `category_path`, and an item is in every category it names.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from etl import quarantine as q
from etl.canonical import CanonicalTables, conform
from etl.normalize import brand_ids, brand_table, category_key, clean_text, name_table
from etl.quarantine import Quarantine
from etl.readers import common
from etl.readers.common import Checker
from etl.readers.textfile import LINE, Header, find_source, read_all, read_chunks

log = logging.getLogger(__name__)

FMT = "amazon-kg"
INTERACTIONS = Header(("user_id", "item_id", "split"), FMT, optional=("seq_pos", "seq_len"))
TIMESTAMPS = Header(("user_id", "item_id", "unix_review_time"), FMT, optional=("review_date",))
ITEMS = Header(("item_id", "brand", "categories"), FMT, optional=("n_categories",))
TITLES = Header(
    ("item_id", "title", "price", "category_path"),
    FMT,
    optional=("sales_rank", "sales_rank_category", "category_depth"),
)
RELATIONS = Header(
    ("item_id", "relation", "related_item_id"), FMT, optional=("related_in_catalog",)
)
CATEGORY_SEP = "|"
PATH_SEP = ">"


def _read(path: Path, header: Header, quarantine: Quarantine) -> tuple[pd.DataFrame, Checker]:
    frame = read_all(path, header, quarantine)
    return frame, Checker(path, quarantine, frame)


def _items(directory: Path, quarantine: Quarantine) -> pd.DataFrame:
    """item_id, brand (raw), categories (raw) from items.csv, one row per item."""
    frame, check = _read(find_source(directory, "items", FMT), ITEMS, quarantine)
    frame = check.require(frame, "item_id", q.MISSING_ITEM_ID)
    frame = frame.assign(item_id=frame["item_id"].str.strip())
    return check.drop_duplicates(frame, ["item_id"], q.DUPLICATE_ID)


def _titles(directory: Path, quarantine: Quarantine) -> pd.DataFrame | None:
    """item_id, title (clean), price, category_path from items_titles (None when absent)."""
    path = find_source(directory, "items_titles", FMT, required=False)
    if path is None:
        log.info("%s: no items_titles file: items get no titles, prices or hierarchy", directory)
        return None
    frame, check = _read(path, TITLES, quarantine)
    frame = check.require(frame, "item_id", q.MISSING_ITEM_ID)
    frame = frame.assign(item_id=frame["item_id"].str.strip())
    frame = check.drop_duplicates(frame, ["item_id"], q.DUPLICATE_ID)
    frame = common.check_price(frame, check)
    return frame.assign(title=clean_text(frame["title"]))


def _events(directory: Path, quarantine: Quarantine, stats: dict[str, int]) -> pd.DataFrame:
    path = find_source(directory, "interactions", FMT)
    parts = []
    for chunk in read_chunks(path, INTERACTIONS, quarantine):
        check = Checker(path, quarantine, chunk)
        chunk = check.require(chunk, "user_id", q.MISSING_USER_ID)
        chunk = check.require(chunk, "item_id", q.MISSING_ITEM_ID)
        chunk = common.check_split(chunk, check)
        parts.append(
            pd.DataFrame(
                {
                    "user_id": chunk["user_id"].str.strip(),
                    "item_id": chunk["item_id"].str.strip(),
                    "split": chunk["split"],
                    LINE: chunk[LINE],
                }
            )
        )
    events = pd.concat(parts, ignore_index=True).assign(event_type="review")

    ts_path = find_source(directory, "interactions_timestamps", FMT, required=False)
    if ts_path is None:
        log.info("%s: no interactions_timestamps file: review events get no time", directory)
        events["ts"] = pd.Series(pd.NA, index=events.index, dtype="Int64")
    else:
        times, check = _read(ts_path, TIMESTAMPS, quarantine)
        times = check.require(times, "user_id", q.MISSING_USER_ID)
        times = check.require(times, "item_id", q.MISSING_ITEM_ID)
        times = common.check_time(times, check, "unix_review_time")
        times = times.assign(
            user_id=times["user_id"].str.strip(), item_id=times["item_id"].str.strip()
        )
        times = check.drop_duplicates(times, ["user_id", "item_id"], q.DUPLICATE_ID)
        times = times[["user_id", "item_id", "ts"]]
        events = events.merge(times, on=["user_id", "item_id"], how="left", validate="m:1")
        matched = times.merge(events[["user_id", "item_id"]].drop_duplicates(), how="inner")
        stats["timestamps_without_interaction"] = len(times) - len(matched)
        stats["events_without_timestamp"] = int(events["ts"].isna().sum())
    events = common.drop_duplicate_events(events, path, quarantine)
    return common.finish_events(events)


def _relations(directory: Path, quarantine: Quarantine) -> pd.DataFrame:
    path = find_source(directory, "item_relations", FMT)
    parts = []
    for chunk in read_chunks(path, RELATIONS, quarantine):
        check = Checker(path, quarantine, chunk)
        chunk = common.check_relations(chunk, check)
        parts.append(chunk[["item_id", "relation", "related_item_id"]])
    return pd.concat(parts, ignore_index=True)


def _split_names(values: pd.Series, sep: str) -> pd.Series:
    """One clean name per row (index kept) from `sep`-joined names."""
    names = clean_text(values.str.split(sep, regex=False).explode())
    return names.dropna()


def read_amazon(path: Path, quarantine: Quarantine) -> CanonicalTables:
    """Read an amazon-kg directory into canonical tables (see the module docstring)."""
    if not path.is_dir():
        expected = "interactions.csv.gz, items.csv, item_relations.csv.gz"
        raise common.not_a_directory(path, FMT, expected)
    stats: dict[str, int] = {}
    items = _items(path, quarantine)
    titles = _titles(path, quarantine)
    events = _events(path, quarantine, stats)

    # Category names: the flattened sets of items.csv and the ordered paths of items_titles.
    flat = pd.DataFrame({"item_id": items["item_id"]}).join(
        _split_names(items["categories"], CATEGORY_SEP).rename("name")
    )
    pairs = [flat.dropna()]
    edges = pd.DataFrame(columns=["category_id", "parent_id"], dtype="str")
    if titles is not None:
        steps = _split_names(titles["category_path"], PATH_SEP).rename("name").to_frame()
        steps["item_id"] = titles["item_id"].reindex(steps.index)
        steps["key"] = category_key(steps["name"])
        parent = steps.groupby(level=0)["key"].shift(1)  # previous name of the same path
        edges = pd.DataFrame({"category_id": steps["key"], "parent_id": parent}).dropna()
        edges = edges[edges["category_id"] != edges["parent_id"]].drop_duplicates()
        pairs.append(steps[["item_id", "name"]])
    named = pd.concat(pairs, ignore_index=True)
    categories = name_table(named["name"].value_counts(), category_key, "category_id")
    item_categories = pd.DataFrame(
        {"item_id": named["item_id"], "category_id": category_key(named["name"])}
    ).drop_duplicates()

    brands = brand_table(items["brand"].value_counts())
    table = pd.DataFrame({"item_id": items["item_id"], "brand_id": brand_ids(items["brand"])})
    if titles is not None:
        table = table.merge(titles[["item_id", "title", "price"]], on="item_id", how="outer")
    else:
        table = table.assign(title=pd.NA, price=float("nan"))
    table = common.complete_items(conform("items", table), events["item_id"], stats)
    relations = common.finish_relations(_relations(path, quarantine), table["item_id"], stats)

    tables = CanonicalTables(
        users=common.users_of(events),
        items=table,
        brands=conform("brands", brands),
        categories=conform("categories", categories),
        category_parents=conform("category_parents", edges),
        item_categories=conform("item_categories", item_categories),
        events=events,
        item_relations=relations,
        stats=stats,
    )
    return tables.validate()
