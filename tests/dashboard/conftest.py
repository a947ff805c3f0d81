"""Fixtures of the dashboard tests (the graph they build is described in dash_fixtures.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dash_fixtures import RUN, DashGraph, build_graph, kgrec, load_small, train_tiny, wipe


@pytest.fixture(scope="package")
def dash_graph(store, cfg, tmp_path_factory) -> DashGraph:
    runs_dir = tmp_path_factory.mktemp("dash_runs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGREC_"))}
    env.update(KGREC_HOME=str(Path(cfg.graph.home).resolve()), KGREC_RUNS_DIR=str(runs_dir),
               KGREC_QUARANTINE_DIR=str(cfg.etl.quarantine_dir), COLUMNS="200")
    d = DashGraph(store, cfg, env, runs_dir)
    wipe(store)
    load_small(store, cfg)
    train_tiny(store, d.run_dir)
    build_graph(d)
    kgrec(env, "search-eval", "--run", RUN, "--limit", "60", "--fit-queries", "60")
    return d


@pytest.fixture
def dash(dash_graph, monkeypatch) -> DashGraph:
    """The dashboard's graph (rebuilt if needed), this process's environment pointing at it, and
    Streamlit's data caches emptied (results of another graph must not leak in)."""
    import streamlit as st

    dash_graph.ensure()
    for k in list(os.environ):
        if k.startswith(("NEO4J_", "KGREC_")):
            monkeypatch.delenv(k)
    for k in ("KGREC_HOME", "KGREC_RUNS_DIR", "KGREC_QUARANTINE_DIR"):
        monkeypatch.setenv(k, dash_graph.env[k])
    st.cache_data.clear()
    return dash_graph
