"""Explanations: why was ITEM recommended to USER, as short paths through the knowledge graph.

    explain(store, user_id, item_id, n=3, embeddings=None) -> list[Path]
    endpoints(store, user_id, item_id) -> Endpoints   does the pair exist; does the user have it

Candidate paths come from bounded Cypher in `graph.queries.EXPLAIN_PATHS`, one fixed-length
pattern per path type, each anchored at both ends (the user by id, the item by id) and LIMITed:

    kind              length  pattern (b = any behaviour: VIEWED|CARTED|FAVORITED|PURCHASED|
                                       REVIEWED)
    bought_together   2       (u)-[b]->(x)-[:BOUGHT_TOGETHER]-(i)
    also_bought       2       (u)-[b]->(x)-[:ALSO_BOUGHT]-(i)
    also_viewed       2       (u)-[b]->(x)-[:ALSO_VIEWED]-(i)
    same_brand        3       (u)-[b]->(x)-[:HAS_BRAND]->(brand)<-[:HAS_BRAND]-(i)
    co_purchase       3       (u)-[b]->(x)<-[b]-(other user)-[b]->(i)
    same_category     3       (u)-[b]->(x)-[:IN_CATEGORY]->(c)<-[:IN_CATEGORY]-(i)
    parent_category   4       (u)-[b]->(x)-[:IN_CATEGORY]->(c)-[:SUBCATEGORY_OF]->(p)
                                  <-[:IN_CATEGORY]-(i)

Root categories of a hierarchy (no parent, but children: "Beauty", which holds every item) are
skipped: "Y is also in Beauty" explains nothing.

Ranking: a path's score is the prior of its type (`TYPE_PRIOR`: item-item relations first,
then brand, co-purchase, category) plus `AGREEMENT_WEIGHT` times the mean cosine similarity of
the model's embeddings over the path's consecutive nodes (when `embeddings` are given), plus a
small bonus for specificity (more co-buyers, smaller categories). The N returned paths are
diverse: the best path of each type comes before a second path of any type.

The queries of one explanation run concurrently (one session each, a small thread pool per
`Explainer`); the item's title comes back with the paths, so an explanation costs one round of
five queries.

Time limit: each query is sent with a transaction timeout (`timeout_s`). Neo4j enforces it;
the embedded ArcadeDB server ignores it (measured: a runaway query kept running after its
client gave up), so there the bound is the query shape: fixed length, both ends anchored, the
item's neighbours collected first, LIMIT.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, LiteralString

import numpy as np

from graph import queries as Q

log = logging.getLogger(__name__)

KINDS = ("bought_together", "also_bought", "also_viewed", "same_brand", "co_purchase",
         "same_category", "parent_category")
LENGTH = {"bought_together": 2, "also_bought": 2, "also_viewed": 2, "same_brand": 3,
          "co_purchase": 3, "same_category": 3, "parent_category": 4}
TYPE_PRIOR = {"bought_together": 1.0, "also_bought": 0.9, "same_brand": 0.8, "co_purchase": 0.75,
              "also_viewed": 0.6, "same_category": 0.5, "parent_category": 0.3}
AGREEMENT_WEIGHT = 0.25  # a full swing of cosine (-1..1) moves a path by 0.5: about two types
SPECIFICITY_WEIGHT = 0.05  # only orders paths within a type
CANDIDATES_PER_QUERY = 10
VERB = {"PURCHASED": "bought", "REVIEWED": "reviewed", "CARTED": "put in your cart",
        "FAVORITED": "saved as a favourite", "VIEWED": "viewed"}
BEHAVIOUR_STRENGTH = {"PURCHASED": 4, "REVIEWED": 3, "CARTED": 2, "FAVORITED": 2, "VIEWED": 1}
RELATION_KIND = {"BOUGHT_TOGETHER": "bought_together", "ALSO_BOUGHT": "also_bought",
                 "ALSO_VIEWED": "also_viewed"}
STATS_TTL_S = 300.0


@dataclass(frozen=True)
class Node:
    """A node on a path: `label` as in the graph, `id` its id property (None for a group of
    other customers, whose ids are not shown), `name` what a person reads."""

    label: str
    id: str | None
    name: str


Parts = tuple[tuple[str, bool], ...]  # a sentence as (text, is a name from the catalogue)


@dataclass
class Path:
    """One explanation: nodes from the user to the item, the relationship types between them,
    a sentence, and how it was ranked.

    The sentence is kept as `parts`, (text, is a name) pairs: names come from the catalogue
    (titles, brands, categories) and are data, never markup; a page emphasises them by escaping
    each one (`dashboard.ui.reason_markdown`), a terminal prints `reason`, the plain text with
    the names in quotes."""

    kind: str
    nodes: list[Node]
    rels: list[str]
    parts: Parts
    score: float = 0.0
    agreement: float | None = None  # mean cosine of consecutive node embeddings
    support: int = 1  # co_purchase: other customers on the path

    @property
    def length(self) -> int:
        return len(self.rels)

    @property
    def reason(self) -> str:
        """The sentence as plain text, names in quotes: 'You reviewed “A”; … with “B”.'"""
        return "".join(f"“{text}”" if name else text for text, name in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "length": self.length, "reason": self.reason,
                "names": [text for text, name in self.parts if name],
                "score": round(self.score, 6),
                "agreement": None if self.agreement is None else round(self.agreement, 6),
                "support": self.support, "rels": list(self.rels),
                "nodes": [{"label": n.label, "id": n.id, "name": n.name} for n in self.nodes]}

    def __str__(self) -> str:
        return self.reason


class NodeEmbeddings:
    """Embedding lookup by (node type, id) with unit-normalised rows.

    Built from `{node type: (ids, matrix)}` with node types as in `graph.export`
    ("user", "item", "category", "brand"); types the model has no embeddings for are absent.
    """

    def __init__(self, by_type: Mapping[str, tuple[Sequence[str], Any]]) -> None:
        self._index: dict[str, dict[str, int]] = {}
        self._unit: dict[str, np.ndarray] = {}
        for node_type, (ids, matrix) in by_type.items():
            m = _as_numpy(matrix)
            if m.ndim != 2 or len(ids) != m.shape[0]:
                raise ValueError(f"embeddings of {node_type!r}: {len(ids)} ids but a matrix of "
                                 f"shape {tuple(m.shape)}")
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            self._unit[node_type] = m / np.maximum(norms, 1e-12)
            self._index[node_type] = {str(k): i for i, k in enumerate(ids)}

    @property
    def node_types(self) -> list[str]:
        return list(self._unit)

    def vector(self, node_type: str, node_id: str | None) -> np.ndarray | None:
        if node_id is None or node_type not in self._index:
            return None
        row = self._index[node_type].get(str(node_id))
        return None if row is None else self._unit[node_type][row]

    def agreement(self, nodes: Iterable[Node]) -> float | None:
        """Mean cosine of consecutive nodes along the path (None if fewer than two have one).

        Nodes without an embedding (a group of other customers; brands and categories of a
        model that embeds only users and items) are bridged: their neighbours are compared.
        """
        vecs = [v for v in (self.vector(_TYPE_OF_LABEL.get(n.label, ""), n.id) for n in nodes)
                if v is not None]
        sims = [float(a @ b) for a, b in zip(vecs, vecs[1:])]
        return sum(sims) / len(sims) if sims else None


_TYPE_OF_LABEL = {"User": "user", "Item": "item", "Category": "category", "Brand": "brand"}


@dataclass
class _GraphStats:
    skip_categories: list[str]  # roots of a category hierarchy
    category_items: dict[str, int]
    loaded_at: float = field(default_factory=time.monotonic)


class Explainer:
    """Explanations against one store; caches category statistics for `STATS_TTL_S` seconds."""

    def __init__(self, store, embeddings: NodeEmbeddings | Mapping | None = None,
                 timeout_s: float = 2.0, max_length: int = 4, parallel: bool = True) -> None:
        if max_length < 2:
            raise ValueError(f"'max_length' must be >= 2 (got {max_length}): the shortest "
                             "explanation has 2 hops")
        self.store = store
        self.embeddings = _lookup(embeddings)
        self.timeout_s = timeout_s
        self.max_length = max_length
        self.parallel = parallel  # the path queries of one explanation run concurrently
        self._stats: _GraphStats | None = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    # --- public ---
    def explain(self, user_id: str, item_id: str, n: int = 3,
                embeddings: NodeEmbeddings | Mapping | None = None,
                max_length: int | None = None) -> list[Path]:
        """Up to `n` ranked paths of length <= `max_length` from `user_id` to `item_id`."""
        if n < 1:
            raise ValueError(f"'n' must be >= 1 (got {n})")
        emb = _lookup(embeddings) if embeddings is not None else self.embeddings
        max_len = self.max_length if max_length is None else max_length
        stats = self._graph_stats()
        wanted = [(name, stmt) for name, stmt in Q.EXPLAIN_PATHS.items()
                  if min(_query_lengths(name)) <= max_len]
        params = dict(user_id=user_id, item_id=item_id, limit=CANDIDATES_PER_QUERY,
                      skip_categories=stats.skip_categories)
        if self.parallel:
            results = list(self._pool().map(lambda q: self._try(q[0], q[1], params), wanted))
        else:
            results = [self._try(name, stmt, params) for name, stmt in wanted]
        rows_by_query = dict(zip((name for name, _ in wanted), results))
        # the item's title comes with the paths: no extra round trip (no path: nothing to say)
        title = next((r["i_title"] for rows in rows_by_query.values() for r in rows), None)
        item = Node("Item", item_id, _title(item_id, title))
        user = Node("User", user_id, "You")
        candidates: list[Path] = []
        for query_name, rows in rows_by_query.items():
            candidates += _paths(query_name, rows, user, item, stats)
        candidates = [p for p in _dedupe(candidates) if p.length <= max_len]
        for p in candidates:
            p.agreement = emb.agreement(p.nodes) if emb is not None else None
            p.score = (TYPE_PRIOR[p.kind] + AGREEMENT_WEIGHT * (p.agreement or 0.0)
                       + SPECIFICITY_WEIGHT * _specificity(p, stats))
        return _diverse_top(candidates, n)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def invalidate(self) -> None:
        """Forget cached category statistics (after loading new data)."""
        self._stats = None

    # --- internals ---
    def _graph_stats(self) -> _GraphStats:
        with self._lock:
            s = self._stats
            if s is None or time.monotonic() - s.loaded_at > STATS_TTL_S:
                rows = self._read(Q.CATEGORY_STATS)
                s = _GraphStats(
                    skip_categories=sorted(r["id"] for r in rows
                                           if r["parents"] == 0 and r["children"] > 0),
                    category_items={r["id"]: int(r["items"]) for r in rows})
                self._stats = s
            return s

    def _read(self, stmt: LiteralString, **params: Any) -> list[dict[str, Any]]:
        return self.store.read(stmt, timeout_s=self.timeout_s, **params)

    def _try(self, name: str, stmt: LiteralString,
             params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return self._read(stmt, **params)
        except Exception as e:  # noqa: BLE001 (one slow or failing type must not sink the rest)
            if _is_client_bug(e):
                raise
            log.warning("explanation query %s failed for (%s, %s): %s",
                        name, params.get("user_id"), params.get("item_id"), e)
            return []

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=len(Q.EXPLAIN_PATHS),
                                                    thread_name_prefix="explain")
            return self._executor


_explainers: weakref.WeakKeyDictionary[Any, Explainer] = weakref.WeakKeyDictionary()
_explainers_lock = threading.Lock()


def explain(store, user_id: str, item_id: str, n: int = 3,
            embeddings: NodeEmbeddings | Mapping | None = None, *,
            timeout_s: float = 2.0, max_length: int = 4) -> list[Path]:
    """Up to `n` explanation paths (length <= `max_length` <= 4) from a user to an item.

    `embeddings`: a `NodeEmbeddings` or `{node type: (ids, matrix)}` of the model that made the
    recommendation; when given, paths whose hops the model finds similar rank higher. Returns []
    when the user or the item is not in the graph, or when no path of the known types links them.
    """
    if max_length > 4:
        raise ValueError(f"'max_length' must be <= 4 (got {max_length})")
    with _explainers_lock:
        ex = _explainers.get(store)
        if ex is None:
            ex = _explainers[store] = Explainer(store)
    ex.timeout_s = timeout_s
    return ex.explain(user_id, item_id, n=n, embeddings=embeddings, max_length=max_length)


# behaviours after which the user has the item: reasons to get it would make no sense
OWNING = ("PURCHASED", "REVIEWED")


@dataclass(frozen=True)
class Endpoints:
    """What the graph says about a (user, item) pair before any path is looked for."""

    user_found: bool
    item_found: bool
    item_title: str | None
    behaviours: tuple[dict[str, Any], ...] = ()  # {behaviour, count, first_ts, last_ts}

    @property
    def owned(self) -> bool:
        """The user already bought or reviewed the item (it is theirs)."""
        return any(b["behaviour"] in OWNING for b in self.behaviours)

    def sentence(self, user_id: str, item_id: str) -> str:
        """"User U already reviewed (2 times, last on 2014-03-02) and viewed "Title" (I)."""
        done = []
        for b in sorted(self.behaviours, key=lambda b: -BEHAVIOUR_STRENGTH.get(b["behaviour"], 0)):
            n = int(b.get("count") or 1)
            when = _date(b.get("last_ts"))
            detail = [f"{n} times"] if n > 1 else []
            detail += [f"last on {when}"] if when else []
            done.append(_verb(b["behaviour"]) + (f" ({', '.join(detail)})" if detail else ""))
        verbs = done[0] if len(done) == 1 else ", ".join(done[:-1]) + " and " + done[-1]
        what = f'"{self.item_title}" ({item_id})' if self.item_title else f"item {item_id}"
        return f"User {user_id} already {verbs} {what}."


