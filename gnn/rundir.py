"""`RunDir`: the one owner of a trained run's folder — every path in it, and the loading and
saving of what it holds. Nothing else spells out the layout.

    runs/NAME/config.json              the TrainConfig
    runs/NAME/metrics.json             test metrics, timings, memory
    runs/NAME/history.json             loss and validation metrics per epoch
    runs/NAME/calibration.json         the score blend's validation search (gnn/models/blend.py)
    runs/NAME/checkpoint/              the model: model.pt, config.json, meta.json, ids.json;
                                       train_state.pt (optimizer, epoch, best state: --resume)
                                       (the files are gnn.checkpoint's)
    runs/NAME/snapshot/                the graph the run was trained on (graph.pt, ids.json)
    runs/NAME/embeddings.npz           user/item vectors of the last recommend job (explanations)
    runs/NAME/recommendations.parquet  the batch output of `kgrec recommend --all`
    runs/NAME/user_recommendations.parquet  the last per-user request (`--users`, no `--out`)
    runs/NAME/recommend.json           the summary of the last recommend job
    runs/NAME/similar_items.parquet    ... with --similar-items
    runs/NAME/recommend-job/           an unfinished recommend job (resume state)
    runs/NAME/search/                  search assets: catalogue, BM25 index, serving vectors,
                                       fitted blend, evaluation queries
    runs/NAME/search_metrics.json      the search protocol's results
    runs/NAME/.lock                    held by a job writing into the run

Run names are one path component of letters, digits, '.', '_' and '-' (never '..', never a
path): `RunDir.named` refuses anything else, for every command alike.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, RunNotFound
from core.io import LockBusy, atomic_write, atomic_write_json, file_lock, read_json

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_name(name: str) -> str:
    """`name` if it is a valid run name, else ConfigError naming the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (starting "
                          "with a letter or digit, no '..', no '/'); runs live under the runs "
                          "directory ($KGREC_RUNS_DIR)")
    return name


