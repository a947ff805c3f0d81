"""What search keeps in a run (`RunDir.search_file(...)`) and the engines built from it.

    runs/NAME/search/catalogue.json               the item text as read from the graph, with its
                                                  fingerprint and the graph's node counts
    runs/NAME/search/bm25/                        the BM25 index of that catalogue (bm25s files,
                                                  memory-mapped on load)
    runs/NAME/search/serving.npz                  user and item vectors of the checkpoint on the
                                                  run's whole snapshot, popularity, histories
    runs/NAME/search/blend.json                   the fitted weights (`kgrec search-eval`)
    runs/NAME/search/queries_{val,test}.csv       the protocol's queries (`search.evaluate`)

`load_engine(run)` is the engine of `kgrec search --run` and of the dashboard alike; without a run,
`graph_engine(...)` (text + popularity from the graph, cached in $KGREC_HOME/search/). Both take
popularity from `search.popularity` (training split only), so the CLI and the dashboard rank a
query the same way.

Why caches: on Beauty (12k items) reading the catalogue from the embedded graph takes seconds to
tens of seconds, popularity as long, and tokenizing it for BM25 seconds more; a cached catalogue
is checked against the graph cheaply instead (node counts and a sample of items,
`Catalogue.changed`), so a graph reset and reloaded behind its back is noticed and re-read.
A run is prepared for search once, on its first search, and a note says what was written where;
search never fits the blend: until `kgrec search-eval` has fitted it, the default weights are
used, and a note says so.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DataError, GraphError
from core.io import atomic_write
from gnn.rundir import RunDir, list_runs
from search.blend import Blend
from search.catalogue import Catalogue
from search.config import SearchConfig
from search.engine import SearchEngine
from search.index import TextIndex
from search.serving import RunAssets

log = logging.getLogger(__name__)

CATALOGUE, INDEX, SERVING, BLEND = "catalogue.json", "bm25", "serving.npz", "blend.json"
POPULARITY = "popularity.npz"  # search without a run: interactions per catalogue item
PRODUCT_MODEL = "hgt"  # the default run of search: the latest run of this model
OpenStore = Callable[..., Any]  # open_store(start=bool) -> a GraphStore context manager; with
# start=False it must not start an embedded server that is not running (GraphError instead)


# ----------------------------------------------------------------------------- cached files

File = Callable[[str], Path]  # a cache file by name: RunDir.search_file, or the graph's cache


def _cached(load: Callable[[Path], Any], path: Path, notes: list[str]) -> Any:
    """`load(path)`, or None (and a note) when the cached file cannot be read: it is rebuilt."""
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as e:  # noqa: BLE001 - any unreadable cache is rebuilt, never fatal
        log.info("%s: unreadable (%s); rebuilding it", path, e)
        notes.append(f"{path.name} could not be read ({type(e).__name__}): rebuilt it")
        return None


def catalogue_for(file: File, open_store: OpenStore | None, snapshot: Callable[[], Any] | None
                  = None, refresh: bool = False) -> tuple[Catalogue, list[str]]:
    """The item text: the cached copy while the graph still matches it (`Catalogue.changed`:
    node counts and a sample of items, cheap; a graph that is not running is not started for
    this), else read from the graph (started if needed) and cached; when the graph cannot be read
    and a `snapshot()` is given, its id maps (no titles: says so)."""
    path = file(CATALOGUE)
    notes: list[str] = []
    cached = None if refresh else _cached(Catalogue.load, path, notes)
    if cached is not None:
        if open_store is None:
            return cached, notes
        try:
            with open_store(start=False) as store:
                why = cached.changed(store)
        except GraphError:
            return cached, notes + ["the graph is not running: the item text is the cached "
                                    "copy (start it with `kgrec graph start`)"]
        if why is None:
            return cached, notes
        notes.append(f"the graph changed since its items were cached ({why}): re-read them")
    cat = None
    if open_store is not None:
        try:
            with open_store(start=True) as store:
                cat = Catalogue.from_store(store)
        except (GraphError, DataError) as e:
            if snapshot is None:
                raise
            notes.append(f"item text from the run's snapshot, not the graph ({e}): no titles")
    if cat is None:
        if snapshot is None:
            raise DataError("no item text: give a graph to read it from")
        cat = Catalogue.from_snapshot(snapshot())
        if open_store is None:
            notes.append("item text from the run's snapshot (no graph given): no titles")
    cat.save(path)
    return cat, notes


def index_for(file: File, catalogue: Catalogue, cfg: SearchConfig
              ) -> tuple[TextIndex, list[str]]:
    """The saved BM25 index of `catalogue` (memory-mapped), else built and saved."""
    path = file(INDEX)
    notes: list[str] = []
    index = _cached(TextIndex.load, path, notes)
    if index is not None and index.fits(catalogue.fingerprint(), cfg.bm25_k1, cfg.bm25_b):
        return index, notes
    t0 = time.perf_counter()
    index = TextIndex.build(catalogue.texts(), cfg.bm25_k1, cfg.bm25_b, catalogue.fingerprint())
    index.save(path)
    notes.append(_built(f"built the search index ({len(catalogue):,} items", t0, path, "it"))
    return index, notes


def _built(what: str, t0: float, path: Path, it: str) -> str:
    """The note of an asset search built once and saved for later searches."""
    return (f"{what}, {time.perf_counter() - t0:.1f} s) and saved {it} in {path}: later "
            f"searches load {it}")


def serving_assets(rd: RunDir) -> tuple[RunAssets, list[str]]:
    """Vectors, popularity (`search.popularity`) and histories for serving: every interaction of
    the run's snapshot is history (cached in the run, rebuilt when the model is newer)."""
    rd.require_trained()
    path = rd.search_file(SERVING)
    notes: list[str] = []
    if path.exists() and path.stat().st_mtime >= rd.model_file.stat().st_mtime:
        cached = _cached(RunAssets.load, path, notes)
        if cached is not None:
            return cached, notes
    from gnn.data import graph_from_snapshot
    from search import popularity as P

    t0 = time.perf_counter()
    model, snapshot = rd.load_model(), rd.load_snapshot()
    target = model.meta["target"][1]
    graph = graph_from_snapshot(snapshot, target)
    assets = RunAssets.from_model(model, graph,
                                  P.from_snapshot(snapshot, graph.ids["item"], target))
    assets.save(path)
    notes.append(_built(f"computed the serving vectors of run {rd.name} (model forward", t0,
                        path, "them"))
    return assets, notes


