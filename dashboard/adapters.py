"""The dashboard's contact with the other stages' Python APIs, mapped to what the pages draw:

- explanations: `graph.explain.explain` (issue 4) -> `data.PathView`s, ranked with the run's
  user/item vectors when the run has them (runs/NAME/search/serving.npz, from search.assets);
- search: `search.assets` -> a `SearchView` holding the same `SearchEngine` `kgrec search`
  builds for one run (or the text + popularity engine of the graph when no run is chosen); the
  page reads its public API only (`search`, `text_ranking`, hits' score parts).

When a stage is not installed, `explain` returns None and the page says what builds it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    the serving vectors search.assets caches; None when the run has neither (paths are then
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
                from search.serving import RunAssets

                a = RunAssets.load(path)
                _EMBEDDINGS[key] = NodeEmbeddings({"user": (a.user_ids, a.user_emb),
                                                   "item": (a.item_ids, a.item_emb)})
        return _EMBEDDINGS[key]
    return None


# --- search ---------------------------------------------------------------------------------------

@dataclass
class SearchView:
    engine: Any  # search.engine.SearchEngine (used through its public methods only)
    run: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def personal(self) -> bool:
        """The engine has user vectors (a trained run)."""
        return self.run is not None


def search_engine(store, run_dir: Path | None) -> SearchView:
    """The engine `kgrec search` builds (`search.assets`): the run's (cached catalogue, saved
    BM25 index, serving vectors, fitted blend or the defaults), or without a run text +
    popularity from the graph. Search assets a run lacks are built once, as the CLI does."""
    from gnn.rundir import RunDir
    from search import assets as A

    def open_store(start: bool = True):
        return contextlib.nullcontext(store)

    if run_dir is None:
        engine, notes = A.graph_engine(open_store, store.cfg)
        return SearchView(engine, None, ["no run chosen: text + popularity only", *notes[1:]])
    engine, notes = A.load_engine(RunDir(run_dir), open_store)
    return SearchView(engine, Path(run_dir).name, notes)


def bm25_top(view: SearchView, query: str, k: int) -> tuple[pd.DataFrame, list[str]]:
    """The text-only ranking (`SearchEngine.text_ranking`). Raises search.config.QueryError for
    an unsearchable query."""
    r = view.engine.text_ranking(query, k)
    rows = [{"rank": j + 1, "item_id": h.item_id, "title": h.title, "bm25": h.text_score,
             "popularity": h.popularity} for j, h in enumerate(r.hits)]
    return pd.DataFrame(rows, columns=["rank", "item_id", "title", "bm25", "popularity"]), r.notes


def reranked_top(view: SearchView, query: str, user: str | None, k: int
                 ) -> tuple[pd.DataFrame, Any]:
    """The product ranking (`SearchEngine.search`) with each hit's score parts: the blend weight
    times the standardised feature, for text, personal and popularity (None past the
    candidates)."""
    result = view.engine.search(query, user, k=k)
    rows = []
    for r, h in enumerate(result.hits):
        parts = h.parts or {}
        rows.append({
            "rank": r + 1, "item_id": h.item_id, "title": h.title, "score": h.score,
            "text part": parts.get("text"), "personal part": parts.get("personal"),
            "popularity part": parts.get("popularity"),
            "bm25": h.text_score, "personal": h.personal_score, "popularity": h.popularity,
            "reason": h.reason})
    return pd.DataFrame(rows), result
