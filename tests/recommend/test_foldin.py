"""Fold-in without retraining: events loaded after training change the users' recommendations.

Ten users of the slice (six reviews each) get six new reviews each (Amazon reviews are the
purchases of this data set): an often-bought-with item and five items bought with it, loaded with
the real `kgrec etl load --format csv`. Recommending again with the same trained run reads those
users' current histories into the run's graph, the model recomputes them from their new
neighbourhood, and their rankings move
towards the items linked to the new purchases (also bought / bought together), which are taken
from the fixture files, not from the graph or the model.

The tiny model's lists are dominated by what the users had before (6 epochs on 4k reviews), so
the test asserts the effect where it is robust: every list changes, the linked items rise in most
users' full rankings, and more of them reach the top 20.
"""

from __future__ import annotations

import pandas as pd
import pytest

from .conftest import HGT_RUN, SLICE, load_slice, wipe

N_USERS, N_NEW, K = 10, 6, 20
NEWCOMER = "newcomer-since-training"


def _plan():
    """(users, user -> new items, user -> items linked to them, user -> history), from files."""
    inter = pd.read_csv(SLICE / "interactions.csv.gz", dtype=str)
    rel = pd.read_csv(SLICE / "item_relations.csv.gz", dtype=str)
    rel = rel[rel["relation"].isin(["also_bought", "bought_together"])]
    links: dict[str, set[str]] = {}
    for a, b in zip(rel["item_id"], rel["related_item_id"]):
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    hist = inter.groupby("user_id")["item_id"].apply(set)
    users = [u for u in sorted(hist.index) if len(hist[u]) == 6][:N_USERS]
    new, linked = {}, {}
    for u in users:
        h = hist[u]
        seed = sorted((x for x in links if x not in h), key=lambda x: (-len(links[x] - h), x))[0]
        friends = sorted(links[seed] - h, key=lambda y: (-len(links[y]), y))[:N_NEW - 1]
        new[u] = [seed, *friends]
        linked[u] = set().union(*(links.get(x, set()) for x in new[u])) - h - set(new[u])
    return users, new, linked, hist


@pytest.fixture
def restore_slice(recgraph):
    """The test adds events: put the package's graph back as it was afterwards."""
    yield
    wipe(recgraph.store)
    load_slice(recgraph.store, recgraph.cfg)


def test_new_purchases_change_the_list_towards_linked_items(recgraph, cli, tmp_path,
                                                            restore_slice):
    users, new, linked, hist = _plan()
    ids = tmp_path / "users.txt"
    ids.write_text("\n".join(users) + "\n")
    before_f, after_f, frozen_f = (tmp_path / f"{n}.parquet" for n in ("before", "after", "frozen"))
    full = str(recgraph.n_items)  # every unseen item, ranked: the top K is the list
    cli("recommend", "--run", HGT_RUN, "--users", str(ids), "--k", full, "--out", str(before_f))

    events = tmp_path / "new_events"
    events.mkdir()
    newcomer = [{"user_id": NEWCOMER, "item_id": i, "event_type": "review",
                 "timestamp": 1500000000} for i in new[users[0]][:3]]  # a user since training
    pd.DataFrame([{"user_id": u, "item_id": i, "event_type": "review", "timestamp": 1500000000}
                  for u in users for i in new[u]] + newcomer).to_csv(events / "events.csv",
                                                                     index=False)
    cli("etl", "load", "--format", "csv", str(events))
    n_reviews = recgraph.store.read(
        "MATCH (u:User)-[r:REVIEWED]->(:Item) WHERE u.id IN $users RETURN count(r) AS n",
        users=users)[0]["n"]
    assert n_reviews == N_USERS * (6 + N_NEW)  # the loader added exactly the new reviews

    after = cli("recommend", "--run", HGT_RUN, "--users", str(ids), "--k", full, "--out",
                str(after_f))
    # a few users: their current histories read by id, spliced into the run's graph (no export)
    assert f"current histories of {N_USERS} users ({N_USERS * (6 + N_NEW)} edges)" in after.stdout
    newcomer_f = tmp_path / "newcomer.parquet"
    joined = cli("recommend", "--run", HGT_RUN, "--users", NEWCOMER, "--k", "10", "--out",
                 str(newcomer_f))
    assert "1 new since training" in joined.stdout
    got = pd.read_parquet(newcomer_f)
    assert len(got) == 10 and not set(got["item_id"]) & {e["item_id"] for e in newcomer}
    # control: the graph the run was trained on (no re-export) still gives the old rankings
    cli("recommend", "--run", HGT_RUN, "--users", str(ids), "--k", full, "--out", str(frozen_f),
        "--from-snapshot")

    def rankings(path):
        f = pd.read_parquet(path).sort_values(["user_id", "rank"])
        return f.groupby("user_id")["item_id"].apply(list).to_dict()

    before, after, frozen = rankings(before_f), rankings(after_f), rankings(frozen_f)
    assert set(before) == set(after) == set(users)
    assert frozen == before
    rose, gained, top_before, top_after = 0, 0, 0, 0
    for u in users:
        assert not set(after[u]) & (set(new[u]) | hist[u])  # now seen: excluded
        assert set(before[u]) - set(after[u]) == set(new[u])  # ranked before, seen now
        assert after[u][:K] != before[u][:K], f"{u}: the new purchases did not change the list"
        common = [i for i in before[u] if i in set(after[u])]  # same candidates, both rankings
        pos_b = {i: r for r, i in enumerate(common)}
        pos_a = {i: r for r, i in enumerate(x for x in after[u] if x in pos_b)}
        near = linked[u] & set(common)
        assert near, f"{u}: no linked item to follow"
        rose += sum(pos_a[i] for i in near) < sum(pos_b[i] for i in near)
        top_before += len(set(before[u][:K]) & linked[u])
        top_after += len(set(after[u][:K]) & linked[u])
        gained += bool((set(after[u][:K]) - set(before[u][:K])) & linked[u])
    assert rose >= 8, f"the linked items rose in only {rose} of {N_USERS} users' rankings"
    assert top_after > top_before, (top_before, top_after)
    assert gained >= 4, f"only {gained} users gained a top-{K} item linked to their purchases"


