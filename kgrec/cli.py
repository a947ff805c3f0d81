"""The `kgrec` command line: thin wiring of the stages (one module per command group)."""

from __future__ import annotations

import typer

from kgrec.commands import demo_cmd, etl_cmd, graph_cmd

app = typer.Typer(help="kgrec: a knowledge-graph recommender for e-commerce.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(graph_cmd.app, name="graph")
app.add_typer(etl_cmd.app, name="etl")
app.command("demo")(demo_cmd.demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
