"""Graph snapshots for the gnn tests: a real slice of the bundled Beauty data, and a toy
"checkerboard" shop whose right answers are obvious. (A uniquely named module, not conftest.py,
so tests can import the builders.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gnn.config import TrainConfig
from gnn.snapshot import GraphSnapshot, build_snapshot

REPO = Path(__file__).resolve().parents[2]
BEAUTY = REPO / "data" / "amazon_beauty"


def beauty_slice(n_items: int = 400, n_users: int = 300, min_items: int = 4) -> GraphSnapshot:
    """The `n_items` most reviewed items, the first `n_users` users (by id) with >= `min_items`
    reviews of them, with the published split, review dates, brands, categories and the item-item
    relations among them: real data, small enough to train on in seconds."""
    inter = pd.read_csv(BEAUTY / "interactions.csv.gz", usecols=["user_id", "item_id", "split"])
    ts = pd.read_csv(BEAUTY / "interactions_timestamps.csv.gz",
                     usecols=["user_id", "item_id", "unix_review_time"])
    inter = inter.merge(ts, on=["user_id", "item_id"])
    top = inter["item_id"].value_counts().index[:n_items]
    inter = inter[inter["item_id"].isin(top)]
    counts = inter["user_id"].value_counts()
    users = sorted(counts.index[counts >= min_items])[:n_users]
    inter = inter[inter["user_id"].isin(users)]
    items = sorted(inter["item_id"].unique())
    meta = pd.read_csv(BEAUTY / "items.csv", keep_default_na=False)
    meta = meta[meta["item_id"].isin(items)]
    cats = meta.assign(dst=meta["categories"].str.split(" | ", regex=False)).explode("dst")
    brands = meta[meta["brand"] != ""]
    rel = pd.read_csv(BEAUTY / "item_relations.csv.gz")
    rel = rel[rel["item_id"].isin(items) & rel["related_item_id"].isin(items)]
    edges = {
        "REVIEWED": pd.DataFrame({"src": inter["user_id"], "dst": inter["item_id"], "count": 1,
                                  "first_ts": inter["unix_review_time"],
                                  "last_ts": inter["unix_review_time"],
                                  "split": inter["split"]}),
        "IN_CATEGORY": pd.DataFrame({"src": cats["item_id"], "dst": cats["dst"]}),
        "HAS_BRAND": pd.DataFrame({"src": brands["item_id"], "dst": brands["brand"]}),
    }
    for name in ("also_bought", "also_viewed", "bought_together"):
        r = rel[rel["relation"] == name]
        edges[name.upper()] = pd.DataFrame({"src": r["item_id"], "dst": r["related_item_id"]})
    nodes = {"user": users, "item": items, "category": sorted(cats["dst"].unique()),
             "brand": sorted(brands["brand"].unique())}
    return build_snapshot(nodes, edges)


def checkerboard(n_per_group: int = 12, n_items: int = 10, extra: dict | None = None,
                 seed: int = 3) -> GraphSnapshot:
    """Two kinds of shoppers: A users buy A items, B users buy B items (6 train + 1 test each).
    Items of a kind share a brand and a category and are `also_bought` in a ring. Any model worth
    its name recommends a user's own kind first."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in "AB":
        for j in range(n_per_group):
            picks = rng.choice(n_items, 7, replace=False)
            for p in picks[:6]:
                rows.append((f"{g}u{j:02d}", f"{g}i{p:02d}", "train", 1_000 + int(p)))
            rows.append((f"{g}u{j:02d}", f"{g}i{picks[6]:02d}", "test", 2_000))
    inter = pd.DataFrame(rows, columns=["src", "dst", "split", "first_ts"])
    inter["last_ts"] = inter["first_ts"]
    inter["count"] = 1
    items = [f"{g}i{p:02d}" for g in "AB" for p in range(n_items)]
    kg = {
        "IN_CATEGORY": pd.DataFrame({"src": items, "dst": [f"cat{i[0]}" for i in items]}),
        "HAS_BRAND": pd.DataFrame({"src": items, "dst": [f"brand{i[0]}" for i in items]}),
        "ALSO_BOUGHT": pd.DataFrame({"src": items,
                                     "dst": [f"{i[0]}i{(int(i[2:]) + 1) % n_items:02d}"
                                             for i in items]}),
    }
    users = set(inter["src"]) | {u for rel, f in (extra or {}).items()
                                 if rel in ("VIEWED", "CARTED", "PURCHASED") for u in f["src"]}
    nodes = {"user": sorted(users), "item": items, "category": ["catA", "catB"],
             "brand": ["brandA", "brandB"]}
    return build_snapshot(nodes, {"REVIEWED": inter, **kg, **(extra or {})})


def own_kind_share(board: GraphSnapshot, model, graph, candidates) -> float:
    """The share of the checkerboard's users whose first recommendation among `candidates` is
    of the user's own kind (A or B)."""
    import torch

    users = torch.arange(graph.n_users)
    top, _ = model.recommend(users, k=1, candidates=candidates, source=graph)
    own = [board.ids["item"][i][0] == board.ids["user"][u][0]
           for u, i in zip(users.tolist(), top[:, 0].tolist())]
    return sum(own) / len(own)


def fast_config(model: str, **over) -> TrainConfig:
    """Small and quick: for tests only."""
    values = dict(epochs=15, dim=16, batch_size=256, lr=0.02, patience=100, eval_batch=512,
                  device="cpu", heads=2, layers=2)
    values.update(over)
    return TrainConfig.for_model(model, **values)
