"""GraphStore against the real embedded server: schema, batched writes, streaming, counts."""

import pytest
from neo4j.exceptions import ServiceUnavailable

from core.errors import GraphUnavailable
from graph import queries as Q


def test_schema_is_idempotent_and_enforces_uniqueness(empty_store):
    empty_store.ensure_schema()
    empty_store.ensure_schema()  # second time: no error, no duplicate constraints
    empty_store.write(Q.MERGE_USERS, rows=[{"id": "u1"}])
    empty_store.write(Q.MERGE_USERS, rows=[{"id": "u1"}])
    assert empty_store.counts()["User"] == 1


def test_write_batches_and_stream(empty_store):
    empty_store.ensure_schema()
    seen = []
    n = empty_store.write_batches(Q.MERGE_USERS, ({"id": f"u{i:04d}"} for i in range(2500)),
                                  batch_size=1000, on_batch=seen.append)
    assert n == 2500 and seen == [1000, 1000, 500]
    chunks = list(empty_store.stream(Q.NODE_IDS["User"], chunk_size=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert sorted(x for c in chunks for x in c["id"]) == [f"u{i:04d}" for i in range(2500)]


def test_values_are_parameters_not_text(empty_store):
    """An id that looks like Cypher is stored as data, not run."""
    evil = "x'}) DETACH DELETE n //"
    empty_store.ensure_schema()
    empty_store.write(Q.MERGE_USERS, rows=[{"id": evil}, {"id": "ok"}])
    ids = {x for c in empty_store.stream(Q.NODE_IDS["User"]) for x in c["id"]}
    assert ids == {evil, "ok"}


def test_retry_gives_up_with_a_clear_error(store, monkeypatch):
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        raise ServiceUnavailable("connection refused")

    monkeypatch.setattr(store, "_run", flaky)
    monkeypatch.setattr(store.cfg, "max_retries", 2)
    monkeypatch.setattr("graph.store.time.sleep", lambda s: None)
    with pytest.raises(GraphUnavailable, match="kept failing"):
        store.read(Q.PING)
    assert len(calls) == 3


def test_retry_recovers_from_a_transient_error(store, monkeypatch):
    real = store._run
    calls = []

    def once_flaky(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise ServiceUnavailable("blip")
        return real(*a, **k)

    monkeypatch.setattr(store, "_run", once_flaky)
    monkeypatch.setattr("graph.store.time.sleep", lambda s: None)
    assert store.read(Q.PING) == [{"ok": 1}]
