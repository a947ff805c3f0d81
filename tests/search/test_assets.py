"""search.assets on the real embedded graph and a real trained run: what a run keeps, what a
second load reuses, a graph that changed behind the cache, the default run, search without a run."""

from __future__ import annotations

import contextlib
import json
import os
import time

import numpy as np
import pytest

from core.errors import GraphUnavailable
from gnn.rundir import RunDir
from graph import queries as Q
from search import assets as A
from search import popularity as P
from search.blend import Blend
from search.catalogue import Catalogue


@pytest.fixture
def opener(tiny_shop):
    """`open_store(start=...)` over the session's graph, counting the calls."""
    calls: list[bool] = []

    def open_store(start: bool = True):
        calls.append(start)
        return contextlib.nullcontext(tiny_shop)

    open_store.calls = calls
    return open_store


@pytest.fixture
def fresh_run(tiny_run) -> RunDir:
    """The tiny run without any search asset."""
    import shutil

    rd = RunDir(tiny_run)
    shutil.rmtree(rd.search_dir, ignore_errors=True)
    return rd


def test_a_run_is_prepared_once_and_says_so(fresh_run, opener):
    engine, notes = A.load_engine(fresh_run, opener)
    text = " ".join(notes)
    assert "built the search index" in text and "computed the serving vectors" in text
    assert "not fitted yet" in text and "kgrec search-eval --run tiny" in text
    for name in (A.CATALOGUE, A.INDEX, A.SERVING):
        assert fresh_run.search_file(name).exists(), name
    assert not fresh_run.search_file(A.BLEND).exists()  # search never fits the blend
    first = engine.search("face cream", "A10", k=5)

    opener.calls.clear()
    again, notes = A.load_engine(fresh_run, opener)
    assert [n for n in notes if "built" in n or "computed" in n] == []
    assert opener.calls == [False]  # one cheap look at the graph; nothing started
    assert isinstance(again.index.bm25.scores["data"], np.memmap)  # the saved index, mapped
    second = again.search("face cream", "A10", k=5)
    def seen(r):
        return [(h.item_id, h.text_score, h.personal_score, h.reason, h.parts) for h in r.hits]

    assert seen(second) == seen(first)


def test_serving_popularity_is_the_one_definition(fresh_run, opener):
    engine, _ = A.load_engine(fresh_run, opener)
    snap = fresh_run.load_snapshot()
    expected = P.from_snapshot(snap, engine.catalogue.ids)
    np.testing.assert_array_equal(engine.popularity, expected)
    graph_engine, _ = A.graph_engine(opener, _home_cfg(fresh_run))
    np.testing.assert_array_equal(graph_engine.popularity, expected)


def _home_cfg(rd: RunDir):
    """A GraphConfig whose home (the graph-only cache) lies in the run's folder."""
    from core.config import GraphConfig

    return GraphConfig(home=rd.path / "home")


def test_a_graph_reset_and_reloaded_behind_the_cache_is_noticed(fresh_run, opener, tiny_shop):
    A.load_engine(fresh_run, opener)
    cat = Catalogue.load(fresh_run.search_file(A.CATALOGUE))
    item = cat.sample_ids()[3]
    old = cat.titles[cat.index[item]]
    tiny_shop.write(Q.MERGE_ITEMS, rows=[{"id": item, "title": "Zebra Face Cream", "price": 1.0}])
    try:
        engine, notes = A.load_engine(fresh_run, opener)
        assert any(f"the graph changed since its items were cached (item {item} has other "
                   "text)" in n for n in notes)
        assert any("built the search index" in n for n in notes)  # the index follows
        assert engine.search("zebra", k=1).hits[0].item_id == item
    finally:
        tiny_shop.write(Q.MERGE_ITEMS, rows=[{"id": item, "title": old, "price": 9.5}])


def test_a_stopped_graph_is_not_started_to_check_the_cache(fresh_run, opener):
    A.load_engine(fresh_run, opener)

    def stopped(start: bool = True):
        raise GraphUnavailable("the embedded graph server is not running")

    engine, notes = A.load_engine(fresh_run, stopped)
    assert any("the graph is not running" in n for n in notes)
    assert engine.search("rose", k=1).hits[0].title.startswith("Rose")


