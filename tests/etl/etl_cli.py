"""What the ETL's end-to-end tests share: running the real `kgrec` command, reading the graph."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd

from graph import queries as Q

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures"
KGREC = [sys.executable, "-m", "kgrec.cli"]


def kgrec(env, *args, check=True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(KGREC + list(args), env=env, cwd=REPO, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"kgrec {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def frame(store, stmt) -> pd.DataFrame:
    """A whole streamed read as one frame."""
    return pd.concat(list(store.stream(stmt)), ignore_index=True)


def ids(store, label: str) -> set[str]:
    return set(frame(store, Q.NODE_IDS[label])["id"]) if label else set()


def digest(store) -> str:
    """A hash of every node id and every edge with its properties, independent of order."""
    h = hashlib.sha256()
    for stmt in [*Q.NODE_IDS.values(), *Q.BEHAVIOUR_EDGES.values(), *Q.KG_EDGES.values()]:
        rows = sorted(map(repr, frame(store, stmt).astype(str).itertuples(index=False)))
        h.update(stmt.encode() + b"".join(r.encode() for r in rows))
    return h.hexdigest()
