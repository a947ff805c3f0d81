"""GraphStore against the real embedded server: schema, batched writes, streaming, counts, errors.
(A dead server: tests/graph/test_dead_server.py.)"""

import logging
from typing import LiteralString, cast

import pytest

from core.errors import ConfigError
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


def test_reads_return_records_and_frames(empty_store):
    empty_store.ensure_schema()
    empty_store.write(Q.MERGE_USERS, rows=[{"id": "b"}, {"id": "a"}])
    assert empty_store.read(Q.PING, timeout_s=5) == [{"ok": 1}]
    frame = empty_store.read_df(Q.NODE_IDS["User"])
    assert sorted(frame["id"]) == ["a", "b"] and list(frame.columns) == ["id"]


def test_a_query_error_is_raised_at_once_not_retried(store, caplog):
    """Only transient errors are retried (by the driver); a bad query is a bug, raised as is."""
    from neo4j.exceptions import ClientError

    with caplog.at_level(logging.WARNING, logger="neo4j"), pytest.raises(ClientError):
        store.read(cast(LiteralString, "MATCH (n:User RETURN n"))
    assert not [r for r in caplog.records if "will be retried" in r.getMessage()]


def test_the_retry_time_comes_from_the_config(tmp_path):
    from core.config import Config

    cfg = Config.from_env({"KGREC_HOME": str(tmp_path), "KGREC_GRAPH_RETRY_S": "7.5"})
    assert cfg.graph.max_transaction_retry_time_s == 7.5
    with pytest.raises(ConfigError, match="KGREC_GRAPH_RETRY_S"):
        Config.from_env({"KGREC_GRAPH_RETRY_S": "soon"})
