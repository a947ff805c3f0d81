"""The search engine: BM25 over a catalogue's text, re-ranked with popularity and, for a known
shopper, a trained run's user · item score.

One query (`SearchEngine.search`):
1. the query's terms (`search.text.terms` of its first `max_query_chars` characters, at most
   `max_query_terms` distinct ones): the index's own tokenizer;
2. BM25 over every item's text (`TextIndex.match`), and each item's match level: how many of
   the query's distinct terms its text contains;
3. candidates: the `candidates` items with a positive score that match most terms, then score
   best; ties at the cut by the popularity prior, then catalogue order (deterministic);
4. three features per candidate, standardised within the candidates: text score, personal score
   (user · item) and log popularity; their weighted sum (the run's `Blend`) is the score. A
   feature an item lacks (popularity without interactions, a personal score for an item the
   run does not know) is left out and the weights renormalised over the ones it has: an item
   new to the shop is ranked by its text and the shopper's score, not buried as unpopular;
5. the order: match level first (a query's words count first: "face cream" puts the items
   with both words before those with one, however popular), then the score; the ranking goes on
   past the candidates by level, text score and the fallback score (personal, else the prior),
   so a query that matches nothing still answers, with the shopper's best items, marked so.

Where no blend applies (ties at the candidate cut, the fallback order past the candidates) the
popularity prior orders items: log(1 + interactions), and an item without any interaction gets
the median of the others, not the lowest value (it is not known to be unpopular).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from search import text as T
from search.blend import Blend, combine
from search.catalogue import Catalogue
from search.config import EMPTY_QUERY, FEATURES, QueryError, SearchConfig
from search.index import TextIndex, TextMatch
from search.personal import Personal
from search.results import Hit, Ranked, SearchResult, short


def zscore(x: np.ndarray) -> np.ndarray:
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


def popularity_prior(popularity: np.ndarray) -> np.ndarray:
    """log(1 + interactions); items without interactions get the median of the others."""
    lp = np.log1p(popularity)
    has = popularity > 0
    return np.where(has, lp, float(np.median(lp[has])) if has.any() else 0.0)


class SearchEngine:
    """Search one catalogue: BM25 candidates, blended with personal and popularity scores."""

    def __init__(self, catalogue: Catalogue, *, popularity: np.ndarray | None = None,
                 personal: Personal | None = None, blend: Blend | None = None,
                 history: Mapping[str, np.ndarray] | None = None,
                 cfg: SearchConfig | None = None, index: TextIndex | None = None) -> None:
        self.catalogue = catalogue
        self.cfg = cfg or SearchConfig()
        self.index = index or TextIndex.build(catalogue.texts(), self.cfg.bm25_k1,
                                              self.cfg.bm25_b, catalogue.fingerprint())
        n = len(catalogue)
        if self.index.n != n:
            raise ValueError(f"the index has {self.index.n} items, the catalogue {n}")
        pop = np.zeros(n) if popularity is None else np.asarray(popularity, np.float64)
        if pop.shape != (n,):
            raise ValueError(f"'popularity' must have one value per item ({n}, got {pop.shape})")
        self.popularity = pop
        self.prior = popularity_prior(pop)
        self.personal = personal
        self.blend = blend or Blend()
        self.history = history if history is not None else {}  # user id -> catalogue indices

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
            raise QueryError(f"the query {short(query)!r} has no searchable words (only stop "
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

    def match(self, query: str) -> TextMatch:
        """BM25 and match levels of a raw query (QueryError when it has no searchable words)."""
        return self.index.match(self.parse(query)[0])

    def user_index(self, user: str | None) -> int | None:
        if user is None or self.personal is None:
            return None
        return self.personal.user_index.get(str(user))

    # --- the pipeline (shared by search, the blend fit and the protocol)
    def levels(self, m: TextMatch) -> np.ndarray:
        return m.level if self.cfg.match_first else np.zeros(len(m.level), np.int64)

    def candidates(self, m: TextMatch, exclude: np.ndarray | None = None) -> np.ndarray:
        """The `cfg.candidates` best items with a positive text score (by match level, then
        score), best first; ties by the popularity prior, then catalogue order."""
        s, lv = m.scores, self.levels(m)
        ok = s > 0
        if exclude is not None and len(exclude):
            ok = ok.copy()
            ok[exclude] = False
        pos = np.flatnonzero(ok)
        c = self.cfg.candidates
        if len(pos) > c:  # keep every item as good as the c-th (ties included), then sort
            key = lv[pos] * (float(s[pos].max()) + 1.0) + s[pos]
            pos = pos[key >= np.partition(key, len(pos) - c)[len(pos) - c]]
        order = np.lexsort((pos, -self.prior[pos], -s[pos], -lv[pos]))
        return pos[order][:c]

    def features(self, cand: np.ndarray, m: TextMatch, u: int | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """([C, 3] standardised (text, personal, log popularity), [C, 3] which of them each
        candidate has): no popularity without interactions, no personal score for an item the
        run does not know (`search.blend.combine` leaves those out)."""
        f, known = np.zeros((len(cand), 3)), np.ones((len(cand), 3), bool)
        f[:, 0] = zscore(m.scores[cand])
        if u is not None and self.personal is not None:
            s = self.personal.scores(u, cand)
            f[:, 1], known[:, 1] = zscore(s), ~np.isnan(s)
        pop = self.popularity[cand]
        f[:, 2] = zscore(np.where(pop > 0, np.log1p(pop), np.nan))
        known[:, 2] = pop > 0
        return f, known

    def rank(self, m: TextMatch, u: int | None, exclude: np.ndarray | None = None) -> Ranked:
        cand = self.candidates(m, exclude)
        w = self.blend.vector(u is not None)
        parts = combine(*self.features(cand, m, u), w)
        b = parts.sum(1)
        lv = self.levels(m)[cand]
        order = np.lexsort((cand, -self.prior[cand], -m.scores[cand], -b, -lv))
        return Ranked(cand[order], lv[order], b[order], parts[order], w)

    def fallback_scores(self, u: int | None) -> np.ndarray:
        """Order of the items past the candidates (after level and text): personal, else the
        popularity prior."""
        if u is not None and self.personal is not None:
            return np.nan_to_num(self.personal.scores(u), nan=-np.inf)
        return self.prior

    def rest(self, m: TextMatch, u: int | None, taken: np.ndarray,
             exclude: np.ndarray | None, n: int) -> np.ndarray:
        """The best `n` items outside `taken` and `exclude`: by level, text, fallback score."""
        fb, lv = self.fallback_scores(u), self.levels(m)
        mask = np.ones(len(m.scores), bool)
        mask[taken] = False
        if exclude is not None:
            mask[exclude] = False
        idx = np.flatnonzero(mask)
        order = np.lexsort((idx, -fb[idx], -m.scores[idx], -lv[idx]))
        return idx[order][:n]

    def rest_stats(self, m: TextMatch, fb: np.ndarray, cand: np.ndarray,
                   exclude: np.ndarray | None, target: int) -> tuple[int, int]:
        """(g, t) of a target that is not a candidate: all candidates rank above it, then the
        other items by level, text and the fallback score `fb`."""
        s, lv = m.scores, self.levels(m)
        lt, tt, ft = lv[target], s[target], fb[target]
        same = (lv == lt) & (s == tt)
        better = (lv > lt) | ((lv == lt) & (s > tt)) | (same & (fb > ft))
        tied = same & (fb == ft)
        g = int(better.sum()) - int(better[cand].sum())
        t = int(tied.sum()) - int(tied[cand].sum())
        if exclude is not None and len(exclude):  # never candidates: candidates() drops them
            g -= int(better[exclude].sum())
            t -= int(tied[exclude].sum())
        return len(cand) + g, max(t, 1)

    # --- the product entry points
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
            notes.append(f"unknown user {short(user)!r} ({why}): anonymous results "
                         "(text + popularity)")
        hist = self.history.get(str(user)) if user is not None else None
        exclude = hist if exclude_history else None
        m = self.index.match(terms)
        matches = int((m.scores > 0).sum())
        r = self.rank(m, u, exclude)
        items = list(r.cand[:k])
        if matches == 0:
            notes.append(f"no item matches {short(query)!r}: showing "
                         + ("items picked for this user" if u is not None else "popular items")
                         + " instead")
        if len(items) < k:
            items += list(self.rest(m, u, r.cand, exclude, k - len(items)))
        pos = {int(i): j for j, i in enumerate(r.cand)}
        owned = set(hist.tolist()) if hist is not None else set()
        hits = []
        for i in map(int, items):
            j = pos.get(i)
            parts = None if j is None else dict(zip(FEATURES, r.parts[j].tolist()))
            ps = self.personal.scores(u, np.array([i]))[0] if u is not None else np.nan
            hits.append(Hit(
                item_id=str(self.catalogue.ids[i]), title=self.catalogue.label(i),
                score=float(r.blended[j]) if j is not None else float("nan"),
                text_score=float(m.scores[i]),
                personal_score=None if np.isnan(ps) else float(ps),
                popularity=int(self.popularity[i]), matched=m.matched(i),
                reason=self._reason(i, m, parts, u, user, i in owned), parts=parts))
        return SearchResult(query=str(query), terms=terms, user=user,
                            mode="personal" if u is not None else "anonymous", hits=hits,
                            matches=matches, notes=notes,
                            weights=dict(zip(FEATURES, r.weights.tolist())),
                            weights_fitted=bool(self.blend.fitted))

    def text_ranking(self, query: str, k: int = 10) -> SearchResult:
        """BM25 alone (the baseline the page shows beside `search`): the items with a positive
        score, best first; ties by the popularity prior, then catalogue order."""
        terms, notes = self.parse(query)
        m = self.index.match(terms)
        pos = np.flatnonzero(m.scores > 0)
        top = pos[np.lexsort((pos, -self.prior[pos], -m.scores[pos]))][:k]
        hits = [Hit(item_id=str(self.catalogue.ids[i]), title=self.catalogue.label(i),
                    score=float(m.scores[i]), text_score=float(m.scores[i]),
                    personal_score=None, popularity=int(self.popularity[i]),
                    matched=m.matched(i), reason="matches " + ", ".join(m.matched(i)[:4]))
                for i in map(int, top)]
        return SearchResult(query=str(query), terms=terms, user=None, mode="bm25", hits=hits,
                            matches=len(pos), notes=notes, weights={"text": 1.0})

    def _reason(self, i: int, m: TextMatch, parts: dict[str, float] | None, u: int | None,
                user: str | None, owned: bool) -> str:
        matched = m.matched(i)
        out = ["matches " + ", ".join(matched[:4]) if m.scores[i] > 0 else "no text match"]
        if parts is not None:
            main = max(parts, key=lambda f: parts[f])
            main = main if parts[main] > 0 else "text"
        else:
            main = "personal" if u is not None else "popularity"
        if main == "personal" and u is not None:
            like = self.personal.closest(i, self.history.get(str(user)))
            out.append(f"like {short(self.catalogue.label(like), 40)!r} you reviewed"
                       if like is not None else "fits your history")
        elif main == "popularity":
            out.append(f"popular ({int(self.popularity[i]):,} shoppers)"
                       if self.popularity[i] > 0 else "new: no interactions yet")
        elif m.scores[i] > 0:
            out.append("best text match")
        if u is not None and self.personal is not None and not self.personal.item_known[i]:
            out.append("new to the model: no personal score")
        if owned:
            out.append("you have it already")
        return "; ".join(out)