class RunDir:
    """A run folder (it may not exist yet)."""

    CONFIG = "config.json"
    METRICS = "metrics.json"
    HISTORY = "history.json"
    CHECKPOINT = "checkpoint"
    MODEL_FILE = "model.pt"
    TRAIN_STATE = "train_state.pt"
    SNAPSHOT = "snapshot"
    EMBEDDINGS = "embeddings.npz"
    RECOMMENDATIONS = "recommendations.parquet"
    USER_RECOMMENDATIONS = "user_recommendations.parquet"
    CALIBRATION = "calibration.json"
    RECOMMEND_SUMMARY = "recommend.json"
    SIMILAR = "similar_items.parquet"
    JOB = "recommend-job"
    SEARCH = "search"
    SEARCH_METRICS = "search_metrics.json"
    LOCK = ".lock"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def named(cls, runs_dir: str | Path, name: str) -> RunDir:
        """The run `name` under `runs_dir` (the name is validated: no paths, no '..')."""
        return cls(Path(runs_dir) / check_run_name(name))

    @property
    def name(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(self.path.resolve())

    # ------------------------------------------------------------------ paths
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def model_file(self) -> Path:
        return self.checkpoint_dir / self.MODEL_FILE

    @property
    def train_state_file(self) -> Path:
        return self.checkpoint_dir / self.TRAIN_STATE

    @property
    def snapshot_dir(self) -> Path:
        return self.path / self.SNAPSHOT

    @property
    def search_dir(self) -> Path:
        return self.path / self.SEARCH

    def search_file(self, name: str) -> Path:
        """A search asset (`catalogue.parquet`, `blend.json`, `bm25/`, ...)."""
        return self.search_dir / name

    @property
    def job_dir(self) -> Path:
        return self.path / self.JOB

    @property
    def recommendations_file(self) -> Path:
        return self.path / self.RECOMMENDATIONS

    @property
    def user_recommendations_file(self) -> Path:
        return self.path / self.USER_RECOMMENDATIONS

    @property
    def similar_file(self) -> Path:
        return self.path / self.SIMILAR

    # ------------------------------------------------------------------ state
    def exists(self) -> bool:
        return self.path.is_dir()

    def is_trained(self) -> bool:
        return self.model_file.exists()

    def has_snapshot(self) -> bool:
        return (self.snapshot_dir / "graph.pt").exists()

    def require_trained(self) -> RunDir:
        """Self, or RunNotFound naming the command that trains it."""
        if not self.exists():
            raise RunNotFound(f"no run named {self.name!r} in {self.path.parent}: train one "
                              f"with `kgrec train --run {self.name}`")
        if not self.is_trained():
            raise RunNotFound(f"run {self.name!r} has no trained model ({self.model_file}): "
                              f"train it with `kgrec train --run {self.name}`")
        return self

    @contextmanager
    def lock(self, what: str = "a job") -> Iterator[None]:
        """Exclusive use of the run by one writing job (recommend, search-eval, train);
        ConfigError at once when another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            with file_lock(self.file(self.LOCK), wait=False):
                yield
        except LockBusy:
            raise ConfigError(f"run {self.name!r} is busy: another process is running "
                              f"{what} on it; wait for it to finish") from None

    # ------------------------------------------------------------------ JSON files
    def read_json(self, name: str, default: Any = None) -> Any:
        return read_json(self.file(name), default)

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_json(self.file(name), obj)

    def load_metrics(self) -> dict[str, Any] | None:
        return self.read_json(self.METRICS)

    def save_metrics(self, metrics: dict[str, Any]) -> Path:
        return self.write_json(self.METRICS, metrics)

    def save_history(self, history: list[dict[str, Any]]) -> Path:
        return self.write_json(self.HISTORY, history)

    def load_config(self):
        """The run's TrainConfig (None when the run has none)."""
        from gnn.config import TrainConfig

        d = self.read_json(self.CONFIG)
        return None if d is None else TrainConfig.from_dict(d)

    def save_config(self, cfg) -> Path:
        return self.write_json(self.CONFIG, cfg.to_dict())

    def model_name(self) -> str | None:
        """The model the run trains ("hgt", ...), from its config; None when unknown."""
        d = self.read_json(self.CONFIG) or {}
        return d.get("model") if isinstance(d, dict) else None

    # ------------------------------------------------------------------ snapshot and model
    def load_snapshot(self):
        """The graph the run was trained on; RunNotFound naming the fix when absent."""
        from gnn.snapshot import GraphSnapshot

        if not self.has_snapshot():
            raise RunNotFound(f"run {self.name!r} has no saved graph snapshot "
                              f"({self.snapshot_dir}): train it again with `kgrec train --run "
                              f"{self.name}`")
        return GraphSnapshot.load(self.snapshot_dir)

    def save_snapshot(self, snapshot) -> Path:
        return atomic_write(self.snapshot_dir, snapshot.save)

    def snapshot(self, open_store=None, fresh: bool = False, progress=None):
        """The run's graph: the saved copy (unless `fresh`), else exported from the store that
        `open_store()` opens (a context manager) and saved in the run."""
        if self.has_snapshot() and not fresh:
            return self.load_snapshot()
        if open_store is None:
            return self.load_snapshot()  # RunNotFound naming the fix
        from gnn.snapshot import export

        with open_store() as store:
            snap = export(store, progress=progress)
        self.path.mkdir(parents=True, exist_ok=True)
        self.save_snapshot(snap)
        return snap

    def load_model(self):
        """The trained model (gnn.models.Recommender)."""
        from gnn.checkpoint import load_model

        self.require_trained()
        return load_model(self.checkpoint_dir)

    def save_model(self, model) -> Path:
        from gnn.checkpoint import save_model

        return save_model(model, self.checkpoint_dir)

    def save_train_state(self, state: dict[str, Any]) -> Path:
        """The trainer's state after an evaluated epoch (what --resume continues from)."""
        from gnn.checkpoint import save_train_state

        return save_train_state(self.train_state_file, state)

    def load_train_state(self, device: Any = "cpu") -> dict[str, Any] | None:
        from gnn.checkpoint import load_train_state

        return load_train_state(self.train_state_file, device)

    # ------------------------------------------------------------------ training over a run
    def has_results(self) -> bool:
        """True when the folder holds a run's results (a config, metrics or a model), not
        just a cached snapshot."""
        return any(p.exists() for p in (self.file(self.CONFIG), self.file(self.METRICS),
                                        self.model_file, self.train_state_file))

    def check_can_train(self, model: str, resume: bool, overwrite: bool) -> None:
        """ConfigError unless training `model` here destroys nothing unasked: a new run, or
        `resume` of the same model, or `overwrite`."""
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: pick one")
        if not self.has_results() or overwrite:
            return
        trained = self.model_name() or "unknown"
        if not resume:
            raise ConfigError(f"run {self.name!r} already exists ({trained} model in "
                              f"{self.path}): pass --resume to continue it, --overwrite to "
                              "replace it, or choose another --run name")
        if trained != model:
            raise ConfigError(f"run {self.name!r} trains {trained}, not {model}: resume it with "
                              f"--model {trained}, or --overwrite it")

    def clear(self, keep_snapshot: bool = True) -> None:
        """Remove the run's results (everything but the cached snapshot, unless asked)."""
        if not self.exists():
            return
        for p in self.path.iterdir():
            if p.name == self.LOCK or (keep_snapshot and p.name == self.SNAPSHOT):
                continue
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    # ------------------------------------------------------------------ embeddings
    def save_embeddings(self, emb: dict[str, tuple[np.ndarray, Any]]) -> Path | None:
        """`{node type: (ids, matrix)}` (np.savez, no pickles); None when there is nothing."""
        if not emb:
            return None

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **{f"{t}_ids": np.asarray(ids).astype(str)
                               for t, (ids, _) in emb.items()},
                         **{f"{t}_emb": np.asarray(m, dtype=np.float32)
                            for t, (_, m) in emb.items()})

        return atomic_write(self.file(self.EMBEDDINGS), write)

    def load_embeddings(self) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
        path = self.file(self.EMBEDDINGS)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            types = sorted({k.rsplit("_", 1)[0] for k in z.files})
            return {t: (z[f"{t}_ids"], z[f"{t}_emb"]) for t in types}


def list_runs(runs_dir: str | Path, trained: bool = True) -> list[RunDir]:
    """The runs under `runs_dir` (only the trained ones by default), by name."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in sorted(root.iterdir()) if p.is_dir() and _NAME.fullmatch(p.name)]
    return [r for r in runs if r.is_trained()] if trained else runs
