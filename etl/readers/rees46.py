"""`--format rees46`: the public REES46 e-commerce event log (one CSV, optionally gzipped).

Header, exactly: event_time,event_type,product_id,category_id,category_code,brand,price,user_id,
user_session. The file is streamed in chunks (real files have tens of millions of rows); per item
only the last valid price, brand and category seen so far are kept between chunks.

- events: view/cart/remove_from_cart/purchase, ts from `event_time` ("2019-10-01 00:00:00 UTC",
  within `common.plausible_range()`), session = user_session; no split, no rating.
- items: every product_id seen; price, brand and category = the last valid value seen.
- categories: `category_code` "electronics.smartphone" gives "electronics" and
  "electronics.smartphone" (id = dotted prefix, name = last segment) with child -> parent
  edges; the item is in the leaf. Without a code, `category_id` is the category (name = the id).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from etl.canonical import CanonicalTables, conform, isin
from etl.normalize import brand_ids, brand_table, path_hierarchy
from etl.quarantine import Quarantine
from etl.readers import common
from etl.readers.common import Checker
from etl.readers.textfile import LINE, Header, read_csv_chunks

log = logging.getLogger(__name__)

FMT = "rees46"
HEADER = Header(
    (
        "event_time", "event_type", "product_id", "category_id", "category_code", "brand",
        "price", "user_id", "user_session",
    ),
    FMT,
    exact=True,
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
EVENT_TYPES = frozenset({"view", "cart", "remove_from_cart", "purchase"})
ITEM_ATTRS = ["price", "brand", "category_code", "category_id"]


def parse_event_time(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 unix seconds, unparsable mask) of "2019-10-01 00:00:00 UTC" strings."""
    dt = pd.to_datetime(values.str.strip(), format=TIME_FORMAT, utc=True, errors="coerce")
    ts = common.unix_seconds(dt)
    return ts, ts.isna()


def read_rees46(path: Path, quarantine: Quarantine) -> CanonicalTables:
    """Read a REES46 CSV into canonical tables (see the module docstring)."""
    events: list[pd.DataFrame] = []
    latest: pd.DataFrame | None = None  # item_id -> last valid ITEM_ATTRS
    brand_counts = pd.Series(dtype="int64")
    for chunk in read_csv_chunks(path, HEADER, quarantine):
        check = Checker(path, quarantine, chunk)
        chunk = common.check_events(
            chunk.assign(item_id=chunk["product_id"]), check, "event_time", parse_event_time,
            types=EVENT_TYPES, expected_time="YYYY-MM-DD HH:MM:SS UTC",
        )
        chunk = common.check_price(chunk, check)
        events.append(
            chunk[["user_id", "item_id", "event_type", "ts", LINE]].assign(
                session=chunk["user_session"]
            )
        )
        attrs = chunk[["item_id", "price"]].assign(
            **{c: common.stripped(chunk[c]) for c in ITEM_ATTRS[1:]}
        )
        last = attrs.groupby("item_id", sort=False).last()  # last non-NA value per column
        if latest is not None:
            last = pd.concat([latest, last]).groupby(level=0, sort=False).last()
        latest = last
        brand_counts = brand_counts.add(attrs["brand"].value_counts(), fill_value=0)

    stats: dict[str, int] = {}
    ev = common.finish_events(common.drop_duplicate_events(pd.concat(events), path, quarantine))
    assert latest is not None  # read_csv_chunks yields at least one (maybe empty) chunk
    latest = latest.reset_index()

    coded = path_hierarchy(latest["category_code"], sep=".", joiner=".", key=str)
    plain = common.stripped(latest["category_id"]).where(coded.leaf.isna())
    categories = pd.concat(
        [coded.categories, pd.DataFrame({"category_id": plain, "name": plain}).dropna()]
    ).drop_duplicates("category_id")
    item_categories = pd.DataFrame(
        {"item_id": latest["item_id"], "category_id": coded.leaf.fillna(plain)}
    ).dropna()

    items = pd.DataFrame(
        {
            "item_id": latest["item_id"],
            "title": pd.Series(pd.NA, index=latest.index, dtype="str"),
            "price": latest["price"],
            "brand_id": brand_ids(latest["brand"]),
        }
    )
    items = common.complete_items(conform("items", items), ev["item_id"], stats)
    brands = brand_table(brand_counts.astype("int64"))
    brands = brands[isin(brands["brand_id"], items["brand_id"])]
    tables = CanonicalTables(
        users=common.users_of(ev),
        items=items,
        brands=conform("brands", brands),
        categories=conform("categories", categories),
        category_parents=conform("category_parents", coded.parents),
        item_categories=conform("item_categories", item_categories),
        events=ev,
        stats=stats,
    )
    return tables.validate()