def test_fold_in_of_unchanged_users_gives_back_the_snapshot(recgraph):
    """The users' current histories, read by id, spliced into the graph they were trained on:
    the very same tensors (what makes --from-snapshot and fold-in agree before new events)."""
    import torch

    from gnn.foldin import fold_in
    from gnn.snapshot import GraphSnapshot
    from graph.recommendations import current_histories

    snap = GraphSnapshot.load(recgraph.hgt_dir / "snapshot")
    users = [str(u) for u in snap.ids["user"][::25]]
    folded, rep = fold_in(snap, current_histories(recgraph.store, users))
    assert (rep.users, rep.new_users, rep.unknown_items) == (len(users), 0, 0)
    assert rep.edges == sum(len(h) for h in _plan()[3][users])  # every review of those users
    assert set(folded.data.edge_types) == set(snap.data.edge_types)
    for et in snap.data.edge_types:
        for key, value in snap.data[et].items():
            assert torch.equal(folded.data[et][key], value), (et, key)


def test_fold_in_adds_a_new_user_and_drops_items_it_does_not_know(recgraph):
    from gnn.foldin import fold_in
    from gnn.snapshot import GraphSnapshot
    from graph.recommendations import HISTORY_COLUMNS

    snap = GraphSnapshot.load(recgraph.hgt_dir / "snapshot")
    items = [str(i) for i in snap.ids["item"][:3]]
    hist = pd.DataFrame([("a-new-user", "REVIEWED", i, 1, 1500000000, 1500000000, None)
                         for i in items] + [("a-new-user", "VIEWED", "not-in-the-snapshot", 2,
                                             -1, -1, None)], columns=HISTORY_COLUMNS)
    folded, rep = fold_in(snap, hist)
    assert (rep.users, rep.new_users, rep.edges, rep.unknown_items) == (1, 1, 3, 1)
    ids = list(folded.ids["user"])
    assert ids == sorted(ids) and len(ids) == len(snap.ids["user"]) + 1
    row = ids.index("a-new-user")
    ei = folded.data["user", "reviewed", "item"].edge_index
    assert sorted(folded.ids["item"][ei[1][ei[0] == row]].tolist()) == sorted(items)
    assert ei.size(1) == snap.data["user", "reviewed", "item"].edge_index.size(1) + 3
    assert ("user", "viewed", "item") not in folded.data.edge_types  # its only edge was dropped
    old = snap.data["user", "reviewed", "item"].edge_index
    # every old user keeps its edges, renumbered around the new one
    assert ei.size(1) - 3 == old.size(1)
