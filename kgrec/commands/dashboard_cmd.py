"""`kgrec dashboard [--port 8501] [--host 127.0.0.1]`: the Streamlit app on loopback.

Starts the embedded graph server first when no Neo4j is configured (it keeps running after the
dashboard stops, like after any other command: `kgrec graph stop` ends it), then runs
`streamlit run dashboard/app.py` headless in this process's place.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import typer

from core.errors import ConfigError
from kgrec.commands.common import config, console, err_console, friendly_errors

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def streamlit_command(port: int, host: str, app: Path = APP) -> list[str]:
    """The `streamlit run` command line: headless, no usage statistics, no file watcher, no
    developer menu (deploy / clear cache)."""
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--global.developmentMode", "false",
            "--client.toolbarMode", "viewer"]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@friendly_errors
def dashboard(
    port: int = typer.Option(8501, "--port", help="Port to serve on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to bind. The dashboard has no login: keep it on "
                                  "loopback unless a proxy with authentication is in front."),
) -> None:
    """Serve the dashboard (overview, users, items, search, model quality, Cypher console)."""
    from graph import server

    cfg = config()
    if not APP.exists():
        raise ConfigError(f"{APP} is missing: run kgrec from a checkout of the repository")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535 (got {port})")
    if port == 0:
        port = server.free_port(host)
    elif port_in_use(host, port):
        raise ConfigError(f"port {port} on {host} is in use (another dashboard?): pass another "
                          "--port, or --port 0 for any free one")
    if not _is_loopback(host):
        err_console.print(f"[yellow]warning:[/yellow] serving on {host}: anyone who can reach "
                          "it can read the graph (read-only console included)")
    if cfg.graph.embedded:
        with console.status("starting the embedded graph server…"):
            info = server.start(cfg.graph)
        console.print(f"graph: embedded server {info.uri} (data in {server.graph_dir(cfg.graph)})")
    else:
        console.print(f"graph: Neo4j at {cfg.graph.uri} (database {cfg.graph.database_name})")
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    console.print(f"dashboard: [bold]http://{shown}:{port}/[/bold]  (Ctrl-C stops it)")
    root = str(APP.parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    sys.stdout.flush()
    sys.stderr.flush()
    cmd = streamlit_command(port, host)
    os.execve(cmd[0], cmd, env)
