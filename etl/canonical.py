"""The canonical tables every reader produces, their contracts, and behaviour aggregation.

Contracts are plain data (`SCHEMA`, `FOREIGN_KEYS`): per table the exact columns in order with
their dtype and whether NA is allowed, the key that must be unique, and the allowed values of
enumerated columns. `CanonicalTables.validate()` checks all of them and reports every failure at
once (like pandera's lazy validation), each line naming the table and the column.

String columns use pandas' default string dtype (`"str"`); ids are non-empty strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import DataError

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"view", "cart", "remove_from_cart", "favorite", "purchase", "review"})
RELATIONS = frozenset({"also_bought", "also_viewed", "bought_together"})
SPLITS = frozenset({"train", "test"})

# Behaviour -> graph edge type. remove_from_cart stays a raw event and never becomes an edge.
EDGE_TYPE = {"view": "VIEWED", "cart": "CARTED", "favorite": "FAVORITED", "purchase": "PURCHASED",
             "review": "REVIEWED"}

Dtype = Literal["str", "float64", "Int64", "Float64"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: Dtype
    nullable: bool = False
    values: frozenset[str] | None = None  # allowed non-NA values
    min: float | None = None  # smallest allowed non-NA value


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    unique: tuple[str, ...]  # columns whose combination must be unique

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


SCHEMA: dict[str, Table] = {
    "users": Table((Column("user_id", "str"),), unique=("user_id",)),
    "items": Table(
        (
            Column("item_id", "str"),
            Column("title", "str", nullable=True),
            Column("price", "float64", nullable=True, min=0.0),
            Column("brand_id", "str", nullable=True),
        ),
        unique=("item_id",),
    ),
    "brands": Table((Column("brand_id", "str"), Column("name", "str")), unique=("brand_id",)),
    "categories": Table(
        (Column("category_id", "str"), Column("name", "str")), unique=("category_id",)
    ),
    "category_parents": Table(
        (Column("category_id", "str"), Column("parent_id", "str")),
        unique=("category_id", "parent_id"),
    ),
    "item_categories": Table(
        (Column("item_id", "str"), Column("category_id", "str")), unique=("item_id", "category_id")
    ),
    "events": Table(
        (
            Column("user_id", "str"),
            Column("item_id", "str"),
            Column("event_type", "str", values=EVENT_TYPES),
            Column("ts", "Int64", nullable=True),
            Column("rating", "Float64", nullable=True),
            Column("split", "str", nullable=True, values=SPLITS),
            Column("session", "str", nullable=True),
        ),
        unique=(),  # exact duplicates are quarantined by the readers, not forbidden here
    ),
    "item_relations": Table(
        (
            Column("item_id", "str"),
            Column("relation", "str", values=RELATIONS),
            Column("related_item_id", "str"),
        ),
        unique=("item_id", "relation", "related_item_id"),
    ),
}

# (table, column) -> (referenced table, referenced column); NA references are allowed.
FOREIGN_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("items", "brand_id"): ("brands", "brand_id"),
    ("category_parents", "category_id"): ("categories", "category_id"),
    ("category_parents", "parent_id"): ("categories", "category_id"),
    ("item_categories", "item_id"): ("items", "item_id"),
    ("item_categories", "category_id"): ("categories", "category_id"),
    ("events", "user_id"): ("users", "user_id"),
    ("events", "item_id"): ("items", "item_id"),
    ("item_relations", "item_id"): ("items", "item_id"),
    ("item_relations", "related_item_id"): ("items", "item_id"),
}


class ContractError(DataError):
    """Canonical tables that break their contract (a bug in a reader, or hand-made tables)."""


def isin(values: pd.Series, allowed: pd.Series) -> pd.Series:
    """`values.isin(allowed)` for string columns, in C: pandas 3 converts `allowed` to pyarrow
    scalars one by one in Python, which dominates checks against large id columns."""
    found = pc.is_in(
        pa.array(values.astype("str"), from_pandas=True),
        value_set=pa.array(allowed.astype("str").dropna(), from_pandas=True),
    )
    return pd.Series(found.fill_null(False).to_numpy(zero_copy_only=False), index=values.index)


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes."""
    return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in SCHEMA[table].columns})


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The table's columns of `frame`, in contract order and cast to the contract dtypes."""
    spec = SCHEMA[table]
    out = frame.loc[:, spec.names].reset_index(drop=True)
    return out.astype({c.name: c.dtype for c in spec.columns})


