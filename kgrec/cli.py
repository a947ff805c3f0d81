"""The `kgrec` command line: thin wiring of the stages (one module per command group)."""

from __future__ import annotations

import typer

from kgrec.commands import (
    cypher_cmd,
    dashboard_cmd,
    demo_cmd,
    etl_cmd,
    graph_cmd,
    recommend_cmd,
    search_cmd,
    train_cmd,
)
from kgrec.commands.common import fit_console_to_output

app = typer.Typer(help="kgrec: a knowledge-graph recommender for e-commerce.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.callback()(fit_console_to_output)
app.add_typer(graph_cmd.app, name="graph")
app.add_typer(train_cmd.app)  # top-level train, evaluate, compare
app.add_typer(etl_cmd.app, name="etl")
app.command("demo")(demo_cmd.demo)
app.command("search")(search_cmd.search)
app.command("recommend")(recommend_cmd.recommend)
app.command("explain")(recommend_cmd.explain)
app.command("search-eval")(search_cmd.search_eval)
app.command("dashboard")(dashboard_cmd.dashboard)
app.command("cypher")(cypher_cmd.cypher)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
