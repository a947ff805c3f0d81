"""A trained run's user and item vectors, aligned with a catalogue: the personal score of search
is their dot product."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search.catalogue import Catalogue, positions


@dataclass
class Personal:
    """User and item vectors of a trained run. `item_emb` is aligned with the catalogue; items
    the run does not know are NaN rows."""

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
        pos = positions(item_ids, catalogue.ids)
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

    def closest(self, i: int, among: np.ndarray | None) -> int | None:
        """The item of `among` (e.g. a user's history) most similar to item i (cosine of the
        item vectors), i itself and unknown items left out; None when there is none."""
        if among is None or not len(among) or not self.item_known[i]:
            return None
        among = among[self.item_known[among] & (among != i)]
        if not len(among):
            return None
        e = self._items0
        v = e[i] / (np.linalg.norm(e[i]) + 1e-12)
        h = e[among] / (np.linalg.norm(e[among], axis=1, keepdims=True) + 1e-12)
        return int(among[int(np.argmax(h @ v))])
