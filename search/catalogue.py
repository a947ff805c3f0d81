"""The searchable items: ids in a fixed order (sorted), title, brand and category names.

Read from the graph (`Catalogue.from_store`: item details, category names, the IN_CATEGORY and
SUBCATEGORY_OF edges), or from a run's snapshot when the graph cannot be read (`from_snapshot`: no
titles; category and brand ids stand in for their names). `fingerprint()` is a hash of the
content: a saved BM25 index belongs to exactly one catalogue, and a cached catalogue that no
longer matches the graph (after a reset and a reload) is noticed and replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import DataError
from core.io import atomic_write_json
from graph import queries as Q
from search import text as T

if TYPE_CHECKING:  # pandas only builds a catalogue; serving a saved one does without it
    import pandas as pd

SAMPLE = 16  # items whose text is compared with the graph before a cached catalogue is used
# node counts per label are O(1) on both servers (relationship counts scan on ArcadeDB: ~0.5 s
# each on Beauty, too slow to run before every search)
SIGNATURE = ("Item", "User", "Category", "Brand")


def graph_signature(store) -> dict[str, int]:
    """Node counts per label that search's caches depend on (they change when the graph is
    reset and reloaded with other data)."""
    return {label: int(store.read(Q.COUNT_NODES[label])[0]["n"]) for label in SIGNATURE}


@dataclass(eq=False)
class Catalogue:
    """The searchable items, in a fixed order (sorted ids): title, brand and category names."""

    ids: np.ndarray  # str ids
    titles: list[str]
    brands: list[str]
    categories: list[list[str]]  # names, broadest first
    source: str = "frames"  # "graph" | "snapshot" | "frames"
    signature: dict[str, int] = field(default_factory=dict)  # graph counts when read (graph)
    _index: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.titles) == len(self.brands) == len(self.categories) == n):
            raise ValueError("catalogue columns differ in length")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index(self) -> dict[str, int]:
        """Item id -> position."""
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.ids)}
        return self._index

    def text(self, i: int) -> str:
        """What item i is found by (`search.text.item_text`)."""
        return T.item_text(self.titles[i], self.brands[i], self.categories[i])

    def texts(self) -> list[str]:
        return [self.text(i) for i in range(len(self))]

    def label(self, i: int) -> str:
        """What a person reads: the title, else brand and leaf category."""
        if self.titles[i]:
            return self.titles[i]
        parts = [self.brands[i], self.categories[i][-1] if self.categories[i] else ""]
        return " · ".join(p for p in parts if p) or str(self.ids[i])

    def sample_ids(self, n: int = SAMPLE) -> list[str]:
        """`n` ids spread evenly over the catalogue (first and last included)."""
        pos = np.unique(np.linspace(0, len(self) - 1, min(n, len(self))).round().astype(int))
        return [str(self.ids[p]) for p in pos]

    def changed(self, store) -> str | None:
        """Why this catalogue no longer matches the graph (None when it does, as far as a cheap
        look can tell): other node or relationship counts, or other text for a sample of items
        (`sample_ids`)."""
        now = graph_signature(store)
        if self.signature and now != self.signature:
            diff = [f"{k} {self.signature.get(k, 0):,} -> {v:,}" for k, v in now.items()
                    if self.signature.get(k) != v]
            return "counts changed: " + ", ".join(diff[:3])
        rows = {r["id"]: r for r in store.read(Q.SEARCH_ITEM_SAMPLE, ids=self.sample_ids())}
        for item in self.sample_ids():
            r, i = rows.get(item), self.index[item]
            if r is None:
                return f"item {item} is gone"
            if (T.clean(r["title"]), T.clean(r["brand"])) != (self.titles[i], self.brands[i]):
                return f"item {item} has other text"
        return None

    def fingerprint(self) -> str:
        """A hash of ids, titles, brands and categories (not of the source)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for row in zip(self.ids, self.titles, self.brands, self.categories):
                h.update(json.dumps([str(row[0]), row[1], row[2], list(row[3])]).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frames(cls, items: pd.DataFrame, item_categories: pd.DataFrame,
                    category_names: pd.DataFrame, parents: pd.DataFrame | None = None,
                    source: str = "frames") -> Catalogue:
        """`items` (id, title, brand), `item_categories` (src item id, dst category id),
        `category_names` (id, name), `parents` (src child id, dst parent id)."""
        import pandas as pd

        if items.empty:
            raise DataError("the catalogue is empty: load items into the graph first")
        items = items.drop_duplicates("id").assign(id=lambda f: f["id"].astype(str))
        items = items.sort_values("id", kind="stable").reset_index(drop=True)
        names = dict(zip(category_names["id"].astype(str), category_names["name"]))
        depth = _depths(parents)
        cats: dict[str, list[str]] = {}
        if not item_categories.empty:
            ic = item_categories.astype({"src": str, "dst": str}).drop_duplicates()
            for item, cid in zip(ic["src"], ic["dst"]):
                cats.setdefault(item, []).append(cid)
        categories = []
        for item in items["id"]:
            cids = sorted(cats.get(item, []), key=lambda c: (depth.get(c, 0), c))
            categories.append([T.clean(names.get(c) or c) for c in cids])
        none = pd.Series([None] * len(items))
        return cls(ids=items["id"].to_numpy(object),
                   titles=[T.clean(x) for x in items.get("title", none)],
                   brands=[T.clean(x) for x in items.get("brand", none)],
                   categories=categories, source=source)

    @classmethod
    def from_store(cls, store) -> Catalogue:
        """From the graph: `ITEM_DETAILS`, `CATEGORY_NAMES` and the IN_CATEGORY and
        SUBCATEGORY_OF edges."""
        import pandas as pd

        signature = graph_signature(store)
        items = store.read_df(Q.ITEM_DETAILS)
        if items.empty:
            raise DataError("the graph has no items: load data first (kgrec etl load / demo)")
        ic = _concat(store.stream(Q.KG_EDGES["IN_CATEGORY"]), ("src", "dst"))
        cn = store.read_df(Q.CATEGORY_NAMES)
        cn = cn if not cn.empty else pd.DataFrame(columns=["id", "name"])
        par = _concat(store.stream(Q.KG_EDGES["SUBCATEGORY_OF"]), ("src", "dst"))
        cat = cls.from_frames(items, ic, cn, par, source="graph")
        cat.signature = signature
        return cat

    @classmethod
    def from_snapshot(cls, snapshot) -> Catalogue:
        """From a GraphSnapshot's id maps alone: no titles; category and brand ids stand in for
        their names (the loaders key them by the casefolded name)."""
        import pandas as pd

        data, ids = snapshot.data, snapshot.ids
        items = pd.DataFrame({"id": ids["item"], "title": None, "brand": None})

        def pairs(et, src_t, dst_t) -> pd.DataFrame:
            if et not in data.edge_types:
                return pd.DataFrame(columns=["src", "dst"])
            ei = data[et].edge_index.numpy()
            return pd.DataFrame({"src": ids[src_t][ei[0]], "dst": ids[dst_t][ei[1]]})

        hb = pairs(("item", "has_brand", "brand"), "item", "brand").drop_duplicates("src")
        items["brand"] = items["id"].map(dict(zip(hb["src"], hb["dst"])))
        ic = pairs(("item", "in_category", "category"), "item", "category")
        par = pairs(("category", "subcategory_of", "category"), "category", "category")
        cn = pd.DataFrame({"id": ids.get("category", np.array([], object)),
                           "name": ids.get("category", np.array([], object))})
        return cls.from_frames(items, ic, cn, par, source="snapshot")

    # ------------------------------------------------------------------ files
    def save(self, path: Path) -> None:
        """One JSON file (written atomically): the columns, source, fingerprint and signature.
        JSON, not parquet: loading it needs neither pandas nor pyarrow (a search starts
        faster)."""
        atomic_write_json(path, {
            "source": self.source, "items": len(self), "fingerprint": self.fingerprint(),
            "signature": self.signature, "ids": [str(i) for i in self.ids],
            "titles": self.titles, "brands": self.brands, "categories": self.categories},
            indent=None)

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """A saved catalogue (its fingerprint as saved: not recomputed)."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        cat = cls(ids=np.array(d["ids"], dtype=object), titles=d["titles"], brands=d["brands"],
                  categories=d["categories"], source=d["source"],
                  signature=d.get("signature") or {})
        if len(cat) != d["items"]:
            raise DataError(f"{path}: {len(cat)} items, the file says {d['items']}")
        cat._fingerprint = d["fingerprint"]
        return cat


def positions(index_ids: Sequence[str], ids: Sequence[str]) -> np.ndarray:
    """The position of each of `ids` in `index_ids` (-1 where absent)."""
    keys = np.asarray(index_ids).astype(str)
    wanted = np.asarray(ids).astype(str)
    order = np.argsort(keys, kind="stable")
    at = np.searchsorted(keys[order], wanted).clip(max=max(len(keys) - 1, 0))
    found = (keys[order][at] == wanted) if len(keys) else np.zeros(len(wanted), bool)
    return np.where(found, order[at] if len(keys) else -1, -1).astype(np.int64)


def _concat(chunks, columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    frames = [c for c in chunks if not c.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def _depths(parents: pd.DataFrame | None) -> dict[str, int]:
    """Depth of each category in the SUBCATEGORY_OF forest (shortest path to a root)."""
    if parents is None or parents.empty:
        return {}
    up: dict[str, list[str]] = {}
    for c, p in zip(parents["src"].astype(str), parents["dst"].astype(str)):
        up.setdefault(c, []).append(p)
    memo: dict[str, int] = {}

    def depth(c: str, seen: frozenset[str]) -> int:
        if c in memo:
            return memo[c]
        ps = [p for p in up.get(c, []) if p not in seen]
        d = 0 if not ps else 1 + min(depth(p, seen | {c}) for p in ps)
        memo[c] = d
        return d

    for c in list(up):
        depth(c, frozenset())
    return memo
