"""What a search returns: hits with their scores, reasons and score parts; the candidates of
one query as the engine ranked them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Hit:
    item_id: str
    title: str
    score: float  # the blended score (standardised units; NaN past the candidates)
    text_score: float  # BM25
    personal_score: float | None  # user · item; None without a user or for unknown items
    popularity: int  # interactions in the training data
    matched: list[str]  # query terms found in the item text
    reason: str
    parts: dict[str, float] | None = None  # weight x standardised feature (they sum to score)


@dataclass
class SearchResult:
    query: str
    terms: list[str]
    user: str | None
    mode: str  # "personal" | "anonymous" | "bm25" (text only)
    hits: list[Hit]
    matches: int  # items with a positive text score
    notes: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)  # the blend used
    weights_fitted: bool = False  # fitted on validation queries (else the defaults)


@dataclass
class Ranked:
    """The candidates of one query, best first."""

    cand: np.ndarray  # item indices
    level: np.ndarray  # their match levels
    blended: np.ndarray  # their blended scores
    parts: np.ndarray  # [C, 3] score parts (search.blend.combine): they sum to `blended`
    weights: np.ndarray  # [3] the blend used

    def stats(self, j: int) -> tuple[int, int]:
        """(candidates strictly better than candidate j, candidates tied with it, itself
        included): the order is level, then blended score; equal pairs are ties."""
        lv, b = self.level, self.blended
        better = (lv > lv[j]) | ((lv == lv[j]) & (b > b[j]))
        return int(better.sum()), int(((lv == lv[j]) & (b == b[j])).sum())


def short(s: object, n: int = 60) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"
