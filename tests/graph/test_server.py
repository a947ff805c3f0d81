"""The embedded server: start/stop/status, idempotent start, stale pid, password file mode."""

import json
import stat
import subprocess
import sys

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
    pw = server.graph_dir(own_cfg) / "password"
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    assert len(pw.read_text().strip()) >= 24
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