def endpoints(store, user_id: str, item_id: str) -> Endpoints:
    """Whether the user and the item exist, the item's title, and every behaviour edge from the
    user to the item (two indexed reads)."""
    row = store.read(Q.EXPLAIN_ENDPOINTS, user_id=user_id, item_id=item_id)[0]
    done = store.read(Q.USER_ITEM_BEHAVIOURS, user_id=user_id, item_id=item_id) \
        if row["user_found"] and row["item_found"] else []
    return Endpoints(bool(row["user_found"]), bool(row["item_found"]), row.get("item_title"),
                     tuple(done))


def _date(ts: Any) -> str | None:
    """Seconds (or milliseconds) since the epoch as YYYY-MM-DD; None when unknown."""
    try:
        v = float(ts)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v) or v <= 0:
        return None
    v = v / 1000 if v > 1e11 else v
    return datetime.fromtimestamp(v, tz=UTC).strftime("%Y-%m-%d")


def _query_lengths(query_name: str) -> tuple[int, ...]:
    if query_name == "item_relation":
        return (2,)
    return (LENGTH[query_name],)


def _title(item_id: str | None, title: str | None) -> str:
    return title if title else f"item {item_id}"


def _verb(behaviour: str) -> str:
    return VERB.get(behaviour, "chose")


