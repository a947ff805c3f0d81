"""Write-back of recommendations to the graph: exact counts per user, idempotent re-runs, one
transaction per batch (readers never see half a list), SIMILAR_TO edges."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from graph import queries as Q
from graph.recommendations import (
    per_user_counts,
    read_whole_lists,
    similar_summary,
    summary,
    user_recommendations,
    write_recommendations,
)

from .conftest import HGT_RUN

COUNT_MODEL_EDGES = "MATCH (:User)-[r:RECOMMENDED {model: $model}]->(:Item) RETURN count(r) AS n"


def test_recommend_all_writes_exactly_k_edges_per_user_and_reruns_are_idempotent(recgraph, cli):
    store = recgraph.store
    out = recgraph.hgt_dir / "all.parquet"
    cli("recommend", "--run", HGT_RUN, "--all", "--k", "5", "--write-graph", "--out", str(out),
        "--chunk-users", "128")
    counts = per_user_counts(store, HGT_RUN)
    assert len(counts) == recgraph.n_users == 501
    assert set(counts.values()) == {5}
    s = summary(store, HGT_RUN)
    assert s == {"users": 501, "edges": 2505, "min_per_user": 5, "max_per_user": 5}

    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank", "model", "run_id"]
    assert len(recs) == 2505 and set(recs["model"]) == {"hgt"} and set(recs["run_id"]) == {HGT_RUN}
    assert (recs.groupby("user_id")["rank"].apply(list) == pd.Series(
        [[1, 2, 3, 4, 5]] * 501, index=sorted(recs["user_id"].unique()))).all()
    # seen items are excluded: no recommended pair is a REVIEWED pair
    seen = store.read("MATCH (u:User)-[:REVIEWED]->(i:Item) "
                      "RETURN u.id AS user_id, i.id AS item_id")
    overlap = recs.merge(pd.DataFrame(seen), on=["user_id", "item_id"])
    assert overlap.empty

    # the graph holds what the Parquet holds, scores and ranks included
    u = recs["user_id"].iloc[0]
    in_graph = user_recommendations(store, u, "hgt")
    mine = recs[recs["user_id"] == u]
    assert in_graph["item_id"].tolist() == mine["item_id"].tolist()
    assert in_graph["score"].round(5).tolist() == mine["score"].round(5).tolist()
    assert in_graph["created_at"].notna().all()

    cli("recommend", "--run", HGT_RUN, "--all", "--k", "5", "--write-graph", "--out", str(out))
    assert set(per_user_counts(store, HGT_RUN).values()) == {5}
    assert store.read(COUNT_MODEL_EDGES, model="hgt")[0]["n"] == 2505
    again = pd.read_parquet(out)
    pd.testing.assert_frame_equal(again, recs)  # same graph, same model: the same lists


def test_other_models_edges_are_left_alone(recgraph):
    store = recgraph.store
    users = [r["id"] for r in store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 3")]
    items = [r["id"] for r in store.read("MATCH (i:Item) RETURN i.id AS id ORDER BY id LIMIT 4")]
    frame = pd.DataFrame([{"user_id": u, "item_id": i, "score": 1.0 / (r + 1), "rank": r + 1}
                          for u in users for r, i in enumerate(items)])
    assert write_recommendations(store, frame, model="other", run_id="run-o") == 12
    before = store.read(COUNT_MODEL_EDGES, model="hgt")[0]["n"]
    # a shorter list replaces the longer one; an empty list removes the user's edges
    short = frame[(frame["rank"] <= 2) & (frame["user_id"] == users[0])]
    assert write_recommendations(store, short, model="other", run_id="run-o",
                                 users=users[:2]) == 2
    assert per_user_counts(store, "run-o") == {users[0]: 2, users[2]: 4}
    assert store.read(COUNT_MODEL_EDGES, model="hgt")[0]["n"] == before
    write_recommendations(store, frame.iloc[:0], model="other", run_id="run-o", users=users)
    assert store.read(COUNT_MODEL_EDGES, model="other")[0]["n"] == 0


def test_readers_never_see_half_a_list(recgraph):
    """While lists of 3 and of 7 are written in turn for 120 users (batches of 40 users, one
    transaction each), concurrent readers of users' lists only ever see 3 or 7 edges. (Without
    `read_whole_lists` about one run in six saw a list of 0 or 1 edge on the embedded server.)"""
    store = recgraph.store
    users = [r["id"] for r in store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 120")]
    items = [r["id"] for r in store.read("MATCH (i:Item) RETURN i.id AS id ORDER BY id LIMIT 7")]

    def lists(k: int) -> pd.DataFrame:
        return pd.DataFrame([{"user_id": u, "item_id": i, "score": float(k - r), "rank": r + 1}
                             for u in users for r, i in enumerate(items[:k])])

    write_recommendations(store, lists(3), model="flip", run_id="flip")
    seen_lengths: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            seen_lengths.append(len(user_recommendations(store, users[i % 120], "flip")))
            i += 7

    t = threading.Thread(target=reader)
    t.start()
    try:
        for k in (7, 3, 7, 3, 7, 3):
            write_recommendations(store, lists(k), model="flip", run_id="flip", rels_per_batch=280)
    finally:
        stop.set()
        t.join()
    assert len(seen_lengths) > 20 and set(seen_lengths) <= {3, 7}, set(seen_lengths)
    assert set(per_user_counts(store, "flip").values()) == {3}


def test_each_edge_carries_its_lists_size_even_when_an_item_is_missing(recgraph):
    store = recgraph.store
    user = store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 1")[0]["id"]
    items = [r["id"] for r in store.read("MATCH (i:Item) RETURN i.id AS id ORDER BY id LIMIT 3")]
    frame = pd.DataFrame([{"user_id": user, "item_id": i, "score": 1.0, "rank": r + 1}
                          for r, i in enumerate(items + ["no-such-item"])])
    assert write_recommendations(store, frame, model="sized", run_id="sized") == 3
    got = store.read("MATCH (:User {id: $u})-[r:RECOMMENDED {model: 'sized'}]->(:Item) "
                     "RETURN r.list_size AS s", u=user)
    assert [r["s"] for r in got] == [3, 3, 3]
    assert len(user_recommendations(store, user, "sized")) == 3


class _TornThenWhole:
    """A store whose first answers are torn lists (parts of two writes, or too few edges)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.reads = 0

    def read(self, stmt, **params):
        self.reads += 1
        return self.answers.pop(0)


