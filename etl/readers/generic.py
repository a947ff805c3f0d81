"""`--format csv`: the documented generic format (docs/formats.md), CSV or Parquet per file.

A directory with `events` (required) and optional `items`, `users`, `item_relations`, each as
`<name>.csv`, `<name>.csv.gz` or `<name>.parquet`. Extra columns are ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from etl import quarantine as q
from etl.canonical import CanonicalTables, conform, empty
from etl.normalize import brand_ids, brand_table, clean_text, path_hierarchy
from etl.quarantine import Quarantine
from etl.readers import common
from etl.readers.common import Checker
from etl.readers.textfile import LINE, Header, find_source, read_all, read_chunks

log = logging.getLogger(__name__)

FMT = "csv"
EVENTS = Header(
    ("user_id", "item_id", "event_type", "timestamp"), FMT, optional=("rating", "split", "session")
)
ITEMS = Header(("item_id",), FMT, optional=("title", "price", "brand", "category"))
USERS = Header(("user_id",), FMT)
RELATIONS = Header(("item_id", "relation", "related_item_id"), FMT)
# Other names for the event types, as other shop logs spell them (Taobao: pv/buy/cart/fav;
# Tmall benchmarks: collect; RetailRocket: addtocart/transaction). Matched after lower-casing.
EVENT_ALIASES = {
    "pv": "view",
    "add_to_cart": "cart", "addtocart": "cart",
    "fav": "favorite", "favourite": "favorite", "favorited": "favorite", "collect": "favorite",
    "wishlist": "favorite", "add_to_wishlist": "favorite",
    "buy": "purchase", "order": "purchase", "transaction": "purchase",
}
PATH_SEP = ">"
PATH_JOINER = " > "


def _source(directory: Path, stem: str, required: bool = False) -> Path | None:
    return find_source(directory, stem, FMT, required=required, parquet=True)


def _read(path: Path, header: Header, quarantine: Quarantine) -> tuple[pd.DataFrame, Checker]:
    frame = read_all(path, header, quarantine)
    return frame, Checker(path, quarantine, frame)


def _events(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    parts = []
    for chunk in read_chunks(path, EVENTS, quarantine):
        check = Checker(path, quarantine, chunk)
        chunk = common.check_events(chunk, check, "timestamp", aliases=EVENT_ALIASES)
        if "rating" in chunk:
            rating, bad = common.parse_float(chunk["rating"])
            chunk = check.reject(chunk.assign(rating=rating), bad, q.UNPARSABLE_RATING)
        if "split" in chunk:
            chunk = common.check_split(chunk, check)
        optional = [c for c in ("rating", "split", "session") if c in chunk]
        parts.append(chunk[["user_id", "item_id", "event_type", "ts", LINE, *optional]])
    events = pd.concat(parts, ignore_index=True)
    return common.finish_events(common.drop_duplicate_events(events, path, quarantine))


def _items(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    frame, check = _read(path, ITEMS, quarantine)
    frame = check.require(frame, "item_id", q.MISSING_ITEM_ID)
    frame = frame.assign(item_id=frame["item_id"].str.strip())
    frame = check.drop_duplicates(frame, ["item_id"], q.DUPLICATE_ID)
    if "price" in frame:
        frame = common.check_price(frame, check)
    return frame.reindex(columns=["item_id", "title", "price", "brand", "category"])


def _users(path: Path, quarantine: Quarantine) -> pd.Series:
    frame, check = _read(path, USERS, quarantine)
    frame = check.require(frame, "user_id", q.MISSING_USER_ID)
    frame = frame.assign(user_id=frame["user_id"].str.strip())
    return check.drop_duplicates(frame, ["user_id"], q.DUPLICATE_ID)["user_id"]


def _relations(path: Path, quarantine: Quarantine) -> pd.DataFrame:
    parts = []
    for chunk in read_chunks(path, RELATIONS, quarantine):
        chunk = common.check_relations(chunk, Checker(path, quarantine, chunk))
        parts.append(chunk[["item_id", "relation", "related_item_id"]])
    return pd.concat(parts, ignore_index=True)


def read_generic(path: Path, quarantine: Quarantine) -> CanonicalTables:
    """Read a generic-format directory into canonical tables (see docs/formats.md)."""
    if not path.is_dir():
        raise common.not_a_directory(path, FMT, "events.csv or events.parquet")
    stats: dict[str, int] = {}
    events = _events(_source(path, "events", required=True), quarantine)

    items_path = _source(path, "items")
    raw = _items(items_path, quarantine) if items_path else pd.DataFrame(
        columns=["item_id", "title", "price", "brand", "category"], dtype="str"
    )
    hierarchy = path_hierarchy(raw["category"].astype("str"), PATH_SEP, PATH_JOINER)
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": clean_text(raw["title"].astype("str")),
            "price": pd.to_numeric(raw["price"]).astype("float64"),
            "brand_id": brand_ids(raw["brand"].astype("str")),
        }
    )
    items = common.complete_items(conform("items", items), events["item_id"], stats)

    users_path = _source(path, "users")
    users = common.users_of(events, _users(users_path, quarantine) if users_path else None)

    relations = empty("item_relations")
    relations_path = _source(path, "item_relations")
    if relations_path:
        relations = _relations(relations_path, quarantine)
        relations = common.finish_relations(relations, items["item_id"], stats)

    brands = brand_table(raw["brand"].astype("str").value_counts())
    tables = CanonicalTables(
        users=users,
        items=items,
        brands=conform("brands", brands),
        categories=conform("categories", hierarchy.categories),
        category_parents=conform("category_parents", hierarchy.parents),
        item_categories=conform(
            "item_categories",
            pd.DataFrame({"item_id": raw["item_id"], "category_id": hierarchy.leaf}).dropna(),
        ),
        events=events,
        item_relations=relations,
        stats=stats,
    )
    return tables.validate()
