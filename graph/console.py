"""The read-only Cypher console: check a typed query, then run it read-only, bounded.

Why a check before sending: READ access mode is a routing hint on Neo4j (which enforces it on a
single instance) but the embedded ArcadeDB server ignores it (a CREATE in a READ session is
executed: measured), and it also ignores transaction timeouts. So the console

1. lexes the query the way Cypher does (string literals with escapes, `backtick` names,
   `//` and `/* */` comments, $parameters) and refuses, before anything is sent:
   - write clauses: CREATE with its GQL synonym INSERT, MERGE, DELETE (DETACH/NODETACH DELETE),
     SET, REMOVE, FOREACH, LOAD CSV, CALL { ... } IN TRANSACTIONS;
   - schema and administration commands: DROP, ALTER, RENAME, GRANT, DENY, REVOKE, START, STOP,
     TERMINATE, ENABLE, DEALLOCATE, REALLOCATE; USE (switching databases);
   - any procedure not on a short allow-list of read procedures (so db.create.*, dbms.*,
     db.index.fulltext.create*, tx.setMetaData... are refused);
   - more than one statement;
   A keyword only counts where Cypher reads it as one: not inside strings or comments, not as
   a `backtick` name, a $parameter, a property key (`n.set`), a label or type (`:Create`) or a
   map key (`{set: 1}`). So a read whose string literal says 'CREATE' is allowed.
2. runs it in a READ-mode explicit transaction with a server-side timeout (honoured by Neo4j),
   on a worker thread that is abandoned after the same timeout (for servers that do not honour
   it), pulling at most `row_limit` + 1 records (the extra one tells that rows were cut).

Results are a DataFrame of display-ready values: nodes, relationships and paths become short
Cypher-like strings.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, LiteralString, cast

import pandas as pd
from neo4j.exceptions import DriverError, Neo4jError
from neo4j.graph import Node, Path, Relationship

from core.errors import GraphError, QueryRejected
from graph import queries as Q

log = logging.getLogger(__name__)

DEFAULT_ROW_LIMIT = 1000
DEFAULT_TIMEOUT_S = 10.0
MAX_QUERY_CHARS = 20_000
MAX_RUNNING = 2  # console queries running at once in this process (abandoned ones included)

# keyword -> why it is refused
WRITE_CLAUSES: dict[str, str] = {
    "CREATE": "CREATE writes to the graph (or creates schema)",
    "INSERT": "INSERT writes to the graph",
    "MERGE": "MERGE writes to the graph",
    "DELETE": "DELETE writes to the graph",
    "SET": "SET writes to the graph",
    "REMOVE": "REMOVE writes to the graph",
    "FOREACH": "FOREACH only exists to write",
    "LOAD": "LOAD CSV reads files on the server and is meant for writing",
}
ADMIN_COMMANDS: dict[str, str] = {
    "DROP": "DROP changes the schema or the databases",
    "ALTER": "ALTER is an administration command",
    "RENAME": "RENAME is an administration command",
    "GRANT": "GRANT is an administration command",
    "DENY": "DENY is an administration command",
    "REVOKE": "REVOKE is an administration command",
    "START": "START is an administration command",
    "STOP": "STOP is an administration command",
    "TERMINATE": "TERMINATE is an administration command",
    "ENABLE": "ENABLE is an administration command",
    "DEALLOCATE": "DEALLOCATE is an administration command",
    "REALLOCATE": "REALLOCATE is an administration command",
    "USE": "USE switches databases; the console runs on the configured database only",
}
# Read-only procedures a console user may call (compared case-insensitively).
READ_PROCEDURES: frozenset[str] = frozenset({
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
    "db.schema.nodetypeproperties", "db.schema.reltypeproperties", "db.info", "db.ping",
    "db.indexes", "db.constraints", "dbms.components",
})

_LEXER = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n\r]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>`(?:[^`]|``)*`)
  | (?P<param>\$(?:\w+|`(?:[^`]|``)*`))
  | (?P<number>0[xX][0-9a-fA-F]+|0[oO][0-7]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<unclosed>/\*|['"`])
  | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str  # word | name | param | string | number | punct
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True)
class ConsoleResult:
    frame: pd.DataFrame
    truncated: bool  # more rows than the limit existed
    row_limit: int
    seconds: float


class QueryTimedOut(GraphError):
    pass


class QueryFailed(GraphError):
    """The server refused or failed the query (syntax error, unknown function...)."""


# --- checking -----------------------------------------------------------------------------------

def tokens(text: str) -> list[Token]:
    """Significant tokens of a Cypher text (whitespace and comments dropped).

    Raises QueryRejected on an unterminated string, name or comment: a query whose extent we
    cannot tell is not sent.
    """
    out: list[Token] = []
    for m in _LEXER.finditer(text):
        kind = m.lastgroup or "punct"
        if kind in ("ws", "comment"):
            continue
        if kind == "unclosed":
            what = {"/*": "comment", "`": "`name`"}.get(m.group(), "string")
            raise QueryRejected(f"unterminated {what} at {_where(text, m.start())}")
        out.append(Token(kind, m.group(), m.start()))
    return out


def check_read_only(text: str) -> str:
    """The statement to send (stripped, without a trailing ';'), or QueryRejected saying why."""
    if text is None or not text.strip():
        raise QueryRejected("the query is empty: type a Cypher query, e.g. "
                            + Q.CONSOLE_FIRST_QUERY)
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRejected(f"the query is {len(text):,} characters long; the console takes at "
                            f"most {MAX_QUERY_CHARS:,}")
    toks = tokens(text)
    semis = [i for i, t in enumerate(toks) if t.kind == "punct" and t.text == ";"]
    if semis and semis[0] != len(toks) - 1:
        raise QueryRejected("one statement at a time: found ';' at "
                            f"{_where(text, toks[semis[0]].pos)} followed by more")
    if semis:
        toks = toks[:-1]
    if not toks:
        raise QueryRejected("the query has nothing but comments")
    for i, t in enumerate(toks):
        if t.kind != "word" or not _is_keyword_position(toks, i):
            continue
        kw = t.upper
        reason = WRITE_CLAUSES.get(kw) or ADMIN_COMMANDS.get(kw)
        if reason:
            raise QueryRejected(f"refused: {reason} ({kw} at {_where(text, t.pos)}); "
                                "the console is read-only")
        if kw == "TRANSACTIONS":
            raise QueryRejected(f"refused: CALL {{ ... }} IN TRANSACTIONS is for batched writes, "
                                f"SHOW/TERMINATE TRANSACTIONS administer the server (TRANSACTIONS "
                                f"at {_where(text, t.pos)}); the console is read-only")
        if kw == "CALL":
            name = _procedure_name(toks, i + 1)
            if name is not None and name.lower() not in READ_PROCEDURES:
                raise QueryRejected(
                    f"refused: procedure {name} (at {_where(text, t.pos)}) is not on the "
                    "console's list of read-only procedures: "
                    + ", ".join(sorted(READ_PROCEDURES)))
    end = toks[-1].pos + len(toks[-1].text)
    return text[:end].strip()


def _is_keyword_position(toks: list[Token], i: int) -> bool:
    """False where Cypher reads a word as a name: n.word, :Word, {word: ...} (written without
    space between the word and the '.' or ':'; with space it is treated as a keyword)."""
    t = toks[i]
    prev = toks[i - 1] if i > 0 else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    if prev is not None and prev.kind == "punct" and prev.text in (".", ":") \
            and prev.pos + 1 == t.pos:
        return False
    if nxt is not None and nxt.kind == "punct" and nxt.text == ":" \
            and t.pos + len(t.text) == nxt.pos:
        return False
    return True


def _procedure_name(toks: list[Token], j: int) -> str | None:
    """The dotted name after CALL, or None for a subquery (CALL { or CALL ( )."""
    parts: list[str] = []
    while j < len(toks) and toks[j].kind in ("word", "name"):
        t = toks[j]
        parts.append(t.text[1:-1].replace("``", "`") if t.kind == "name" else t.text)
        if j + 1 < len(toks) and toks[j + 1].text == ".":
            j += 2
        else:
            break
    return ".".join(parts) if parts else None


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


# --- running ------------------------------------------------------------------------------------

_slots = threading.BoundedSemaphore(MAX_RUNNING)


def run_read_only(store, text: str, *, params: dict[str, Any] | None = None,
                  row_limit: int = DEFAULT_ROW_LIMIT,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> ConsoleResult:
    """Check `text` and run it read-only on `store` (a GraphStore); at most `row_limit` rows.

    Raises QueryRejected (refused before sending, or too many console queries running),
    QueryTimedOut, QueryFailed (the server's own error message).
    """
    statement = check_read_only(text)
    if row_limit < 1:
        raise QueryRejected(f"the row limit must be at least 1 (got {row_limit})")
    if not _slots.acquire(blocking=False):
        raise QueryRejected("other console queries are still running (one may have passed its "
                            "time limit and is being finished by the server): try again shortly")
    t0 = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgrec-console")
    future = pool.submit(_run, store, statement, params or {}, row_limit, timeout_s)
    future.add_done_callback(lambda _: _slots.release())
    pool.shutdown(wait=False)
    try:
        rows, keys, truncated = future.result(timeout=timeout_s + 1.0)
    except FutureTimeout:
        raise QueryTimedOut(f"the query ran longer than {timeout_s:g} s and was abandoned: add a "
                            "LIMIT, or start the pattern from one node given by its id"
                            ) from None
    frame = pd.DataFrame([[_display(v) for v in r] for r in rows], columns=list(keys))
    return ConsoleResult(frame, truncated, row_limit, time.perf_counter() - t0)


def _run(store, statement: str, params: dict[str, Any], row_limit: int,
         timeout_s: float) -> tuple[list[tuple[Any, ...]], list[str], bool]:
    # The console runs user text by design; it was checked by check_read_only above.
    query = cast(LiteralString, statement)
    try:
        with store.read_session(fetch_size=min(row_limit + 1, 1000)) as session:
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
            finally:
                tx.close()  # rolls back: nothing is ever committed
    except Neo4jError as e:
        code = (e.code or "").lower()
        if "timedout" in code or "timeout" in code or code.endswith(".terminated"):
            raise QueryTimedOut(f"the query ran longer than {timeout_s:g} s and was stopped by "
                                "the server") from None
        raise QueryFailed(f"the graph refused the query: {e.message or e}") from None
    except DriverError as e:
        raise QueryFailed(f"the connection to the graph failed: {e}") from None
    return rows, keys, truncated


# --- display ------------------------------------------------------------------------------------

def _display(v: Any) -> Any:
    """Plain values stay as they are; everything else becomes Cypher-like text."""
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