def _edge(item, created="t2", size=2, model="m"):
    return {"item_id": item, "run_id": "r", "created_at": created, "list_size": size, "model": model}


def test_torn_lists_are_read_again_until_whole():
    whole = [_edge("a"), _edge("b")]
    store = _TornThenWhole([[_edge("a")], [_edge("a", "t1"), _edge("b")], [], whole])
    assert read_whole_lists(store, "Q") == whole and store.reads == 4
    # several models at once: each model's list is checked on its own; a cut by LIMIT is not torn
    two = [_edge("a"), _edge("b"), _edge("c", "t9", 1, model="n")]
    assert read_whole_lists(_TornThenWhole([two]), "Q") == two
    assert read_whole_lists(_TornThenWhole([[_edge("a")]]), "Q", limit=1) == [_edge("a")]
    # a user without recommendations costs a few empty reads, then is empty
    empty = _TornThenWhole([[]] * 10)
    assert read_whole_lists(empty, "Q") == [] and 1 < empty.reads < 10


def test_a_failed_batch_leaves_every_previous_list_intact(recgraph):
    """The delete and the create of a batch are one transaction: when it fails, nothing of it
    stays (here the transaction fails after the statement ran, before the commit)."""
    from neo4j import WRITE_ACCESS

    store = recgraph.store
    users = [r["id"] for r in store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 5")]
    items = [r["id"] for r in store.read("MATCH (i:Item) RETURN i.id AS id ORDER BY id LIMIT 4")]
    old = pd.DataFrame([{"user_id": u, "item_id": i, "score": 1.0, "rank": r + 1}
                        for u in users for r, i in enumerate(items)])
    write_recommendations(store, old, model="atomic", run_id="a1")

    class Crash(Exception):
        pass

    def work(tx):
        rows = [{"user_id": u, "recs": [{"item_id": items[0], "score": 9.0, "rank": 1}]}
                for u in users]
        n = tx.run(Q.REPLACE_RECOMMENDATIONS, rows=rows, model="atomic", run_id="a2",
                   created_at="now").single()["n"]
        assert n == 5  # the statement did replace the lists inside the transaction...
        raise Crash()  # ...and the process dies before the commit

    with store._driver.session(database=store.database, default_access_mode=WRITE_ACCESS) as s:
        with pytest.raises(Crash):
            s.execute_write(work)
    assert per_user_counts(store, "a1") == {u: 4 for u in users}
    assert per_user_counts(store, "a2") == {}
    write_recommendations(store, old.iloc[:0], model="atomic", run_id="a1", users=users)


def test_similar_items_are_written_top_k_per_item(recgraph, cli):
    store = recgraph.store
    cli("recommend", "--run", HGT_RUN, "--users", "no-such-user," + _a_user(store), "--k", "3",
        "--similar-items", "--similar-k", "4", "--out", str(recgraph.hgt_dir / "one.parquet"))
    s = similar_summary(store, HGT_RUN)
    assert s == {"items": recgraph.n_items, "edges": 4 * recgraph.n_items, "min_per_item": 4,
                 "max_per_item": 4}
    rows = store.read("MATCH (a:Item)-[s:SIMILAR_TO {run_id: $run}]->(b:Item) "
                      "RETURN a.id AS a, b.id AS b, s.rank AS rank, s.score AS score",
                      run=HGT_RUN)
    assert all(r["a"] != r["b"] for r in rows)
    by_item = pd.DataFrame(rows).sort_values(["a", "rank"])
    assert (by_item.groupby("a")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    sims = pd.read_parquet(recgraph.hgt_dir / "similar_items.parquet")
    assert len(sims) == 4 * recgraph.n_items


def _a_user(store) -> str:
    return store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 1")[0]["id"]

