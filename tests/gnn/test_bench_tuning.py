"""The equal tuning search (bench/bench_tuning.py, issue 13) on the small real slice: every
configuration is scored on validation under the same search-only settings, the best one is
chosen by validation alone, and only it is trained again for test metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench_tuning():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_tuning
        yield bench_tuning
    finally:
        sys.path.remove(str(BENCH))


def test_search_chooses_by_validation_and_tests_only_the_choice(bench_tuning, slice_dir,
                                                                tmp_path):
    out = tmp_path / "results"
    rc = bench_tuning.main(["--snapshot", str(slice_dir), "--dataset", "slice", "--models", "mf",
                            "--lr", "1e-3", "5e-2", "--reg", "1e-4", "--dim", "8",
                            "--search-minutes", "1", "--threads", "1", "--set", "epochs=2",
                            "--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    assert rc == 0
    rec = json.loads((out / "tuning-slice-mf.json").read_text())
    assert {"commit", "command", "date", "machine", "data"} <= set(rec)
    assert rec["data"]["snapshot_sha256"]
    assert [r["settings"]["lr"] for r in rec["search"]] == [1e-3, 5e-2]
    for r in rec["search"]:  # the search-only settings are the same for every configuration
        assert r["settings"]["max_minutes"] == 1.0 and r["settings"]["blend"] == "off"
        assert "test" not in json.dumps(r)  # validation only
    best = max(rec["search"], key=lambda r: r["val_ndcg@20"])
    assert rec["chosen"]["lr"] == best["settings"]["lr"]
    # the test run keeps the model's own budget and blend: no search-only setting in it
    assert "max_minutes" not in rec["chosen"] and "blend" not in rec["chosen"]
    saved = json.loads((tmp_path / "runs" / "tuned-mf" / "config.json").read_text())
    assert saved["lr"] == best["settings"]["lr"] and saved["dim"] == 8 and saved["epochs"] == 2
    assert rec["test"]["ndcg@10"] == json.loads(
        (tmp_path / "runs" / "tuned-mf" / "metrics.json").read_text())["ndcg@10"]


def test_a_grid_over_the_budget_is_refused(bench_tuning, slice_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_tuning.main(["--snapshot", str(slice_dir), "--lr", "1e-3", "2e-3", "3e-3",
                           "--reg", "0", "1e-4", "--dim", "8", "16", "32",
                           "--out", str(tmp_path)])
    assert "18 configurations; the budget is 12" in capsys.readouterr().err
