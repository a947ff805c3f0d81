"""`kgrec dashboard`: the streamlit command line it runs, and its own errors (no server needed)."""

from __future__ import annotations

import socket
import subprocess
import sys

from dash_fixtures import REPO

from kgrec.commands.dashboard_cmd import APP, streamlit_command


def test_streamlit_runs_headless_on_loopback_without_telemetry():
    cmd = streamlit_command(8765, "127.0.0.1")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(APP) and APP.exists()
    opts = dict(zip(cmd[5::2], cmd[6::2]))
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"


def _kgrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgrec.cli", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120)


def test_a_busy_port_is_a_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _kgrec("dashboard", "--port", str(port))
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr and "--port 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_impossible_port_is_a_one_line_error():
    proc = _kgrec("dashboard", "--port", "70000")
    assert proc.returncode == 1 and "--port must be between 0 and 65535" in proc.stderr
