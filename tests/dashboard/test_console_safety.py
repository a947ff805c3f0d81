"""The read-only Cypher console (graph/console.py) against the real server with the dashboard's
graph: every write and administration form is refused before it is sent and the graph is unchanged
afterwards; reads (also ones that mention write keywords inside strings, names and comments) run
with $parameters, a row limit and a time limit at which the statement is stopped on the server;
the issue's memory blow-up is refused; the page's Parameters box.

Why the check must happen before sending: the embedded ArcadeDB server executes writes even in a
READ-mode session and ignores transaction timeouts (both measured), so READ mode alone protects
nothing there. (The server's own barrier, the read-only console user: tests/graph/test_server.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.errors import QueryRejected
from graph import console
from graph import queries as Q

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
    "SHOW TRANSACTION",
    "SHOW USERS",
    "SHOW DATABASES",
    "SHOW CURRENT USER",
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


# 10^5 x 10^5 rows: slow on any machine, and within the console's range bound (one range of 10^5;
# the other factor is a literal list, typed out)
SLOW = ("UNWIND range(1, 100000) AS a UNWIND [" + ", ".join(str(i) for i in range(10)) + "] AS b "
        + " ".join(f"UNWIND [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] AS c{i}" for i in range(4))
        + " RETURN count(*) AS n")


def console_transactions(store) -> list[dict]:
    """Console statements still running on the server (every one ends with this tag's prefix)."""
    return store.read(Q.CONSOLE_TRANSACTIONS, tag="/* kgrec-console ")


def test_a_slow_query_is_stopped_on_the_server_at_the_time_limit(dash):
    """Termination, not duration: after the time limit the console ends its own transaction on
    the server (which ignores transaction timeouts), so nothing of it keeps running there, and
    timed-out queries do not hold the console's slots (two of them used to block it for every
    dashboard user)."""
    for _ in range(console.MAX_RUNNING + 1):
        with pytest.raises(console.QueryTimedOut, match="longer than 0.5 s and was stopped on the "
                                                        "server"):
            console.run_read_only(dash.store, SLOW, timeout_s=0.5)
        assert console_transactions(dash.store) == []
    res = console.run_read_only(dash.store, "MATCH (u:User) RETURN count(u) AS n")
    assert res.records() == [{"n": dash.counts["User"]}]


def test_parameters_are_values_not_text(dash):
    user = dash.users[0]
    res = console.run_read_only(dash.store, "MATCH (u:User {id: $user_id}) RETURN u.id AS id",
                                params={"user_id": user})
    assert res.records() == [{"id": user}]
    evil = {"user_id": "x'}) DETACH DELETE u //"}
    res = console.run_read_only(dash.store, "MATCH (u:User {id: $user_id}) RETURN u.id AS id",
                                params=evil)
    assert res.records() == []
    with pytest.raises(QueryRejected, match=r"no value for \$user_id"):
        console.run_read_only(dash.store, "MATCH (u:User {id: $user_id}) RETURN u")


def test_plain_values_stay_plain_and_graph_elements_become_text(dash):
    res = console.run_read_only(dash.store, "MATCH (u:User) WITH u ORDER BY u.id LIMIT 1 "
                                            "RETURN u, u.id AS id, [u.id, 1, null] AS l, "
                                            "{id: u.id, n: [1.5]} AS m")
    (row,) = res.records()
    assert row["u"].startswith("(:User {id: '") and isinstance(row["l"], list)
    assert row["l"][1:] == [1, None] and row["m"] == {"id": row["id"], "n": [1.5]}
    assert res.frame["l"][0] == f"['{row['id']}', 1, null]"  # the display table: text


def test_the_issues_memory_blowup_is_refused_and_the_server_keeps_answering(dash):
    before = graph_state(dash.store)
    with pytest.raises(QueryRejected, match="48,000,000 values"):
        console.run_read_only(dash.store, "UNWIND range(1,8) AS k WITH k,[x IN range(1,6000000) "
                                          "| toString(x)+toString(k)] AS l WITH collect(l) AS ll "
                                          "RETURN size(ll)")
    assert graph_state(dash.store) == before


def test_the_console_page_takes_parameters(dash):
    app = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=180)
    at.run()
    at.switch_page("app_pages/console.py")
    at.run()
    user = dash.users[0]
    at.text_area(key="cypher").input("MATCH (u:User {id: $user_id}) RETURN u.id AS id, $k AS k")
    at.text_area(key="console_params").input(f"user_id={user}\nk=10")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[0].value.to_dict("records") == [{"id": user, "k": 10}]
    at.text_area(key="console_params").input("")
    at.button[0].click().run()
    assert any("Not sent" in e.value and "$user_id" in e.value for e in at.error)
