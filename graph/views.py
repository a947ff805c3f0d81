"""What the dashboard pages show, read from the graph: plain dicts and DataFrames.

Every function takes a `GraphStore` and runs statements from `graph.queries` (the
`# --- dashboard (issue 6)` section); no Cypher here. Ids are strings; timestamps stay as the
integers the loader wrote (seconds since the epoch), formatting is the page's job.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from graph import queries as Q
from graph.recommendations import read_whole_lists

log = logging.getLogger(__name__)

NODE_LABELS = tuple(Q.NODE_LABELS)
BEHAVIOURS = tuple(Q.BEHAVIOUR_TYPES)
ITEM_RELATIONS = tuple(Q.ITEM_RELATION_TYPES) + ("SIMILAR_TO",)
HISTORY_COLUMNS = ["behaviour", "item_id", "title", "brand", "price", "count", "first_ts",
                   "last_ts", "rating", "split"]
RECOMMENDATION_COLUMNS = ["run_id", "model", "rank", "score", "item_id", "title", "brand", "price"]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


# --- overview ------------------------------------------------------------------------------------

def counts(store) -> dict[str, int]:
    """Nodes per label and relationships per type (every type, zeros included)."""
    return store.counts()


def is_loaded(c: dict[str, int]) -> bool:
    return bool(c.get("User")) and bool(c.get("Item"))


def top_categories(store, limit: int = 15) -> pd.DataFrame:
    return _frame(store.read(Q.DASH_TOP_CATEGORIES, limit=limit), ["name", "items"])


def top_brands(store, limit: int = 15) -> pd.DataFrame:
    return _frame(store.read(Q.DASH_TOP_BRANDS, limit=limit), ["name", "items"])


def recommendation_runs(store, sample: int = 200_000) -> pd.DataFrame:
    """(run_id, model) pairs found on RECOMMENDED edges (among the first `sample` edges)."""
    return _frame(store.read(Q.DASH_RECOMMENDATION_RUNS, sample=sample), ["run_id", "model"])


def recommended_item_counts(store, run_id: str, k: int) -> pd.DataFrame:
    """How many users get each item in their top `k` of run `run_id`."""
    return _frame(store.read(Q.DASH_RECOMMENDED_ITEM_COUNTS, run_id=run_id, k=k),
                  ["item_id", "n"])


# --- users ---------------------------------------------------------------------------------------

def find_users(store, text: str, limit: int = 20) -> list[str]:
    """User ids starting with `text` (exact case first, then ignoring case)."""
    text = (text or "").strip()
    if not text:
        return []
    rows = store.read(Q.DASH_FIND_USERS, prefix=text, limit=limit)
    if not rows:
        rows = store.read(Q.DASH_FIND_USERS_CASELESS, prefix=text.lower(), limit=limit)
    return [r["id"] for r in rows]


def sample_users(store, limit: int = 8) -> list[str]:
    """Some users to start from: users with recommendations if there are any."""
    rows = store.read(Q.DASH_SAMPLE_RECOMMENDED_USERS, limit=limit)
    if not rows:
        rows = store.read(Q.DASH_SAMPLE_USERS, limit=limit)
    return [r["id"] for r in rows]


def user_summary(store, user_id: str) -> dict[str, Any] | None:
    """{"id", "edges": {type: n}} or None when there is no such user."""
    rows = store.read(Q.DASH_USER_EDGE_COUNTS, id=user_id)
    if not rows:
        return None
    return {"id": rows[0]["id"], "edges": {r["rel"]: r["n"] for r in rows if r["rel"]}}


def user_history(store, user_id: str, limit: int = 500) -> pd.DataFrame:
    """The user's behaviour edges with the items (newest first within each behaviour)."""
    return _frame(store.read(Q.DASH_USER_HISTORY, id=user_id, limit=limit), HISTORY_COLUMNS)


