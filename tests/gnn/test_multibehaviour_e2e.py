"""Issue 9 end to end: a REES46-format shop log (views, carts, removals, purchases, brands,
categories) loaded through the real ETL into the embedded graph server, exported, split by time
and trained with real PyG training: hgt learns purchases from views and carts beside the
knowledge graph, and no behaviour after a user's cutoff reaches the training graph."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gnn.config import TrainConfig
from gnn.data import make_split
from gnn.rundir import RunDir

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "rees46_multibehaviour.csv.gz"
SETTINGS = dict(epochs=6, dim=16, heads=2, layers=2, batch_size=64, lr=0.02, patience=50,
                device="cpu", cold_item_fraction=0.0, eval_batch=1024, seed=0)


@pytest.fixture(scope="module")
def shop(store, cfg):
    """The fixture loaded with the real ETL (what `kgrec etl load --format rees46` does) and
    exported as the training side sees it."""
    from etl.load import fingerprint, load_tables
    from etl.quarantine import Quarantine
    from etl.readers import read
    from gnn.snapshot import export
    from graph.maintenance import delete_all

    delete_all(store)
    (Path(store.cfg.home) / "events.parquet").unlink(missing_ok=True)
    for f in (Path(store.cfg.home) / "etl").glob("*.json"):
        f.unlink()
    tables = read("rees46", FIXTURE, Quarantine())
    load_tables(store, tables, home=Path(cfg.graph.home),
                fingerprint=fingerprint("rees46", FIXTURE, False, store.cfg.batch_size),
                source="rees46_multibehaviour")
    return export(store)


def test_temporal_split_of_the_loaded_shop_hides_every_later_behaviour(shop):
    split = make_split(shop, TrainConfig.for_model("hgt", **SETTINGS))
    assert split.mode == "temporal"
    target = shop.data[split.target]
    ei, ts = target.edge_index, target.first_ts
    cut = torch.full((split.train_graph.n_users,), torch.iinfo(torch.long).max)
    test_keys = set(map(tuple, split.test.T.tolist()))
    for (u, i), t in zip(ei.T.tolist(), ts.tolist()):
        if (u, i) in test_keys:
            cut[u] = min(int(cut[u]), t)
    checked = 0
    for rel in ("viewed", "carted"):
        et = ("user", rel, "item")
        src = shop.data[et]
        later = src.first_ts >= cut[src.edge_index[0]]
        assert later.any() and (~later).any()  # the fixture has both sides of the cutoff
        for g in (split.train_graph, split.eval_graph):
            kept = set(map(tuple, g.data[et].edge_index.T.tolist()))
            for (u, i), is_later in zip(src.edge_index.T.tolist(), later.tolist()):
                assert ((u, i) in kept) is not is_later
                checked += 1
    assert checked > 1000


def test_hgt_learns_purchases_from_views_and_carts_beside_the_kg(shop, tmp_path):
    from gnn.train import train_run

    runs = {}
    for name, model, over in (("hgt", "hgt", {}), ("pop", "pop", {}),
                              ("bpop", "behaviour-pop", {})):
        rd = RunDir(tmp_path / name)
        runs[name] = train_run(shop, TrainConfig.for_model(model, **SETTINGS, **over), rd)
    m = runs["hgt"]
    assert {"hr@10", "ndcg@10", "hr@50", "ndcg@50"} <= set(m)
    saved = RunDir(tmp_path / "hgt").load_metrics()
    assert saved["hr@50"] == m["hr@50"]
    model = RunDir(tmp_path / "hgt").load_model()  # rebuilt from the checkpoint
    assert [et[1] for et in model.behaviours()] == ["purchased", "carted", "viewed"]
    assert model.net.attention is not None  # brand / category relations beside behaviours
    learned = model.describe()
    assert set(learned["gain"]) == {"purchased", "carted", "viewed"}
    # the behaviour signal is real on this funnel: own carts/views beat popularity
    assert runs["bpop"]["hr@10"] > runs["pop"]["hr@10"]
    assert m["hr@10"] > runs["pop"]["hr@10"]
