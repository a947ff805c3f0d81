"""`kgrec demo` end to end, as a user runs it, on a small real slice of the bundled data (the
full bundled run takes minutes; its timing is in the issue notes): every stage runs and leaves
its trace in the runs and the graph."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SLICE = REPO / "tests" / "recommend" / "fixtures" / "beauty_slice"
MODELS = ("hgt", "pop", "itemknn", "mf", "lightgcn")


def test_demo_runs_every_stage(empty_store, cli_env, cfg):
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", "demo", "--data", str(SLICE),
                        "--prefix", "t"], env={**cli_env, "COLUMNS": "200"}, cwd=REPO,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    runs = Path(cfg.runs_dir)
    for model in MODELS:  # trained, evaluated and compared
        assert (runs / f"t-{model}" / "metrics.json").exists(), model
        assert f"t-{model}" in out
    counts = empty_store.counts()
    assert counts["User"] > 0 and counts["REVIEWED"] > 0
    recs = pd.read_parquet(runs / "t-hgt" / "recommendations.parquet")
    assert counts["RECOMMENDED"] == len(recs) == 20 * recs["user_id"].nunique()
    first = recs["user_id"].iloc[0]
    assert first in out  # the three users' lists and their explanations
    assert "$ kgrec explain" in out and "$ kgrec search" in out
    assert "demo finished" in out and "kgrec dashboard" in out
