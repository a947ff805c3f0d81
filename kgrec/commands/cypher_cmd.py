"""`kgrec cypher QUERY`: run Cypher from the shell, read-only unless --write.

Read-only statements go through the same checks and limits as the dashboard's console
(graph/console.py: refused write and admin forms, the read-only server user, a row limit, a time
limit after which the statement is stopped on the server). `--write` runs one statement as the
store's own user and commits it; the dashboard has no such option.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from core.errors import ConfigError, InputFileError
from graph import console as cypher_console
from kgrec.commands.common import config, console, err_console, friendly_errors, open_store
from kgrec.tables import Col, table

FORMATS = ("table", "csv", "json")


@friendly_errors
def cypher(
    query: str = typer.Argument(None, help="The Cypher statement (quote it; '-' reads stdin)."),
    file: Path = typer.Option(None, "--file", "-f", help="Read the statement from this file."),
    param: list[str] = typer.Option(
        [], "--param", "-p", metavar="NAME=VALUE",
        help="A $parameter (repeatable). JSON values are typed (k=10, flag=true, "
             "ids='[\"a\",\"b\"]', id='\"0042\"' for a number as text); anything else is text."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json (JSON keeps lists "
                                                      "and maps; nodes become text)."),
    limit: int = typer.Option(cypher_console.DEFAULT_ROW_LIMIT, "--limit",
                              help="At most this many rows (a note on stderr says when cut)."),
    timeout: float = typer.Option(60.0, "--timeout",
                                  help="Seconds before the statement is stopped on the server."),
    write: bool = typer.Option(False, "--write",
                               help="Allow a statement that writes (runs as the store's own user "
                                    "and commits). Without it, writes are refused."),
) -> None:
    """Run one Cypher statement against the graph and print the result.

    Example (a recipe of docs/cypher.md):

        kgrec cypher -p user_id=A2V5R832QCSOMX -p run_id=demo-hgt \\
          'MATCH (u:User {id: $user_id})-\\[r:RECOMMENDED {run_id: $run_id}]->(i:Item)
           RETURN r.rank AS rank, i.title AS title ORDER BY rank'
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    text = _statement(query, file)
    params = cypher_console.parse_params(param)
    run = cypher_console.run_write if write else cypher_console.run_read_only
    with open_store(config()) as store:
        res = run(store, text, params=params, row_limit=limit, timeout_s=timeout)
    if fmt == "json":
        typer.echo(json.dumps(res.records(), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        typer.echo(res.frame.to_csv(index=False), nl=False)
    else:
        console.print(_table(res))
    n = len(res.rows)
    err_console.print(f"{n:,} row{'s' if n != 1 else ''} in {res.seconds * 1000:,.0f} ms",
                      style="dim", highlight=False)
    if res.truncated:
        err_console.print(f"cut at the row limit ({res.row_limit:,}): add LIMIT to the query or "
                          "raise --limit", style="yellow", highlight=False)
    if write:
        done = ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in res.counters.items())
        err_console.print(f"committed ({done or 'nothing changed'})", highlight=False)


def _statement(query: str | None, file: Path | None) -> str:
    if (query is None) == (file is None):
        raise ConfigError("give the statement either as an argument or with --file "
                          "(e.g. kgrec cypher 'MATCH (u:User) RETURN count(u)')")
    if file is None:
        return sys.stdin.read() if query == "-" else query
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputFileError(f"{file}: cannot read the statement ({e})") from None


def _table(res: cypher_console.ConsoleResult):
    frame = res.frame
    cols = [Col(str(c), kind="number" if _numeric(frame[c]) else "text", max_width=60)
            for c in frame.columns]
    rows = [["null" if v is None else v for v in r] for r in frame.itertuples(index=False)]
    return table("", cols, rows, console)


def _numeric(values) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in present)