def load_blend(rd: RunDir) -> tuple[Blend, list[str]]:
    """The run's fitted blend, else the defaults (and a note naming the command that fits)."""
    notes: list[str] = []
    blend = _cached(Blend.load, rd.search_file(BLEND), notes)
    if blend is not None:
        return blend, notes
    return Blend(), notes + [f"the blend of run {rd.name} is not fitted yet: default weights "
                             f"(fit them with `kgrec search-eval --run {rd.name}`)"]


# ----------------------------------------------------------------------------- engines

def load_engine(rd: RunDir, open_store: OpenStore | None = None,
                cfg: SearchConfig | None = None, refresh: bool = False
                ) -> tuple[SearchEngine, list[str]]:
    """The search engine of a trained run, as `kgrec search` and the dashboard use it."""
    rd.require_trained()
    cfg = cfg or SearchConfig()
    catalogue, notes = catalogue_for(rd.search_file, open_store, rd.load_snapshot, refresh)
    index, more = index_for(rd.search_file, catalogue, cfg)
    assets, more2 = serving_assets(rd)
    blend, more3 = load_blend(rd)
    engine = assets.engine(catalogue, blend=blend, cfg=cfg, index=index)
    return engine, notes + more + more2 + more3


def graph_cache(gcfg) -> File:
    """Where search without a run caches what it read from the graph `gcfg` (a GraphConfig):
    $KGREC_HOME/search/ for the embedded graph, a folder per URI and database for Neo4j."""
    root = Path(gcfg.home) / "search"
    if not gcfg.embedded:
        key = f"{gcfg.uri}#{gcfg.database_name}".encode()
        root = root / hashlib.sha256(key).hexdigest()[:12]
    return lambda name: root / name


def graph_engine(open_store: OpenStore, gcfg, cfg: SearchConfig | None = None,
                 refresh: bool = False) -> tuple[SearchEngine, list[str]]:
    """Anonymous search from the graph alone (no trained run): item text and the training
    split's interactions (`search.popularity`), cached beside the graph (`graph_cache`) while
    the graph matches them; the default text + popularity weights."""
    cfg = cfg or SearchConfig()
    file = graph_cache(gcfg)
    catalogue, notes = catalogue_for(file, open_store, refresh=refresh)
    index, more = index_for(file, catalogue, cfg)
    pop = _cached(_load_popularity(catalogue), file(POPULARITY), notes)
    if pop is None:
        from search import popularity as P

        with open_store(start=True) as store:
            pop = P.from_store(store, catalogue.ids)
        atomic_write(file(POPULARITY), lambda tmp: _save_popularity(tmp, catalogue, pop))
    return SearchEngine(catalogue, popularity=pop, cfg=cfg, index=index), notes + more


def _save_popularity(path: Path, catalogue: Catalogue, pop: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, popularity=pop, fingerprint=np.array(catalogue.fingerprint()))


def _load_popularity(catalogue: Catalogue) -> Callable[[Path], np.ndarray | None]:
    """A loader of the cached popularity that answers None unless it belongs to `catalogue`."""
    def load(path: Path) -> np.ndarray | None:
        with np.load(path, allow_pickle=False) as z:
            ok = str(z["fingerprint"]) == catalogue.fingerprint()
            return z["popularity"] if ok and len(z["popularity"]) == len(catalogue) else None

    return load


def default_run(runs_dir: Path) -> RunDir | None:
    """The run search uses without --run: the latest trained run of the product model (hgt),
    else the latest trained run of any model; None when there is none."""
    runs = list_runs(runs_dir)
    if not runs:
        return None
    product = [r for r in runs if r.model_name() == PRODUCT_MODEL]
    return max(product or runs, key=lambda r: r.model_file.stat().st_mtime)
