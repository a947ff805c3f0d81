"""The dashboard served in the background and the headless Chromium that drives it, shared by
the real-browser test (tests/dashboard/test_dashboard_browser.py) and the render benchmark
(bench/bench_dashboard.py), so both start, browse and stop it the same way.

Chromium is Debian's (/usr/bin/chromium), never a downloaded browser; only loopback requests are
let through (`LOCAL`): the pages must work offline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graph.server import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # the script has finished


class DashboardDidNotStart(RuntimeError):
    pass


@contextmanager
def serve(log: Path, env: Mapping[str, str] | None = None, timeout: float = 180
          ) -> Iterator[str]:
    """`kgrec dashboard` on a free loopback port (script timings logged), its output in `log`.
    Yields the URL once `/_stcore/health` answers; stops it (SIGTERM, then SIGKILL) on exit.
    DashboardDidNotStart with the end of the log when it exits early or does not answer in
    time."""
    env = {**(os.environ if env is None else env), "KGREC_DASHBOARD_TIMING": "1"}
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kgrec.cli", "dashboard", "--port",
                                 str(port), "--host", "127.0.0.1"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log, timeout)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DashboardDidNotStart(f"the dashboard exited with {proc.returncode}:\n"
                               f"{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise DashboardDidNotStart(f"the dashboard did not answer in {timeout:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")


def launch(playwright: Any, profile_dir: Path | str, height: int) -> Any:
    """Headless Debian Chromium with a fresh profile, 1440 px wide."""
    return playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1440, "height": height})
