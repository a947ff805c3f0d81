"""One module per command group; `kgrec.cli` wires them into one typer app."""
