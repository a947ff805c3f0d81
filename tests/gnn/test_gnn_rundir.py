"""gnn.rundir.RunDir: training over a run never destroys results unasked."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from gnn.config import TrainConfig
from gnn.rundir import RunDir


def test_training_over_a_run_needs_resume_or_overwrite(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.check_can_train("hgt", resume=False, overwrite=False)  # nothing there yet
    rd.snapshot_dir.mkdir(parents=True)
    (rd.snapshot_dir / "graph.pt").write_bytes(b"x")
    rd.check_can_train("hgt", resume=False, overwrite=False)  # a cached snapshot is no result
    rd.save_config(TrainConfig.for_model("mf"))
    with pytest.raises(ConfigError, match="already exists .mf model.*--resume.*--overwrite"):
        rd.check_can_train("mf", resume=False, overwrite=False)
    with pytest.raises(ConfigError, match="trains mf, not hgt"):
        rd.check_can_train("hgt", resume=True, overwrite=False)
    with pytest.raises(ConfigError, match="contradict"):
        rd.check_can_train("mf", resume=True, overwrite=True)
    rd.check_can_train("mf", resume=True, overwrite=False)
    rd.check_can_train("hgt", resume=False, overwrite=True)


def test_clear_keeps_the_snapshot(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.save_config(TrainConfig.for_model("mf"))
    rd.save_metrics({"ndcg@10": 0.1})
    rd.checkpoint_dir.mkdir()
    (rd.checkpoint_dir / "model.pt").write_bytes(b"x")
    rd.snapshot_dir.mkdir()
    (rd.snapshot_dir / "graph.pt").write_bytes(b"x")
    rd.clear()
    assert [p.name for p in rd.path.iterdir()] == ["snapshot"] and not rd.has_results()
    rd.clear(keep_snapshot=False)
    assert list(rd.path.iterdir()) == []
