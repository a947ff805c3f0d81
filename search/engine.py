"""Product search: BM25 retrieval over item text, re-ranked per shopper with a trained GNN.

One query (`SearchEngine.search`):
1. `search.text.terms` of the query (the first `max_query_chars` characters, at most
   `max_query_terms` distinct terms): the same tokenizer as the index;
2. BM25 (bm25s) over the item text; the candidates are the `candidates` best items with a
   positive score; ties at the cut are resolved by popularity, then catalogue order
   (deterministic);
3. three features per candidate, standardised within the candidate set: text score, personal
   score (user · item from the trained run) and log popularity; the score is their weighted sum
   with the weights of the run's `Blend`, fitted on validation queries (`fit_blend`; the personal
   weights only where they beat text + popularity beyond noise). Without a known user the
   text + popularity weights are used ("anonymous");
4. the ranking goes on past the candidates with the other items, by text score and then the
   fallback score (personal, else popularity): a query that matches nothing still answers, with
   the shopper's best items, marked as such.

Evaluation (`evaluate_run`, the protocol of Ai et al., SIGIR 2017): one query per held-out
(user, item) pair, built from the item's category names (`search.text.category_query`); the target is
the item. Methods: `bm25` (text alone over all items), `popularity`, `gnn` (user · item over all
items), `anonymous` (the pipeline without a user) and `reranked` (the pipeline). The user's
history is left out of every ranking alike. Ties are counted at their expected value under a
random order of the tied items (McSherry & Najork, ECIR 2008): with g items strictly better and t
tied (target included), the target's rank is uniform on g+1..g+t, so e.g. RR = mean(1/r) over
those ranks. Category queries make BM25 tie a lot; this counts those ties honestly instead of
letting item-id order decide.

What a run gets (`runs/NAME/search/`): `catalogue.parquet` (the item text, read from the graph
once), `serving.npz` (user and item vectors of the checkpoint on the run's whole snapshot, item
popularity, histories), `blend.json` (the fitted weights and how they were fitted),
`queries_val.csv` / `queries_test.csv` (user_id, item_id, query, slice); and
`runs/NAME/search_metrics.json`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError, RunNotFound
from search import text as T

log = logging.getLogger(__name__)

FEATURES = ("text", "personal", "popularity")
METHODS = ("bm25", "popularity", "gnn", "anonymous", "reranked")


class QueryError(ConfigError):
    """A query that cannot be searched (empty, nothing but punctuation...)."""


EMPTY_QUERY = 'the query is empty: type a few words, e.g. kgrec search "face cream"'


@dataclass
class SearchConfig:
    candidates: int = 100  # BM25 candidates re-ranked per query
    k: int = 10  # cut-off of NDCG@k / HR@k, and results shown by default
    max_query_chars: int = 1000  # longer queries are cut (and say so)
    max_query_terms: int = 32  # distinct terms kept from a query
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    grid_step: float = 0.05  # blend weights are searched on this simplex grid
    fit_queries: int = 20000  # validation queries the blend is fitted on (seeded sample)
    eval_queries: int | None = None  # test queries evaluated (None: all)
    latency_queries: int = 500  # queries timed end to end through `search`
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("candidates", "k", "max_query_chars", "max_query_terms", "fit_queries",
                     "latency_queries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"'{name}' must be >= 1 (got {getattr(self, name)})")
        if not 0 < self.grid_step <= 0.5:
            raise ConfigError(f"'grid_step' must be in (0, 0.5] (got {self.grid_step})")
        if self.eval_queries is not None and self.eval_queries < 1:
            raise ConfigError(f"'eval_queries' must be >= 1 or None (got {self.eval_queries})")


# ----------------------------------------------------------------------------- catalogue

@dataclass
class Catalogue:
    """The searchable items, in a fixed order (sorted ids): title, brand and category names."""

    ids: np.ndarray  # str ids
    titles: list[str]
    brands: list[str]
    categories: list[list[str]]  # names, broadest first
    source: str = "frames"

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.titles) == len(self.brands) == len(self.categories) == n):
            raise ValueError("catalogue columns differ in length")
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.ids)}
        return self._index

    def text(self, i: int) -> str:
        return T.item_text(self.titles[i], self.brands[i], self.categories[i])

    def label(self, i: int) -> str:
        """What a person reads: the title, else brand and leaf category."""
        if self.titles[i]:
            return self.titles[i]
        parts = [self.brands[i], self.categories[i][-1] if self.categories[i] else ""]
        return " · ".join(p for p in parts if p) or str(self.ids[i])

    @classmethod
    def from_frames(cls, items: pd.DataFrame, item_categories: pd.DataFrame,
                    category_names: pd.DataFrame, parents: pd.DataFrame | None = None,
                    source: str = "frames") -> Catalogue:
        """`items` (id, title, brand), `item_categories` (src item id, dst category id),
        `category_names` (id, name), `parents` (src child id, dst parent id)."""
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
        return cls(ids=items["id"].to_numpy(object),
                   titles=[T.clean(x) for x in items.get("title", pd.Series([None] * len(items)))],
                   brands=[T.clean(x) for x in items.get("brand", pd.Series([None] * len(items)))],
                   categories=categories, source=source)

    @classmethod
    def from_store(cls, store) -> Catalogue:
        """From the graph: `ITEM_DETAILS`, `CATEGORY_NAMES` and the IN_CATEGORY and
        SUBCATEGORY_OF edges."""
        from graph import queries as Q

        items = store.read_df(Q.ITEM_DETAILS)
        if items.empty:
            raise DataError("the graph has no items: load data first (kgrec etl load / demo)")
        ic = _concat(store.stream(Q.KG_EDGES["IN_CATEGORY"]), ("src", "dst"))
        cn = store.read_df(Q.CATEGORY_NAMES)
        cn = cn if not cn.empty else pd.DataFrame(columns=["id", "name"])
        par = _concat(store.stream(Q.KG_EDGES["SUBCATEGORY_OF"]), ("src", "dst"))
        return cls.from_frames(items, ic, cn, par, source="graph")

    @classmethod
    def from_snapshot(cls, snapshot) -> Catalogue:
        """From a GraphSnapshot's id maps alone: no titles; category and brand ids stand in for
        their names (the loaders key them by the casefolded name)."""
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

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"id": self.ids, "title": self.titles, "brand": self.brands,
                      "categories": [list(c) for c in self.categories]}
                     ).to_parquet(path, index=False)
        (path.with_suffix(".json")).write_text(json.dumps({"source": self.source,
                                                           "items": len(self)}))

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        f = pd.read_parquet(path)
        meta = path.with_suffix(".json")
        source = json.loads(meta.read_text())["source"] if meta.exists() else "cache"
        return cls(ids=f["id"].astype(str).to_numpy(object), titles=list(f["title"]),
                   brands=list(f["brand"]), categories=[list(c) for c in f["categories"]],
                   source=source)


def _concat(chunks, columns: tuple[str, ...]) -> pd.DataFrame:
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


# ----------------------------------------------------------------------------- text index

class TextIndex:
    """BM25 over `search.text.terms` of each item text."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        if not len(texts):
            raise DataError("cannot index an empty catalogue")
        self.n = len(texts)
        self.bm25 = bm25s.BM25(k1=k1, b=b)
        docs = [T.terms(t) for t in texts]
        self.bm25.index(docs, show_progress=False)
        self.doc_terms = [frozenset(d) for d in docs]  # for "matches ..." in results
        self.vocab = {t: i for t, i in self.bm25.vocab_dict.items() if t}

    def scores(self, q_terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every item (float64; 0 where no term matches)."""
        ids = [self.vocab[t] for t in dict.fromkeys(q_terms) if t in self.vocab]
        if not ids:
            return np.zeros(self.n)
        return np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float64)


# ----------------------------------------------------------------------------- personal scores

@dataclass
class Personal:
    """User and item vectors of a trained run; the personal score is their dot product.
    `item_emb` is aligned with the catalogue; items the run does not know are NaN rows."""

    user_index: dict[str, int]
    user_emb: np.ndarray  # [U, d] float32
    item_emb: np.ndarray  # [N, d] float32, NaN rows for unknown items

    def __post_init__(self) -> None:
        self.item_known = ~np.isnan(self.item_emb).any(1)
        self._items0 = np.where(self.item_known[:, None], self.item_emb, 0).astype(np.float32)

    @classmethod
    def aligned(cls, user_ids: Sequence[str], user_emb: np.ndarray, item_ids: Sequence[str],
                item_emb: np.ndarray, catalogue: Catalogue) -> Personal:
        out = np.full((len(catalogue), item_emb.shape[1]), np.nan, np.float32)
        pos = pd.Index(np.asarray(item_ids, dtype=object)).get_indexer(catalogue.ids)
        ok = pos >= 0
        out[ok] = item_emb[pos[ok]]
        return cls({str(u): i for i, u in enumerate(user_ids)},
                   np.asarray(user_emb, np.float32), out)

    def scores(self, u: int, items: np.ndarray | None = None) -> np.ndarray:
        """user · item (float64) for `items` (all when None); NaN for unknown items."""
        m = self._items0 if items is None else self._items0[items]
        known = self.item_known if items is None else self.item_known[items]
        s = (m @ self.user_emb[u]).astype(np.float64)
        s[~known] = np.nan
        return s

    def scores_batch(self, users: np.ndarray) -> np.ndarray:
        """[B, N] scores, NaN columns for unknown items."""
        s = (self.user_emb[users] @ self._items0.T).astype(np.float64)
        s[:, ~self.item_known] = np.nan
        return s


# ----------------------------------------------------------------------------- blend

@dataclass
class Blend:
    """Weights of the standardised features (text, personal, popularity), each set sums to 1."""

    personal: dict[str, float] = field(
        default_factory=lambda: {"text": 0.4, "personal": 0.4, "popularity": 0.2})
    anonymous: dict[str, float] = field(
        default_factory=lambda: {"text": 0.7, "personal": 0.0, "popularity": 0.3})
    fitted: dict[str, Any] = field(default_factory=dict)  # how (empty: the unfitted defaults)

    def vector(self, personal: bool) -> np.ndarray:
        w = self.personal if personal else self.anonymous
        return np.array([float(w.get(f, 0.0)) for f in FEATURES])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Blend:
        d = json.loads(path.read_text())
        return cls(personal=d["personal"], anonymous=d["anonymous"], fitted=d.get("fitted", {}))


# ----------------------------------------------------------------------------- the engine

@dataclass
class Hit:
    item_id: str
    title: str
    score: float  # the blended score (standardised units; comparable within one query)
    text_score: float  # BM25
    personal_score: float | None  # user · item; None without a user or for unknown items
    popularity: int  # interactions in the run's training data
    matched: list[str]  # query terms found in the item text
    reason: str


@dataclass
class SearchResult:
    query: str
    terms: list[str]
    user: str | None
    mode: str  # "personal" | "anonymous"
    hits: list[Hit]
    matches: int  # items with a positive text score
    notes: list[str] = field(default_factory=list)


@dataclass
class _Ranked:
    cand: np.ndarray  # candidate items, best first
    blended: np.ndarray  # their blended scores
    features: np.ndarray  # [C, 3] standardised features


def _zscore(x: np.ndarray) -> np.ndarray:
    """Standardised within `x`; NaN (unknown) -> 0, the mean; constant -> all 0."""
    known = ~np.isnan(x)
    n = int(known.sum())
    if n == 0:
        return np.zeros(len(x))
    v = x[known] if n < len(x) else x
    mu = v.sum() / n
    sd = math.sqrt(float(((v - mu) ** 2).sum()) / n)
    if sd <= 1e-12 * max(1.0, abs(mu)):
        return np.zeros(len(x))
    z = (x - mu) / sd
    if n < len(x):
        z[~known] = 0.0
    return z


class SearchEngine:
    """Search one catalogue: BM25 candidates, blended with personal and popularity scores."""

    def __init__(self, catalogue: Catalogue, *, popularity: np.ndarray | None = None,
                 personal: Personal | None = None, blend: Blend | None = None,
                 history: dict[str, np.ndarray] | None = None,
                 cfg: SearchConfig | None = None, index: TextIndex | None = None) -> None:
        self.catalogue = catalogue
        self.cfg = cfg or SearchConfig()
        self.index = index or TextIndex([catalogue.text(i) for i in range(len(catalogue))],
                                        self.cfg.bm25_k1, self.cfg.bm25_b)
        n = len(catalogue)
        pop = np.zeros(n) if popularity is None else np.asarray(popularity, np.float64)
        if pop.shape != (n,):
            raise ValueError(f"'popularity' must have one value per item ({n}, got {pop.shape})")
        self.popularity = pop
        self.log_pop = np.log1p(pop)
        self.personal = personal
        self.blend = blend or Blend()
        self.history = history or {}  # user id -> catalogue indices of the user's history

    # --- queries
    def parse(self, query: str) -> tuple[list[str], list[str]]:
        """(terms, notes) of a raw query; QueryError when nothing searchable is left."""
        notes: list[str] = []
        if query is None or not str(query).strip():
            raise QueryError(EMPTY_QUERY)
        q = str(query)
        if len(q) > self.cfg.max_query_chars:
            notes.append(f"the query was {len(q):,} characters long: only the first "
                         f"{self.cfg.max_query_chars:,} were used")
            q = q[: self.cfg.max_query_chars]
        terms = list(dict.fromkeys(T.terms(q)))
        if not terms:
            raise QueryError(f"the query {_short(query)!r} has no searchable words (only stop "
                             "words, punctuation or single symbols): try product words")
        if len(terms) > self.cfg.max_query_terms:
            notes.append(f"the query has {len(terms)} distinct words: only the first "
                         f"{self.cfg.max_query_terms} were used")
            terms = terms[: self.cfg.max_query_terms]
        unknown = [t for t in terms if t not in self.index.vocab]
        if unknown and len(unknown) < len(terms):
            notes.append("no item mentions " + ", ".join(repr(t) for t in unknown[:5])
                         + ("…" if len(unknown) > 5 else ""))
        return terms, notes

    def user_index(self, user: str | None) -> int | None:
        if user is None or self.personal is None:
            return None
        return self.personal.user_index.get(str(user))

    # --- the pipeline (shared by search and evaluation)
    def candidates(self, text: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """The `cfg.candidates` best items with a positive text score, best first; ties by
        popularity, then catalogue order."""
        s = text
        if exclude is not None and len(exclude):
            s = text.copy()
            s[exclude] = 0.0
        pos = np.flatnonzero(s > 0)
        c = self.cfg.candidates
        if len(pos) > c:
            kth = np.partition(s[pos], len(pos) - c)[len(pos) - c]
            above, tied = pos[s[pos] > kth], pos[s[pos] == kth]
            tied = tied[np.lexsort((tied, -self.popularity[tied]))][: c - len(above)]
            pos = np.concatenate([above, tied])
        return pos[np.lexsort((pos, -self.popularity[pos], -s[pos]))]

    def features(self, cand: np.ndarray, text: np.ndarray, u: int | None) -> np.ndarray:
        """[C, 3] standardised (text, personal, popularity) of the candidates."""
        f = np.zeros((len(cand), 3))
        f[:, 0] = _zscore(text[cand])
        if u is not None and self.personal is not None:
            f[:, 1] = _zscore(self.personal.scores(u, cand))
        f[:, 2] = _zscore(self.log_pop[cand])
        return f

    def rank(self, text: np.ndarray, u: int | None,
             exclude: np.ndarray | None = None) -> _Ranked:
        cand = self.candidates(text, exclude)
        f = self.features(cand, text, u)
        b = f @ self.blend.vector(u is not None)
        order = np.lexsort((cand, -self.popularity[cand], -text[cand], -b))
        return _Ranked(cand[order], b[order], f[order])

    def fallback_scores(self, u: int | None) -> np.ndarray:
        """Order of the items past the candidates (after text): personal, else popularity."""
        if u is not None and self.personal is not None:
            return np.nan_to_num(self.personal.scores(u), nan=-np.inf)
        return self.log_pop

    def rest(self, text: np.ndarray, u: int | None, taken: np.ndarray,
             exclude: np.ndarray | None, n: int) -> np.ndarray:
        """The best `n` items outside `taken` and `exclude`: by text, then fallback score."""
        fb = self.fallback_scores(u)
        mask = np.ones(len(text), bool)
        mask[taken] = False
        if exclude is not None:
            mask[exclude] = False
        idx = np.flatnonzero(mask)
        if len(idx) > 4 * n:  # a cheap pre-selection on the primary key keeps this fast
            key = text[idx] * 1e6 + np.clip(np.nan_to_num(fb[idx], neginf=-1e5), -1e5, 1e5)
            idx = idx[np.argpartition(-key, 4 * n)[: 4 * n]]
        order = np.lexsort((idx, -fb[idx], -text[idx]))
        return idx[order][:n]

    # --- the product entry point
    def search(self, query: str, user: str | None = None, k: int = 10,
               exclude_history: bool = False) -> SearchResult:
        """Rank the catalogue for `query` (and `user`, when the run knows them)."""
        if k < 1:
            raise QueryError(f"'k' must be >= 1 (got {k})")
        terms, notes = self.parse(query)
        u = self.user_index(user)
        if user is not None and u is None:
            why = ("no trained run is loaded" if self.personal is None
                   else "the trained run does not know this user")
            notes.append(f"unknown user {_short(user)!r} ({why}): anonymous results "
                         "(text + popularity)")
        hist = self.history.get(str(user)) if user is not None else None
        exclude = hist if exclude_history else None
        text = self.index.scores(terms)
        matches = int((text > 0).sum())
        r = self.rank(text, u, exclude)
        items = list(r.cand[:k])
        if matches == 0:
            notes.append(f"no item matches {_short(query)!r}: showing "
                         + ("items picked for this user" if u is not None else "popular items")
                         + " instead")
        if len(items) < k:
            items += list(self.rest(text, u, r.cand, exclude, k - len(items)))
        pos = {int(i): j for j, i in enumerate(r.cand)}
        hits = []
        hset = set(hist.tolist()) if hist is not None else set()
        for i in items:
            i = int(i)
            ps = self.personal.scores(u, np.array([i]))[0] if u is not None else np.nan
            j = pos.get(i)
            hits.append(Hit(
                item_id=str(self.catalogue.ids[i]), title=self.catalogue.label(i),
                score=float(r.blended[j]) if j is not None else float("nan"),
                text_score=float(text[i]),
                personal_score=None if np.isnan(ps) else float(ps),
                popularity=int(self.popularity[i]),
                matched=self._matched(i, terms),
                reason=self._reason(i, r.features[j] if j is not None else None, u, terms,
                                    text[i], i in hset, user)))
        return SearchResult(query=str(query), terms=terms, user=user,
                            mode="personal" if u is not None else "anonymous", hits=hits,
                            matches=matches, notes=notes)

    def _matched(self, i: int, terms: list[str]) -> list[str]:
        """Query terms found in item i's text."""
        have = self.index.doc_terms[i]
        return [t for t in terms if t in have]

    def _reason(self, i: int, f: np.ndarray | None, u: int | None, terms: list[str],
                text_score: float, seen: bool, user: str | None) -> str:
        matched = self._matched(i, terms)
        parts = []
        if text_score > 0:
            parts.append("matches " + ", ".join(matched[:4]))
        else:
            parts.append("no text match")
        if f is not None:
            w = self.blend.vector(u is not None)
            contrib = dict(zip(FEATURES, w * f))
            main = max(contrib, key=lambda k: contrib[k])
            if contrib[main] <= 0:
                main = "text"
        else:
            main = "personal" if u is not None else "popularity"
        if main == "personal" and u is not None:
            like = self._closest_history(user, i)
            parts.append(f"like {like} you reviewed" if like else "fits your history")
        elif main == "popularity":
            parts.append(f"popular ({int(self.popularity[i]):,} shoppers)")
        elif text_score > 0:
            parts.append("best text match")
        if u is not None and self.personal is not None and not self.personal.item_known[i]:
            parts.append("new to the model: no personal score")
        if seen:
            parts.append("you have it already")
        return "; ".join(parts)

    def _closest_history(self, user: str | None, i: int) -> str | None:
        hist = self.history.get(str(user))
        if hist is None or not len(hist) or self.personal is None \
                or not self.personal.item_known[i]:
            return None
        hist = hist[self.personal.item_known[hist] & (hist != i)]
        if not len(hist):
            return None
        e = self.personal._items0
        v = e[i] / (np.linalg.norm(e[i]) + 1e-12)
        h = e[hist] / (np.linalg.norm(e[hist], axis=1, keepdims=True) + 1e-12)
        best = int(hist[int(np.argmax(h @ v))])
        return repr(_short(self.catalogue.label(best), 40))


def _short(s: object, n: int = 60) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


# ----------------------------------------------------------------------------- metrics

def tie_aware(g: np.ndarray, t: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Expected RR, NDCG@k (one relevant item) and HR@k when the target is tied with t - 1
    others after g strictly better items (t >= 1), all tied orders equally likely."""
    g = np.asarray(g, np.float64)
    t = np.maximum(np.asarray(t, np.float64), 1)
    hi = g + t
    # sum_{r=g+1}^{g+t} 1/r = H(g+t) - H(g); digamma(n+1) = H(n) - euler gamma
    from scipy.special import digamma

    rr = (digamma(hi + 1) - digamma(g + 1)) / t
    disc = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1))]  # disc[j]: ranks 1..j
    lo_k, hi_k = np.minimum(g, k).astype(int), np.minimum(hi, k).astype(int)
    return {"mrr": rr, f"ndcg@{k}": (disc[hi_k] - disc[lo_k]) / t,
            f"hr@{k}": (hi_k - lo_k) / t}


def rank_stats(scores: np.ndarray, target: int, mask: np.ndarray | None = None
               ) -> tuple[int, int]:
    """(items strictly above the target, items tied with it incl. itself) among `mask`."""
    s = scores if mask is None else scores[mask]
    st = scores[target]
    if np.isnan(st):
        st = -np.inf
    s = np.nan_to_num(s, nan=-np.inf)
    return int((s > st).sum()), max(int((s == st).sum()), 1)


# ----------------------------------------------------------------------------- queries

def build_queries(catalogue: Catalogue, users: Sequence[str], items: Sequence[str],
                  slices: Sequence[str] | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """One protocol query per (user, item) pair; pairs whose item is not in the catalogue or
    whose categories give an empty query are skipped and counted."""
    f = pd.DataFrame({"user_id": list(map(str, users)), "item_id": list(map(str, items))})
    f["slice"] = list(slices) if slices is not None else "test"
    pos = f["item_id"].map(catalogue.index)
    missing = pos.isna()
    cache: dict[int, str] = {}

    def q(p: float) -> str:
        p = int(p)
        if p not in cache:
            cache[p] = T.category_query(catalogue.categories[p])
        return cache[p]

    f["query"] = [q(p) if not m else "" for p, m in zip(pos.fillna(-1), missing)]
    empty = (f["query"] == "") & ~missing
    skipped = {"item_not_in_catalogue": int(missing.sum()), "empty_query": int(empty.sum())}
    return f[~missing & ~empty].reset_index(drop=True), skipped


# ----------------------------------------------------------------------------- fitting

def _simplex(step: float, dims: int) -> np.ndarray:
    n = int(round(1 / step))
    pts = [c for c in np.ndindex(*(n + 1,) * (dims - 1)) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in pts], np.float64) / n


@dataclass
class _FitData:
    feats: np.ndarray  # [Q, C, 3], NaN padded
    target_pos: np.ndarray  # [Q] position of the target among the candidates, -1 if absent
    rest_g: np.ndarray  # [Q] stats of the target past the candidates (when absent)
    rest_t: np.ndarray
    n_cand: np.ndarray


def _fit_data(engine: SearchEngine, queries: pd.DataFrame, personal: bool) -> _FitData:
    C = engine.cfg.candidates
    Q = len(queries)
    feats = np.full((Q, C, 3), np.nan)
    tpos = np.full(Q, -1)
    rg, rt, nc = np.zeros(Q), np.ones(Q), np.zeros(Q, int)
    text_cache: dict[str, np.ndarray] = {}
    idx = engine.catalogue.index
    rows = list(zip(queries["user_id"].astype(str), queries["item_id"], queries["query"]))
    for start in range(0, Q, 256):
        block = rows[start: start + 256]
        us = [engine.user_index(user) if personal else None for user, _, _ in block]
        fbs = _fallback_block(engine, us)
        for j, (user, item, query) in enumerate(block):
            q = start + j
            text = text_cache.get(query)
            if text is None:
                text = text_cache[query] = engine.index.scores(engine.parse(query)[0])
            target = idx[item]
            exclude = _exclusion(engine.history.get(user), target)
            cand = engine.candidates(text, exclude)
            nc[q] = len(cand)
            feats[q, : len(cand)] = engine.features(cand, text, us[j])
            hit = np.flatnonzero(cand == target)
            if len(hit):
                tpos[q] = hit[0]
            else:
                rg[q], rt[q] = _rest_stats(text, fbs[j], cand, exclude, target)
    return _FitData(feats, tpos, rg, rt, nc)


def _fallback_block(engine: SearchEngine, us: list[int | None]) -> list[np.ndarray]:
    """`engine.fallback_scores(u)` for a block of users, with one matrix product."""
    known = [j for j, u in enumerate(us) if u is not None]
    out = [engine.log_pop] * len(us)
    if known and engine.personal is not None:
        block = np.nan_to_num(engine.personal.scores_batch(np.array([us[j] for j in known])),
                              nan=-np.inf)
        for r, j in enumerate(known):
            out[j] = block[r]
    return out


def _exclusion(hist: np.ndarray | None, target: int) -> np.ndarray | None:
    if hist is None or not len(hist):
        return None
    return hist[hist != target]


def _rest_stats(text: np.ndarray, fb: np.ndarray, cand: np.ndarray,
                exclude: np.ndarray | None, target: int) -> tuple[int, int]:
    """(g, t) of a target that is not a candidate: after the candidates, the other items rank
    by text, then by the fallback score `fb` (`SearchEngine.fallback_scores`)."""
    tt, ft = text[target], fb[target]
    eq = text == tt
    better = (text > tt) | (eq & (fb > ft))
    tied = eq & (fb == ft)
    g = int(better.sum()) - int(better[cand].sum())
    t = int(tied.sum()) - int(tied[cand].sum())
    if exclude is not None and len(exclude):  # never candidates: candidates() drops them
        g -= int(better[exclude].sum())
        t -= int(tied[exclude].sum())
    return len(cand) + g, max(t, 1)


def _grid_values(d: _FitData, w: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-query tie-aware metrics of the blend `w` on prepared queries."""
    s = d.feats @ w  # [Q, C]
    s[np.isnan(s)] = -np.inf
    has = d.target_pos >= 0
    st = s[np.arange(len(s)), np.maximum(d.target_pos, 0)]
    g = np.where(has, (s > st[:, None]).sum(1), d.rest_g)
    t = np.where(has, (s == st[:, None]).sum(1), d.rest_t)
    return tie_aware(g, t, k)


def _grid_metrics(d: _FitData, w: np.ndarray, k: int) -> dict[str, float]:
    return {m: float(v.mean()) for m, v in _grid_values(d, w, k).items()}


def _best(d: _FitData, grid: np.ndarray, key: str, k: int) -> np.ndarray:
    """The grid point with the best mean `key` (the first of equals: deterministic)."""
    scores = [_grid_metrics(d, w, k)[key] for w in grid]
    return grid[max(range(len(grid)), key=lambda j: (round(scores[j], 12), -j))]


def fit_blend(engine: SearchEngine, queries: pd.DataFrame, cfg: SearchConfig | None = None
              ) -> Blend:
    """Weights maximising mean NDCG@k on `queries` (validation pairs only), by grid search on
    the simplex. The anonymous weights (text + popularity) are fitted first; the personal ones
    are kept only if they beat the anonymous weights on these queries by more than one standard
    error of the paired per-query difference (else personal search uses the anonymous weights:
    a weak model is not allowed to make search worse on noise)."""
    cfg = cfg or engine.cfg
    if queries.empty:
        raise DataError("no validation queries to fit the blend on (the run's validation split "
                        "is empty, or no validation item has categories)")
    key, k = f"ndcg@{cfg.k}", cfg.k
    grid = _simplex(cfg.grid_step, 3)
    text_only = np.array([1.0, 0.0, 0.0])
    out: dict[str, Any] = {}

    d = _fit_data(engine, queries, personal=False)
    w_anon = _best(d, grid[grid[:, 1] == 0], key, k)
    out["anonymous"] = {"val_" + m: v for m, v in _grid_metrics(d, w_anon, k).items()}
    out["anonymous"]["val_text_only_" + key] = _grid_metrics(d, text_only, k)[key]
    w_pers = w_anon
    if engine.personal is not None:
        d = _fit_data(engine, queries, personal=True)
        best = _best(d, grid, key, k)
        diff = _grid_values(d, best, k)[key] - _grid_values(d, w_anon, k)[key]
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("inf")
        used = bool(diff.mean() > se)
        w_pers = best if used else w_anon
        out["personal"] = {"val_" + m: v for m, v in _grid_metrics(d, w_pers, k).items()}
        out["personal"].update({
            "val_text_only_" + key: _grid_metrics(d, text_only, k)[key],
            "best_weights": {f: round(float(v), 6) for f, v in zip(FEATURES, best)},
            "gain_over_anonymous": float(diff.mean()), "gain_se": se,
            "personal_weights_used": used})
    out.update(queries=len(queries), grid_step=cfg.grid_step, objective=key,
               candidates=cfg.candidates)
    as_dict = lambda w: {f: round(float(v), 6) for f, v in zip(FEATURES, w)}  # noqa: E731
    return Blend(personal=as_dict(w_pers), anonymous=as_dict(w_anon), fitted=out)


# ----------------------------------------------------------------------------- evaluation

def evaluate(engine: SearchEngine, queries: pd.DataFrame, cfg: SearchConfig | None = None,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Per-method MRR / NDCG@k / HR@k over `queries` (user_id, item_id, query, slice)."""
    cfg = cfg or engine.cfg
    k = cfg.k
    idx = engine.catalogue.index
    n = len(engine.catalogue)
    stats: dict[str, tuple[list[int], list[int]]] = {m: ([], []) for m in METHODS}
    text_cache: dict[str, np.ndarray] = {}
    users = np.array([-1 if engine.user_index(u) is None else engine.user_index(u)
                      for u in queries["user_id"]], dtype=np.int64)
    targets = np.array([idx[i] for i in queries["item_id"]], dtype=np.int64)
    texts, user_ids = queries["query"].tolist(), queries["user_id"].astype(str).tolist()
    chunk = 256
    for start in range(0, len(queries), chunk):
        sl = slice(start, start + chunk)
        us, ts = users[sl], targets[sl]
        rows = np.arange(len(us))
        for q in texts[sl]:
            if q not in text_cache:
                text_cache[q] = engine.index.scores(engine.parse(q)[0])
        text = np.stack([text_cache[q] for q in texts[sl]])
        excl = [_exclusion(engine.history.get(u), t) for u, t in zip(user_ids[sl], ts)]
        _extend(stats, "bm25", _block_stats(text, ts, excl))
        pop = np.broadcast_to(engine.popularity, (len(us), n))
        _extend(stats, "popularity", _block_stats(pop, ts, excl))
        known = us >= 0
        if engine.personal is not None and known.any():
            pers = np.full((len(us), n), -np.inf)
            pers[known] = np.nan_to_num(engine.personal.scores_batch(us[known]), nan=-np.inf)
            pers[~known] = 0.0  # no personal score: the GNN ranking is uninformed (all tied)
        else:
            pers = np.zeros((len(us), n))
        _extend(stats, "gnn", _block_stats(pers, ts, excl))
        for j in rows:
            u = int(us[j]) if us[j] >= 0 else None
            fallback = {None: engine.log_pop}
            if u is not None:
                fallback[u] = pers[j]
            for method, uu in (("anonymous", None), ("reranked", u)):
                r = engine.rank(text[j], uu, excl[j])
                hit = np.flatnonzero(r.cand == ts[j])
                if len(hit):
                    b = r.blended
                    gt = (int((b > b[hit[0]]).sum()), int((b == b[hit[0]]).sum()))
                else:
                    gt = _rest_stats(text[j], fallback[uu], r.cand, excl[j], int(ts[j]))
                stats[method][0].append(gt[0])
                stats[method][1].append(gt[1])
        if progress:
            progress(len(us))
    out: dict[str, Any] = {}
    slices = queries["slice"].astype(str).to_numpy()
    names = np.unique(slices)
    for method, (g, t) in stats.items():
        for name, v in tie_aware(np.array(g), np.array(t), k).items():
            out[f"{method}.{name}"] = float(v.mean())
            if len(names) > 1:
                for s_ in names:
                    out.setdefault("slices", {}).setdefault(str(s_), {})[f"{method}.{name}"] = \
                        float(v[slices == s_].mean())
    out["queries"] = len(queries)
    for s_ in out.get("slices", {}):
        out["slices"][s_]["queries"] = int((slices == s_).sum())
    return out


def _block_stats(scores: np.ndarray, targets: np.ndarray,
                 exclude: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(g, t) per row of a [B, N] score block, each row's excluded items left out."""
    rows = np.arange(len(targets))
    st = scores[rows, targets][:, None]
    g = (scores > st).sum(1)
    t = (scores == st).sum(1)
    for j, ex in enumerate(exclude):
        if ex is not None and len(ex):
            s = scores[j, ex]
            g[j] -= int((s > st[j, 0]).sum())
            t[j] -= int((s == st[j, 0]).sum())
    return g, np.maximum(t, 1)


def _extend(stats, method: str, gt: tuple[np.ndarray, np.ndarray]) -> None:
    stats[method][0].extend(gt[0].tolist())
    stats[method][1].extend(gt[1].tolist())


def latency(engine: SearchEngine, queries: pd.DataFrame, n: int, seed: int = 0
            ) -> dict[str, float]:
    """End-to-end `search` time per query (warm: one untimed call first), in ms."""
    if queries.empty:
        return {}
    sample = queries.sample(min(n, len(queries)), random_state=seed)
    rows = list(zip(sample["query"], sample["user_id"]))
    engine.search(rows[0][0], rows[0][1])  # warm up
    times = []
    for q, u in rows:
        t0 = time.perf_counter()
        engine.search(q, u, k=engine.cfg.k)
        times.append((time.perf_counter() - t0) * 1e3)
    a = np.array(times)
    return {"latency_p50_ms": float(np.percentile(a, 50)),
            "latency_p95_ms": float(np.percentile(a, 95)),
            "latency_mean_ms": float(a.mean()), "latency_queries": len(a)}


def _nan_safe(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _nan_safe(v) for k, v in d.items()}
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


# ----------------------------------------------------------------------------- runs

SEARCH_DIR = "search"
# = gnn.train.CHECKPOINT, not imported from there: serving from the cache needs no torch
CHECKPOINT = "checkpoint"


@dataclass
class RunAssets:
    """What search needs from a trained run, in the snapshot's index space: user and item
    vectors, item popularity and each user's history (known interactions)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_emb: np.ndarray
    item_emb: np.ndarray
    popularity: np.ndarray  # [n_items] interactions per item
    hist_ptr: np.ndarray  # CSR over users: items of user u = hist_items[ptr[u]:ptr[u+1]]
    hist_items: np.ndarray

    @classmethod
    def from_model(cls, model, graph) -> RunAssets:
        """From a `gnn.models` recommender and a `gnn.data.Graph` (whose history is known)."""
        u, i = model.embeddings(graph)
        if u.is_sparse or i.is_sparse:
            raise DataError(f"the run's model ({model.name}) has no dense user/item vectors; "
                            "search needs mf, lightgcn or hgt: train one of those")
        h = graph.history.numpy()
        n_users, n_items = len(graph.ids["user"]), len(graph.ids["item"])
        order = np.lexsort((h[1], h[0]))
        h = h[:, order]
        ptr = np.r_[0, np.cumsum(np.bincount(h[0], minlength=n_users))]
        return cls(graph.ids["user"], graph.ids["item"], u.numpy().astype(np.float32),
                   i.numpy().astype(np.float32),
                   np.bincount(h[1], minlength=n_items).astype(np.float64), ptr, h[1].copy())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, user_ids=self.user_ids.astype(str), item_ids=self.item_ids.astype(str),
                 user_emb=self.user_emb, item_emb=self.item_emb, popularity=self.popularity,
                 hist_ptr=self.hist_ptr, hist_items=self.hist_items)

    @classmethod
    def load(cls, path: Path) -> RunAssets:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["user_ids"].astype(object), z["item_ids"].astype(object),
                       z["user_emb"], z["item_emb"], z["popularity"], z["hist_ptr"],
                       z["hist_items"])

    def engine(self, catalogue: Catalogue, blend: Blend | None = None,
               cfg: SearchConfig | None = None, index: TextIndex | None = None
               ) -> SearchEngine:
        """A search engine over `catalogue` with these vectors, popularity and histories."""
        pos = pd.Index(self.item_ids).get_indexer(catalogue.ids)  # catalogue -> run item
        ok = pos >= 0
        pop = np.zeros(len(catalogue))
        pop[ok] = self.popularity[pos[ok]]
        to_cat = np.full(len(self.item_ids), -1)
        to_cat[pos[ok]] = np.flatnonzero(ok)
        history: dict[str, np.ndarray] = {}
        for u, uid in enumerate(self.user_ids):
            items = to_cat[self.hist_items[self.hist_ptr[u]: self.hist_ptr[u + 1]]]
            items = items[items >= 0]
            if len(items):
                history[str(uid)] = items
        personal = Personal.aligned(self.user_ids, self.user_emb, self.item_ids, self.item_emb,
                                    catalogue)
        return SearchEngine(catalogue, popularity=pop, personal=personal, blend=blend,
                            history=history, cfg=cfg, index=index)


def search_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SEARCH_DIR


def check_run(run_dir: Path) -> Path:
    """The run's model directory; RunNotFound naming the fix when the run is not trained."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunNotFound(f"no run named {run_dir.name!r} in {run_dir.parent}: train one with "
                          f"`kgrec train --run {run_dir.name}`")
    model_dir = run_dir / CHECKPOINT
    if not (model_dir / "model.pt").exists():
        raise RunNotFound(f"run {run_dir.name!r} has no trained model ({model_dir}/model.pt): "
                          f"train it with `kgrec train --run {run_dir.name}`")
    return model_dir


def latest_run(runs_dir: Path) -> Path | None:
    """The most recently trained run under `runs_dir` (None when there is none)."""
    runs = [p for p in Path(runs_dir).glob(f"*/{CHECKPOINT}/model.pt")] \
        if Path(runs_dir).is_dir() else []
    return max(runs, key=lambda p: p.stat().st_mtime).parents[1] if runs else None


SnapshotFn = Callable[[], Any]  # returns the GraphSnapshot a run was trained on


def load_snapshot(run_dir: Path, snapshot_fn: SnapshotFn | None = None):
    """The snapshot the run was trained on: `snapshot_fn()` when given (the CLI passes the
    training command's loader), else `runs/NAME/snapshot/`."""
    if snapshot_fn is not None:
        return snapshot_fn()
    from gnn.snapshot import GraphSnapshot

    path = Path(run_dir) / "snapshot"
    if not (path / "graph.pt").exists():
        raise RunNotFound(f"run {Path(run_dir).name!r} has no snapshot ({path}): search needs "
                          "the graph the run was trained on; train the run again")
    return GraphSnapshot.load(path)


def load_model(run_dir: Path):
    from gnn.models.base import Recommender

    return Recommender.load(check_run(run_dir))


def catalogue_for(run_dir: Path, open_store: Callable[[], Any] | None = None,
                  refresh: bool = False, snapshot_fn: SnapshotFn | None = None
                  ) -> tuple[Catalogue, list[str]]:
    """The run's item text: the cached copy, else read from the graph (and cached), else, when
    the graph cannot be read, the snapshot's id maps (no titles: says so)."""
    from core.errors import GraphError

    path = search_dir(run_dir) / "catalogue.parquet"
    notes: list[str] = []
    if path.exists() and not refresh:
        cached = _cached(Catalogue.load, path, notes)
        if cached is not None:
            return cached, notes
    cat = None
    if open_store is not None:
        try:
            with open_store() as store:
                cat = Catalogue.from_store(store)
        except (GraphError, DataError) as e:
            notes.append(f"item text from the run's snapshot, not the graph ({e}): no titles")
    if cat is None:
        cat = Catalogue.from_snapshot(load_snapshot(run_dir, snapshot_fn))
        if open_store is None:
            notes.append("item text from the run's snapshot (no graph given): no titles")
    cat.save(path)
    return cat, notes


def _cached(load: Callable[[Path], Any], path: Path, notes: list[str]) -> Any:
    """`load(path)`, or None (and a note) when the cached file cannot be read: it is rebuilt."""
    try:
        return load(path)
    except Exception as e:  # noqa: BLE001 - any unreadable cache is rebuilt, never fatal
        log.warning("%s: unreadable (%s); rebuilding it", path, e)
        notes.append(f"{path.name} could not be read ({type(e).__name__}): rebuilt it")
        return None


def serving_assets(run_dir: Path, snapshot_fn: SnapshotFn | None = None) -> RunAssets:
    """Vectors, popularity and histories for serving: every interaction of the run's snapshot
    is history (cached in runs/NAME/search/serving.npz, rebuilt when the model is newer)."""
    model_dir = check_run(run_dir)
    path = search_dir(run_dir) / "serving.npz"
    if path.exists() and path.stat().st_mtime >= (model_dir / "model.pt").stat().st_mtime:
        cached = _cached(RunAssets.load, path, [])
        if cached is not None:
            return cached
    from gnn.data import graph_from_snapshot

    model = load_model(run_dir)
    snapshot = load_snapshot(run_dir, snapshot_fn)
    graph = graph_from_snapshot(snapshot, model.meta["target"][1])
    assets = RunAssets.from_model(model, graph)
    assets.save(path)
    return assets


def _split_assets(run_dir: Path, snapshot_fn: SnapshotFn | None = None):
    """(split, val assets, test assets, snapshot) of a run: the validation engine sees the
    training graph (its history = train), the test engine the evaluation graph (train + val)."""
    from gnn.data import make_split
    from gnn.runtime import seed_everything

    model = load_model(run_dir)
    snapshot = load_snapshot(run_dir, snapshot_fn)
    seed_everything(model.cfg.seed)
    split = make_split(snapshot, model.cfg)
    return (split, RunAssets.from_model(model, split.train_graph),
            RunAssets.from_model(model, split.eval_graph), snapshot)


def _pairs_frame(snapshot, pairs, slice_name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    p = pairs.numpy()
    return (snapshot.ids["user"][p[0]], snapshot.ids["item"][p[1]], [slice_name] * p.shape[1])


def val_queries(split, snapshot, catalogue: Catalogue, cfg: SearchConfig
                ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The validation queries the blend is fitted on (a seeded sample of `fit_queries`)."""
    q, skipped = build_queries(catalogue, *_pairs_frame(snapshot, split.val, "val"))
    if len(q) > cfg.fit_queries:
        q = q.sample(cfg.fit_queries, random_state=cfg.seed).sort_index().reset_index(drop=True)
    return q, skipped


def fit_run_blend(run_dir: Path, catalogue: Catalogue, cfg: SearchConfig | None = None,
                  split_assets=None, snapshot_fn: SnapshotFn | None = None) -> Blend:
    """Fit the blend on the run's validation queries and save it (runs/NAME/search/)."""
    cfg = cfg or SearchConfig()
    split, val_assets, _, snapshot = split_assets or _split_assets(run_dir, snapshot_fn)
    q, skipped = val_queries(split, snapshot, catalogue, cfg)
    q.to_csv(search_dir(run_dir) / "queries_val.csv", index=False)
    blend = fit_blend(val_assets.engine(catalogue, cfg=cfg), q, cfg)
    blend.fitted["skipped"] = skipped
    blend.save(search_dir(run_dir) / "blend.json")
    return blend


def load_blend(run_dir: Path, catalogue: Catalogue, cfg: SearchConfig | None = None,
               snapshot_fn: SnapshotFn | None = None) -> tuple[Blend, list[str]]:
    path = search_dir(run_dir) / "blend.json"
    notes: list[str] = []
    if path.exists():
        cached = _cached(Blend.load, path, notes)
        if cached is not None:
            return cached, notes
    blend = fit_run_blend(run_dir, catalogue, cfg, snapshot_fn=snapshot_fn)
    return blend, notes + [f"fitted the blend on {blend.fitted.get('queries', 0):,} validation queries "
                   f"(saved to {path})"]


def load_engine(run_dir: Path, open_store: Callable[[], Any] | None = None,
                cfg: SearchConfig | None = None, snapshot_fn: SnapshotFn | None = None
                ) -> tuple[SearchEngine, list[str]]:
    """The search engine of a trained run, as `kgrec search` uses it: cached item text (read
    from the graph on first use), serving vectors, the fitted blend (fitted on first use)."""
    check_run(run_dir)
    cfg = cfg or SearchConfig()
    catalogue, notes = catalogue_for(run_dir, open_store, snapshot_fn=snapshot_fn)
    assets = serving_assets(run_dir, snapshot_fn)
    blend, more = load_blend(run_dir, catalogue, cfg, snapshot_fn)
    return assets.engine(catalogue, blend=blend, cfg=cfg), notes + more


def evaluate_run(run_dir: Path, catalogue: Catalogue, cfg: SearchConfig | None = None,
                 queries_file: Path | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 snapshot_fn: SnapshotFn | None = None) -> dict[str, Any]:
    """The protocol on a trained run: fit the blend on validation queries, evaluate on the test
    pairs (or on `queries_file`: user_id, item_id, query[, slice]), time the pipeline; writes
    the queries, blend.json and runs/NAME/search_metrics.json. Returns the metrics."""
    cfg = cfg or SearchConfig()
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    sa = _split_assets(run_dir, snapshot_fn)
    split, _, test_assets, snapshot = sa
    if progress:
        progress("fit the blend on validation queries", 0, 1)
    blend = fit_run_blend(run_dir, catalogue, cfg, sa)
    if progress:
        progress("fit the blend on validation queries", 1, 1)
    engine = test_assets.engine(catalogue, blend=blend, cfg=cfg)
    if queries_file is not None:
        queries, skipped = read_queries(queries_file, engine)
    else:
        u1, i1, s1 = _pairs_frame(snapshot, split.test, "warm")
        u2, i2, s2 = _pairs_frame(snapshot, split.cold_test, "cold")
        queries, skipped = build_queries(catalogue, np.r_[u1, u2], np.r_[i1, i2], s1 + s2)
        queries.to_csv(search_dir(run_dir) / "queries_test.csv", index=False)
    total = len(queries)
    if cfg.eval_queries is not None and total > cfg.eval_queries:
        queries = queries.sample(cfg.eval_queries, random_state=cfg.seed).sort_index()
        queries = queries.reset_index(drop=True)
    if queries.empty:
        raise DataError("no test query left to evaluate (see the skipped counts: "
                        f"{skipped})")
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress("evaluate test queries", done[0], len(queries))

    metrics = evaluate(engine, queries, cfg, progress=step)
    lat = latency(engine, queries, cfg.latency_queries, cfg.seed)
    out: dict[str, Any] = {
        "run": run_dir.name, "model": _model_name(run_dir),
        **{k: v for k, v in metrics.items() if k != "slices"},
        **lat,
        "ratio.reranked_vs_bm25.ndcg@10": (metrics[f"reranked.ndcg@{cfg.k}"]
                                           / metrics[f"bm25.ndcg@{cfg.k}"])
        if metrics[f"bm25.ndcg@{cfg.k}"] > 0 else None,
        "slices": metrics.get("slices", {}),
        "queries_available": total, "skipped": skipped,
        "blend": {"personal": blend.personal, "anonymous": blend.anonymous,
                  "fitted": blend.fitted},
        "protocol": {
            "query": "the target item's category names, lower-cased, stop words and repeated "
                     "words removed (Ai et al., SIGIR 2017)",
            "queries_file": str(queries_file) if queries_file else
            str(search_dir(run_dir) / "queries_test.csv"),
            "pairs": "held-out test (user, item) pairs of the run's split (warm + cold items)"
            if queries_file is None else "from the queries file",
            "history_excluded": True,
            "ties": "expected value under a random order of tied items",
            "item_text": "title, else brand + category names",
            "catalogue_source": catalogue.source, "catalogue_items": len(catalogue),
        },
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = _nan_safe(out)
    (run_dir / "search_metrics.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _model_name(run_dir: Path) -> str | None:
    p = Path(run_dir) / "config.json"
    try:
        return json.loads(p.read_text()).get("model")
    except (OSError, ValueError):
        return None


def read_queries(path: Path, engine: SearchEngine) -> tuple[pd.DataFrame, dict[str, int]]:
    """Queries from a CSV (user_id, item_id, query[, slice]); rows naming an unknown user or item,
    or with an empty query, are skipped and counted."""
    from core.errors import InputFileError

    try:
        f = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: cannot read the queries file ({e})") from None
    need = {"user_id", "item_id", "query"}
    if not need <= set(f.columns):
        raise InputFileError(f"{path}: a queries file needs the columns user_id, item_id, query "
                             f"(got {', '.join(f.columns) or 'none'})")
    if "slice" not in f.columns:
        f["slice"] = "file"
    item_ok = f["item_id"].isin(engine.catalogue.index)
    user_ok = f["user_id"].map(lambda u: engine.user_index(u) is not None)
    q_ok = f["query"].map(lambda q: bool(T.terms(q)))
    skipped = {"unknown_item": int((~item_ok).sum()),
               "unknown_user": int((item_ok & ~user_ok).sum()),
               "empty_query": int((item_ok & user_ok & ~q_ok).sum())}
    keep = item_ok & user_ok & q_ok
    return f[keep][["user_id", "item_id", "query", "slice"]].reset_index(drop=True), skipped


def graph_engine(store, cfg: SearchConfig | None = None) -> SearchEngine:
    """Anonymous search straight from the graph (no trained run): item text and interaction
    counts; the default (unfitted) text + popularity weights."""
    from graph import queries as Q

    catalogue = Catalogue.from_store(store)
    pop = np.zeros(len(catalogue))
    idx = pd.Index(catalogue.ids)
    for stmt in Q.ITEM_POPULARITY.values():
        f = store.read_df(stmt)
        if not f.empty:
            pos = idx.get_indexer(f["id"].astype(str))
            ok = pos >= 0
            np.add.at(pop, pos[ok], f["n"].to_numpy(np.float64)[ok])
    return SearchEngine(catalogue, popularity=pop, cfg=cfg)
