"""A user's first requests, with the real `kgrec` command on the loaded slice and a tiny real
run (issue 12): the lists show the items' titles; a per-user request never replaces the run's
batch output; scoring a few users reads their histories instead of exporting the whole graph;
`explain` for an item the user already has says so; tables fit an 80-column terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from gnn.rundir import RunDir
from graph import queries as Q

from .conftest import HGT_RUN, SLICE, kgrec

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _users(n: int) -> list[str]:
    inter = pd.read_csv(SLICE / "interactions.csv.gz", dtype=str)
    return sorted(inter["user_id"].unique())[:n]


def _titles(store, ids) -> dict[str, str]:
    rows = store.read("MATCH (i:Item) WHERE i.id IN $ids RETURN i.id AS id, i.title AS title",
                      ids=list(ids))
    return {r["id"]: r["title"] for r in rows}


@pytest.mark.parametrize("graph", ["fold-in", "--from-snapshot"])
def test_a_users_list_shows_the_titles_of_its_items(recgraph, cli, graph):
    """Item 1: the lists of `--users` were printed from the titles of an open store only, and
    --from-snapshot opened none: every title came out empty."""
    user = _users(1)[0]
    extra = ["--from-snapshot"] if graph == "--from-snapshot" else []
    proc = cli("recommend", "--run", HGT_RUN, "--users", user, "--k", "5", *extra)
    recs = pd.read_parquet(RunDir(recgraph.hgt_dir).user_recommendations_file)
    assert recs["user_id"].unique().tolist() == [user] and len(recs) == 5
    titles = _titles(recgraph.store, recs["item_id"])
    assert len(titles) == 5 and all(titles.values())  # the slice's items all have titles
    for item, title in titles.items():
        assert item in proc.stdout
        assert title[:25] in proc.stdout, f"the title of {item} is missing:\n{proc.stdout}"
    assert "(no title" not in proc.stdout


def test_a_per_user_request_never_replaces_the_batch_output(recgraph, cli, tmp_path):
    """Item 3: `--users` writes the run's per-user file; the batch file the dashboard reads stays
    as it was, and an --out naming it is refused."""
    rd = RunDir(recgraph.hgt_dir)
    cli("recommend", "--run", HGT_RUN, "--all", "--k", "3", "--from-snapshot")
    batch = rd.recommendations_file.read_bytes()
    assert len(pd.read_parquet(rd.recommendations_file)) == 3 * recgraph.n_users

    user = _users(1)[0]
    proc = cli("recommend", "--run", HGT_RUN, "--users", user, "--k", "2")
    assert str(rd.user_recommendations_file) in proc.stdout
    assert rd.recommendations_file.read_bytes() == batch
    mine = pd.read_parquet(rd.user_recommendations_file)
    assert mine["user_id"].tolist() == [user, user]

    refused = cli("recommend", "--run", HGT_RUN, "--users", user, "--out",
                  str(rd.recommendations_file), ok=False)
    assert refused.returncode == 1
    assert "is the run's batch output" in refused.stderr and "--all" in refused.stderr
    assert rd.recommendations_file.read_bytes() == batch


NO_EXPORT = """
import sys
import graph.export as E
import gnn.snapshot as S

def refuse(*args, **kwargs):
    raise SystemExit("tripwire: the whole graph was exported")

