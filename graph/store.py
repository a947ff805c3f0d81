"""The one implementation of graph access: the official neo4j driver over Bolt.

Callers see plain Python (lists of dicts, DataFrames), never driver types. Every value travels as a
$parameter: statements are `LiteralString` constants from `graph.queries`.

Neo4j when `NEO4J_URI` is set, otherwise the embedded server (started on demand).

Driver exceptions handled here:
    neo4j.exceptions.ServiceUnavailable / SessionExpired  -> retried, then GraphUnavailable
    neo4j.exceptions.TransientError                       -> retried (managed transactions
                                                             retry these by themselves)
    neo4j.exceptions.AuthError                            -> GraphUnavailable naming the fix
    neo4j.exceptions.ClientError / CypherSyntaxError      -> raised as is: a bug in a query
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, LiteralString

import pandas as pd
from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase, Session, unit_of_work
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired, TransientError

from core.config import GraphConfig
from core.errors import GraphUnavailable
from graph import queries as Q
from graph import server

log = logging.getLogger(__name__)

_RETRYABLE = (ServiceUnavailable, SessionExpired, TransientError)


class GraphStore:
    """A connection to the graph. Use as a context manager; one per process is enough."""

    def __init__(self, cfg: GraphConfig, *, start_embedded: bool = True) -> None:
        self.cfg = cfg
        self.database = cfg.database_name
        if cfg.embedded:
            info = server.start(cfg) if start_embedded else server.status(cfg)
            if info is None:
                raise GraphUnavailable("the embedded graph server is not running: "
                                       "run `kgrec graph start`")
            self.uri, auth = info.uri, (server.USER, server.password(cfg))
            self.database = info.database
        else:
            self.uri, auth = cfg.uri, (cfg.user, cfg.password)
        self._driver: Driver = GraphDatabase.driver(self.uri, auth=auth)
        try:
            self._driver.verify_connectivity()
        except AuthError as e:
            self._driver.close()
            raise GraphUnavailable(f"{self.uri}: authentication failed ({e.message}); "
                                   "check NEO4J_USER / NEO4J_PASSWORD") from None
        except ServiceUnavailable as e:
            self._driver.close()
            raise GraphUnavailable(f"cannot reach the graph at {self.uri}: {e}") from None

    # --- lifecycle ---
    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads and writes ---
    def read(self, query: LiteralString, timeout_s: float | None = None,
             **params: Any) -> list[dict[str, Any]]:
        """Run a read query in a managed READ transaction; returns records as dicts."""
        return self._retry(lambda: self._run(query, params, READ_ACCESS, timeout_s))

    def read_df(self, query: LiteralString, **params: Any) -> pd.DataFrame:
        return pd.DataFrame(self.read(query, **params))

    def write(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run one write query in one managed transaction (retried: queries must be idempotent)."""
        return self._retry(lambda: self._run(query, params, WRITE_ACCESS))

    def write_batches(self, query: LiteralString, rows: Iterable[dict[str, Any]],
                      batch_size: int | None = None,
                      on_batch: Callable[[int], None] | None = None, **params: Any) -> int:
        """Batched writes (the statement unwinds `$rows`), one transaction per batch; returns rows."""
        n = 0
        for batch in _chunks(rows, batch_size or self.cfg.batch_size):
            self.write(query, rows=batch, **params)
            n += len(batch)
            if on_batch:
                on_batch(len(batch))
        return n

    def stream(self, query: LiteralString, chunk_size: int = 100_000,
               **params: Any) -> Iterator[pd.DataFrame]:
        """Stream a large read result as DataFrames of at most `chunk_size` rows.

        One auto-commit read (records are pulled from the server as they are consumed), so
        the whole result never sits in Python at once. Not retried: callers re-run on failure.
        """
        with self.read_session(fetch_size=min(chunk_size, 10_000)) as s:
            result = s.run(query, params)
            keys = result.keys()
            rows: list[tuple[Any, ...]] = []
            for record in result:
                rows.append(tuple(record.values()))
                if len(rows) == chunk_size:
                    yield pd.DataFrame.from_records(rows, columns=keys)
                    rows = []
            if rows or not keys:
                yield pd.DataFrame.from_records(rows, columns=keys)

    def read_session(self, fetch_size: int = 1000) -> Session:
        """A READ-mode session (records fetched `fetch_size` at a time), for callers that
        consume a result incrementally: `stream` and the read-only console."""
        return self._driver.session(database=self.database, default_access_mode=READ_ACCESS,
                                    fetch_size=fetch_size)

    def ensure_schema(self) -> None:
        """Uniqueness constraints on every id, idempotently."""
        for stmt in Q.SCHEMA:
            self.write(stmt)

    def counts(self) -> dict[str, int]:
        """Nodes per label and relationships per type."""
        out: dict[str, int] = {}
        for label, stmt in Q.COUNT_NODES.items():
            out[label] = self.read(stmt)[0]["n"]
        for rel, stmt in Q.COUNT_RELS.items():
            out[rel] = self.read(stmt)[0]["n"]
        return out

    # --- internals ---
    def _run(self, query: LiteralString, params: dict[str, Any], mode: str,
             timeout_s: float | None = None) -> list[dict[str, Any]]:
        @unit_of_work(timeout=timeout_s)  # a server-side limit (Neo4j; ArcadeDB ignores it)
        def work(tx):
            return tx.run(query, params).data()

        with self._driver.session(database=self.database, default_access_mode=mode) as s:
            return (s.execute_read if mode == READ_ACCESS else s.execute_write)(work)

    def _retry(self, fn: Callable[[], Any]) -> Any:
        delay = 0.5
        for attempt in range(self.cfg.max_retries + 1):
            try:
                return fn()
            except _RETRYABLE as e:
                if attempt == self.cfg.max_retries:
                    raise GraphUnavailable(f"the graph at {self.uri} kept failing: {e}") from e
                log.warning("transient graph error (%s); retrying in %.1f s", e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10)


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
