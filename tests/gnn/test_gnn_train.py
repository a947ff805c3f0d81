"""gnn.train and the CLI: run directories, determinism, resume, cold start and fold-in through
the knowledge graph, 2-process data-parallel training."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from gnn_fixtures import REPO, checkerboard, fast_config

from gnn.data import make_split
from gnn.models import create
from gnn.rundir import RunDir
from gnn.snapshot import GraphSnapshot, build_snapshot
from gnn.train import evaluate_run, train_run
from gnn.trainer import Trainer

CHECKPOINT = RunDir.CHECKPOINT

TIMING = {"train_seconds", "seconds_to_best", "eval_seconds", "peak_rss_mb"}
REQUIRED = {"recall@20", "recall@10", "ndcg@10", "ndcg@20", "hr@10", "precision@10", "mrr@10",
            "coverage@20", "gini@20", "cold_item_recall@20", "model", "dataset", "split",
            "epochs", "train_seconds", "peak_rss_mb"}


def hgt_config(**over):
    return fast_config("hgt", **{"epochs": 4, "batch_size": 512, **over})


def test_train_run_writes_the_run(slice_snapshot, tmp_path):
    m = train_run(slice_snapshot, fast_config("mf", epochs=3), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for f in ("config.json", "metrics.json", "history.json", f"{CHECKPOINT}/model.pt",
              f"{CHECKPOINT}/config.json", f"{CHECKPOINT}/ids.json", f"{CHECKPOINT}/meta.json",
              f"{CHECKPOINT}/train_state.pt"):
        assert (run / f).exists(), f
    saved = json.loads((run / "metrics.json").read_text())
    assert REQUIRED <= set(saved) and saved == json.loads(json.dumps(m))
    assert saved["split"] == "given" and saved["model"] == "mf" and saved["epochs"] == 3
    assert 0 <= saved["ndcg@10"] <= 1 and saved["peak_rss_mb"] > 0
    assert len(json.loads((run / "history.json").read_text())) == 3


def test_hgt_is_deterministic_and_evaluate_reproduces(slice_snapshot, tmp_path):
    a = train_run(slice_snapshot, hgt_config(), tmp_path / "a", progress=False)
    b = train_run(slice_snapshot, hgt_config(), tmp_path / "b", progress=False)
    strip = lambda m: {k: v for k, v in m.items() if k not in TIMING}  # noqa: E731
    assert strip(a) == strip(b)
    # the cold-item map was fitted on the slice's KG, and is saved: evaluation reproduces it
    assert a["cold_map"]["fitted"] and "also_bought" in a["cold_map"]["parts"]
    assert a["cold_head"]["fitted"] and "also_bought" in a["cold_head"]["features"]
    again = evaluate_run(slice_snapshot, tmp_path / "a")
    assert strip(again) == strip(a)
    c = train_run(slice_snapshot, hgt_config(seed=1), tmp_path / "c", progress=False)
    assert strip(c) != strip(a)


def test_resume_continues_exactly(slice_snapshot, tmp_path):
    full = train_run(slice_snapshot, fast_config("lightgcn", epochs=4), tmp_path / "full",
                     progress=False)
    train_run(slice_snapshot, fast_config("lightgcn", epochs=2), tmp_path / "part",
              progress=False)
    resumed = train_run(slice_snapshot, fast_config("lightgcn", epochs=4), tmp_path / "part",
                        progress=False, resume=True)
    assert resumed["epochs"] == 4
    for key in ("ndcg@10", "recall@20", "best_epoch", "val_ndcg@20"):
        assert resumed[key] == full[key], key
    history = json.loads((tmp_path / "part" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]


def no_kg_snapshots() -> dict[str, GraphSnapshot]:
    """The checkerboard's purchases without any knowledge graph: once with the KG node types
    present but empty (no Category, no Brand, empty item-item frames), once with the types
    absent altogether."""
    board = checkerboard()
    st = board.data["user", "reviewed", "item"]
    ids = {t: list(board.ids[t]) for t in ("user", "item")}
    inter = pd.DataFrame({"src": board.ids["user"][st.edge_index[0].numpy()],
                          "dst": board.ids["item"][st.edge_index[1].numpy()], "count": 1,
                          "first_ts": st.first_ts.numpy(), "last_ts": st.last_ts.numpy(),
                          "split": pd.Series(st.split.numpy()).map({1: "train", 2: "test"})})
    empty = pd.DataFrame(columns=["src", "dst"])
    return {"empty types": build_snapshot({**ids, "category": [], "brand": []},
                                          {"REVIEWED": inter, "IN_CATEGORY": empty,
                                           "HAS_BRAND": empty, "ALSO_BOUGHT": empty}),
            "no types": build_snapshot(ids, {"PURCHASED": inter})}


@pytest.mark.parametrize("model", ["pop", "itemknn", "mf", "lightgcn", "hgt", "lightgcn-kg",
                                   "kglink"])
def test_every_model_trains_without_a_knowledge_graph(model, tmp_path):
    """Issue 9: any node or relation type may be absent (here: the whole KG)."""
    for name, snap in no_kg_snapshots().items():
        assert not [et for et in snap.data.edge_types if "user" not in (et[0], et[2])]
        cfg = fast_config(model, epochs=2, batch_size=32, kg_links=model in ("mf", "hgt"))
        m = train_run(snap, cfg, tmp_path / name.replace(" ", "-"))
        assert 0 <= m["ndcg@10"] <= 1 and m["test_users"] > 0, name
        assert "cold_item_recall@20_baseline" in m  # the category baseline, without categories
        loaded = RunDir(tmp_path / name.replace(" ", "-")).load_model()
        items, _ = loaded.recommend(torch.arange(4), k=3, source=snap)
        assert (items >= 0).all()


@pytest.fixture(scope="module")
def hgt_fitted(slice_snapshot):
    cfg = hgt_config(epochs=6, cold_item_fraction=0.2, id_dropout=0.2)
    split = make_split(slice_snapshot, cfg)
    model = create("hgt", cfg)
    Trainer().fit(model, split)
    return model, split


def test_cold_items_get_embeddings_from_the_knowledge_graph(hgt_fitted, slice_snapshot):
    model, split = hgt_fitted
    g = split.eval_graph
    cold = split.cold_items
    _, items = model.embeddings(g)
    # cold items have no interaction anywhere, so they all share the default id row; what tells
    # them apart is their brand, categories and related items (with interactions: what the
    # cold-item map reads): items whose KG neighbourhoods differ get different embeddings
    warm = set(split.warm_items.nonzero().view(-1).tolist())

    def neighbourhood(c: int) -> tuple:
        """c's related items with interactions, and its brands and categories that have
        another item with interactions"""
        out = []
        for et in sorted(g.kg_edge_types()):
            ei = g.data[et].edge_index
            if et[0] == "item":
                nb = set(ei[1, ei[0] == c].tolist())
                if et[2] != "item":
                    nb = {x for x in nb if set(ei[0, ei[1] == x].tolist()) & warm}
                out.append(frozenset(nb & warm) if et[2] == "item" else frozenset(nb))
        return tuple(out)

    kinds = {neighbourhood(c) for c in cold.tolist()}
    assert len(kinds) > len(cold) // 2
    assert len({tuple(r) for r in items[cold].round(decimals=4).tolist()}) == len(kinds)
    # ... and removing one cold item's KG edges changes its embedding
    c = int(cold[0])
    data = g.data.clone()
    for et in g.kg_edge_types():
        ei = data[et].edge_index
        keep = ~(((ei[0] == c) & (et[0] == "item")) | ((ei[1] == c) & (et[2] == "item")))
        data[et].edge_index = ei[:, keep]
    from gnn.data import Graph

    cut = Graph(data, g.ids, g.target)
    _, items_cut = model.embeddings(cut)
    assert (items[c] - items_cut[c]).norm() > 1e-3
    # a model without the KG cannot tell cold items apart (MF: one shared default row)
    mf = create("mf", fast_config("mf", epochs=1, cold_item_fraction=0.2))
    Trainer().fit(mf, split)
    _, mf_items = mf.embeddings(g)
    assert (mf_items[cold] - mf_items[cold[0]]).abs().max() == 0


def test_fold_in_new_purchases_change_a_users_embedding(hgt_fitted, slice_snapshot):
    """A snapshot exported later, where a user reviewed more items: no retraining, the user's
    embedding and recommendations follow the new history (the model maps nodes by id)."""
    model, split = hgt_fitted
    snap = slice_snapshot
    user = snap.ids["user"][0]
    st = snap.data["user", "reviewed", "item"]
    seen = set(st.edge_index[1, st.edge_index[0] == 0].tolist())
    new_items = [snap.ids["item"][i] for i in range(snap.data["item"].num_nodes)
                 if i not in seen][:8]
    later = add_reviews(snap, user, new_items)
    u_before, _ = model.embeddings(snap)
    u_after, _ = model.embeddings(later)
    assert (u_after[0] - u_before[0]).norm() > 1e-3
    # other users' neighbourhoods changed only through shared items: user 0 moved the most
    moved = (u_after - u_before).norm(dim=1)
    assert int(moved.argmax()) == 0
    before, _ = model.recommend(torch.tensor([0]), k=10, source=snap)
    after, _ = model.recommend(torch.tensor([0]), k=10, source=later)
    assert before.tolist() != after.tolist()
    assert not set(after[0].tolist()) & {snap.index("item")[i] for i in new_items}


def add_reviews(snap: GraphSnapshot, user: str, items: list[str]) -> GraphSnapshot:
    """A copy of `snap` with `user` having reviewed `items` too (same node ids)."""
    data = snap.data.clone()
    st = data["user", "reviewed", "item"]
    u = snap.index("user")[user]
    new = torch.tensor([[u] * len(items), [snap.index("item")[i] for i in items]])
    st.edge_index = torch.cat([st.edge_index, new], 1)
    for attr, fill in (("count", 1), ("first_ts", 2_000_000_000), ("last_ts", 2_000_000_000),
                       ("split", 1)):
        v = getattr(st, attr)
        setattr(st, attr, torch.cat([v, torch.full((len(items),), fill, dtype=v.dtype)]))
    data["item", "rev_reviewed", "user"].edge_index = st.edge_index.flip(0)
    return GraphSnapshot(data, snap.ids)


@pytest.mark.slow
def test_two_process_distributed_training_divides_the_batches(slice_dir, slice_snapshot,
                                                             tmp_path):
    """torchrun --nproc_per_node=2 -m gnn.train on CPU (gloo): the ranks take different batches
    (an epoch has half the steps of one process), gradients are all-reduced, rank 0 writes a
    valid run; the pairwise weights (kg_links) train under DDP too."""
    run = tmp_path / "ddp"
    batch = 512
    # --standalone: a local rendezvous on a free port (--master_port=0 hangs in torch 2.13)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gnn.train", "--snapshot", str(slice_dir), "--model", "hgt",
           "--run-dir", str(run), "--epochs", "2", "--dim", "16", "--batch-size", str(batch),
           "--device", "cpu", "--no-progress", "--set", "layers=2", "--set", "kg_links=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs"] == 2
    assert REQUIRED <= set(metrics)
    n = make_split(slice_snapshot, RunDir(run).load_config()).train.size(1)
    one_process = math.ceil(n / batch)
    two_processes = math.ceil(math.ceil(n / 2) / batch)
    assert two_processes < one_process
    history = json.loads((run / "history.json").read_text())
    assert [h["steps"] for h in history] == [two_processes, two_processes]
    model = RunDir(run).load_model()
    assert model.name == "hgt" and not model.dot_product_only
    assert model.net.pair.weight.abs().min() > 0  # trained (they start at 0)


def test_nccl_with_more_processes_than_gpus_stops_before_training(monkeypatch):
    """NCCL refuses two ranks on one GPU deep inside the first step; `init_distributed` says so
    first, naming the fix (seen on a one-GPU H200: bench/results/cuda.md). CUDA is faked here:
    the machine the tests run on has none."""
    from core.errors import ConfigError
    from gnn import runtime

    monkeypatch.setattr(runtime.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(runtime.torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(runtime.dist, "init_process_group",
                        lambda **kw: pytest.fail("the process group must not be joined"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="one GPU per process.*--nproc_per_node=1"):
        runtime.init_distributed()
    assert runtime.peak_gpu_mb() is None  # is_available, but never initialised here


# ------------------------------------------------------------------------------ entry point

def test_module_entry_point(slice_dir, tmp_path):
    from gnn.train import main

    assert main(["--snapshot", str(slice_dir), "--model", "mf", "--run-dir",
                 str(tmp_path / "m"), "--epochs", "2", "--no-progress",
                 "--set", "dim=8", "--set", "loss=\"softmax\"", "--set", "neg_samples=8"]) == 0
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["dim"] == 8 and cfg["loss"] == "softmax" and cfg["neg_samples"] == 8
    # an existing run is never replaced unasked; a bad setting is one clear line
    args = ["--snapshot", str(slice_dir), "--model", "pop", "--run-dir", str(tmp_path / "m"),
            "--no-progress"]
    assert main(args) == 2
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["model"] == "mf"
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["model"] == "pop"
    assert main([*args[:-3], "--run-dir", str(tmp_path / "n"), "--set", "colditem=0"]) == 2
    assert not (tmp_path / "n").exists()
