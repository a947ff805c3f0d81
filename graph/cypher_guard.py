"""The read-only check of Cypher a person typed (the dashboard console, `kgrec cypher`).

Why a check before sending: READ access mode is a routing hint on Neo4j (which enforces it on a
single instance) but the embedded ArcadeDB server ignores it (a CREATE in a READ session is
executed: measured), and schema statements persist there even inside a rolled-back transaction.
So the text is lexed the way Cypher does (string literals with escapes, `backtick` names, `//` and
`/* */` comments, $parameters) and refused, before anything is sent, when it has:

- write clauses: CREATE with its GQL synonym INSERT, MERGE, DELETE (DETACH/NODETACH DELETE), SET,
  REMOVE, FOREACH, LOAD CSV, CALL { ... } IN TRANSACTIONS;
- schema and administration commands: DROP, ALTER, RENAME, GRANT, DENY, REVOKE, START, STOP,
  TERMINATE, ENABLE, DEALLOCATE, REALLOCATE; USE (switching databases); every SHOW command but
  SHOW [...] INDEXES / CONSTRAINTS / FUNCTIONS / PROCEDURES (so SHOW TRANSACTION(S), SHOW USERS,
  SHOW DATABASES, SHOW SETTINGS... are refused);
- any procedure not on a short allow-list of read procedures (db.create.*, dbms.*,
  db.index.fulltext.create*, tx.setMetaData... are refused);
- range() calls that together would produce more than MAX_RANGE_ELEMENTS values, or whose bounds
  are not integer literals (or $parameters given as integers): the one way a short read query
  makes data out of nothing. Measured on the embedded server (2 GB heap): the issue's
  `UNWIND range(1,8) AS k WITH k, [x IN range(1,6000000) | ...] ...` ran for minutes, took the
  heap to its limit and ended in OutOfMemoryError while every other client slowed down;
- more than one statement; a $parameter without a value.

A keyword only counts where Cypher reads it as one: not inside strings or comments, not as a
`backtick` name, a $parameter, a property key (`n.set`), a label or type (`:Create`) or a map key
(`{set: 1}`). So a read whose string literal says 'CREATE' is allowed.

This check is the first barrier. The second is the server's: on the embedded server the text runs
as a user that may only read (graph/server.py); on Neo4j, EXPLAIN must call it a read
(graph/console.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import QueryRejected

MAX_QUERY_CHARS = 20_000
MAX_RANGE_ELEMENTS = 100_000  # all range() calls of one statement together (their product)

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
# SHOW <qualifiers...> <target>: the only SHOW commands allowed (they describe the schema)
SHOW_TARGETS = frozenset({"INDEX", "INDEXES", "CONSTRAINT", "CONSTRAINTS", "FUNCTION",
                          "FUNCTIONS", "PROCEDURE", "PROCEDURES"})
SHOW_QUALIFIERS = frozenset({"ALL", "RANGE", "TEXT", "POINT", "LOOKUP", "FULLTEXT", "VECTOR",
                             "BTREE", "UNIQUE", "UNIQUENESS", "EXIST", "EXISTENCE", "NODE",
                             "RELATIONSHIP", "REL", "KEY", "PROPERTY", "TYPE", "BUILT", "IN",
                             "USER", "DEFINED"})
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

    @property
    def param_name(self) -> str:
        name = self.text[1:]
        return name[1:-1].replace("``", "`") if name.startswith("`") else name


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
            raise QueryRejected(f"unterminated {what} at {where(text, m.start())}")
        out.append(Token(kind, m.group(), m.start()))
    return out


def one_statement(text: str, params: dict[str, Any] | None = None,
                  example: str = "MATCH (n) RETURN count(n)") -> tuple[str, list[Token]]:
    """The single statement in `text` (stripped, without a trailing ';' or trailing comments) and
    its tokens; QueryRejected when it is empty, too long, several statements, or uses a
    $parameter that `params` has no value for."""
    if text is None or not text.strip():
        raise QueryRejected(f"the query is empty: type a Cypher query, e.g. {example}")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryRejected(f"the query is {len(text):,} characters long; at most "
                            f"{MAX_QUERY_CHARS:,} are taken")
    toks = tokens(text)
    semis = [i for i, t in enumerate(toks) if t.kind == "punct" and t.text == ";"]
    if semis and semis[0] != len(toks) - 1:
        raise QueryRejected("one statement at a time: found ';' at "
                            f"{where(text, toks[semis[0]].pos)} followed by more")
    if semis:
        toks = toks[:-1]
    if not toks:
        raise QueryRejected("the query has nothing but comments")
    given = params or {}
    missing = sorted({t.param_name for t in toks if t.kind == "param"} - set(given))
    if missing:
        raise QueryRejected("no value for " + ", ".join(f"${m}" for m in missing)
                            + ": give each as name=value (e.g. " + f"{missing[0]}=...)")
    end = toks[-1].pos + len(toks[-1].text)
    return text[:end].strip(), toks


def check_read_only(text: str, params: dict[str, Any] | None = None,
                    example: str = "MATCH (n) RETURN count(n)") -> str:
    """The statement to send, or QueryRejected saying why it is not sent (see the module doc)."""
    statement, toks = one_statement(text, params, example)
    for i, t in enumerate(toks):
        if t.kind != "word" or not _is_keyword_position(toks, i):
            continue
        kw = t.upper
        reason = WRITE_CLAUSES.get(kw) or ADMIN_COMMANDS.get(kw)
        if reason:
            raise QueryRejected(f"refused: {reason} ({kw} at {where(text, t.pos)}); "
                                "the console is read-only")
        if kw == "TRANSACTIONS":
            raise QueryRejected(f"refused: CALL {{ ... }} IN TRANSACTIONS is for batched writes, "
                                f"SHOW/TERMINATE TRANSACTIONS administer the server (TRANSACTIONS "
                                f"at {where(text, t.pos)}); the console is read-only")
        if kw == "SHOW":
            _check_show(text, toks, i)
        if kw == "CALL":
            name = _procedure_name(toks, i + 1)
            if name is not None and name.lower() not in READ_PROCEDURES:
                raise QueryRejected(
                    f"refused: procedure {name} (at {where(text, t.pos)}) is not on the "
                    "console's list of read-only procedures: "
                    + ", ".join(sorted(READ_PROCEDURES)))
    _check_ranges(text, toks, params or {})
    return statement


def where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


# --- the parts ------------------------------------------------------------------------------

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


def _check_show(text: str, toks: list[Token], i: int) -> None:
    """SHOW is allowed only as SHOW [qualifiers] INDEXES|CONSTRAINTS|FUNCTIONS|PROCEDURES."""
    words: list[str] = []
    for t in toks[i + 1:]:
        if t.kind != "word":
            break
        words.append(t.upper)
        if t.upper in SHOW_TARGETS:
            if all(w in SHOW_QUALIFIERS for w in words[:-1]):
                return
            break
        if t.upper not in SHOW_QUALIFIERS:
            break
    shown = " ".join(["SHOW", *words]) if words else "SHOW"
    raise QueryRejected(f"refused: {shown} (at {where(text, toks[i].pos)}) administers the server; "
                        "the console may only SHOW INDEXES, CONSTRAINTS, FUNCTIONS or PROCEDURES")


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


def _check_ranges(text: str, toks: list[Token], params: dict[str, Any]) -> None:
    """Every range(a, b[, step]) has integer bounds (literals or integer $parameters), and all of
    them together produce at most MAX_RANGE_ELEMENTS values."""
    total = 1
    for i, t in enumerate(toks):
        if not (t.kind == "word" and t.upper == "RANGE" and i + 1 < len(toks)
                and toks[i + 1].text == "(" and _is_keyword_position(toks, i)):
            continue
        args = _call_args(toks, i + 1)
        values = [_int_value(a, params) for a in args]
        if len(args) not in (2, 3) or None in values:
            raise QueryRejected(f"refused: range() at {where(text, t.pos)} must have integer "
                                "bounds written as numbers or $parameters (e.g. range(1, 10)): "
                                "the console bounds how many values ranges produce")
        start, end, step = (values + [1])[:3]
        if step == 0:
            raise QueryRejected(f"range() at {where(text, t.pos)} has a step of 0")
        total *= max(0, (end - start) // step + 1)
    if total > MAX_RANGE_ELEMENTS:
        raise QueryRejected(f"refused: the range() calls of this query produce {total:,} values "
                            f"together (the console allows {MAX_RANGE_ELEMENTS:,}): ranges that "
                            "large fill the server's memory")


def _call_args(toks: list[Token], open_at: int) -> list[list[Token]]:
    """The top-level, comma-separated arguments of the call whose '(' is at `open_at`."""
    args: list[list[Token]] = [[]]
    depth = 0
    for t in toks[open_at + 1:]:
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif t.kind == "punct" and t.text == "," and depth == 0:
            args.append([])
            continue
        args[-1].append(t)
    return args if args != [[]] else []


def _int_value(arg: list[Token], params: dict[str, Any]) -> int | None:
    sign = 1
    if len(arg) == 2 and arg[0].kind == "punct" and arg[0].text in "+-":
        sign, arg = (-1 if arg[0].text == "-" else 1), arg[1:]
    if len(arg) != 1:
        return None
    t = arg[0]
    if t.kind == "number" and re.fullmatch(r"\d+", t.text):
        return sign * int(t.text)
    if t.kind == "param":
        value = params.get(t.param_name)
        if isinstance(value, int) and not isinstance(value, bool):
            return sign * value
    return None
