"""Normalisation shared by the readers: text, brands, category hierarchies, pseudonyms.

- Text (titles, brand and category names): HTML entities unescaped (`L&#39;Oreal` ->
  `L'Oreal`), runs of whitespace collapsed to one space, stripped; empty -> NA.
- Brands: id = casefolded clean name; `BRAND_PLACEHOLDERS` mean "no brand"; the display name is
  the most frequent clean spelling.
- Category paths (`a > b > c`, `a.b.c`): one node per path prefix, child -> parent edges.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import re
from collections.abc import Callable

import pandas as pd

from core.errors import ConfigError, DataError
from etl.canonical import CanonicalTables

# Casefolded brand strings that mean "no brand" (the empty string included).
BRAND_PLACEHOLDERS = frozenset(
    {"", "generic", "unknown", "n/a", "na", "none", "null", "-", "no brand", "unbranded"}
)
PSEUDONYM_LENGTH = 20  # hex characters of HMAC-SHA256 kept

_WHITESPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _WHITESPACE.sub(" ", html.unescape(text)).strip()


def clean_text(values: pd.Series) -> pd.Series:
    """Unescape HTML entities, collapse whitespace, strip; empty -> NA (dtype str)."""
    s = values.astype("str")
    mapping = {v: _clean(v) for v in s.dropna().unique()}
    out = s.map(mapping)
    return out.where(out != "").astype("str")


def brand_key(clean_names: pd.Series) -> pd.Series:
    """Brand id of clean names: casefolded, placeholders -> NA."""
    key = clean_names.str.casefold()
    return key.where(~key.isin(BRAND_PLACEHOLDERS) & key.notna()).astype("str")


def brand_ids(raw: pd.Series) -> pd.Series:
    """Brand id of each raw brand string (NA for missing and placeholder brands)."""
    return brand_key(clean_text(raw))


def category_key(clean_names: pd.Series) -> pd.Series:
    return clean_names.str.casefold()


def name_table(
    variant_counts: pd.Series, key: Callable[[pd.Series], pd.Series], id_col: str
) -> pd.DataFrame:
    """One row per id with the most frequent clean spelling as `name` (ties: smallest string).

    `variant_counts` is indexed by raw spellings and holds how often each one was seen.
    """
    names = clean_text(pd.Series(variant_counts.index, dtype="str"))
    df = pd.DataFrame({"name": names, "n": variant_counts.to_numpy()})
    df[id_col] = key(df["name"])
    df = df.dropna(subset=[id_col, "name"])
    df = df.groupby([id_col, "name"], as_index=False)["n"].sum()
    df = df.sort_values([id_col, "n", "name"], ascending=[True, False, True])
    return df.drop_duplicates(id_col)[[id_col, "name"]].reset_index(drop=True)


def brand_table(variant_counts: pd.Series) -> pd.DataFrame:
    """brands (brand_id, name) from raw brand spellings and their counts."""
    return name_table(variant_counts, brand_key, "brand_id")


@dataclasses.dataclass
class Hierarchy:
    leaf: pd.Series  # category_id of each input path (NA where the path is empty)
    categories: pd.DataFrame  # category_id, name
    parents: pd.DataFrame  # category_id, parent_id (child -> parent)


def path_hierarchy(
    paths: pd.Series, sep: str, joiner: str, key: Callable[[str], str] = str.casefold
) -> Hierarchy:
    """Categories from paths such as `electronics.smartphone` or `Beauty > Makeup`.

    Every prefix of a path is a category whose id is `key` of the prefix's clean segments joined
    with `joiner` and whose name is its last segment, so equal names in different branches stay
    different nodes. Each prefix's parent is the prefix one segment shorter.
    """
    clean = clean_text(paths)
    cats: dict[str, str] = {}
    parents: set[tuple[str, str]] = set()
    leaf_of: dict[str, str] = {}
    for path in sorted(clean.dropna().unique()):
        segments = [seg for seg in (_clean(x) for x in path.split(sep)) if seg]
        parent = None
        for depth, name in enumerate(segments, start=1):
            cid = key(joiner.join(segments[:depth]))
            cats.setdefault(cid, name)
            if parent is not None and parent != cid:
                parents.add((cid, parent))
            parent = cid
        if parent is not None:
            leaf_of[path] = parent
    return Hierarchy(
        leaf=clean.map(leaf_of).astype("str"),
        categories=pd.DataFrame(
            {"category_id": list(cats), "name": list(cats.values())}, dtype="str"
        ),
        parents=pd.DataFrame(sorted(parents), columns=["category_id", "parent_id"], dtype="str"),
    )


def pseudonym(user_id: str, salt: bytes) -> str:
    """hmac-sha256(salt, user_id) as hex, truncated to `PSEUDONYM_LENGTH` characters."""
    digest = hmac.new(salt, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_LENGTH]


def pseudonymize(tables: CanonicalTables, salt: bytes) -> CanonicalTables:
    """A copy of `tables` with every user id replaced by its `pseudonym`."""
    if not salt:
        raise ConfigError("pseudonymize: the salt is empty; give a secret salt of >= 16 bytes")
    ids = pd.unique(pd.concat([tables.users["user_id"], tables.events["user_id"]]).dropna())
    mapping = {u: pseudonym(u, salt) for u in ids}
    if len(set(mapping.values())) != len(mapping):
        raise DataError("pseudonymize: two user ids got the same pseudonym; use another salt")
    users = tables.users.assign(user_id=tables.users["user_id"].map(mapping).astype("str"))
    events = tables.events.assign(user_id=tables.events["user_id"].map(mapping).astype("str"))
    return dataclasses.replace(tables, users=users, events=events, stats=dict(tables.stats))
