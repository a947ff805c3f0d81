"""gnn.checkpoint: the one place that reads and writes model and training-state files."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from gnn_fixtures import checkerboard, fast_config

from core.errors import RunNotFound
from gnn.checkpoint import load_model, load_train_state, save_model, save_train_state
from gnn.data import make_split
from gnn.models import create
from gnn.models.base import Recommender
from gnn.rundir import RunDir
from gnn.trainer import Trainer

GNN = Path(__file__).resolve().parents[2] / "gnn"
FILE_CALLS = {"open", "save", "load", "read_text", "write_text", "read_bytes", "write_bytes",
              "savez", "mkdir", "unlink", "replace", "rmtree"}


def test_model_round_trip(tmp_path):
    cfg = fast_config("hgt", epochs=2, batch_size=64)
    split = make_split(checkerboard(), cfg)
    model = create("hgt", cfg)
    Trainer().fit(model, split)
    save_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == \
        ["config.json", "ids.json", "meta.json", "model.pt"]
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["format"] == 1 and meta["model"] == "hgt" and meta["target"][1] == "reviewed"
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)  # tensors only
    loaded = load_model(tmp_path / "m")
    assert loaded.cfg == cfg and (loaded.ids["item"] == model.ids["item"]).all()
    assert all(torch.equal(state[k], v) for k, v in loaded.state_tensors().items())
    assert torch.equal(loaded.embeddings(split.eval_graph)[1],
                       model.embeddings(split.eval_graph)[1])
    assert type(Recommender.load(tmp_path / "m")) is type(model)  # the older entry point
    with pytest.raises(RunNotFound, match="train it first"):
        load_model(tmp_path / "nothing")


def test_train_state_round_trip_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "checkpoint" / "train_state.pt"
    assert load_train_state(path) is None
    state = {"model": {"w": torch.arange(3.0)}, "epoch": 4, "bad": 1, "result": "{}",
             "best_model": None}
    save_train_state(path, state)
    save_train_state(path, {**state, "epoch": 5})  # replaced atomically
    assert [p.name for p in path.parent.iterdir()] == ["train_state.pt"]
    got = load_train_state(path)
    assert got["epoch"] == 5 and torch.equal(got["model"]["w"], torch.arange(3.0))
    rd = RunDir(tmp_path)
    assert rd.load_train_state()["epoch"] == 5  # the run folder finds it where it belongs


@pytest.mark.parametrize("module", ["trainer.py", "losses.py", *[
    f"models/{p.name}" for p in sorted((GNN / "models").glob("*.py"))]])
def test_models_and_the_trainer_never_touch_files(module):
    """File I/O lives in gnn/checkpoint.py (through RunDir), not in models or the loop."""
    tree = ast.parse((GNN / module).read_text())
    calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
             for n in ast.walk(tree) if isinstance(n, ast.Call)}
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names if n.module == "gnn.checkpoint"}
    assert not calls & FILE_CALLS, sorted(calls & FILE_CALLS)
    assert imports <= {"load_model"}  # base.Recommender.load delegates to gnn.checkpoint
