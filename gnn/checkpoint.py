"""Checkpoint files: the one place that reads and writes a model's and a training run's state
(`RunDir` calls it; models and the trainer never open files).

A saved model is a directory:

    model.pt      the model's tensors (`state_tensors()`), loaded with weights_only=True
    config.json   the TrainConfig that rebuilds it (nanoGPT-style)
    meta.json     what else rebuilds it: format, model name, target relation, node counts,
                  KG relation types
    ids.json      the id maps of the training graph (node type -> ids in row order)

The training state (`train_state.pt`, for --resume) holds the network and optimizer state, the
best network state so far, the epoch, the evaluations without improvement and the fit result
so far. Every file is written atomically: a crash leaves the previous copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import RunNotFound
from core.io import atomic_write, atomic_write_json, atomic_write_text
from gnn.config import TrainConfig

FORMAT = 1
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
META_FILE = "meta.json"
IDS_FILE = "ids.json"


def save_model(model, path: Path) -> Path:
    """Write `model` (a gnn.models.Recommender) into the directory `path`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_tensors().items()}
    _save_tensors(path / MODEL_FILE, state)
    atomic_write_json(path / CONFIG_FILE, model.cfg.to_dict())
    atomic_write_json(path / META_FILE, {"format": FORMAT, "model": model.name, **model.meta},
                      indent=1)
    atomic_write_text(path / IDS_FILE, json.dumps({t: v.tolist() for t, v in model.ids.items()}))
    return path


def load_model(path: Path):
    """The model saved in the directory `path` (RunNotFound naming the fix when there is none)."""
    from gnn.models import create

    path = Path(path)
    if not (path / MODEL_FILE).exists():
        raise RunNotFound(f"no saved model in {path} (expected {MODEL_FILE}): train it first")
    cfg = TrainConfig.load(path / CONFIG_FILE)
    meta = json.loads((path / META_FILE).read_text())
    meta.pop("format", None)
    meta.pop("model", None)
    ids = {t: np.array(v, dtype=object) for t, v in
           json.loads((path / IDS_FILE).read_text()).items()}
    state = torch.load(path / MODEL_FILE, weights_only=True, map_location="cpu")
    model = create(cfg.model, cfg)
    model.restore(meta, ids, state)
    return model


def save_train_state(path: Path, state: dict[str, Any]) -> Path:
    """Tensors, numbers and strings only (loaded back with weights_only=True)."""
    return _save_tensors(Path(path), state)


def load_train_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The saved training state, or None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, weights_only=True, map_location=device)


def _save_tensors(path: Path, obj: Any) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))
