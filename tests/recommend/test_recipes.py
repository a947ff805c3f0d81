"""Every Cypher recipe of docs/cypher.md runs on the embedded server against the loaded slice with
recommendations of two real runs written, and returns what pandas computes from the fixture
files and the runs' Parquet output (not merely "no error"): through the driver, through the
console's code path (graph/console.py, as the dashboard runs it) and through `kgrec cypher`."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from graph import console
from graph.cypherlint import recipes_from_markdown

from .conftest import HGT_RUN, MF_RUN, SLICE, kgrec

DOC = Path(__file__).resolve().parents[2] / "docs" / "cypher.md"
K = 5
CATEGORY = "makeup"


@pytest.fixture(scope="module")
def world(recgraph, tmp_path_factory):
    """Recommendations of the hgt and the mf run written to the graph (k=5), similar items of the
    hgt run, their Parquet files, the fixture files, and parameter values for the recipes."""
    from gnn.models.base import Recommender
    from gnn.score import RecommendJob
    from gnn.snapshot import export
    from graph.recommendations import now_iso, write_recommendations, write_similar_items

    store = recgraph.store
    out = tmp_path_factory.mktemp("recipes")
    parquet = {}
    for run_dir, sim in ((recgraph.hgt_dir, 5), (recgraph.mf_dir, 0)):
        model = Recommender.load(run_dir / "checkpoint")
        created = now_iso()
        job = RecommendJob(
            run_dir, model, k=K, out=out / f"{run_dir.name}.parquet",
            sink=lambda f, ids, m=model.name, r=run_dir.name, c=created: write_recommendations(
                store, f, model=m, run_id=r, created_at=c, users=ids),
            similar_k=sim, similar_out=out / f"{run_dir.name}-similar.parquet",
            similar_sink=lambda f, ids, m=model.name, r=run_dir.name: write_similar_items(
                store, f, model=m, run_id=r))
        job.run(lambda: export(store), restart=True)
        parquet[run_dir.name] = pd.read_parquet(out / f"{run_dir.name}.parquet")
    similar = pd.read_parquet(out / f"{HGT_RUN}-similar.parquet")

    inter = pd.read_csv(SLICE / "interactions.csv.gz", dtype=str)
    items = pd.read_csv(SLICE / "items.csv", dtype=str, keep_default_na=False)
    titles = pd.read_csv(SLICE / "items_titles.csv.gz", dtype=str, keep_default_na=False)
    rel = pd.read_csv(SLICE / "item_relations.csv.gz", dtype=str)
    hist = inter.groupby("user_id")["item_id"].apply(set).to_dict()
    pop = inter["item_id"].value_counts()
    brand = dict(zip(items["item_id"], items["brand"].map(html.unescape)))
    params = {
        "user_id": sorted(hist, key=lambda u: (-len(hist[u]), u))[0],
        "run_id": HGT_RUN, "run_a": MF_RUN, "run_b": HGT_RUN, "k": K,
        "item_id": pop.index[0], "category_id": CATEGORY,
        "brand_id": pd.Series([b for b in brand.values() if b]).value_counts().index[0].casefold(),
    }
    return dict(store=store, parquet=parquet, similar=similar, inter=inter, items=items,
                titles=titles, rel=rel, hist=hist, brand=brand, params=params,
                n_users=recgraph.n_users)


# --- the checks, one per recipe (a recipe without a check fails the test) -----------------------

def user_list(w, rows):
    mine = w["parquet"][HGT_RUN]
    mine = mine[mine["user_id"] == w["params"]["user_id"]].sort_values("rank")
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["item"] for r in rows] == mine["item_id"].tolist()
    assert [r["score"] for r in rows] == [round(s, 4) for s in mine["score"]]
    assert all(r["title"] for r in rows)


def user_list_explained(w, rows):
    mine = w["parquet"][HGT_RUN]
    mine = mine[mine["user_id"] == w["params"]["user_id"]].sort_values("rank")
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    explained = [r for r in rows if r["why"] is not None]
    assert len(explained) >= 4  # a heavy user: nearly every recommendation has a short path
    for r in explained:
        assert r["via"][-1] == r["title"]
        assert r["hops"][0] in ("PURCHASED", "REVIEWED", "VIEWED", "CARTED")
        assert {"item relation": 2, "same brand": 3, "co-purchase": 3}[r["why"]] == len(r["hops"])


def bought_together(w, rows):
    inter, item = w["inter"], w["params"]["item_id"]
    buyers = set(inter.loc[inter["item_id"] == item, "user_id"])
    co = inter[inter["user_id"].isin(buyers) & (inter["item_id"] != item)]
    expected = co["item_id"].value_counts()
    assert len(rows) == 10
    for r in rows:
        assert r["customers"] == expected[r["item"]]
    assert rows[0]["customers"] == expected.max()
    rel = w["rel"][w["rel"]["relation"].isin(["bought_together", "also_bought"])]
    pairs = set(zip(rel["item_id"], rel["related_item_id"]))
    for r in rows:
        listed = (item, r["item"]) in pairs or (r["item"], item) in pairs
        assert r["listed_by_the_shop"] == listed


def best_brands(w, rows):
    """Subcategories as the loader builds them: one node per category name, child -> parent from
    consecutive names of each item's category path (so a name used in two branches, like "Face"
    under Makeup and under Skin Care, is a subcategory of both)."""
    items, inter, titles = w["items"], w["inter"], w["titles"]
    paths = titles["category_path"].str.casefold().str.split(" > ")
    children: dict[str, set[str]] = {}
    for names in paths:
        for parent, child in zip(names, names[1:]):
            children.setdefault(parent, set()).add(child)
    below, frontier = {CATEGORY}, {CATEGORY}
    for _ in range(4):
        frontier = set().union(*(children.get(c, set()) for c in frontier)) - below
        below |= frontier
    flat = items["categories"].str.casefold().str.split(r" \| ")
    in_cat = set(items.loc[flat.map(lambda names: bool(below & set(names))), "item_id"])
    in_cat |= set(titles.loc[paths.map(lambda names: bool(below & set(names))), "item_id"])
    branded = [i for i in in_cat if w["brand"].get(i)]
    frame = inter[inter["item_id"].isin(branded)].assign(
        brand=lambda f: f["item_id"].map(w["brand"]))
    expected = frame.groupby("brand")["user_id"].nunique().sort_values(ascending=False)
    assert len(rows) == 10
    assert [r["customers"] for r in rows] == expected.iloc[:10].tolist()
    for r in rows:
        assert r["customers"] == expected[r["brand"]]


def similar_users(w, rows):
    hist, u = w["hist"], w["params"]["user_id"]
    jac = {v: len(hist[u] & h) / len(hist[u] | h) for v, h in hist.items()
           if v != u and hist[u] & h}
    best = sorted(jac.values(), reverse=True)[:10]
    assert [r["jaccard"] for r in rows] == [round(j, 3) for j in best]
    for r in rows:
        assert r["shared"] == len(hist[u] & hist[r["user"]])


def segment(w, rows):
    b = w["params"]["brand_id"]
    seg_items = {i for i, name in w["brand"].items() if name.casefold() == b}
    inter = w["inter"]
    seg = set(inter.loc[inter["item_id"].isin(seg_items), "user_id"])
    recs = w["parquet"][HGT_RUN]
    recs = recs[recs["user_id"].isin(seg) & (recs["rank"] <= K)]
    expected = recs["item_id"].value_counts()
    assert len(seg) > 20 and rows
    for r in rows:
        assert r["users"] == expected[r["item"]]
    assert rows[0]["users"] == expected.max()


def _lists(w, run):
    f = w["parquet"][run]
    return f.groupby("user_id")["item_id"].apply(set).to_dict()


def runs_changed(w, rows):
    a, b = _lists(w, MF_RUN), _lists(w, HGT_RUN)
    (r,) = rows
    assert r["users_in_both"] == w["n_users"]
    added = {u: b[u] - a[u] for u in b}
    assert r["items_added"] == sum(len(x) for x in added.values()) > 0
    assert r["unchanged_users"] == sum(1 for x in added.values() if not x)
    mean = sum(1 - len(x) / len(b[u]) for u, x in added.items()) / len(b)
    assert r["mean_overlap"] == pytest.approx(mean, abs=1e-3)


def runs_changed_user(w, rows):
    u = w["params"]["user_id"]
    a, b = _lists(w, MF_RUN)[u], _lists(w, HGT_RUN)[u]
    got = {r["item"]: r["change"] for r in rows}
    assert got == {**{i: "dropped" for i in a - b}, **{i: "added" for i in b - a},
                   **{i: "kept" for i in a & b}}


def similar_items(w, rows):
    sims = w["similar"]
    mine = sims[sims["item_id"] == w["params"]["item_id"]].sort_values("rank")
    assert [r["item"] for r in rows] == mine["similar_item_id"].tolist()
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(x >= y for x, y in zip([r["similarity"] for r in rows],
                                      [r["similarity"] for r in rows][1:]))


def catalogue_quality(w, rows):
    (r,) = rows
    items, titles = w["items"], w["titles"]
    assert r["items"] == len(items) == 148
    assert r["without_title"] == int((titles["title"].str.strip() == "").sum())
    assert r["without_price"] == int((titles["price"].str.strip() == "").sum())
    no_brand = items["brand"].str.strip().str.casefold().isin(["", "generic", "unknown"])
    assert r["without_brand"] == int(no_brand.sum()) > 0
    assert r["without_category"] == 0 and r["without_behaviour"] == 0


def recommendation_quality(w, rows):
    (r,) = rows
    assert r == {"users": w["n_users"], "min_per_user": K, "max_per_user": K, "repeated_ranks": 0,
                 "users_with_rank_gaps": 0, "recommended_but_already_owned": 0}


CHECKS: dict[str, Callable] = {
    "A user's recommendations with scores": user_list,
    "A user's recommendations, each with one explanation path": user_list_explained,
    "Items bought together with an item": bought_together,
    "Best brands in a category": best_brands,
    "Users similar to a user": similar_users,
    "Recommendations for a segment: users who bought a brand": segment,
    "What changed between two runs": runs_changed,
    "What changed between two runs [2]": runs_changed_user,
    "Items similar to an item": similar_items,
    "Data-quality check: the catalogue": catalogue_quality,
    "Data-quality check: a run's recommendations": recommendation_quality,
}


def test_every_recipe_has_a_check_and_there_are_at_least_eight():
    recipes = recipes_from_markdown(DOC)
    assert len(recipes) >= 8
    assert set(recipes) == set(CHECKS)
    for name, text in recipes.items():  # values only as $parameters: no literal ids in recipes
        assert not re.search(r"\{id: ['\"]", text), f"{name}: a literal id instead of a $parameter"
        assert not re.search(r"\bid\(|elementId\(", text), f"{name}: uses id()/elementId()"


@pytest.mark.parametrize("way", ["driver", "console", "cli"])
@pytest.mark.parametrize("name", list(CHECKS))
def test_recipe(world, name, way, cli_env):
    recipes = recipes_from_markdown(DOC)
    text = recipes[name]
    wanted = set(re.findall(r"\$(\w+)", text))
    params = {k: v for k, v in world["params"].items() if k in wanted}
    assert wanted == set(params), f"no test value for {wanted - set(params)}"
    if way == "driver":
        rows = world["store"].read(text, **params)
    elif way == "console":
        rows = console.run_read_only(world["store"], text, params=params, timeout_s=300).records()
    else:  # values JSON-quoted, so an all-digit id stays text
        args = [a for k, v in params.items() for a in ("--param", f"{k}={json.dumps(v)}")]
        proc = kgrec(cli_env, "cypher", *args, "--format", "json", "--timeout", "300", text)
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
    CHECKS[name](world, rows)
