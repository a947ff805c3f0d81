"""The embedded graph server: ArcadeDB with its Bolt plugin, in a process of its own.

Why a separate process: the JVM that ArcadeDB runs in crashed at exit when it was stopped
inside a Python process that also ran other code, so the server gets a process of its own and is
stopped by a signal. Why a ready file and not the port: Bolt accepts connections before the
database exists (early clients get DatabaseNotFound), so clients wait for the server's own signal.

Layout of `<home>/graph/` (the folder and everything in it readable by the owner only):
    password          root's password, generated on first start (mode 0600)
    console_password  the read-only console user's password (mode 0600)
    server.json       {pid, bolt_port, http_port, database, state} written atomically when ready
    server.lock       serialises concurrent `start` calls (two CLIs, dashboard + CLI, tests)
    server.log        the server process's output
    databases/        ArcadeDB's files (the server process runs with umask 077)

Two users: `root` (the product: loads, exports, write-back) and `kgrec_console`, whose group may
only read records on the database: user-written Cypher (the dashboard console, `kgrec cypher`)
runs as that user, so the server itself refuses writes, schema and security commands from it
(measured on ArcadeDB 26.10: CREATE/SET/DELETE, CREATE INDEX/CONSTRAINT, CREATE USER, SHOW USERS
are all refused with Neo.ClientError.Security.Forbidden).

A server that died without `kgrec graph stop` (killed, crashed, machine restarted) leaves its
server.json behind: the next `start` says so (a warning naming the log) and starts a new one.

Run as `python -m graph.server --home DIR ...` only through `start()`.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path

from core.config import GraphConfig
from core.errors import GraphUnavailable
from core.io import PRIVATE_DIR, PRIVATE_FILE, atomic_write_json, file_lock, private_dir, secret_file

log = logging.getLogger(__name__)

USER = "root"
CONSOLE_USER = "kgrec_console"
CONSOLE_GROUP = "kgrec_reader"
# The most elements one range() may produce on the embedded server (arcadedb.queryMaxRangeSize;
# the product never calls range()): a server-side bound beside the console's own check.
MAX_RANGE_SIZE = 100_000


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
    """root's password, generated on first use and stored with mode 0600."""
    return secret_file(graph_dir(cfg) / "password", _new_password)


def console_password(cfg: GraphConfig) -> str:
    """The read-only console user's password, generated on first use (mode 0600)."""
    return secret_file(graph_dir(cfg) / "console_password", _new_password)


def status(cfg: GraphConfig) -> ServerInfo | None:
    """The running server, or None. A pid file whose process is gone (or is not ours) is stale."""
    info = _recorded(cfg)
    if info is None or not is_alive(cfg, info):
        return None
    return info


def crashed(cfg: GraphConfig) -> ServerInfo | None:
    """The server this home started that is gone without `kgrec graph stop`, or None."""
    info = _recorded(cfg)
    return info if info is not None and not is_alive(cfg, info) else None


def is_alive(cfg: GraphConfig, info: ServerInfo) -> bool:
    """Is the server process `info` describes still running (and still this home's server)?"""
    return _is_our_server(info.pid, Path(cfg.home).resolve())


def died_message(cfg: GraphConfig, info: ServerInfo) -> str:
    """What to tell a user whose command lost the embedded server under it."""
    return (f"the embedded graph server (pid {info.pid}) has stopped: it was killed or crashed "
            f"(see {graph_dir(cfg) / 'server.log'}). Start it again with `kgrec graph start` and "
            "re-run the command; an interrupted `kgrec etl load` resumes where it stopped")