def _reason(*pieces: str | Node) -> Parts:
    """A sentence from plain text and nodes (a node stands for its name)."""
    return tuple((p.name, True) if isinstance(p, Node) else (p, False) for p in pieces)


def _paths(query_name: str, rows: list[dict[str, Any]], user: Node, item: Node,
           stats: _GraphStats) -> list[Path]:
    out = []
    for r in rows:
        x = Node("Item", r["x_id"], _title(r["x_id"], r.get("x_title")))
        b = r["behaviour"]
        you = (f"You {_verb(b)} ", x)
        if query_name == "item_relation":
            kind = RELATION_KIND[r["rel"]]
            tail = {"bought_together": ("; it is often bought together with ", item, "."),
                    "also_bought": ("; customers who buy one often buy ", item, " too."),
                    "also_viewed": ("; customers who view one often view ", item, " too.")}[kind]
            out.append(Path(kind, [user, x, item], [b, r["rel"]], _reason(*you, *tail)))
        elif query_name == "same_brand":
            brand = Node("Brand", r["via_id"], r.get("via_name") or r["via_id"])
            out.append(Path("same_brand", [user, x, brand, item], [b, "HAS_BRAND", "HAS_BRAND"],
                            _reason(*you, "; ", item, " is also by ", brand, ".")))
        elif query_name == "co_purchase":
            k = int(r["support"])
            others = Node("User", None, f"{k} other customer{'s' if k != 1 else ''}")
            out.append(Path("co_purchase", [user, x, others, item], [b, "BEHAVIOUR", "BEHAVIOUR"],
                            _reason(*you, f"; {others.name} who chose it also chose ", item,
                                    "."),
                            support=k))
        elif query_name == "same_category":
            cat = Node("Category", r["via_id"], r.get("via_name") or r["via_id"])
            out.append(Path("same_category", [user, x, cat, item],
                            [b, "IN_CATEGORY", "IN_CATEGORY"],
                            _reason(*you, "; ", item, " is also in ", cat, ".")))
        elif query_name == "parent_category":
            sub = Node("Category", r["sub_id"], r.get("sub_name") or r["sub_id"])
            parent = Node("Category", r["via_id"], r.get("via_name") or r["via_id"])
            out.append(Path("parent_category", [user, x, sub, parent, item],
                            [b, "IN_CATEGORY", "SUBCATEGORY_OF", "IN_CATEGORY"],
                            _reason(*you, " (", sub, "); ", item, " is in the wider category ",
                                    parent, ".")))
    return out


