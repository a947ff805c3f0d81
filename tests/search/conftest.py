"""A tiny shop in the real embedded graph, and a real run trained on it (mf, CPU, seconds).

Two kinds of shoppers: the A users review rose things, the B users lavender things. Two face
creams have text of the same shape ("Rose Face Cream" by R'Rosa, "Lavender Face Cream" by
L'Lavande, in the same categories: equal BM25 scores for "face cream"); the lavender one is reviewed
by far more users, so without a user it comes first, and for an A user the rose one must.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from graph import queries as Q

N_USERS = 20  # per group
FACE = ["beauty", "skin care", "face", "creams & moisturizers"]
CATEGORY_NAMES = {"beauty": "Beauty", "skin care": "Skin Care", "face": "Face",
                  "creams & moisturizers": "Creams &amp; Moisturizers",
                  "fragrance": "Fragrance", "bath & body": "Bath & Body"}
PARENTS = [("skin care", "beauty"), ("face", "skin care"), ("creams & moisturizers", "face"),
           ("fragrance", "beauty"), ("bath & body", "beauty")]


def tiny_items() -> list[dict]:
    """id, title, brand, categories."""
    items = [
        {"id": "r0", "title": "Rose Face Cream", "brand": "rosa", "cats": FACE},
        {"id": "l0", "title": "Lavender Face Cream", "brand": "lavande", "cats": FACE},
    ]
    for k in range(1, 5):
        items.append({"id": f"r{k}", "title": f"Rose &amp; Honey Fragrance Mist No {k}",
                      "brand": "rosa", "cats": ["beauty", "fragrance"]})
        items.append({"id": f"l{k}", "title": f"Lavender Fragrance Oil No {k}",
                      "brand": "lavande", "cats": ["beauty", "fragrance"]})
    for k in range(5, 9):
        items.append({"id": f"r{k}", "title": f"Rose Body Wash No {k}", "brand": "rosa",
                      "cats": ["beauty", "bath & body"]})
        items.append({"id": f"l{k}", "title": f"Lavender Bath Salts No {k}",
                      "brand": "lavande", "cats": ["beauty", "bath & body"]})
    items.append({"id": "n1", "title": None, "brand": "rosa", "cats": ["beauty", "fragrance"]})
    items.append({"id": "e1", "title": None, "brand": None, "cats": []})
    return items


def tiny_reviews() -> list[dict]:
    """(user, item, split): A users 4 train + 1 test rose items (the first 6 also the rose
    cream), B users the same with lavender (the first 14 also the lavender cream); user A00 also
    has the untitled, uncategorised item e1 as a test item (its query is empty)."""
    rng = np.random.default_rng(7)
    rows = []
    for group, letter, n_cream in (("A", "r", 6), ("B", "l", 14)):
        for j in range(N_USERS):
            user = f"{group}{j:02d}"
            picks = rng.choice(np.arange(1, 9), 5, replace=False)
            for p in picks[:4]:
                rows.append((user, f"{letter}{p}", "train"))
            rows.append((user, f"{letter}{picks[4]}", "test"))
            if j < n_cream:
                rows.append((user, f"{letter}0", "train"))
    rows.append(("A00", "e1", "test"))
    return [{"src": u, "dst": i, "count": 1, "first_ts": 1_400_000_000 + n,
             "last_ts": 1_400_000_000 + n, "split": s, "rating": None}
            for n, (u, i, s) in enumerate(rows)]


def load_tiny_shop(store) -> None:
    items = tiny_items()
    store.ensure_schema()
    users = sorted({r["src"] for r in tiny_reviews()})
    store.write(Q.MERGE_USERS, rows=[{"id": u} for u in users])
    store.write(Q.MERGE_ITEMS, rows=[{"id": i["id"], "title": i["title"], "price": 9.5}
                                     for i in items])
    store.write(Q.MERGE_BRANDS, rows=[{"id": "rosa", "name": "R&#39;Rosa"},
                                      {"id": "lavande", "name": "L&#39;Lavande"}])
    store.write(Q.MERGE_CATEGORIES, rows=[{"id": k, "name": v} for k, v in CATEGORY_NAMES.items()])
    store.write(Q.MERGE_SUBCATEGORY_OF, rows=[{"src": c, "dst": p} for c, p in PARENTS])
    store.write(Q.MERGE_IN_CATEGORY, rows=[{"src": i["id"], "dst": c}
                                           for i in items for c in i["cats"]])
    store.write(Q.MERGE_HAS_BRAND, rows=[{"src": i["id"], "dst": i["brand"]}
                                         for i in items if i["brand"]])
    store.write(Q.MERGE_BEHAVIOUR["REVIEWED"], rows=tiny_reviews())


@pytest.fixture(name="load_tiny_shop")
def load_tiny_shop_fixture():
    """`load_tiny_shop`, for tests that reset and reload the graph."""
    return load_tiny_shop


@pytest.fixture(scope="module")
def tiny_shop(store):
    """The session's graph holding only the tiny shop (emptied first)."""
    from graph.maintenance import delete_all

    delete_all(store)
    load_tiny_shop(store)
    return store


@pytest.fixture(scope="module")
def tiny_run(tiny_shop, cfg) -> Path:
    """runs/tiny: an mf model trained on the tiny shop's snapshot with gnn.train, the
    snapshot saved beside it as the training command does."""
    from gnn.config import TrainConfig
    from gnn.snapshot import export
    from gnn.train import train_run

    run_dir = Path(cfg.runs_dir) / "tiny"
    shutil.rmtree(run_dir, ignore_errors=True)  # each module trains its own, from scratch
    snapshot = export(tiny_shop)
    tc = TrainConfig.for_model("mf", epochs=80, dim=16, lr=0.05, batch_size=4096,
                               cold_item_fraction=0.0, val_fraction=0.25, patience=1000,
                               eval_every=10, device="cpu", seed=0)
    train_run(snapshot, tc, run_dir, progress=False)
    snapshot.save(run_dir / "snapshot")
    assert json.loads((run_dir / "metrics.json").read_text())["model"] == "mf"
    return run_dir


@pytest.fixture(scope="session")
def reviews() -> list[dict]:
    return tiny_reviews()


@pytest.fixture(scope="session")
def n_users() -> int:
    return N_USERS


@pytest.fixture(scope="module")
def search_env(cfg, store) -> dict[str, str]:
    """`cli_env` for module-scoped fixtures: the real `kgrec` against the session's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(KGREC_HOME=str(cfg.graph.home), KGREC_QUARANTINE_DIR=str(cfg.etl.quarantine_dir),
               KGREC_RUNS_DIR=str(cfg.runs_dir))
    return env


def make_catalogue(titles: list[str], categories: list[list[str]] | None = None,
                   brands: list[str] | None = None):
    """A Catalogue of items i00, i01, ... (no graph)."""
    from search.catalogue import Catalogue

    n = len(titles)
    return Catalogue(ids=np.array([f"i{j:02d}" for j in range(n)], dtype=object),
                     titles=list(titles), brands=brands or [""] * n,
                     categories=categories or [["Beauty"]] * n)


@pytest.fixture(name="catalogue")
def catalogue_fixture():
    """`make_catalogue` for tests that need no graph."""
    return make_catalogue
