"""graph.export against the real embedded server: the snapshot holds every node and relationship
of the graph, with reverse edge types and id maps, and exporting an unchanged graph twice gives
identical tensors."""

from __future__ import annotations

import torch

from gnn.snapshot import GraphSnapshot, export
from graph.export import ENDPOINTS, NODE_TYPES, edge_type


def _tensors(snap: GraphSnapshot) -> dict[str, torch.Tensor]:
    out = {}
    for et in snap.data.edge_types:
        for key, value in snap.data[et].items():
            if isinstance(value, torch.Tensor):
                out[f"{et}.{key}"] = value
    return out


def test_export_matches_the_graph_and_is_repeatable(recgraph, tmp_path):
    counts = recgraph.store.counts()
    a = export(recgraph.store)
    b = export(recgraph.store)

    for label, t in NODE_TYPES.items():
        assert a.data[t].num_nodes == counts[label] > 0, label
        ids = list(a.ids[t])
        assert ids == sorted(ids) and len(set(ids)) == len(ids), t
    for rel in ENDPOINTS:
        if not counts.get(rel):
            continue
        src_t, name, dst_t = edge_type(rel)
        fwd = a.data[src_t, name, dst_t].edge_index
        assert fwd.size(1) == counts[rel], rel
        rev = a.data[dst_t, "rev_" + name, src_t].edge_index
        assert torch.equal(rev, fwd.flip(0)), rel
    assert counts["REVIEWED"] > 0 and a.data["user", "reviewed", "item"].split.unique().tolist() \
        == [1, 2]  # the slice keeps the published split: train and test

    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() and len(ta) > 0
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key
    assert {t: list(v) for t, v in a.ids.items()} == {t: list(v) for t, v in b.ids.items()}

    a.save(tmp_path / "snap")
    c = GraphSnapshot.load(tmp_path / "snap")
    tc = _tensors(c)
    assert all(torch.equal(ta[k], tc[k]) for k in ta)
    # the id maps turn rows back into the graph's ids
    user, item = a.data["user", "reviewed", "item"].edge_index[:, 0].tolist()
    assert a.index("user")[a.ids["user"][user]] == user
    assert a.index("item")[a.ids["item"][item]] == item
