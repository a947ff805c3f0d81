"""Explanations as graph paths (graph.explain) on the loaded slice; the expected paths are found
in the fixture files with pandas, independently of the Cypher that finds them in the graph."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graph import queries as Q
from graph.explain import KINDS, LENGTH, NodeEmbeddings, explain

from .conftest import HGT_RUN, SLICE


@pytest.fixture(scope="module")
def files():
    inter = pd.read_csv(SLICE / "interactions.csv.gz", dtype=str)
    rel = pd.read_csv(SLICE / "item_relations.csv.gz", dtype=str)
    meta = pd.read_csv(SLICE / "items.csv", dtype=str, keep_default_na=False)
    hist = inter.groupby("user_id")["item_id"].apply(set).to_dict()
    buyers = inter.groupby("item_id")["user_id"].apply(set).to_dict()
    return inter, rel, meta, hist, buyers


def _title(store, item_id: str) -> str:
    return store.read(Q.ITEM_TITLES, ids=[item_id])[0]["title"]


def _triple(files, relation: str):
    """(user, x, i): the user reviewed x, x -relation- i, the user did not review i."""
    inter, rel, meta, hist, buyers = files
    for r in rel[rel["relation"] == relation].sort_values(["item_id", "related_item_id"]) \
            .itertuples():
        for a, b in ((r.item_id, r.related_item_id), (r.related_item_id, r.item_id)):
            for u in sorted(buyers.get(a, ())):
                if b not in hist[u]:
                    return u, a, b
    raise AssertionError(f"no {relation} triple in the slice")


def test_bought_together_path_with_reason(recgraph, files):
    store = recgraph.store
    u, x, i = _triple(files, "bought_together")
    paths = explain(store, u, i, n=10)
    bt = [p for p in paths if p.kind == "bought_together"]
    assert bt, [p.kind for p in paths]
    assert any(p.nodes[1].id == x for p in bt)
    p = next(p for p in bt if p.nodes[1].id == x)
    assert p.length == 2 and p.rels == ["REVIEWED", "BOUGHT_TOGETHER"]
    assert [n.label for n in p.nodes] == ["User", "Item", "Item"]
    assert p.reason == (f"You reviewed “{_title(store, x)}”; it is often bought together with "
                        f"“{_title(store, i)}”.")
    # the names are catalogue data, kept apart from the sentence around them
    assert [t for t, name in p.parts if name] == [_title(store, x), _title(store, i)]
    assert paths[0].kind == "bought_together"  # the strongest type comes first


def test_same_brand_path_names_the_brand(recgraph, files):
    store = recgraph.store
    inter, rel, meta, hist, buyers = files
    brand = dict(zip(meta["item_id"], meta["brand"]))
    found = None
    for u in sorted(hist):
        for x in sorted(hist[u]):
            if not brand.get(x):
                continue
            others = sorted(i for i, b in brand.items() if b == brand[x] and i not in hist[u])
            if others:
                found = (u, x, others[0])
                break
        if found:
            break
    u, x, i = found
    paths = explain(store, u, i, n=10)
    sb = [p for p in paths if p.kind == "same_brand"]
    assert sb and sb[0].length == 3
    for p in sb:  # through one of the user's items of that brand
        assert p.nodes[1].id in hist[u] and brand[p.nodes[1].id] == brand[x]
        assert p.nodes[2].label == "Brand" and p.nodes[2].name == brand[x]
        assert p.reason.endswith(f"is also by “{brand[x]}”.")
        assert p.parts[-2] == (brand[x], True)


def test_co_purchase_support_counts_other_customers(recgraph, files):
    inter, rel, meta, hist, buyers = files
    u = sorted(hist, key=lambda v: (-len(hist[v]), v))[0]  # the user with most reviews
    items = sorted(set(buyers) - hist[u])
    i = max(items, key=lambda it: (len(buyers[it]), it))
    paths = explain(recgraph.store, u, i, n=20, max_length=3)
    co = [p for p in paths if p.kind == "co_purchase"]
    assert co
    for p in co:
        x = p.nodes[1].id
        expected = len((buyers[x] & buyers[i]) - {u})
        assert p.support == expected > 0
        assert f"{expected} other customer" in p.reason
        assert p.nodes[2].id is None  # other customers' ids are not shown


def test_paths_are_bounded_diverse_and_never_use_the_root_category(recgraph, files):
    inter, rel, meta, hist, buyers = files
    store = recgraph.store
    users = sorted(hist)[:15]
    items = sorted(buyers)[:15]
    n_paths = 0
    for u, i in zip(users, items):
        paths = explain(store, u, i, n=4)
        short = explain(store, u, i, n=4, max_length=2)
        assert all(p.length == 2 for p in short)
        assert len(paths) <= 4 and all(2 <= p.length <= 4 for p in paths)
        assert all(p.length == LENGTH[p.kind] and p.kind in KINDS for p in paths)
        kinds = [p.kind for p in paths]
        distinct = len(set(kinds))
        assert kinds[:distinct] == list(dict.fromkeys(kinds))  # one of each type first
        for p in paths:
            assert "beauty" not in {n.id for n in p.nodes if n.label == "Category"}
            assert p.nodes[0].id == u and p.nodes[-1].id == i
        n_paths += len(paths)
    assert n_paths > 20
    assert explain(store, "no-such-user", items[0]) == []
    assert explain(store, users[0], "no-such-item") == []


def test_embeddings_rank_paths_whose_hops_agree(recgraph, files):
    """Two co-purchase paths: with embeddings where the user, x1 and the item point the same way
    and x2 elsewhere, the path through x1 ranks first; swapping the roles swaps the order."""
    inter, rel, meta, hist, buyers = files
    store = recgraph.store
    u = sorted(hist, key=lambda v: (-len(hist[v]), v))[0]
    i = max(sorted(set(buyers) - hist[u]), key=lambda it: len(buyers[it]))
    co = [p for p in explain(store, u, i, n=20, max_length=3) if p.kind == "co_purchase"]
    assert len(co) >= 2
    x1, x2 = co[0].nodes[1].id, co[1].nodes[1].id

    def emb(close: str, far: str) -> NodeEmbeddings:
        items = [i, close, far]
        mat = np.array([[1.0, 0.0], [1.0, 0.1], [-0.2, 1.0]])
        return NodeEmbeddings({"user": ([u], np.array([[1.0, 0.05]])), "item": (items, mat)})

    for close, far in ((x2, x1), (x1, x2)):
        ranked = [p for p in explain(store, u, i, n=50, max_length=3, embeddings=emb(close, far))
                  if p.kind == "co_purchase" and p.nodes[1].id in (x1, x2)]
        assert [p.nodes[1].id for p in ranked] == [close, far]
        assert ranked[0].agreement > 0.9 > ranked[1].agreement


def test_agreement_is_the_mean_cosine_of_the_models_embeddings(recgraph, files):
    from gnn.models.base import Recommender
    from gnn.score import Scorer
    from gnn.snapshot import GraphSnapshot

    model = Recommender.load(recgraph.hgt_dir / "checkpoint")
    scorer = Scorer(model, GraphSnapshot.load(recgraph.hgt_dir / "snapshot"))
    emb = NodeEmbeddings(scorer.node_embeddings())
    u, x, i = _triple(files, "also_bought")
    paths = explain(recgraph.store, u, i, n=10, embeddings=emb)
    assert paths
    uid = {v: k for k, v in enumerate(scorer.user_ids)}
    iid = {v: k for k, v in enumerate(scorer.item_ids)}

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    for p in paths:
        vecs = [scorer.user_emb[uid[u]].numpy()]
        vecs += [scorer.item_emb[iid[n.id]].numpy() for n in p.nodes if n.label == "Item"]
        expected = np.mean([cos(a, b) for a, b in zip(vecs, vecs[1:])])
        assert p.agreement == pytest.approx(expected, abs=1e-5)


def test_cli_explain(recgraph, files, cli):
    u, x, i = _triple(files, "bought_together")
    proc = cli("explain", u, i, "--n", "2", "--json")
    out = json.loads(proc.stdout)
    assert out["user"] == u and len(out["paths"]) == 2
    assert out["paths"][0]["kind"] == "bought_together"
    assert out["paths"][0]["nodes"][1]["id"] == x
    table = cli("explain", u, i, "--n", "3", "--run", HGT_RUN)
    assert "bought_together" in table.stdout and f"why {i} for {u}" in table.stdout
    bad = cli("explain", "no-such-user", i, ok=False)
    assert bad.returncode == 1 and "no user 'no-such-user'" in bad.stderr


def test_every_behaviour_type_can_start_a_path():
    """A behaviour type added to the schema (favourites, ...) is also a reason: every path query
    follows every behaviour, and each has a verb."""
    from graph.explain import BEHAVIOUR_STRENGTH, VERB

    for name, stmt in Q.EXPLAIN_PATHS.items():
        for behaviour in Q.BEHAVIOUR_TYPES:
            assert behaviour in stmt, (name, behaviour)
    assert set(VERB) == set(BEHAVIOUR_STRENGTH) == set(Q.BEHAVIOUR_TYPES)
