"""`kgrec graph start|stop|status|counts|reset`: the embedded server and a quick look inside."""

from __future__ import annotations

import typer
from rich.table import Table

from graph import server
from kgrec.commands.common import config, console, friendly_errors, open_store

app = typer.Typer(help="Manage the graph: the embedded server, counts, reset.", no_args_is_help=True)


@app.command()
@friendly_errors
def start() -> None:
    """Start the embedded graph server (a no-op if it is running)."""
    cfg = config()
    if not cfg.graph.embedded:
        console.print(f"NEO4J_URI is set ({cfg.graph.uri}): nothing to start.")
        return
    with console.status("starting the embedded graph server…"):
        info = server.start(cfg.graph)
    console.print(f"embedded graph server running: {info.uri} (database {info.database}, "
                  f"pid {info.pid}); password in {server.graph_dir(cfg.graph) / 'password'}")


@app.command()
@friendly_errors
def stop() -> None:
    """Stop the embedded graph server."""
    cfg = config()
    console.print("stopped." if server.stop(cfg.graph) else "not running.")


@app.command()
@friendly_errors
def status() -> None:
    """Is the embedded server running, and where."""
    cfg = config()
    if not cfg.graph.embedded:
        console.print(f"using Neo4j at {cfg.graph.uri} (database {cfg.graph.database_name})")
        return
    info = server.status(cfg.graph)
    if info is None:
        dead = server.crashed(cfg.graph)
        why = "" if dead is None else (
            f"; it (pid {dead.pid}) stopped without `kgrec graph stop`: killed or crashed, see "
            f"{server.graph_dir(cfg.graph) / 'server.log'}")
        console.print(f"embedded graph server: not running{why} (start it with `kgrec graph "
                      "start`)", highlight=False)
        raise typer.Exit(3)
    console.print(f"embedded graph server: running at {info.uri}, database {info.database}, "
                  f"pid {info.pid}, data in {server.graph_dir(cfg.graph)}")


@app.command()
@friendly_errors
def counts() -> None:
    """Nodes per label and relationships per type."""
    with open_store(config()) as store:
        console.print(counts_table(store.counts()))


@app.command()
@friendly_errors
def reset(yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Delete every node and relationship of the graph, and the events loaded beside it."""
    if not yes:
        typer.confirm("Delete everything in the graph?", abort=True)
    from etl.home import EtlHome
    from graph.maintenance import delete_all

    cfg = config()
    home = EtlHome(cfg.graph.home)
    # under the load lock: a load running now finishes first, none starts halfway through
    with home.lock(on_wait=lambda: console.print("waiting for a load of this home to finish…")):
        with open_store(cfg) as store:
            n = delete_all(store)
        home.forget_loads()
    console.print(f"deleted {n:,} nodes and the event store ({home.events}).")


def counts_table(counts: dict[str, int], title: str = "graph") -> Table:
    table = Table(title=title)
    table.add_column("type")
    table.add_column("count", justify="right")
    for name, n in counts.items():
        if n:
            table.add_row(name, f"{n:,}")
    return table