def _dedupe(paths: list[Path]) -> list[Path]:
    """One path per (kind, nodes): keep the strongest behaviour towards the user's item."""
    best: dict[tuple, Path] = {}
    for p in paths:
        key = (p.kind, tuple((n.label, n.id) for n in p.nodes))
        old = best.get(key)
        if old is None or BEHAVIOUR_STRENGTH.get(p.rels[0], 0) > BEHAVIOUR_STRENGTH.get(
                old.rels[0], 0):
            best[key] = p
    return list(best.values())


def _specificity(p: Path, stats: _GraphStats) -> float:
    """In [0, 1): more co-buyers, smaller categories and stronger behaviours rank higher."""
    strength = BEHAVIOUR_STRENGTH.get(p.rels[0], 0) / 10.0
    if p.kind == "co_purchase":
        return 0.6 * (1.0 - 1.0 / (1.0 + math.log1p(p.support))) + strength
    if p.kind in ("same_category", "parent_category"):
        size = stats.category_items.get(p.nodes[-2].id or "", 0)
        return 0.6 / (1.0 + math.log1p(size)) + strength
    return strength


def _diverse_top(paths: list[Path], n: int) -> list[Path]:
    """The best path of each kind first (by score), then the rest by score; top `n`."""
    ranked = sorted(paths, key=lambda p: (-p.score, p.kind, [x.id or "" for x in p.nodes]))
    firsts, rest, seen = [], [], set()
    for p in ranked:
        (rest if p.kind in seen else firsts).append(p)
        seen.add(p.kind)
    return (firsts + rest)[:n]


def _lookup(embeddings: NodeEmbeddings | Mapping | None) -> NodeEmbeddings | None:
    if embeddings is None or isinstance(embeddings, NodeEmbeddings):
        return embeddings
    return NodeEmbeddings(embeddings)


def _as_numpy(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "detach"):  # a torch tensor
        matrix = matrix.detach().float().cpu().numpy()
    return np.asarray(matrix, dtype=np.float32)


def _is_client_bug(e: Exception) -> bool:
    """Syntax errors and wrong parameters are bugs to surface, not slow queries to skip."""
    from neo4j.exceptions import CypherSyntaxError

    return isinstance(e, (CypherSyntaxError, TypeError, KeyError))
