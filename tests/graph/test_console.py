"""graph/console.py without a server: parameters typed from name=value text, and Neo4j's EXPLAIN
barrier with a faked session (the embedded server's barrier, its read-only user, is tested against
the real server in tests/graph/test_server.py; running, limits and stopping in
tests/dashboard/test_console_safety.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.errors import QueryRejected
from graph import console


def test_parameters_are_typed_like_json_else_text():
    got = console.parse_params([
        "user_id=A2V5R832QCSOMX", "k = 10", "score=0.5", "flag=true", "none=null",
        'runs=["a", "b"]', 'item_id="0042"', "$run_id=demo-hgt", "  # a comment", "",
        "title=a=b", "padded=0042", "nan=NaN", "empty=",
    ])
    assert got == {"user_id": "A2V5R832QCSOMX", "k": 10, "score": 0.5, "flag": True,
                   "none": None, "runs": ["a", "b"], "item_id": "0042", "run_id": "demo-hgt",
                   "title": "a=b", "padded": "0042", "nan": "NaN", "empty": ""}
    assert isinstance(got["k"], int)


@pytest.mark.parametrize("bad", ["no_equals_sign", "=value", "two words=1", "1st=x"])
def test_a_malformed_parameter_names_the_form(bad):
    with pytest.raises(QueryRejected, match="name=value"):
        console.parse_params([bad])


class FakeSession:
    """What a Neo4j session answers to EXPLAIN: a summary with the planner's query type."""

    def __init__(self, query_type: str):
        self.query_type = query_type
        self.sent: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, query, params=None):
        self.sent.append(query)
        return SimpleNamespace(consume=lambda: SimpleNamespace(query_type=self.query_type))

    def begin_transaction(self, timeout=None):
        raise AssertionError("a statement the planner does not call a read must not run")


class FakeNeo4jStore:
    read_only_user = False  # Neo4j: no read-only user, so EXPLAIN is the second barrier

    def __init__(self, query_type: str):
        self.session = FakeSession(query_type)

    def console_session(self, fetch_size=1000, write=False):
        return self.session


@pytest.mark.parametrize("query_type", ["w", "rw", "s"])
def test_on_neo4j_a_statement_explain_does_not_call_a_read_is_refused(query_type):
    store = FakeNeo4jStore(query_type)
    # a read by the console's own check, which the planner nevertheless classifies otherwise
    with pytest.raises(QueryRejected, match=f"classifies the statement as '{query_type}'"):
        console.run_read_only(store, "CALL db.labels() YIELD label RETURN label")
    assert store.session.sent[0].startswith("EXPLAIN CALL db.labels()")

