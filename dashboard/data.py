"""Everything the pages read, cached: the store (and models) as resources, results as data.

- `st.cache_resource`: the GraphStore (one driver per process, keyed by the graph's identity)
  and search engines (keyed by the run folder and its files' modification times).
- `st.cache_data(ttl=...)`: query results. Each cached function takes the store as an unhashed
  `_store` argument plus `key`, the graph's identity, so two graphs never share results.
  Lookups of one user or item live `TTL_LOOKUP` seconds, whole-graph aggregates `TTL_AGGREGATE`.

Pages call the plain functions at the bottom of each section (`counts()`, `user_history(uid)`,
...) and never see the store.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.config import Config
from core.errors import ConfigError
from gnn.rundir import RunDir, list_runs
from graph import views

log = logging.getLogger(__name__)

TTL_LOOKUP = 120  # s: one user's or one item's data
TTL_AGGREGATE = 600  # s: counts and whole-graph aggregates
TTL_FILES = 30  # s: run folders
BEHAVIOURS = views.BEHAVIOURS  # the behaviour relationship types, in the schema's order

# --- the graph -----------------------------------------------------------------------------------


def config() -> Config:
    return Config.from_env()


def graph_key(cfg: Config | None = None) -> str:
    """Identity of the configured graph: the Neo4j URI and database, or the embedded home."""
    cfg = cfg or config()
    g = cfg.graph
    where = g.uri if not g.embedded else f"embedded:{Path(g.home).resolve()}"
    return f"{where}#{g.database_name}"


@st.cache_resource(show_spinner="Connecting to the graph…", max_entries=4)
def _open_store(key: str, _cfg: Config):
    from graph.store import GraphStore

    log.info("dashboard: opening the graph %s", key)
    return GraphStore(_cfg.graph)  # starts the embedded server on demand


def store():
    """The GraphStore of the configured graph (GraphUnavailable when it cannot be reached)."""
    cfg = config()
    return _open_store(graph_key(cfg), cfg)


def reset_store() -> None:
    """Forget the cached connection (after the server went away) and every cached result."""
    _open_store.clear()
    st.cache_data.clear()


def _g() -> tuple[Any, str]:
    cfg = config()
    return _open_store(graph_key(cfg), cfg), graph_key(cfg)


# --- overview ------------------------------------------------------------------------------------

@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False)
def _counts(_store, key: str) -> dict[str, int]:
    return views.counts(_store)


def counts() -> dict[str, int]:
    return _counts(*_g())


@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False)
def _top(_store, key: str, what: str, limit: int) -> pd.DataFrame:
    fn = views.top_categories if what == "categories" else views.top_brands
    return fn(_store, limit)


def top_categories(limit: int = 15) -> pd.DataFrame:
    return _top(*_g(), "categories", limit)


def top_brands(limit: int = 15) -> pd.DataFrame:
    return _top(*_g(), "brands", limit)


@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False)
def _recommendation_runs(_store, key: str) -> pd.DataFrame:
    return views.recommendation_runs(_store)


def recommendation_runs() -> pd.DataFrame:
    return _recommendation_runs(*_g())


@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False)
def _recommended_item_counts(_store, key: str, run_id: str, k: int) -> pd.DataFrame:
    return views.recommended_item_counts(_store, run_id, k)


@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False, max_entries=8)
def _parquet_item_counts(path: str, mtime: float, k: int) -> pd.DataFrame:
    f = pd.read_parquet(path, columns=["item_id", "rank"])
    f = f[f["rank"] <= k]
    return f.groupby("item_id").size().rename("n").reset_index()


def recommended_item_counts(run_id: str, k: int) -> pd.DataFrame:
    """How many users get each item in their top `k` of run `run_id`: from the run's batch
    output (`RunDir.recommendations_file`, written by `kgrec recommend --all`) when it is there,
    else from the RECOMMENDED edges (an aggregate over all of them: slow on a large graph)."""
    try:
        p = RunDir.named(runs_dir(), run_id).recommendations_file
    except ConfigError:  # a run id in the graph that is no run folder's name
        return _recommended_item_counts(*_g(), run_id, k)
    if p.exists():
        return _parquet_item_counts(str(p), p.stat().st_mtime, k)
    return _recommended_item_counts(*_g(), run_id, k)


# --- the event store (Parquet beside the embedded graph, written by the ETL) ----------------------

def events_path() -> Path:
    return Path(config().graph.home) / "events.parquet"


@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False, max_entries=2)
def _events(path: str, mtime: float) -> pd.DataFrame:
    from etl.load import event_store

    return event_store(Path(path).parent)


def events() -> pd.DataFrame | None:
    """All loaded events (user_id, item_id, event_type, ts, split, ...), or None if there is no
    event store (e.g. a Neo4j loaded elsewhere)."""
    p = events_path()
    if not p.exists():
        return None
    return _events(str(p), p.stat().st_mtime)


# --- users ---------------------------------------------------------------------------------------

@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _find_users(_store, key: str, text: str, limit: int) -> list[str]:
    return views.find_users(_store, text, limit)


def find_users(text: str, limit: int = 20) -> list[str]:
    return _find_users(*_g(), text, limit)


@st.cache_data(ttl=TTL_AGGREGATE, show_spinner=False)
def _sample_users(_store, key: str, limit: int) -> list[str]:
    return views.sample_users(_store, limit)


def sample_users(limit: int = 8) -> list[str]:
    return _sample_users(*_g(), limit)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _user_summary(_store, key: str, user_id: str) -> dict[str, Any] | None:
    return views.user_summary(_store, user_id)


def user_summary(user_id: str) -> dict[str, Any] | None:
    return _user_summary(*_g(), user_id)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _user_history(_store, key: str, user_id: str) -> pd.DataFrame:
    return views.user_history(_store, user_id)


def user_history(user_id: str) -> pd.DataFrame:
    return _user_history(*_g(), user_id)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _user_recommendations(_store, key: str, user_id: str) -> pd.DataFrame:
    return views.user_recommendations(_store, user_id)


def user_recommendations(user_id: str) -> pd.DataFrame:
    return _user_recommendations(*_g(), user_id)


# --- explanations (graph/explain.py, issue 4) -----------------------------------------------------

@dataclass(frozen=True)
class PathView:
    """One explanation path as the pages draw it."""

    kind: str  # path type, e.g. "same_brand"
    reason: str  # natural-language sentence, plain text
    nodes: tuple[tuple[str, str, str], ...]  # (type, id, label), user first, item last
    rels: tuple[str, ...]  # relationship types between consecutive nodes
    score: float | None = None
    parts: tuple[tuple[str, bool], ...] = ()  # the sentence as (text, is a catalogue name)


def explanations_available() -> bool:
    try:
        import graph.explain  # noqa: F401
    except ImportError:
        return False
    return True


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=5000)
def _explanations(_store, key: str, user_id: str, item_id: str, run_id: str | None,
                  limit: int) -> list[PathView] | None:
    from dashboard import adapters

    return adapters.explain(_store, user_id, item_id, run_id=run_id, runs_dir=runs_dir(),
                            limit=limit)


def explanations(user_id: str, item_id: str, run_id: str | None = None,
                 limit: int = 5) -> list[PathView] | None:
    """Up to `limit` explanation paths (ranked with run `run_id`'s vectors when it has them),
    or None when explanations are not available."""
    return _explanations(*_g(), user_id, item_id, run_id, limit)


# --- items ---------------------------------------------------------------------------------------

@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _find_items(_store, key: str, text: str, limit: int) -> pd.DataFrame:
    return views.find_items(_store, text, limit)


def find_items(text: str, limit: int = 20) -> pd.DataFrame:
    return _find_items(*_g(), text, limit)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _item(_store, key: str, item_id: str) -> dict[str, Any] | None:
    return views.item_details(_store, item_id)


def item(item_id: str) -> dict[str, Any] | None:
    return _item(*_g(), item_id)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _item_related(_store, key: str, item_id: str) -> pd.DataFrame:
    return views.item_related(_store, item_id)


def item_related(item_id: str) -> pd.DataFrame:
    return _item_related(*_g(), item_id)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _item_users(_store, key: str, item_id: str) -> pd.DataFrame:
    return views.item_users(_store, item_id)


def item_users(item_id: str) -> pd.DataFrame:
    return _item_users(*_g(), item_id)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _item_edge_counts(_store, key: str, item_id: str) -> dict[str, int]:
    return views.item_edge_counts(_store, item_id)


def item_edge_counts(item_id: str) -> dict[str, int]:
    return _item_edge_counts(*_g(), item_id)


@st.cache_data(ttl=TTL_LOOKUP, show_spinner=False, max_entries=2000)
def _item_also(_store, key: str, item_id: str, limit: int) -> pd.DataFrame:
    return views.item_also_interacted(_store, item_id, limit)


def item_also_interacted(item_id: str, limit: int = 10) -> pd.DataFrame:
    return _item_also(*_g(), item_id, limit)


# --- trained runs (runs/NAME/metrics.json, written by gnn.train) ----------------------------------

def runs_dir() -> Path:
    return Path(config().runs_dir)


def _runs_signature(root: Path) -> tuple[tuple[str, float], ...]:
    out = []
    for rd in list_runs(root, trained=False):
        for name in (RunDir.METRICS, RunDir.SEARCH_METRICS):
            f = rd.file(name)
            if f.is_file():
                out.append((str(f), f.stat().st_mtime))
    return tuple(out)


@st.cache_data(ttl=TTL_FILES, show_spinner=False)
def _runs(root: str, signature: tuple[tuple[str, float], ...]) -> pd.DataFrame:
    rows = []
    by_run: dict[str, dict[str, Any]] = {}
    for path, _ in signature:
        p = Path(path)
        try:
            payload = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            log.warning("dashboard: cannot read %s: %s", p, e)
            continue
        row = by_run.setdefault(p.parent.name, {"run": p.parent.name, "path": str(p.parent)})
        if p.name == RunDir.METRICS:
            row.update({k: v for k, v in payload.items() if not isinstance(v, (dict, list))})
        else:
            row.update({f"search.{k}": v for k, v in payload.items()
                        if not isinstance(v, (dict, list))})
    rows = list(by_run.values())
    return pd.DataFrame(rows)


def runs() -> pd.DataFrame:
    """One row per run folder with a metrics.json (its flat keys as columns; search metrics
    prefixed "search.")."""
    root = runs_dir()
    f = _runs(str(root), _runs_signature(root))
    if not f.empty and "model" not in f.columns:
        f["model"] = None
    return f


def run_path(name: str) -> Path:
    """The folder of run `name` (a validated run name: ConfigError otherwise)."""
    return RunDir.named(runs_dir(), name).path


# --- search (search.assets: the engine `kgrec search` builds) -------------------------------------

def _run_signature(run: str) -> tuple[float, ...]:
    """What a run's search engine depends on besides the graph: its model and its fitted blend
    (their modification times)."""
    from search.assets import BLEND

    rd = RunDir(run_path(run))
    return tuple(f.stat().st_mtime if f.exists() else 0.0
                 for f in (rd.model_file, rd.search_file(BLEND)))


@st.cache_data(ttl=TTL_FILES, show_spinner=False)
def _graph_signature(_store, key: str) -> tuple[tuple[str, int], ...]:
    """Node counts the search catalogue depends on (cheap; re-read every TTL_FILES s): a reset
    and a reload give other engines, not the cached ones."""
    from search.catalogue import graph_signature

    return tuple(sorted(graph_signature(_store).items()))


@st.cache_resource(show_spinner="Loading the search index…", max_entries=3)
def _search_engine(run: str | None, signature: tuple, graph: tuple, key: str, _store):
    from dashboard import adapters

    return adapters.search_engine(_store, None if run is None else run_path(run))


def search_engine(run: str | None):
    """The search engine of run `run` (None: text + popularity only, built from the graph)."""
    s, key = _g()
    sig = _run_signature(run) if run else ()
    return _search_engine(run, sig, _graph_signature(s, key), key, s)


def trained_runs() -> list[str]:
    """Names of the runs with a trained model, as `gnn.rundir.list_runs` finds them."""
    from gnn.rundir import list_runs

    return [r.name for r in list_runs(runs_dir())]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")