def user_recommendations(store, user_id: str, limit: int = 500) -> pd.DataFrame:
    """The user's RECOMMENDED edges of every run, by run then rank."""
    rows = read_whole_lists(store, Q.DASH_USER_RECOMMENDATIONS, id=user_id, limit=limit)
    return _frame(rows, RECOMMENDATION_COLUMNS)


# --- items ---------------------------------------------------------------------------------------

def find_items(store, text: str, limit: int = 20) -> pd.DataFrame:
    """Items whose id starts with `text` or whose title contains it (ignoring case)."""
    text = (text or "").strip()
    if not text:
        return _frame([], ["id", "title"])
    return _frame(store.read(Q.DASH_FIND_ITEMS, prefix=text, text=text.lower(), limit=limit),
                  ["id", "title"])


def item_details(store, item_id: str) -> dict[str, Any] | None:
    """{"id", "title", "price", "brand_id", "brand", "categories": [path, ...]} or None.

    Each category path runs from the broadest category to a most specific one of the item
    (following SUBCATEGORY_OF between the item's own categories).
    """
    rows = store.read(Q.DASH_ITEM, id=item_id)
    if not rows:
        return None
    out = dict(rows[0])
    cats = store.read(Q.DASH_ITEM_CATEGORIES, id=item_id)
    out["categories"] = category_paths(cats)
    return out


def category_paths(cats: list[dict[str, Any]]) -> list[list[str]]:
    """Paths (names, root first) through the item's categories along their parent links.

    `cats`: rows {id, name, parents: [ids]}; a parent outside the item's categories is ignored.
    """
    names = {c["id"]: c["name"] or c["id"] for c in cats}
    parents = {c["id"]: [p for p in (c["parents"] or []) if p in names and p != c["id"]]
               for c in cats}
    children: dict[str, set[str]] = {c: set() for c in names}
    for c, ps in parents.items():
        for p in ps:
            children[p].add(c)
    leaves = sorted(c for c in names if not children[c])

    def up(c: str, seen: frozenset[str]) -> list[str]:
        ps = sorted(p for p in parents[c] if p not in seen)
        if not ps:
            return [c]
        best = max((up(p, seen | {c}) for p in ps), key=len)
        return best + [c]

    paths = [[names[c] for c in up(leaf, frozenset())] for leaf in leaves]
    return sorted(paths, key=lambda p: (-len(p), p))


def item_related(store, item_id: str, limit: int = 300) -> pd.DataFrame:
    """Item–item neighbours: ALSO_BOUGHT / ALSO_VIEWED / BOUGHT_TOGETHER (either direction) and
    the model's SIMILAR_TO, one row per (relation, item)."""
    f = _frame(store.read(Q.DASH_ITEM_RELATED, id=item_id, limit=limit),
               ["relation", "outgoing", "score", "rank", "item_id", "title", "brand"])
    if f.empty:
        return f
    f = f.sort_values(["relation", "outgoing", "rank", "item_id"],
                      ascending=[True, False, True, True], na_position="last")
    return f.drop_duplicates(["relation", "item_id"]).reset_index(drop=True)


def item_users(store, item_id: str, limit: int = 100) -> pd.DataFrame:
    """Users with a behaviour edge to the item, most recent first."""
    return _frame(store.read(Q.DASH_ITEM_USERS, id=item_id, limit=limit),
                  ["user_id", "behaviour", "count", "last_ts", "rating", "split"])


def item_edge_counts(store, item_id: str) -> dict[str, int]:
    """Users per behaviour type (and RECOMMENDED) pointing at the item."""
    return {r["rel"]: r["n"] for r in store.read(Q.DASH_ITEM_EDGE_COUNTS, id=item_id)}


def item_also_interacted(store, item_id: str, limit: int = 10) -> pd.DataFrame:
    """Items most often in the histories of this item's users (collaborative neighbours)."""
    return _frame(store.read(Q.DASH_ITEM_ALSO_INTERACTED, id=item_id, limit=limit),
                  ["item_id", "title", "brand", "users"])
