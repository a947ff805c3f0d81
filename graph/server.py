"""The embedded graph server: ArcadeDB with its Bolt plugin, in a process of its own.

Why a separate process: the JVM that ArcadeDB runs in crashed at exit when it was stopped
inside a Python process that also ran other code, so the server gets a process of its own and is
stopped by a signal. Why a ready file and not the port: Bolt accepts connections before the
database exists (early clients get DatabaseNotFound), so clients wait for the server's own signal.

Layout of `<home>/graph/`:
    password      generated on first start, mode 0600; the Bolt user is `root`
    server.json   {pid, bolt_port, http_port, database, state} written atomically when ready
    server.lock   serialises concurrent `start` calls (two CLIs, dashboard + CLI, tests)
    server.log    the server process's output
    databases/    ArcadeDB's files

Run as `python -m graph.server --home DIR ...` only through `start()`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import GraphConfig
from core.errors import GraphUnavailable
from core.io import private_dir

log = logging.getLogger(__name__)

USER = "root"


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    bolt_port: int
    http_port: int
    database: str
    host: str

    @property
    def uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"


def graph_dir(cfg: GraphConfig) -> Path:
    return Path(cfg.home).resolve() / "graph"


def password(cfg: GraphConfig) -> str:
    """The server's root password, generated on first use and stored with mode 0600."""
    path = graph_dir(cfg) / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def status(cfg: GraphConfig) -> ServerInfo | None:
    """The running server, or None. A pid file whose process is gone (or is not ours) is stale."""
    state = graph_dir(cfg) / "server.json"
    try:
        info = json.loads(state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if info.get("state") != "ready" or not _is_our_server(int(info["pid"])):
        return None
    return ServerInfo(int(info["pid"]), int(info["bolt_port"]), int(info["http_port"]),
                      info["database"], info["host"])


def start(cfg: GraphConfig) -> ServerInfo:
    """Start the embedded server if it is not running (a second start is a no-op)."""
    gdir = private_dir(graph_dir(cfg))  # the home and its databases: owner only
    with _lock(gdir / "server.lock"):
        running = status(cfg)
        if running:
            return running
        (gdir / "server.json").unlink(missing_ok=True)  # stale
        password(cfg)
        bolt = cfg.bolt_port or free_port(cfg.host)
        http = cfg.http_port or free_port(cfg.host, exclude=bolt)
        cmd = [sys.executable, "-m", "graph.server", "--home", str(Path(cfg.home).resolve()),
               "--host", cfg.host, "--bolt-port", str(bolt), "--http-port", str(http),
               "--database", cfg.database_name, "--heap", cfg.heap]
        logf = open(gdir / "server.log", "ab")
        env = dict(os.environ, PYTHONPATH=_repo_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen(cmd, cwd=gdir, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        logf.close()
        deadline = time.monotonic() + cfg.start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise GraphUnavailable(
                    f"the embedded graph server exited with code {proc.returncode} while starting; "
                    f"last lines of {gdir / 'server.log'}:\n{_tail(gdir / 'server.log')}")
            info = status(cfg)
            if info and info.pid == proc.pid:
                log.info("embedded graph server ready on %s (pid %d)", info.uri, info.pid)
                return info
            time.sleep(0.2)
        proc.terminate()
        raise GraphUnavailable(f"the embedded graph server did not become ready in "
                               f"{cfg.start_timeout_s:.0f} s; see {gdir / 'server.log'}")


def stop(cfg: GraphConfig, timeout_s: float = 30.0) -> bool:
    """Stop the server by SIGTERM (SIGKILL after `timeout_s`). Returns False if none was running."""
    info = status(cfg)
    state = graph_dir(cfg) / "server.json"
    if info is None:
        state.unlink(missing_ok=True)
        return False
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    state.unlink(missing_ok=True)
    return True


# --- helpers ---------------------------------------------------------------------------------

def _repo_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def free_port(host: str = "127.0.0.1", exclude: int = 0) -> int:
    """A TCP port free on `host` right now (other than `exclude`)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port != exclude:
            return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return True


def _is_our_server(pid: int) -> bool:
    if not _alive(pid):
        return False
    try:
        return b"graph.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


# --- the server process ----------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> None:
    home = Path(args.home)
    gdir = home / "graph"
    stop_event = threading.Event()
    # Installed before the JVM starts; the JVM is told below to leave signals to Python (-Xrs).
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: stop_event.set())
    os.environ.setdefault("ARCADEDB_JVM_ERROR_FILE", str(gdir / "hs_err_pid%p.log"))
    import arcadedb_embedded as arcade
    from arcadedb_embedded.jvm import start_jvm

    start_jvm(heap_size=args.heap, jvm_args="-Xrs")
    pw = (gdir / "password").read_text().strip()
    server = arcade.create_server(str(gdir / "databases"), root_password=pw, config={
        "host": args.host,
        "http_port": args.http_port,
        "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "bolt_port": args.bolt_port,
    })
    server.start()
    server.create_database(args.database)  # opens it if it exists
    _write_json_atomic(gdir / "server.json", {
        "pid": os.getpid(), "bolt_port": args.bolt_port, "http_port": args.http_port,
        "database": args.database, "host": args.host, "state": "ready"})
    print(f"ready: bolt://{args.host}:{args.bolt_port} database {args.database}", flush=True)
    while not stop_event.wait(0.5):
        pass
    print("stopping", flush=True)
    try:
        server.stop()
    finally:
        (gdir / "server.json").unlink(missing_ok=True)
        print("stopped", flush=True)
        os._exit(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--home", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--bolt-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--database", default="kg")
    p.add_argument("--heap", default="2g")
    _serve(p.parse_args())


if __name__ == "__main__":
    main()
