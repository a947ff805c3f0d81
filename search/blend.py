"""The blend of search's three standardised features, and its fit on validation queries.

`Blend` holds two weight sets (each sums to 1): `personal` for a shopper the run knows,
`anonymous` (text + popularity) otherwise. `fit_blend` picks them by grid search on the simplex,
maximising mean NDCG@k of the whole pipeline (match level first, then the blend) on validation
pairs only; ties are counted at their expected value, as the protocol does.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import DataError
from core.io import atomic_write_json
from search.config import FEATURES, SearchConfig

if TYPE_CHECKING:
    import pandas as pd

    from search.engine import SearchEngine


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
        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> Blend:
        d = json.loads(Path(path).read_text())
        return cls(personal=d["personal"], anonymous=d["anonymous"], fitted=d.get("fitted", {}))


def combine(f: np.ndarray, known: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Score parts [..., 3] of features `f` [..., 3] under weights `w` [3]: w * f over the known
    features, the weights renormalised over them (an item without interactions has no
    popularity, an item the run does not know no personal score: their weight goes to the
    features the item has); with no weight left, the text feature alone. Sum them for the score.
    """
    wk = known * w
    den = wk.sum(-1, keepdims=True)
    parts = np.where(den > 0, f * wk / np.where(den > 0, den, 1.0), 0.0)
    parts[..., 0] = np.where(den[..., 0] > 0, parts[..., 0], f[..., 0])
    return parts


def simplex(step: float, dims: int) -> np.ndarray:
    """Every weight vector on the simplex grid of `step`."""
    n = int(round(1 / step))
    pts = [c for c in np.ndindex(*(n + 1,) * (dims - 1)) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in pts], np.float64) / n


@dataclass
class FitData:
    """The candidates of each query, prepared once for every grid point."""

    feats: np.ndarray  # [Q, C, 3], NaN padded
    known: np.ndarray  # [Q, C, 3] which features each candidate has (padding: none)
    level: np.ndarray  # [Q, C] match levels (padding: -1)
    target_pos: np.ndarray  # [Q] position of the target among the candidates, -1 if absent
    rest_g: np.ndarray  # [Q] stats of the target past the candidates (when absent)
    rest_t: np.ndarray

    @classmethod
    def prepare(cls, engine: SearchEngine, queries: pd.DataFrame, personal: bool) -> FitData:
        from search.protocol import MatchCache, exclusion

        C, Q = engine.cfg.candidates, len(queries)
        feats, level = np.full((Q, C, 3), np.nan), np.full((Q, C), -1)
        known = np.zeros((Q, C, 3), bool)
        tpos, rg, rt = np.full(Q, -1), np.zeros(Q), np.ones(Q)
        match, idx = MatchCache(engine), engine.catalogue.index
        rows = list(zip(queries["user_id"].astype(str), queries["item_id"], queries["query"]))
        for start in range(0, Q, 256):
            block = rows[start: start + 256]
            us = [engine.user_index(user) if personal else None for user, _, _ in block]
            fbs = _fallback_block(engine, us)
            for j, (user, item, query) in enumerate(block):
                q, m, target = start + j, match(query), idx[item]
                exclude = exclusion(engine.history.get(user), target)
                cand = engine.candidates(m, exclude)
                feats[q, : len(cand)], known[q, : len(cand)] = engine.features(cand, m, us[j])
                level[q, : len(cand)] = engine.levels(m)[cand]
                hit = np.flatnonzero(cand == target)
                if len(hit):
                    tpos[q] = hit[0]
                else:
                    rg[q], rt[q] = engine.rest_stats(m, fbs[j], cand, exclude, target)
        return cls(feats, known, level, tpos, rg, rt)

    def values(self, w: np.ndarray, k: int) -> dict[str, np.ndarray]:
        """Per-query tie-aware metrics of the blend `w`: the order is level, then blend."""
        from search.protocol import tie_aware

        b = combine(self.feats, self.known, w).sum(-1)  # [Q, C]
        # |b| <= sqrt(C) (weights sum to 1, features are z-scores): a level step outweighs it
        s = self.level * (2.0 * math.sqrt(self.feats.shape[1]) + 2.0) + b
        s[np.isnan(s)] = -np.inf
        has = self.target_pos >= 0
        st = s[np.arange(len(s)), np.maximum(self.target_pos, 0)]
        g = np.where(has, (s > st[:, None]).sum(1), self.rest_g)
        t = np.where(has, (s == st[:, None]).sum(1), self.rest_t)
        return tie_aware(g, t, k)

    def metrics(self, w: np.ndarray, k: int) -> dict[str, float]:
        return {m: float(v.mean()) for m, v in self.values(w, k).items()}

    def best(self, grid: np.ndarray, key: str, k: int) -> np.ndarray:
        """The grid point with the best mean `key` (the first of equals: deterministic)."""
        scores = [self.metrics(w, k)[key] for w in grid]
        return grid[max(range(len(grid)), key=lambda j: (round(scores[j], 12), -j))]


def _fallback_block(engine: SearchEngine, us: list[int | None]) -> list[np.ndarray]:
    """`engine.fallback_scores(u)` for a block of users, with one matrix product."""
    known = [j for j, u in enumerate(us) if u is not None]
    out = [engine.prior] * len(us)
    if known and engine.personal is not None:
        block = np.nan_to_num(engine.personal.scores_batch(np.array([us[j] for j in known])),
                              nan=-np.inf)
        for r, j in enumerate(known):
            out[j] = block[r]
    return out


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
    grid = simplex(cfg.grid_step, 3)
    text_only = np.array([1.0, 0.0, 0.0])
    out: dict[str, Any] = {}

    d = FitData.prepare(engine, queries, personal=False)
    w_anon = d.best(grid[grid[:, 1] == 0], key, k)
    out["anonymous"] = {"val_" + m: v for m, v in d.metrics(w_anon, k).items()}
    out["anonymous"]["val_text_only_" + key] = d.metrics(text_only, k)[key]
    w_pers = w_anon
    if engine.personal is not None:
        d = FitData.prepare(engine, queries, personal=True)
        best = d.best(grid, key, k)
        diff = d.values(best, k)[key] - d.values(w_anon, k)[key]
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("inf")
        used = bool(diff.mean() > se)
        w_pers = best if used else w_anon
        out["personal"] = {"val_" + m: v for m, v in d.metrics(w_pers, k).items()}
        out["personal"].update({
            "val_text_only_" + key: d.metrics(text_only, k)[key],
            "best_weights": _as_dict(best),
            "gain_over_anonymous": float(diff.mean()), "gain_se": se,
            "personal_weights_used": used})
    out.update(queries=len(queries), grid_step=cfg.grid_step, objective=key,
               candidates=cfg.candidates, match_first=cfg.match_first)
    return Blend(personal=_as_dict(w_pers), anonymous=_as_dict(w_anon), fitted=out)


def _as_dict(w: np.ndarray) -> dict[str, float]:
    return {f: round(float(v), 6) for f, v in zip(FEATURES, w)}
