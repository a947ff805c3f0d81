"""The product-search protocol of Ai et al. (SIGIR 2017): queries, tie-aware metrics, methods.

One query per held-out (user, item) pair, built from the item's category names
(`search.text.category_query`); the target is the item. Methods: `bm25` (text alone over all
items), `popularity`, `gnn` (user · item over all items), `anonymous` (the pipeline without a
user) and `reranked` (the pipeline). The user's history is left out of every ranking alike.

Ties are counted at their expected value under a random order of the tied items (McSherry &
Najork, ECIR 2008): with g items strictly better and t tied (target included), the target's rank
is uniform on g+1..g+t, so e.g. RR = mean(1/r) over those ranks. Category queries make BM25 tie a
lot; this counts those ties honestly instead of letting item-id order decide.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from search import text as T
from search.catalogue import Catalogue
from search.config import METHODS, SearchConfig
from search.engine import SearchEngine
from search.index import TextMatch


def tie_aware(g: np.ndarray, t: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Expected RR, NDCG@k (one relevant item) and HR@k when the target is tied with t - 1
    others after g strictly better items (t >= 1), all tied orders equally likely."""
    from scipy.special import digamma

    g = np.asarray(g, np.float64)
    t = np.maximum(np.asarray(t, np.float64), 1)
    hi = g + t
    # sum_{r=g+1}^{g+t} 1/r = H(g+t) - H(g); digamma(n+1) = H(n) - euler gamma
    rr = (digamma(hi + 1) - digamma(g + 1)) / t
    disc = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1))]  # disc[j]: ranks 1..j
    lo_k, hi_k = np.minimum(g, k).astype(int), np.minimum(hi, k).astype(int)
    return {"mrr": rr, f"ndcg@{k}": (disc[hi_k] - disc[lo_k]) / t,
            f"hr@{k}": (hi_k - lo_k) / t}


def exclusion(hist: np.ndarray | None, target: int) -> np.ndarray | None:
    """The user's history without the target: left out of the ranking."""
    if hist is None or not len(hist):
        return None
    return hist[hist != target]


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


class MatchCache:
    """`engine.match(query)` once per distinct query text (protocol queries repeat a lot)."""

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine
        self.cache: dict[str, TextMatch] = {}

    def __call__(self, query: str) -> TextMatch:
        m = self.cache.get(query)
        if m is None:
            m = self.cache[query] = self.engine.match(query)
        return m


# ----------------------------------------------------------------------------- evaluation

def evaluate(engine: SearchEngine, queries: pd.DataFrame, cfg: SearchConfig | None = None,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Per-method MRR / NDCG@k / HR@k over `queries` (user_id, item_id, query, slice), overall
    and per slice."""
    cfg = cfg or engine.cfg
    k, n = cfg.k, len(engine.catalogue)
    stats: dict[str, tuple[list[int], list[int]]] = {m: ([], []) for m in METHODS}
    match = MatchCache(engine)
    users = np.array([-1 if (u := engine.user_index(x)) is None else u
                      for x in queries["user_id"]], dtype=np.int64)
    targets = np.array([engine.catalogue.index[i] for i in queries["item_id"]], dtype=np.int64)
    texts, user_ids = queries["query"].tolist(), queries["user_id"].astype(str).tolist()
    for start in range(0, len(queries), 256):
        sl = slice(start, start + 256)
        us, ts = users[sl], targets[sl]
        ms = [match(q) for q in texts[sl]]
        excl = [exclusion(engine.history.get(u), t) for u, t in zip(user_ids[sl], ts)]
        _extend(stats, "bm25", block_stats(np.stack([m.scores for m in ms]), ts, excl))
        _extend(stats, "popularity", block_stats(np.broadcast_to(engine.popularity, (len(us), n)),
                                                 ts, excl))
        known = us >= 0
        pers = np.zeros((len(us), n))  # no personal score: the GNN ranking is uninformed (tied)
        if engine.personal is not None and known.any():
            pers[known] = np.nan_to_num(engine.personal.scores_batch(us[known]), nan=-np.inf)
        _extend(stats, "gnn", block_stats(pers, ts, excl))
        for j, m in enumerate(ms):
            u = int(us[j]) if us[j] >= 0 else None
            for method, uu in (("anonymous", None), ("reranked", u)):
                g, t = pipeline_stats(engine, m, uu, excl[j], int(ts[j]),
                                      pers[j] if uu is not None else engine.prior)
                stats[method][0].append(g)
                stats[method][1].append(t)
        if progress:
            progress(len(us))
    return _summary(stats, queries["slice"].astype(str).to_numpy(), k)


def pipeline_stats(engine: SearchEngine, m: TextMatch, u: int | None,
                   exclude: np.ndarray | None, target: int, fallback: np.ndarray
                   ) -> tuple[int, int]:
    """(g, t) of the target in `engine.search`'s ranking (candidates, then the rest)."""
    r = engine.rank(m, u, exclude)
    hit = np.flatnonzero(r.cand == target)
    if len(hit):
        return r.stats(int(hit[0]))
    return engine.rest_stats(m, fallback, r.cand, exclude, target)


def block_stats(scores: np.ndarray, targets: np.ndarray,
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
    stats[method][0].extend(np.asarray(gt[0]).tolist())
    stats[method][1].extend(np.asarray(gt[1]).tolist())


def _summary(stats, slices: np.ndarray, k: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = np.unique(slices)
    for method, (g, t) in stats.items():
        for name, v in tie_aware(np.array(g), np.array(t), k).items():
            out[f"{method}.{name}"] = float(v.mean()) if len(v) else float("nan")
            if len(names) > 1:
                for s in names:
                    out.setdefault("slices", {}).setdefault(str(s), {})[f"{method}.{name}"] = \
                        float(v[slices == s].mean())
    out["queries"] = len(slices)
    for s in out.get("slices", {}):
        out["slices"][s]["queries"] = int((slices == s).sum())
    return out


def latency(engine: SearchEngine, queries: pd.DataFrame, n: int, seed: int = 0,
            personal: bool = True) -> dict[str, float]:
    """End-to-end `search` time per query (warm: one untimed call first), in ms; with the
    query's user (`personal`) or without."""
    if queries.empty:
        return {}
    sample = queries.sample(min(n, len(queries)), random_state=seed)
    rows = list(zip(sample["query"], sample["user_id"] if personal else [None] * len(sample)))
    engine.search(*rows[0])  # warm up
    times = []
    for q, u in rows:
        t0 = time.perf_counter()
        engine.search(q, u, k=engine.cfg.k)
        times.append((time.perf_counter() - t0) * 1e3)
    a = np.array(times)
    return {"latency_p50_ms": float(np.percentile(a, 50)),
            "latency_p95_ms": float(np.percentile(a, 95)),
            "latency_mean_ms": float(a.mean()), "latency_queries": len(a)}
