"""gnn.models.lightgcn_kg: one graph of history and KG (KG nodes as extra nodes), cold items
embedded through their KG neighbours, `kg_exclude`, and the real entry point writing a run."""

from __future__ import annotations

import json

import torch
from gnn_fixtures import fast_config

from gnn.data import make_split
from gnn.models import create
from gnn.models.lightgcn_kg import joint_adjacency
from gnn.trainer import Trainer


def test_joint_adjacency_links_items_to_their_kg_nodes(board):
    cfg = fast_config("lightgcn-kg")
    g = make_split(board, cfg).train_graph
    rels = g.kg_edge_types()
    adj = joint_adjacency(g, rels).to_dense()
    nu, ni = g.n_users, g.n_items
    assert adj.shape == (nu + ni + 2 + 2,) * 2  # 2 brands, 2 categories as extra nodes
    assert torch.allclose(adj, adj.T)  # undirected, symmetric normalisation
    brand = nu + ni  # the first KG node: brandA
    a_items = [nu + i for i, name in enumerate(g.ids["item"]) if name.startswith("A")]
    assert (adj[brand, a_items] > 0).all()
    # without brand and category relations the KG nodes are isolated
    no_kg = joint_adjacency(g, [r for r in rels if r[0] == r[2] == "item"]).to_dense()
    assert not no_kg[nu + ni:].any()
    assert (no_kg[nu:nu + ni, nu:nu + ni] > 0).any()  # also_bought stays


def test_cold_items_are_embedded_through_the_kg(slice_snapshot):
    cfg = fast_config("lightgcn-kg", epochs=3, cold_item_fraction=0.2)
    split = make_split(slice_snapshot, cfg)
    model = create("lightgcn-kg", cfg)
    Trainer().fit(model, split)
    assert model.scores_cold_items
    _, items = model.embeddings()
    cold = split.cold_items
    # every cold item has the same (default) id row; their KG neighbours tell them apart
    assert len({tuple(r) for r in items[cold].round(decimals=5).tolist()}) == len(cold)
    # excluding the whole KG leaves the cold items nothing but the default row
    bare = create("lightgcn-kg", cfg.replace(kg_exclude="item-item,brand,category"))
    Trainer().fit(bare, split)
    assert bare.meta["kg_edge_types"] == []
    _, items = bare.embeddings()
    assert len({tuple(r) for r in items[cold].round(decimals=5).tolist()}) < len(cold)


def test_entry_point_writes_the_run(slice_dir, tmp_path):
    from gnn.train import main

    assert main(["--snapshot", str(slice_dir), "--model", "lightgcn-kg", "--run-dir",
                 str(tmp_path / "l"), "--epochs", "2", "--no-progress", "--set", "dim=8"]) == 0
    metrics = json.loads((tmp_path / "l" / "metrics.json").read_text())
    assert metrics["model"] == "lightgcn-kg" and 0 < metrics["ndcg@10"] <= 1
    assert metrics["cold_item_recall@20"] is not None
