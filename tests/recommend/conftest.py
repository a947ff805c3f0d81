"""Fixtures of the recommendation tests: a small real slice of Amazon Beauty loaded through the
real ETL into the session's embedded server, and tiny real training runs on it.

The slice (tests/recommend/fixtures/beauty_slice, made by make_slice.py): the 150 most-reviewed
Beauty items and the 501 users with >= 6 reviews among them (4,274 reviews, 669 item relations).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SLICE = Path(__file__).resolve().parent / "fixtures" / "beauty_slice"
HGT_RUN = "tiny-hgt"
MF_RUN = "tiny-mf"


@dataclass
class RecGraph:
    store: object
    cfg: object
    hgt_dir: Path
    mf_dir: Path
    n_users: int
    n_items: int


def load_slice(store, cfg, path: Path = SLICE, fmt: str = "amazon-kg"):
    """Read and load `path` with the real ETL (what `kgrec etl load` does)."""
    from etl.load import fingerprint, load_tables
    from etl.quarantine import Quarantine
    from etl.readers import read

    quarantine = Quarantine()
    tables = read(fmt, path, quarantine)
    fp = fingerprint(fmt, path, False, store.cfg.batch_size)
    return load_tables(store, tables, home=Path(cfg.graph.home), fingerprint=fp,
                       source=path.name.split(".")[0])


def train_tiny(store, run_dir: Path, model: str, **overrides):
    """Export the graph and train a tiny real model into `run_dir` (checkpoint + snapshot)."""
    from gnn.config import TrainConfig
    from gnn.snapshot import export
    from gnn.train import train_run

    snapshot = export(store)
    snapshot.save(run_dir / "snapshot")
    # a higher learning rate and smaller batches than the tuned defaults: enough steps in a few
    # seconds for the tiny model to personalise (its lists react to a user's new events)
    settings = dict(epochs=6, dim=16, heads=2, layers=2, batch_size=256, lr=0.02, patience=50,
                    dataset="beauty-slice", seed=0, device="cpu", cold_item_fraction=0.0,
                    eval_batch=1024)
    settings.update(overrides)
    cfg = TrainConfig.for_model(model, **settings)
    return train_run(snapshot, cfg, run_dir, progress=False)


def wipe(store) -> None:
    """What the `empty_store` fixture does, for a package-scoped graph."""
    from graph.maintenance import delete_all

    delete_all(store)
    (Path(store.cfg.home) / "events.parquet").unlink(missing_ok=True)
    for f in (Path(store.cfg.home) / "etl").glob("*.json"):
        f.unlink()


@pytest.fixture(scope="package")
def recgraph(store, cfg) -> RecGraph:
    """The slice loaded and two tiny runs trained (hgt: the product model; mf: a second model
    to compare runs in the recipes)."""
    wipe(store)
    load_slice(store, cfg)
    runs = Path(cfg.runs_dir)
    train_tiny(store, runs / HGT_RUN, "hgt")
    train_tiny(store, runs / MF_RUN, "mf", layers=None, heads=None)
    counts = store.counts()
    return RecGraph(store, cfg, runs / HGT_RUN, runs / MF_RUN, counts["User"], counts["Item"])


def kgrec(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `kgrec` command line (as a user would) against the session's server."""
    return subprocess.run([sys.executable, "-m", "kgrec.cli", *args], env=env, text=True,
                          capture_output=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.fixture
def cli(cli_env):
    def run(*args: str, ok: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = kgrec({**cli_env, "COLUMNS": "200"}, *args, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"kgrec {' '.join(args)} failed:\n{proc.stdout}\n" \
                                         f"{proc.stderr}"
        return proc

    return run


__all__ = ["RecGraph", "load_slice", "train_tiny", "wipe", "kgrec"]
