"""The BM25 text index of a catalogue (bm25s), saved with the run and memory-mapped on load.

`TextIndex.build(texts)` tokenizes with `search.text.terms` (the same function runs on queries);
`save(dir)` writes bm25s's files plus `meta.json` (the catalogue fingerprint, k1, b and the text
version it was built for); `load(dir)` memory-maps the arrays, so a search that starts reads
only the pages it touches instead of re-tokenizing the catalogue.

`match(terms)` scores every item and counts, per item, how many distinct query terms its text
contains: the "match level" that the engine ranks by first (a query's words count first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from core.errors import DataError
from core.io import atomic_write
from search import text as T

log = logging.getLogger(__name__)

META = "meta.json"


@dataclass
class TextMatch:
    """BM25 of a query over every item, and which of its terms each item contains."""

    terms: list[str]  # the query terms the index knows, in query order
    scores: np.ndarray  # [N] float64 BM25 (0 where no term matches)
    level: np.ndarray  # [N] int: distinct query terms in the item's text
    hits: list[np.ndarray]  # per term of `terms`: [N] bool, the items containing it

    def matched(self, i: int) -> list[str]:
        """The query terms found in item i's text."""
        return [t for t, h in zip(self.terms, self.hits) if h[i]]


class TextIndex:
    """BM25 over `search.text.terms` of each item text."""

    def __init__(self, bm25: bm25s.BM25, n: int, meta: dict) -> None:
        self.bm25 = bm25
        self.n = n
        self.meta = meta
        self.vocab = {t: i for t, i in (bm25.vocab_dict or {}).items() if t}

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.5, b: float = 0.75,
              fingerprint: str | None = None) -> TextIndex:
        if not len(texts):
            raise DataError("cannot index an empty catalogue")
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index([T.terms(t) for t in texts], show_progress=False)
        return cls(bm25, len(texts), {"items": len(texts), "k1": k1, "b": b,
                                      "fingerprint": fingerprint, "text": T.VERSION})

    def fits(self, fingerprint: str, k1: float, b: float) -> bool:
        """Whether this index was built for that catalogue and these parameters."""
        m = self.meta
        return (m.get("fingerprint") == fingerprint and m.get("k1") == k1 and m.get("b") == b
                and m.get("text") == T.VERSION)

    def save(self, path: Path) -> Path:
        """bm25s's files and meta.json in the directory `path` (replaced atomically)."""
        def write(tmp: Path) -> None:
            self.bm25.save(str(tmp), show_progress=False)
            (tmp / META).write_text(json.dumps(self.meta) + "\n")

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: Path, mmap: bool = True) -> TextIndex:
        meta = json.loads((Path(path) / META).read_text())
        bm25 = bm25s.BM25.load(str(path), mmap=mmap, show_progress=False, verbosity=0)
        return cls(bm25, int(meta["items"]), meta)

    # ------------------------------------------------------------------ scoring
    def known(self, terms: Sequence[str]) -> list[str]:
        return [t for t in dict.fromkeys(terms) if t in self.vocab]

    def match(self, terms: Sequence[str]) -> TextMatch:
        """BM25 of every item (float64; 0 where no term matches), match levels and per-term
        hits of the query `terms` (one posting list per term)."""
        known = self.known(terms)
        scores, level = np.zeros(self.n), np.zeros(self.n, np.int64)
        hits = []
        for t in known:
            s = np.asarray(self.bm25.get_scores_from_ids([self.vocab[t]]), dtype=np.float64)
            h = s > 0
            scores += s
            level += h
            hits.append(h)
        return TextMatch(known, scores, level, hits)
