"""The dashboard's contact with the other stages' Python APIs, mapped to what the pages draw:

- explanations: `graph.explain.explain` (issue 4) -> `data.PathView`s, ranked with the run's
  user/item vectors when the run has them (runs/NAME/search/serving.npz, from search.engine);
- search: `search.engine` (issue 5) -> a `SearchView` holding a `SearchEngine` for one run (or a
  text + popularity engine built from the graph when no run is chosen).

When a stage is not installed, `explain` returns None and the page says what builds it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from gnn.rundir import RunDir

log = logging.getLogger(__name__)

GROUP = "group:"  # id prefix of a node that stands for several (other customers)
# how a relationship type on an explanation path is labelled in the drawing
REL_LABELS = {"BEHAVIOUR": "chose"}


# --- explanations ---------------------------------------------------------------------------------

def explain(store, user_id: str, item_id: str, *, model: str | None = None,
            run_id: str | None = None, runs_dir: Path | None = None, limit: int = 5):
    """Explanation paths (`dashboard.data.PathView`), or None when graph/explain.py is absent."""
    try:
        from graph import explain as E
    except ImportError:
        return None
    from dashboard.data import PathView

    emb = None
    if runs_dir and run_id:
        try:
            emb = node_embeddings(RunDir.named(runs_dir, run_id).path)
        except ConfigError:  # the graph names a run that is no run folder: rank by type
            emb = None
    paths = E.explain(store, user_id, item_id, n=limit, embeddings=emb)
    out = []
    for p in paths:
        nodes = []
        for j, n in enumerate(p.nodes):
            # a group of other customers has no id: one node per path, never linked
            nid = n.id if n.id is not None else f"{GROUP}{p.kind}:{j}:{p.nodes[j - 1].id}"
            nodes.append((n.label, str(nid), n.name))
        out.append(PathView(kind=p.kind, reason=p.reason, nodes=tuple(nodes),
                            rels=tuple(REL_LABELS.get(r, r) for r in p.rels),
                            score=float(p.score), parts=tuple(p.parts)))
    return out


_EMBEDDINGS: dict[tuple[str, float], Any] = {}


def node_embeddings(run_dir: Path):
    """`graph.explain.NodeEmbeddings` of the vectors that made the run's recommendations: the
    `embeddings.npz` that `kgrec recommend` saves in the run (read with its own loader), else
    the serving vectors search.engine caches; None when the run has neither (paths are then
    ranked by type alone)."""
    from graph.explain import NodeEmbeddings

    rd = RunDir(run_dir)
    for path in (rd.file(RunDir.EMBEDDINGS), rd.search_file("serving.npz")):
        if not path.exists():
            continue
        key = (str(path), path.stat().st_mtime)
        if key not in _EMBEDDINGS:
            _EMBEDDINGS.clear()
            if path.name == RunDir.EMBEDDINGS:
                _EMBEDDINGS[key] = NodeEmbeddings(rd.load_embeddings())
            else:
                from search.engine import RunAssets

                a = RunAssets.load(path)
                _EMBEDDINGS[key] = NodeEmbeddings({"user": (a.user_ids, a.user_emb),
                                                   "item": (a.item_ids, a.item_emb)})
        return _EMBEDDINGS[key]
    return None


# --- search ---------------------------------------------------------------------------------------

@dataclass
class SearchView:
    engine: Any  # search.engine.SearchEngine
    run: str | None
    personal: bool  # the engine has user vectors
    blend_fitted: bool
    notes: list[str] = field(default_factory=list)


def search_engine(store, run_dir: Path | None) -> SearchView:
    """A search engine for `run_dir`'s model, or text + popularity only when `run_dir` is None.

    Uses the run's cached search assets (catalogue, serving vectors, fitted blend) and builds
    the missing ones the way `kgrec search` does, except the blend: fitting it runs the
    validation protocol (minutes), so without `blend.json` the default weights are used and the
    page says which command fits them.
    """
    from search import engine as S

    if run_dir is None:
        cat = S.Catalogue.from_store(store)
        pop = _graph_popularity(store, cat)
        engine = S.SearchEngine(cat, popularity=pop)
        return SearchView(engine, None, False, False,
                          ["no run chosen: text + popularity only"])
    run_dir = Path(run_dir)
    assets = S.serving_assets(run_dir)
    cat, notes = S.catalogue_for(run_dir, open_store=lambda: contextlib.nullcontext(store))
    blend_path = S.search_dir(run_dir) / "blend.json"
    fitted = blend_path.exists()
    blend = S.Blend.load(blend_path) if fitted else S.Blend()
    if not fitted:
        notes = notes + [f"the blend of run {run_dir.name} is not fitted yet: default weights "
                         f"(fit them with `kgrec search-eval --run {run_dir.name}`)"]
    engine = assets.engine(cat, blend=blend)
    return SearchView(engine, run_dir.name, True, fitted, list(notes))


def _graph_popularity(store, cat) -> np.ndarray:
    """Interactions per catalogue item from the event store beside the graph (zeros if none)."""
    try:
        from etl.load import event_store

        ev = event_store(Path(store.cfg.home))
    except Exception as e:  # noqa: BLE001 (popularity is a nicety for anonymous search)
        log.info("no event store for popularity: %s", e)
        return np.zeros(len(cat))
    if ev.empty:
        return np.zeros(len(cat))
    if "split" in ev.columns:
        ev = ev[ev["split"] != "test"]
    counts = ev.groupby("item_id").size()
    return pd.Series(cat.ids).map(counts).fillna(0).to_numpy(np.float64)


def bm25_top(view: SearchView, query: str, k: int) -> tuple[pd.DataFrame, list[str]]:
    """The text-only ranking: BM25 over the item text, ties by popularity (as the engine's
    candidate generation). Raises search.engine.QueryError for an unsearchable query."""
    e = view.engine
    terms, notes = e.parse(query)
    text = e.index.scores(terms)
    cand = e.candidates(text)[:k]
    rows = [{"rank": r + 1, "item_id": str(e.catalogue.ids[i]), "title": e.catalogue.label(i),
             "bm25": float(text[i]), "popularity": int(e.popularity[i])}
            for r, i in enumerate(cand)]
    return pd.DataFrame(rows, columns=["rank", "item_id", "title", "bm25", "popularity"]), notes


def reranked_top(view: SearchView, query: str, user: str | None, k: int
                 ) -> tuple[pd.DataFrame, Any]:
    """The product ranking (`SearchEngine.search`) with each candidate's score parts: the
    blend weight times the standardised feature, for text, personal and popularity."""
    e = view.engine
    result = e.search(query, user, k=k)
    u = e.user_index(user)
    terms = result.terms
    text = e.index.scores(terms)
    ranked = e.rank(text, u)
    w = e.blend.vector(u is not None)
    parts = {int(i): f * w for i, f in zip(ranked.cand, ranked.features)}
    pos = e.catalogue.index
    rows = []
    for r, h in enumerate(result.hits):
        p = parts.get(pos[h.item_id])
        rows.append({
            "rank": r + 1, "item_id": h.item_id, "title": h.title, "score": h.score,
            "text part": None if p is None else float(p[0]),
            "personal part": None if p is None else float(p[1]),
            "popularity part": None if p is None else float(p[2]),
            "bm25": h.text_score, "personal": h.personal_score, "popularity": h.popularity,
            "reason": h.reason})
    return pd.DataFrame(rows), result
