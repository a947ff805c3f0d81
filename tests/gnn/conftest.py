"""Fixtures of the gnn tests (the builders live in gnn_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gnn_fixtures import beauty_slice, checkerboard

from gnn.snapshot import GraphSnapshot


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny graphs gain nothing from threads, and on a shared machine extra threads only wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def slice_snapshot() -> GraphSnapshot:
    return beauty_slice()


@pytest.fixture(scope="session")
def slice_dir(slice_snapshot, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("slice") / "snapshot"
    slice_snapshot.save(path)
    return path


@pytest.fixture(scope="session")
def board() -> GraphSnapshot:
    return checkerboard()