@dataclass
class CanonicalTables:
    """One source's data in canonical form. `stats` holds reader counters (e.g. dropped rows)."""

    users: pd.DataFrame = field(default_factory=lambda: empty("users"))
    items: pd.DataFrame = field(default_factory=lambda: empty("items"))
    brands: pd.DataFrame = field(default_factory=lambda: empty("brands"))
    categories: pd.DataFrame = field(default_factory=lambda: empty("categories"))
    category_parents: pd.DataFrame = field(default_factory=lambda: empty("category_parents"))
    item_categories: pd.DataFrame = field(default_factory=lambda: empty("item_categories"))
    events: pd.DataFrame = field(default_factory=lambda: empty("events"))
    item_relations: pd.DataFrame = field(default_factory=lambda: empty("item_relations"))
    stats: dict[str, int] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in SCHEMA}

    def counts(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.tables().items()}

    def validate(self) -> CanonicalTables:
        """Check every contract; raise `ContractError` listing all failures. Returns self."""
        problems: list[str] = []
        tables = self.tables()
        for name, frame in tables.items():
            problems += _check_table(name, frame)
        if not problems:  # references are only meaningful once the columns are right
            for (name, col), (ref, ref_col) in FOREIGN_KEYS.items():
                values = tables[name][col].dropna()
                missing = values[~isin(values, tables[ref][ref_col])]
                if len(missing):
                    problems.append(
                        f"{name}.{col}: {len(missing)} values not in {ref}.{ref_col} "
                        f"(e.g. {_examples(missing)})"
                    )
        if problems:
            raise ContractError(
                "canonical tables break their contract: " + "; ".join(problems)
            )
        return self


def _examples(values: pd.Series, n: int = 3) -> str:
    return ", ".join(repr(v) for v in pd.unique(values)[:n])


def _check_table(name: str, frame: pd.DataFrame) -> list[str]:
    spec = SCHEMA[name]
    if list(frame.columns) != spec.names:
        got = ",".join(map(str, frame.columns))
        return [f"{name}: expected columns {','.join(spec.names)}, got {got}"]
    problems = []
    for col in spec.columns:
        s = frame[col.name]
        where = f"{name}.{col.name}"
        if s.dtype != col.dtype:
            problems.append(f"{where}: expected dtype {col.dtype}, got {s.dtype}")
            continue
        na = s.isna()
        if not col.nullable and na.any():
            problems.append(f"{where}: {int(na.sum())} missing values")
        present = s[~na]
        if col.dtype == "str" and not col.nullable:
            blank = present.str.strip() == ""
            if blank.any():
                problems.append(f"{where}: {int(blank.sum())} empty strings")
        if col.values is not None:
            bad = present[~present.isin(col.values)]
            if len(bad):
                problems.append(
                    f"{where}: {len(bad)} values outside {{{','.join(sorted(col.values))}}} "
                    f"(e.g. {_examples(bad)})"
                )
        if col.min is not None and (present < col.min).any():
            problems.append(f"{where}: {int((present < col.min).sum())} values below {col.min}")
    if spec.unique:
        dup = frame.duplicated(list(spec.unique))
        if dup.any():
            key = ",".join(spec.unique)
            problems.append(f"{name}.{key}: {int(dup.sum())} duplicated keys")
    return problems


def aggregate_behaviour(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user_id, item_id, event_type) that becomes a graph edge.

    Columns: user_id, item_id, event_type, edge_type (see `EDGE_TYPE`), count, first_ts,
    last_ts (Int64, NA if no row has a time), split (the rows' split if they all agree, else
    NA), rating (Float64 mean of the known ratings, NA if none). remove_from_cart is dropped.
    """
    keys = ["user_id", "item_id", "event_type"]
    ev = events[events["event_type"].isin(EDGE_TYPE.keys())]
    grouped = ev.groupby(keys, sort=True)
    out = grouped.agg(
        count=("event_type", "size"),
        first_ts=("ts", "min"),
        last_ts=("ts", "max"),
        rating=("rating", "mean"),
        split=("split", "first"),
    )
    # `first` skips NA: keep it only where every row of the group has that same split.
    out["split"] = out["split"].where(grouped["split"].nunique(dropna=False) == 1)
    out = out.reset_index()
    out.insert(3, "edge_type", out["event_type"].map(EDGE_TYPE))
    return out.astype(
        {"count": "int64", "first_ts": "Int64", "last_ts": "Int64", "rating": "Float64",
         "split": "str", "edge_type": "str"}
    )
