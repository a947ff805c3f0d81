"""The one implementation of graph access: the official neo4j driver over Bolt.

Callers see plain Python (lists of dicts, DataFrames), never driver types. Every value travels as a
$parameter: statements are `LiteralString` constants from `graph.queries`.

Neo4j when `NEO4J_URI` is set, otherwise the embedded server (started on demand).

One retry layer: the driver's managed transactions (`execute_query`, which retries transient
errors with jittered back-off for `GraphConfig.max_transaction_retry_time_s`); nothing is wrapped
around them, so the statements given to `write` must be idempotent (they MERGE and SET).

A dead embedded server is not retried. Every new connection first asks whether the server process
this store connected to is still alive (the driver's `resolver` hook runs before each connection
attempt); when it is gone, the check raises GraphUnavailable, which is not a driver error, so the
driver's retry loop lets it through at once. Measured before: a killed server made a running load
wait about 4 minutes (6 store-level attempts x 30 s of driver retries) before failing.

Driver exceptions handled here:
    neo4j.exceptions.ServiceUnavailable / SessionExpired  -> retried by the driver, then
                                                             GraphUnavailable
    neo4j.exceptions.TransientError                       -> retried by the driver, then GraphError
    neo4j.exceptions.AuthError                            -> GraphUnavailable naming the fix
    neo4j.exceptions.ClientError / CypherSyntaxError      -> raised as is: a bug in a query
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, LiteralString

import pandas as pd
from neo4j import READ_ACCESS, Driver, GraphDatabase, Query, Result, RoutingControl, Session
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired, TransientError

from core.config import GraphConfig
from core.errors import GraphError, GraphUnavailable
from core.io import chunks
from graph import queries as Q
from graph import server

log = logging.getLogger(__name__)


class GraphStore:
    """A connection to the graph. Use as a context manager; one per process is enough."""

    def __init__(self, cfg: GraphConfig, *, start_embedded: bool = True) -> None:
        self.cfg = cfg
        self.database = cfg.database_name
        self._resolver: Callable[[Any], list[Any]] | None = None
        self._console_driver: Driver | None = None
        self._console_lock = threading.Lock()
        if cfg.embedded:
            info = server.start(cfg) if start_embedded else server.status(cfg)
            if info is None:
                raise GraphUnavailable("the embedded graph server is not running: "
                                       "run `kgrec graph start`")
            self.uri, auth = info.uri, (server.USER, server.password(cfg))
            self.database = info.database
            self._resolver = _liveness_check(cfg, info)
        else:
            self.uri, auth = cfg.uri, (cfg.user, cfg.password)
        self._driver = self._open(auth)

    # --- lifecycle ---
    def close(self) -> None:
        self._driver.close()
        if self._console_driver is not None:
            self._console_driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads and writes ---
    def read(self, query: LiteralString, timeout_s: float | None = None,
             **params: Any) -> list[dict[str, Any]]:
        """Run a read query in a managed READ transaction; returns records as dicts.
        `timeout_s` is a server-side limit (honoured by Neo4j; ignored by ArcadeDB)."""
        q = Query(query, timeout=timeout_s) if timeout_s else query
        return self._execute(q, params, RoutingControl.READ, Result.data)

    def read_df(self, query: LiteralString, **params: Any) -> pd.DataFrame:
        return self._execute(query, params, RoutingControl.READ, Result.to_df)

    def write(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run one write query in one managed transaction (retried: queries must be idempotent)."""
        return self._execute(query, params, RoutingControl.WRITE, Result.data)

    def write_batches(self, query: LiteralString, rows: Iterable[dict[str, Any]],
                      batch_size: int | None = None,
                      on_batch: Callable[[int], None] | None = None, **params: Any) -> int:
        """Batched writes (the statement unwinds `$rows`), one transaction per batch; returns rows."""
        n = 0
        for batch in chunks(rows, batch_size or self.cfg.batch_size):
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
        try:
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
        except (ServiceUnavailable, SessionExpired) as e:
            raise GraphUnavailable(f"the graph at {self.uri} went away while streaming: {e}") from e

    def read_session(self, fetch_size: int = 1000) -> Session:
        """A READ-mode session (records fetched `fetch_size` at a time), for callers that
        consume a result incrementally (`stream`)."""
        return self._driver.session(database=self.database, default_access_mode=READ_ACCESS,
                                    fetch_size=fetch_size)

    # --- user-written Cypher (graph/console.py) ---
    @property
    def read_only_user(self) -> bool:
        """Does `console_session` log in as a user the server itself keeps read-only?
        True on the embedded server (its `kgrec_console` user); on Neo4j the console checks
        each statement with EXPLAIN instead (graph/console.py)."""
        return self.cfg.embedded

    def console_session(self, fetch_size: int = 1000, write: bool = False) -> Session:
        """A session for Cypher a person typed. Read-only (the default): on the embedded server
        as its read-only user, so the server refuses any write or schema or security command
        the console's own check missed. `write=True` (only `kgrec cypher --write`, never the
        dashboard): the store's own user in WRITE mode."""
        if write:
            return self._driver.session(database=self.database, fetch_size=fetch_size)
        driver = self._driver
        if self.read_only_user:
            with self._console_lock:
                if self._console_driver is None:
                    self._console_driver = self._open(
                        (server.CONSOLE_USER, server.console_password(self.cfg)),
                        on_auth_error="the embedded server has no read-only console user yet (it "
                                      "was started by an older kgrec): restart it with `kgrec "
                                      "graph stop` and `kgrec graph start`")
            driver = self._console_driver
        return driver.session(database=self.database, default_access_mode=READ_ACCESS,
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
    def _open(self, auth: tuple[str | None, str | None],
              on_auth_error: str = "check NEO4J_USER / NEO4J_PASSWORD") -> Driver:
        driver = GraphDatabase.driver(
            self.uri, auth=auth, resolver=self._resolver,
            max_transaction_retry_time=self.cfg.max_transaction_retry_time_s)
        try:
            driver.verify_connectivity()
        except AuthError as e:
            driver.close()
            raise GraphUnavailable(f"{self.uri}: authentication failed ({e.message}); "
                                   f"{on_auth_error}") from None
        except ServiceUnavailable as e:
            driver.close()
            raise GraphUnavailable(f"cannot reach the graph at {self.uri}: {e}") from None
        except BaseException:
            driver.close()
            raise
        return driver

    def _execute(self, query: LiteralString | Query, params: dict[str, Any],
                 routing: RoutingControl, transform: Callable[[Result], Any]) -> Any:
        try:
            return self._driver.execute_query(query, params, routing_=routing,
                                              database_=self.database,
                                              result_transformer_=transform)
        except (ServiceUnavailable, SessionExpired) as e:
            raise GraphUnavailable(
                f"the graph at {self.uri} could not be reached for "
                f"{self.cfg.max_transaction_retry_time_s:g} s: {e}") from e
        except TransientError as e:
            raise GraphError(f"the graph kept answering with a transient error for "
                             f"{self.cfg.max_transaction_retry_time_s:g} s: {e.message}") from e


def _liveness_check(cfg: GraphConfig, info: server.ServerInfo) -> Callable[[Any], list[Any]]:
    """The driver's resolver for the embedded server: before each new connection, check that
    the server process is still alive; if it is gone, fail now instead of retrying."""

    def resolve(address: Any) -> list[Any]:
        if not server.is_alive(cfg, info):
            raise GraphUnavailable(server.died_message(cfg, info))
        return [address]

    return resolve