def start(cfg: GraphConfig) -> ServerInfo:
    """Start the embedded server if it is not running (a second start is a no-op)."""
    gdir = _private_graph_dir(cfg)
    with file_lock(gdir / "server.lock"):
        running = status(cfg)
        if running:
            return running
        dead = crashed(cfg)
        if dead is not None:
            log.warning("the embedded graph server (pid %d) had stopped without `kgrec graph "
                        "stop` (killed, crashed, or the machine restarted; see %s): starting it "
                        "again", dead.pid, gdir / "server.log")
        (gdir / "server.json").unlink(missing_ok=True)
        password(cfg)
        console_password(cfg)
        bolt = cfg.bolt_port or free_port(cfg.host)
        http = cfg.http_port or free_port(cfg.host, exclude=bolt)
        cmd = [sys.executable, "-m", "graph.server", "--home", str(Path(cfg.home).resolve()),
               "--host", cfg.host, "--bolt-port", str(bolt), "--http-port", str(http),
               "--database", cfg.database_name, "--heap", cfg.heap]
        logfd = os.open(gdir / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        env = dict(os.environ, PYTHONPATH=_repo_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
        try:
            proc = subprocess.Popen(cmd, cwd=gdir, stdout=logfd, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        finally:
            os.close(logfd)
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


def _new_password() -> str:
    return secrets.token_urlsafe(24)


def _private_graph_dir(cfg: GraphConfig) -> Path:
    """`<home>/graph` and its databases readable by the owner only (tightened if an older
    version created them open)."""
    home = private_dir(Path(cfg.home).resolve())
    gdir = private_dir(home / "graph")
    for d in (gdir, private_dir(gdir / "databases")):
        if d.stat().st_uid == os.getuid():
            os.chmod(d, PRIVATE_DIR)
    return gdir


def _recorded(cfg: GraphConfig) -> ServerInfo | None:
    """What server.json says is running (whether or not it still is)."""
    try:
        info = json.loads((graph_dir(cfg) / "server.json").read_text())
        if info.get("state") != "ready":
            return None
        return ServerInfo(int(info["pid"]), int(info["bolt_port"]), int(info["http_port"]),
                          info["database"], info["host"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, ValueError):
        return None


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


def _is_our_server(pid: int, home: Path) -> bool:
    """Alive, and the `graph.server` process of this home (a reused pid is not)."""
    if not _alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return b"graph.server" in args and os.fsencode(str(home)) in args


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# --- the server process ----------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> None:
    os.umask(0o077)  # everything ArcadeDB writes (databases, config, logs) is the owner's only
    home = Path(args.home)
    gdir = home / "graph"
    stop_event = threading.Event()
    # Installed before the JVM starts; the JVM is told below to leave signals to Python (-Xrs).
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: stop_event.set())
    os.environ.setdefault("ARCADEDB_JVM_ERROR_FILE", str(gdir / "hs_err_pid%p.log"))
    import arcadedb_embedded as arcade
    from arcadedb_embedded.jvm import start_jvm

    start_jvm(heap_size=args.heap,
              jvm_args=f"-Xrs -Darcadedb.queryMaxRangeSize={MAX_RANGE_SIZE}")
    pw = (gdir / "password").read_text().strip()
    server = arcade.create_server(str(gdir / "databases"), root_password=pw, config={
        "host": args.host,
        "http_port": args.http_port,
        "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "bolt_port": args.bolt_port,
    })
    server.start()
    server.create_database(args.database)  # opens it if it exists
    _ensure_console_user(server, args.database, (gdir / "console_password").read_text().strip())
    atomic_write_json(gdir / "server.json", {
        "pid": os.getpid(), "bolt_port": args.bolt_port, "http_port": args.http_port,
        "database": args.database, "host": args.host, "state": "ready"}, mode=PRIVATE_FILE)
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


def _ensure_console_user(server, database: str, console_pw: str) -> None:
    """The read-only user of user-written Cypher: a group that may read records of every type of
    `database` and nothing else (no create/update/delete, no schema, no security), recreated on
    every start so its password and rights are always the current ones."""
    import jpype

    json_object = jpype.JClass("com.arcadedb.serializer.json.JSONObject")
    security = server._java_server.getSecurity()
    security.saveGroup(database, CONSOLE_GROUP, json_object(json.dumps({
        "resultSetLimit": -1, "readTimeout": -1, "access": [],
        "types": {"*": {"access": ["readRecord"]}}})))
    if security.existsUser(CONSOLE_USER):
        security.dropUser(CONSOLE_USER)
    security.createUser(json_object(json.dumps({
        "name": CONSOLE_USER, "password": str(security.encodePassword(console_pw)),
        "databases": {database: [CONSOLE_GROUP]}})))


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