E.export_frames = S.export_frames = refuse
sys.argv = ["kgrec", *sys.argv[1:]]
from kgrec.cli import main
main()
"""


def test_scoring_a_few_users_exports_nothing(recgraph, cli_env, tmp_path):
    """Item 10: a tripwire on the whole-graph export; --users passes it (the users' histories are
    read by id), --all trips it (so the tripwire works)."""
    users = _users(2)

    def run(*args):
        return subprocess.run([sys.executable, "-c", NO_EXPORT, *args], env=cli_env, text=True,
                              capture_output=True, timeout=600)

    few = run("recommend", "--run", HGT_RUN, "--users", ",".join(users), "--k", "4",
              "--out", str(tmp_path / "few.parquet"))
    assert few.returncode == 0, few.stdout + few.stderr
    assert "current histories of 2 users" in few.stdout
    assert sorted(pd.read_parquet(tmp_path / "few.parquet")["user_id"].unique()) == users
    every = run("recommend", "--run", HGT_RUN, "--all", "--k", "4",
                "--out", str(tmp_path / "all.parquet"))
    assert every.returncode != 0 and "tripwire" in every.stderr


def _owned_and_related(recgraph):
    """(user, an item they reviewed, an item bought together with it they did not review)."""
    inter = pd.read_csv(SLICE / "interactions.csv.gz", dtype=str)
    rel = pd.read_csv(SLICE / "item_relations.csv.gz", dtype=str)
    hist = inter.groupby("user_id")["item_id"].apply(set)
    bt = rel[rel["relation"] == "bought_together"]
    for a, b in sorted(zip(bt["item_id"], bt["related_item_id"])):
        for u in sorted(hist.index):
            if a in hist[u] and b not in hist[u]:
                return u, a, b
    raise AssertionError("no (user, owned, related) triple in the slice")


def test_explain_an_item_the_user_has_says_so_instead_of_reasons(recgraph, cli):
    """Item 12: the user reviewed the item: the command says so, and gives no reason to buy it."""
    u, owned, _ = _owned_and_related(recgraph)
    proc = cli("explain", u, owned)
    assert proc.stdout.startswith(f"User {u} already reviewed")
    assert "no reason to recommend it" in proc.stdout
    assert "why " not in proc.stdout and "You reviewed" not in proc.stdout
    out = json.loads(cli("explain", u, owned, "--json").stdout)
    assert out["owned"] is True and out["paths"] == []
    assert [b["behaviour"] for b in out["behaviours"]] == ["REVIEWED"]


def test_explain_an_item_the_user_only_viewed_says_so_first(recgraph, cli):
    """A view is no purchase: it is said first, and the reasons follow."""
    store = recgraph.store
    u, _, item = _owned_and_related(recgraph)
    edge = {"src": u, "dst": item, "count": 2, "first_ts": 1400000000, "last_ts": 1500000000,
            "split": None, "rating": None}
    store.write(Q.MERGE_BEHAVIOUR["VIEWED"], rows=[edge])
    try:
        proc = cli("explain", u, item)
    finally:
        store.write("MATCH (:User {id: $u})-[r:VIEWED]->(:Item {id: $i}) DELETE r",
                    u=u, i=item)
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"User {u} already viewed (2 times, last on 2017-07-14)")
    assert "bought_together" in proc.stdout and f"why {item} for {u}" in proc.stdout


def _narrow(cli_env, *args: str) -> str:
    """The command's output in an 80-column terminal (rich treats it as one)."""
    env = {**cli_env, "COLUMNS": "80", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    proc = kgrec(env, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ANSI.sub("", proc.stdout)


def test_recommend_and_explain_tables_fit_80_columns(recgraph, cli, cli_env):
    """Item 6: nothing wider than the terminal, no cell cut ("…"), every number whole."""
    user = _users(1)[0]
    out = _narrow(cli_env, "recommend", "--run", HGT_RUN, "--users", user, "--k", "5")
    recs = pd.read_parquet(RunDir(recgraph.hgt_dir).user_recommendations_file)
    u, _, item = _owned_and_related(recgraph)
    why = _narrow(cli_env, "explain", u, item, "--n", "3", "--run", HGT_RUN)
    paths = json.loads(cli("explain", u, item, "--n", "3", "--run", HGT_RUN, "--json")
                       .stdout)["paths"]
    for text in (out, why):
        assert max(len(line) for line in text.splitlines()) <= 80, text
        cells = [line for line in text.splitlines() if "│" in line]
        assert cells and not any("…" in line for line in cells), text  # nothing cut
    for r in recs.itertuples():
        assert r.item_id in out and f"{r.score:.4f}" in out
    assert "users scored" in out
    for p in paths:
        assert f"{p['score']:.3f}" in why
