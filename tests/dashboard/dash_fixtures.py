"""Builders of the dashboard tests' graph (fixtures in conftest.py): the real small Amazon
Beauty slice (tests/fixtures/amazon_small, 50 users) loaded through the real ETL into the
session's embedded server, a tiny real hgt run trained on it, its recommendations written back
with the real `kgrec recommend` command (for every user but two, who show the "no
recommendations" state), and its search blend fitted with the real `kgrec search-eval` command.

Other test packages share (and empty) the session's graph; `dash` checks the graph is still the
one built here before each test and rebuilds it if not (the trained run is kept).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
TIMEOUT = 180  # first runs build the explanation and search caches on a shared 2-core machine
SMALL = REPO / "tests" / "fixtures" / "amazon_small"
RUN = "dash-tiny"
NO_RECS = 2  # users left without recommendations
K = 10


@dataclass
class DashGraph:
    store: object
    cfg: object
    env: dict[str, str]  # environment of the dashboard and the kgrec CLI for this graph
    runs_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)  # users with recommendations
    users_without_recs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / RUN

    def ensure(self) -> DashGraph:
        """Rebuild the graph if another test emptied or replaced it."""
        if self.store.counts() != self.counts:
            build_graph(self)
        return self


def app(page: str | None = None, **query: str):
    """The app (AppTest) run on `page` ("users", ...; None: the overview) with the URL query
    `query`; no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"app_pages/{page}.py")
        at.query_params.clear()
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def kgrec(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "kgrec.cli", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"kgrec {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def wipe(store) -> None:
    from graph.maintenance import delete_all

    delete_all(store)
    home = Path(store.cfg.home)
    (home / "events.parquet").unlink(missing_ok=True)
    for f in (home / "etl").glob("*.json"):
        f.unlink()


def load_small(store, cfg) -> None:
    """What `kgrec etl load --format amazon-kg tests/fixtures/amazon_small` does."""
    from etl.load import fingerprint, load_tables
    from etl.quarantine import Quarantine
    from etl.readers import read

    tables = read("amazon-kg", SMALL, Quarantine())
    load_tables(store, tables, home=Path(cfg.graph.home),
                fingerprint=fingerprint("amazon-kg", SMALL, False, store.cfg.batch_size),
                source="amazon_small")


def train_tiny(store, run_dir: Path) -> None:
    """A tiny real hgt run (what `kgrec train --model hgt` does, with a tiny configuration)."""
    from gnn.config import TrainConfig
    from gnn.snapshot import export
    from gnn.train import train_run

    snapshot = export(store)
    snapshot.save(run_dir / "snapshot")
    cfg = TrainConfig.for_model("hgt", epochs=4, dim=16, heads=2, layers=2, batch_size=512,
                                patience=50, dataset="amazon-small", seed=0, device="cpu",
                                eval_batch=1024)
    train_run(snapshot, cfg, run_dir, progress=False)


def build_graph(d: DashGraph) -> None:
    wipe(d.store)
    load_small(d.store, d.cfg)
    from graph import views

    users = sorted(views.sample_users(d.store, limit=10_000))
    d.users_without_recs = users[:NO_RECS]
    d.users = users[NO_RECS:]
    users_file = d.runs_dir / "dash-users.txt"
    users_file.write_text("\n".join(d.users) + "\n")
    kgrec(d.env, "recommend", "--run", RUN, "--users", str(users_file), "--k", str(K),
          "--write-graph", "--similar-items", "--restart")
    d.counts = d.store.counts()
    d.items = [r["item_id"] for r in views.recommended_item_counts(d.store, RUN, K)
               .sort_values(["n", "item_id"], ascending=[False, True]).to_dict("records")]
