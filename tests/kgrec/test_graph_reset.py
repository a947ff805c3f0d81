"""`kgrec graph reset` empties the graph and the event store beside it, so a later load of the
same file gives the same graph as the first load (not old events added back)."""

import subprocess
import sys
from pathlib import Path

from graph import queries as Q

REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "tests" / "fixtures" / "generic_small"


def kgrec(env, *args):
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", *args], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def behaviour_counts(store) -> dict[str, tuple[int, float]]:
    """Per behaviour type: (edges, sum of the edges' event counts)."""
    out = {}
    for rel, stmt in Q.BEHAVIOUR_EDGES.items():
        frames = [f for f in store.stream(stmt) if not f.empty]
        out[rel] = (sum(len(f) for f in frames), float(sum(f["count"].sum() for f in frames)))
    return out


def test_reset_forgets_the_event_store(empty_store, cli_env):
    home = Path(empty_store.cfg.home)
    kgrec(cli_env, "etl", "load", "--format", "csv", str(SMALL))
    first = behaviour_counts(empty_store)
    assert sum(n for n, _ in first.values()) > 0 and (home / "events.parquet").exists()
    out = kgrec(cli_env, "graph", "reset", "--yes").stdout
    assert "event store" in out
    assert not (home / "events.parquet").exists()
    assert all(n == 0 for n, _ in behaviour_counts(empty_store).values())
    kgrec(cli_env, "etl", "load", "--format", "csv", str(SMALL))
    assert behaviour_counts(empty_store) == first
