"""The embedded server: start/stop/status, idempotent start, stale pid, file modes, the read-only
console user."""

import json
import stat
import subprocess
import sys
from typing import LiteralString, cast

import pytest

from core.config import GraphConfig
from graph import queries as Q
from graph import server


@pytest.fixture
def own_cfg(tmp_path):
    cfg = GraphConfig(home=tmp_path / "home")
    yield cfg
    server.stop(cfg)


def test_start_is_idempotent_and_stop_stops(own_cfg):
    info = server.start(own_cfg)
    assert info.host == "127.0.0.1"
    assert server.start(own_cfg) == info  # second start: same process
    assert server.status(own_cfg) == info
    gdir = server.graph_dir(own_cfg)
    for name in ("password", "console_password"):
        assert len((gdir / name).read_text().strip()) >= 24
    assert server.stop(own_cfg) is True
    assert server.status(own_cfg) is None
    assert server.stop(own_cfg) is False


def test_stale_pid_file_is_replaced(own_cfg):
    gdir = server.graph_dir(own_cfg)
    gdir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (gdir / "server.json").write_text(json.dumps({
        "pid": dead.pid, "bolt_port": 1, "http_port": 2, "database": "kg",
        "host": "127.0.0.1", "state": "ready"}))
    assert server.status(own_cfg) is None
    info = server.start(own_cfg)
    assert info.pid != dead.pid and info.bolt_port != 1


def test_data_survives_restart(own_cfg):
    from graph.store import GraphStore

    with GraphStore(own_cfg) as s:
        s.ensure_schema()
        s.write(Q.MERGE_USERS, rows=[{"id": "u1"}, {"id": "u2"}])
    server.stop(own_cfg)
    with GraphStore(own_cfg) as s:
        assert s.counts()["User"] == 2


def test_only_loopback_listens(own_cfg):
    info = server.start(own_cfg)
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    ours = [line for line in out.splitlines() if f"pid={info.pid}," in line]
    assert ours, out
    for line in ours:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")), line


def test_unconfigured_store_does_not_start_when_told_not_to(own_cfg):
    from core.errors import GraphUnavailable
    from graph.store import GraphStore

    with pytest.raises(GraphUnavailable, match="kgrec graph start"):
        GraphStore(own_cfg, start_embedded=False)


def test_the_graph_folder_is_readable_by_the_owner_only(own_cfg):
    """Issue 11 item 9: the home's graph folder, passwords, server.json, the log and ArcadeDB's
    databases: nothing readable or writable by group or others (an older, open folder is
    tightened on start)."""
    gdir = server.graph_dir(own_cfg)
    for fresh in (True, False):
        server.start(own_cfg)
        for path in (gdir.parent, gdir, gdir / "databases"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, (path, fresh)
        for name in ("password", "console_password", "server.json", "server.log"):
            assert stat.S_IMODE((gdir / name).stat().st_mode) == 0o600, (name, fresh)
        opened = [p for p in (gdir / "databases").rglob("*") if p.stat().st_mode & 0o077]
        assert not opened, opened[:5]
        server.stop(own_cfg)
        gdir.chmod(0o755)  # as an older version left it: the next start tightens it
        (gdir / "databases").chmod(0o755)


def test_the_console_user_can_read_but_the_server_refuses_its_writes(own_cfg):
    """The second barrier of user-written Cypher, without the console's own check: the server
    itself refuses writes, schema and security commands from the console user."""
    from neo4j.exceptions import Forbidden

    from graph.store import GraphStore

    with GraphStore(own_cfg) as s:
        s.ensure_schema()
        s.write(Q.MERGE_USERS, rows=[{"id": "u1"}])
        indexes = s.read(cast(LiteralString, "SHOW INDEXES YIELD name RETURN name ORDER BY name"))
        with s.console_session() as cs:
            assert cs.run("MATCH (u:User) RETURN u.id AS id").data() == [{"id": "u1"}]
            for stmt in ("CREATE (:User {id: 'evil'})", "CREATE (:Evil)",
                         "MATCH (u:User) SET u.evil = true", "MATCH (u:User) DETACH DELETE u",
                         "CREATE INDEX evil FOR (n:User) ON (n.evil)",
                         "CREATE CONSTRAINT evil IF NOT EXISTS FOR (n:Evil) REQUIRE n.id IS UNIQUE",
                         "SHOW USERS", "CREATE USER evil SET PASSWORD 'evil-evil-evil'"):
                with pytest.raises(Forbidden):
                    cs.run(cast(LiteralString, stmt)).consume()
        assert s.read(cast(LiteralString, "MATCH (n) RETURN n.id AS id")) == [{"id": "u1"}]
        assert s.read(cast(LiteralString, "MATCH (u:User) WHERE u.evil IS NOT NULL "
                                          "RETURN count(u) AS n")) == [{"n": 0}]
        assert s.read(cast(LiteralString, "SHOW INDEXES YIELD name RETURN name ORDER BY name")) \
            == indexes


def test_the_server_bounds_range(own_cfg):
    """arcadedb.queryMaxRangeSize: a range() larger than MAX_RANGE_SIZE is refused by the server
    before any element is made (the console refuses it earlier; this holds for any client)."""
    from neo4j.exceptions import ClientError

    from graph.store import GraphStore

    with GraphStore(own_cfg) as s:
        n = server.MAX_RANGE_SIZE
        assert s.read(cast(LiteralString, "RETURN size(range(1, $n)) AS n"), n=n) == [{"n": n}]
        with pytest.raises(ClientError, match="queryMaxRangeSize"):
            s.read(cast(LiteralString, "RETURN size(range(1, $n)) AS n"), n=n + 1)
