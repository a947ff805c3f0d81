"""The read-only Cypher console (graph/console.py): every write form is refused before it is sent
and the graph is unchanged afterwards; reads (also ones that mention write keywords inside
strings, names and comments) run with a row limit and a time limit.

Why the check must happen before sending: the embedded ArcadeDB server executes writes even in a
READ-mode session and ignores transaction timeouts (both measured), so READ mode alone protects
nothing there.
"""

from __future__ import annotations

import time

import pytest

from core.errors import QueryRejected
from graph import console

WRITES = [
    "CREATE (n:Evil {id: 'x'})",
    "create (n:Evil)",
    "INSERT (n:Evil)",
    "MERGE (n:User {id: 'evil'})",
    "MATCH (u:User) DELETE u",
    "MATCH (u:User) DETACH DELETE u",
    "MATCH (u:User) NODETACH DELETE u",
    "MATCH (u:User) SET u.evil = true",
    "MATCH (u:User) SET u:Evil",
    "MATCH (u:User)-[r]->() REMOVE r.count",
    "MATCH (i:Item) REMOVE i:Item",
    "DROP CONSTRAINT user_id",
    "DROP INDEX user_id IF EXISTS",
    "CREATE INDEX evil FOR (n:User) ON (n.evil)",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "MATCH (u:User) FOREACH (x IN [1] | SET u.evil = x)",
    "MATCH (u:User) CALL { WITH u SET u.evil = 1 } IN TRANSACTIONS OF 10 ROWS",
    "CALL { MATCH (u:User) RETURN u } IN TRANSACTIONS RETURN u",
    "CALL db.createLabel('Evil')",
    "CALL db.create.setNodeVectorProperty(null, 'v', [1.0])",
    "CALL db.index.fulltext.createNodeIndex('evil', ['Item'], ['title'])",
    "CALL dbms.setConfigValue('db.logs.query.enabled', 'OFF')",
    "CALL dbms.killQuery('query-1')",
    "CALL `dbms`.`security`.`createUser`('evil', 'pw', false)",
    "CALL apoc.create.node(['Evil'], {}) YIELD node RETURN node",
    "CALL tx.setMetaData({evil: true})",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "SHOW TRANSACTIONS",
    "CREATE DATABASE evil",
    "ALTER USER neo4j SET PASSWORD 'evil'",
    "GRANT ALL ON DATABASE * TO PUBLIC",
    "STOP DATABASE neo4j",
    "USE system SHOW USERS",
    # evasions: the keyword glued to punctuation, after a literal, across lines, in a subquery
    "MATCH(u:User)SET u.evil=1",
    "MATCH (u:User) WHERE u.id = 'x'SET u.evil = 1",
    "MATCH (u:User) WHERE u.count = 1SET u.evil = 2",
    "MATCH (u:User)\nWITH u\nDETACH\n  DELETE u",
    "MATCH (u:User) /* harmless */ SET u.evil = 1 // really",
    "MATCH (u:User) WHERE u: SET u.evil = 1",
    "MATCH (u:User) CALL { WITH u DELETE u } RETURN 1",
    "MATCH (u:User) WHERE EXISTS { MATCH (u) } SET u.evil = 1",
    "RETURN 1; MATCH (u:User) DELETE u",
    "RETURN 'a\\\\' ; MATCH (u:User) DELETE u //'",  # 'a\\' ends the string: two statements
    "RETURN 'unterminated",
    "MATCH (u:User) RETURN u /* unterminated",
]

READS = {
    "MATCH (n {name: 'CREATE'}) RETURN count(n) AS n": [{"n": 0}],
    "MATCH (i:Item) WHERE i.title = \"DELETE me; SET x\" RETURN count(i) AS n": [{"n": 0}],
    "MATCH (i:Item) // SET i.x = 1\nRETURN count(i) > 0 AS has_items": [{"has_items": True}],
    "MATCH (i:Item) /* DETACH DELETE i */ RETURN count(i) > 0 AS has_items;": [{"has_items": True}],
    "MATCH (n:`CREATE`) RETURN count(n) AS n": [{"n": 0}],
    "RETURN {set: 1, delete: 2}.delete AS x": [{"x": 2}],
    # one string: \' escapes the quote, so the "second statement" is text
    "RETURN 'a\\' ; MATCH (u:User) DELETE u //' AS s": [{"s": "a' ; MATCH (u:User) DELETE u //"}],
    "RETURN 'it\\'s a CREATE' AS s": [{"s": "it's a CREATE"}],
    "MATCH (u:User) WHERE u.id STARTS WITH 'A' RETURN count(u) > 0 AS has_items":
        [{"has_items": True}],
}


def graph_state(store) -> tuple:
    """Every node and relationship counted (labels outside the schema too), and the schema's
    counts per type."""
    total = console.run_read_only(store, "MATCH (n) RETURN count(n) AS n").frame["n"][0]
    rels = console.run_read_only(store, "MATCH ()-[r]->() RETURN count(r) AS n").frame["n"][0]
    return int(total), int(rels), store.counts()


@pytest.mark.parametrize("query", WRITES)
def test_check_refuses_every_write_form(query):
    with pytest.raises(QueryRejected):
        console.check_read_only(query)


@pytest.mark.parametrize("query", list(READS))
def test_check_allows_reads_that_mention_write_words(query):
    assert console.check_read_only(query)


def test_every_write_form_is_refused_and_the_graph_is_unchanged(dash):
    before = graph_state(dash.store)
    assert before[0] > 0
    for query in WRITES:
        with pytest.raises(QueryRejected):
            console.run_read_only(dash.store, query)
    assert graph_state(dash.store) == before


def test_reads_run_and_return_a_table(dash):
    for query, expected in READS.items():
        res = console.run_read_only(dash.store, query)
        assert res.frame.to_dict("records") == expected, query
        assert not res.truncated


def test_row_limit_cuts_and_says_so(dash):
    res = console.run_read_only(dash.store, "MATCH (i:Item) RETURN i.id AS id", row_limit=7)
    assert len(res.frame) == 7 and res.truncated
    res = console.run_read_only(dash.store, "MATCH (i:Item) RETURN i LIMIT 2", row_limit=7)
    assert len(res.frame) == 2 and not res.truncated
    assert res.frame["i"][0].startswith("(:Item {id: '")  # nodes become Cypher-like text


def test_server_errors_are_messages(dash):
    with pytest.raises(console.QueryFailed, match="refused the query"):
        console.run_read_only(dash.store, "MATCH (n:User RETURN n")


def test_a_slow_query_is_abandoned_at_the_time_limit(dash):
    slow = ("UNWIND range(1, 2500) AS a UNWIND range(1, 2500) AS b "
            "WITH a + b AS s RETURN sum(s) AS total")
    t0 = time.monotonic()
    with pytest.raises(console.QueryTimedOut, match="longer than 0.5 s"):
        console.run_read_only(dash.store, slow, timeout_s=0.5)
    assert time.monotonic() - t0 < 5
