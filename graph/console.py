"""Running Cypher a person typed (the dashboard console, `kgrec cypher`): checked, bounded, stoppable.

1. The text is checked by `graph.cypher_guard.check_read_only` before anything is sent (write
   clauses, administration, SHOW outside the schema, large ranges, several statements, $parameters
   without a value are refused).
2. The server is the second barrier: on the embedded server the statement runs as its read-only
   user (`GraphStore.console_session`); on Neo4j, `EXPLAIN` must call it a read (query type `r`)
   before it runs. (On the embedded server EXPLAIN is no barrier: it reports `w` for every
   statement, and EXPLAIN of a schema statement executes it: measured on ArcadeDB 26.10.)
3. It runs in a READ transaction with a server-side timeout (honoured by Neo4j), on a worker thread,
   pulling at most `row_limit` + 1 records (the extra one tells that rows were cut). The embedded
   server ignores transaction timeouts, so at the time limit the console ends its own transaction
   on the server: every statement carries a random tag in a trailing comment, and
   `SHOW TRANSACTIONS ... WHERE currentQuery CONTAINS $tag` + `TERMINATE TRANSACTIONS` find and
   stop it (measured: a terminated UNWIND loop ends within 0.3 s). Nothing is ever committed.

`run_write` (only `kgrec cypher --write`, never the dashboard) runs one statement as the store's own
user and commits it.

Results keep plain values (numbers, strings, lists, maps) as they are (`records()`, for JSON); nodes,
relationships and paths become short Cypher-like strings; `frame` is the display table.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, LiteralString, cast

import pandas as pd
from neo4j.exceptions import DriverError, Neo4jError
from neo4j.graph import Node, Path, Relationship

from core.errors import GraphError, QueryRejected
from graph import queries as Q
from graph.cypher_guard import check_read_only as _check
from graph.cypher_guard import one_statement, tokens  # noqa: F401  (part of this module's API)

log = logging.getLogger(__name__)

DEFAULT_ROW_LIMIT = 1000
DEFAULT_TIMEOUT_S = 10.0
MAX_RUNNING = 2  # console queries running at once in this process
STOP_GRACE_S = 10.0  # how long a terminated statement may take to end on the server
COUNTERS = ("nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted",
            "properties_set", "labels_added", "labels_removed", "indexes_added",
            "indexes_removed", "constraints_added", "constraints_removed")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ConsoleResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]  # plain values: JSON-able; graph elements as Cypher-like text
    frame: pd.DataFrame  # for display (dtype object: values as given; non-scalars as text)
    truncated: bool  # more rows than the limit existed
    row_limit: int
    seconds: float
    counters: dict[str, int] = field(default_factory=dict)  # what a write changed

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class QueryTimedOut(GraphError):
    pass


class QueryFailed(GraphError):
    """The server refused or failed the query (syntax error, unknown function...)."""


def check_read_only(text: str, params: dict[str, Any] | None = None) -> str:
    """The statement to send, or QueryRejected saying why not (graph/cypher_guard.py)."""
    return _check(text, params, example=Q.CONSOLE_FIRST_QUERY)


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """`name=value` pairs (`kgrec cypher --param`, the console's Parameters box, one per line;
    blank lines and lines starting with # are skipped). A value is read as JSON when it is JSON
    (numbers, true/false, null, lists, maps, "quoted text"), else taken as the text it is:
    `user_id=A2V5R832QCSOMX`, `k=10`, `runs=["a","b"]`, `item_id="0042"` (a number as text)."""
    out: dict[str, Any] = {}
    for raw in pairs:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().removeprefix("$")
        if not sep or not _PARAM_NAME.fullmatch(name):
            raise QueryRejected(f"parameter {raw.strip()!r}: write it as name=value, "
                                "e.g. user_id=A2V5R832QCSOMX or k=10")
        out[name] = _typed(value.strip())
    return out


def _typed(text: str) -> Any:
    def no_constants(c: str) -> Any:
        raise ValueError(c)  # NaN / Infinity stay text

    try:
        return json.loads(text, parse_constant=no_constants)
    except ValueError:
        return text


# --- running ------------------------------------------------------------------------------------

_slots = threading.BoundedSemaphore(MAX_RUNNING)


def run_read_only(store, text: str, *, params: dict[str, Any] | None = None,
                  row_limit: int = DEFAULT_ROW_LIMIT,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> ConsoleResult:
    """Check `text` and run it read-only on `store` (a GraphStore); at most `row_limit` rows.

    Raises QueryRejected (refused before sending, by the server's planner, or too many console
    queries running), QueryTimedOut, QueryFailed (the server's own error message).
    """
    params = params or {}
    statement = check_read_only(text, params)
    return _execute(store, statement, params, row_limit, timeout_s, write=False)


def run_write(store, text: str, *, params: dict[str, Any] | None = None,
              row_limit: int = DEFAULT_ROW_LIMIT,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> ConsoleResult:
    """Run one statement that may write, as the store's own user, and commit it (`kgrec cypher
    --write` only). Same limits and errors as `run_read_only`; `counters` says what changed."""
    params = params or {}
    statement, _ = one_statement(text, params, example=Q.CONSOLE_FIRST_QUERY)
    return _execute(store, statement, params, row_limit, timeout_s, write=True)


def _execute(store, statement: str, params: dict[str, Any], row_limit: int, timeout_s: float,
             write: bool) -> ConsoleResult:
    if row_limit < 1:
        raise QueryRejected(f"the row limit must be at least 1 (got {row_limit})")
    if not _slots.acquire(blocking=False):
        raise QueryRejected("other console queries are still running (one may be being stopped "
                            "by the server): try again shortly")
    tag = secrets.token_hex(8)
    t0 = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgrec-console")
    future = pool.submit(_run, store, statement, tag, params, row_limit, timeout_s, write)
    future.add_done_callback(lambda _: _slots.release())
    pool.shutdown(wait=False)
    try:
        keys, raw, truncated, counters = future.result(timeout=timeout_s + 1.0)
    except FutureTimeout:
        stopped = _terminate(store, tag, write)
        try:
            future.result(timeout=STOP_GRACE_S if stopped else 0.01)
        except (FutureTimeout, GraphError):
            pass
        how = "was stopped on the server" if future.done() else \
            "was abandoned (the server has not stopped it yet)"
        raise QueryTimedOut(f"the query ran longer than {timeout_s:g} s and {how}: add a LIMIT, "
                            "or start the pattern from one node given by its id") from None
    rows = [tuple(_plain(v) for v in r) for r in raw]
    frame = pd.DataFrame([[_display(v) for v in r] for r in raw], columns=keys, dtype=object)
    return ConsoleResult(keys, rows, frame, truncated, row_limit, time.perf_counter() - t0,
                         counters)


def _run(store, statement: str, tag: str, params: dict[str, Any], row_limit: int,
         timeout_s: float, write: bool) -> tuple[list[str], list[tuple[Any, ...]], bool, dict]:
    # User text by design: checked above (check_read_only / one_statement). The trailing comment
    # is the tag that finds this statement's transaction on the server at the time limit.
    query = cast(LiteralString, f"{statement}\n/* kgrec-console {tag} */")
    try:
        with store.console_session(fetch_size=min(row_limit + 1, 1000), write=write) as session:
            if not write and not store.read_only_user:
                _require_read(session, query, params)
            tx = session.begin_transaction(timeout=timeout_s)
            try:
                result = tx.run(query, params)
                keys = list(result.keys())
                rows: list[tuple[Any, ...]] = []
                truncated = False
                for record in result:
                    if len(rows) == row_limit:
                        truncated = True
                        break
                    rows.append(tuple(record.values()))
                counters: dict[str, int] = {}
                if write:
                    summary = result.consume()
                    counters = {k: getattr(summary.counters, k) for k in COUNTERS
                                if getattr(summary.counters, k, 0)}
                    tx.commit()
            finally:
                tx.close()  # rolls back whatever was not committed
    except Neo4jError as e:
        code = (e.code or "").lower()
        if "timedout" in code or "timeout" in code or code.endswith(".terminated"):
            raise QueryTimedOut(f"the query ran longer than {timeout_s:g} s and was stopped by "
                                "the server") from None
        raise QueryFailed(f"the graph refused the query: {e.message or e}") from None
    except DriverError as e:
        raise QueryFailed(f"the connection to the graph failed: {e}") from None
    return keys, rows, truncated, counters


def _require_read(session, query: LiteralString, params: dict[str, Any]) -> None:
    """Neo4j's planner is the second barrier there: EXPLAIN (which does not run the statement on
    Neo4j) must classify it as a read (`r`; `w`, `rw` and `s` are refused)."""
    kind = session.run(cast(LiteralString, "EXPLAIN " + query), params).consume().query_type
    if kind != "r":
        raise QueryRejected(f"refused: the server's planner classifies the statement as "
                            f"{kind!r} (not a read, 'r'); the console is read-only")


def _terminate(store, tag: str, write: bool) -> bool:
    """End the console's own transaction that carries `tag` on the server; True if one was
    terminated."""
    try:
        with store.console_session(write=write) as session:
            ids = [r["transactionId"] for r in session.run(Q.CONSOLE_TRANSACTIONS, tag=tag)]
            if not ids:
                return False
            answers = session.run(Q.TERMINATE_TRANSACTIONS, ids=ids).data()
    except (Neo4jError, DriverError, GraphError) as e:
        log.warning("could not stop a timed-out console query on the server: %s", e)
        return False
    return any(a.get("message") == "Transaction terminated." for a in answers)


# --- values -------------------------------------------------------------------------------------

def _plain(v: Any) -> Any:
    """JSON-able: plain values as they are (inside lists and maps too), graph elements as text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (Node, Relationship, Path)):
        return _text(v)
    return str(v)  # temporal (ISO-8601) and spatial values


def _display(v: Any) -> Any:
    """Scalars stay as they are; everything else becomes Cypher-like text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return _text(v)


def _text(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, Node):
        labels = "".join(f":{label}" for label in sorted(v.labels))
        return f"({labels}{_props(dict(v))})"
    if isinstance(v, Relationship):
        return f"[:{v.type}{_props(dict(v))}]"
    if isinstance(v, Path):
        nodes = list(v.nodes)
        out = [_text(nodes[0])]
        for i, rel in enumerate(v.relationships):
            forward = rel.start_node is None or rel.start_node.element_id == nodes[i].element_id
            r = _text(rel)
            out.append(f"-{r}->" if forward else f"<-{r}-")
            out.append(_text(nodes[i + 1]))
        return "".join(out)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_text(x)}" for k, x in v.items()) + "}"
    return str(v)  # temporal and spatial values


def _props(props: dict[str, Any]) -> str:
    if not props:
        return ""
    return " {" + ", ".join(f"{k}: {_text(props[k])}" for k in sorted(props)) + "}"