def test_unreadable_caches_are_rebuilt_not_fatal(fresh_run, opener):
    A.load_engine(fresh_run, opener)
    Blend(fitted={"queries": 1}).save(fresh_run.search_file(A.BLEND))
    for name in (A.CATALOGUE, A.SERVING, A.BLEND):
        fresh_run.search_file(name).write_bytes(b"\x00 not what it should be")
    (fresh_run.search_file(A.INDEX) / "meta.json").write_text("{")
    engine, notes = A.load_engine(fresh_run, opener)
    for name in (A.CATALOGUE, A.SERVING, A.BLEND, A.INDEX):
        assert any(f"{name} could not be read" in n for n in notes), (name, notes)
    assert len(engine.catalogue) == 20 and engine.search("rose", "A01", k=3).mode == "personal"


def test_trained_vectors_flip_the_face_creams(fresh_run, opener, n_users):
    """The known answer with a real trained model: anonymous search puts the popular lavender
    cream first, an A user (who never reviewed either cream) gets the rose cream first."""
    engine, _ = A.load_engine(fresh_run, opener)
    engine.blend = Blend(personal={"text": 0.3, "personal": 0.5, "popularity": 0.2},
                         anonymous={"text": 0.5, "personal": 0.0, "popularity": 0.5})

    def top(user):
        return [h.item_id for h in engine.search("face cream", user, k=2).hits]

    assert top(None) == ["l0", "r0"]
    fresh_a = [f"A{j:02d}" for j in range(6, n_users)]  # no cream in their history
    assert all(top(u) == ["r0", "l0"] for u in fresh_a)
    # B users who reviewed the lavender cream keep it first; for B users who did not, the
    # model (6 training items each) is right for most, not all: no claim beyond that
    assert all(top(f"B{j:02d}") == ["l0", "r0"] for j in range(14))
    assert sum(top(f"B{j:02d}") == ["l0", "r0"] for j in range(14, n_users)) >= 4


def test_graph_engine_is_cached_beside_the_graph(tiny_shop, opener, tmp_path):
    from core.config import GraphConfig

    gcfg = GraphConfig(home=tmp_path)
    engine, _ = A.graph_engine(opener, gcfg)
    assert [h.item_id for h in engine.search("face cream", k=2).hits] == ["l0", "r0"]
    assert {h.item_id: h.popularity for h in engine.search("face cream", k=2).hits} == \
        {"l0": 14, "r0": 6}  # REVIEWED edges per item, test pairs left out
    assert (tmp_path / "search" / A.CATALOGUE).exists()
    opener.calls.clear()
    again, _ = A.graph_engine(opener, gcfg)
    assert opener.calls == [False]  # only the cheap check
    np.testing.assert_array_equal(again.popularity, engine.popularity)
    neo = GraphConfig(uri="bolt://db:7687", home=tmp_path)
    assert A.graph_cache(neo)("x").parent.parent == tmp_path / "search"


def test_default_run_is_the_latest_product_model_run(tmp_path):
    def fake(name: str, model: str, age: float) -> None:
        rd = RunDir(tmp_path / name)
        rd.model_file.parent.mkdir(parents=True)
        rd.model_file.write_bytes(b"")
        rd.file(RunDir.CONFIG).write_text(json.dumps({"model": model}))
        t = time.time() - age
        os.utime(rd.model_file, (t, t))

    assert A.default_run(tmp_path) is None
    fake("old-hgt", "hgt", 300)
    fake("new-hgt", "hgt", 200)
    fake("newest-lightgcn", "lightgcn", 10)
    assert A.default_run(tmp_path).name == "new-hgt"
    assert A.default_run(tmp_path / "missing") is None
    other = tmp_path / "other"
    other.mkdir()
    fake("other/mf", "mf", 1)
    assert A.default_run(other).name == "mf"  # no hgt run: the latest of any model
