"""The read-only check of user-written Cypher (graph/cypher_guard.py), without a server: SHOW only
for the schema, range() bounded, $parameters given, one statement. (Every write form, and the
graph unchanged after them, against the real server: tests/dashboard/test_console_safety.py.)"""

from __future__ import annotations

import pytest

from core.errors import QueryRejected
from graph.cypher_guard import MAX_RANGE_ELEMENTS, check_read_only, one_statement

ISSUE_QUERY = ("UNWIND range(1,8) AS k WITH k,[x IN range(1,6000000) | toString(x)+toString(k)] "
               "AS l WITH collect(l) AS ll RETURN size(ll)")

ADMIN_SHOWS = [
    "SHOW TRANSACTION", "SHOW TRANSACTIONS", "show transaction 'tx-1'", "SHOW USERS", "SHOW USER",
    "SHOW USER neo4j PRIVILEGES", "SHOW CURRENT USER", "SHOW DATABASES", "SHOW DATABASE kg",
    "SHOW DEFAULT DATABASE", "SHOW HOME DATABASE", "SHOW ROLES", "SHOW ALL ROLES",
    "SHOW PRIVILEGES", "SHOW SETTINGS", "SHOW SERVERS", "SHOW ALIASES FOR DATABASE",
    "SHOW", "SHOW ALL", "SHOW ALL USERS", "SHOW TRANSACTIONS YIELD *",
    "SHOW INDEXES YIELD name SHOW USERS",  # a second SHOW is checked too
]
SCHEMA_SHOWS = [
    "SHOW INDEXES", "SHOW INDEX", "SHOW ALL INDEXES", "SHOW RANGE INDEXES YIELD name RETURN name",
    "SHOW CONSTRAINTS", "SHOW UNIQUE CONSTRAINTS", "SHOW NODE KEY CONSTRAINTS",
    "SHOW RELATIONSHIP EXISTENCE CONSTRAINTS", "SHOW FUNCTIONS", "SHOW BUILT IN FUNCTIONS",
    "SHOW USER DEFINED FUNCTIONS", "SHOW PROCEDURES", "show indexes where name = 'x'",
]


@pytest.mark.parametrize("query", ADMIN_SHOWS)
def test_show_commands_that_administer_the_server_are_refused(query):
    with pytest.raises(QueryRejected, match="administers the server|TRANSACTIONS"):
        check_read_only(query)


@pytest.mark.parametrize("query", SCHEMA_SHOWS)
def test_show_commands_about_the_schema_are_allowed(query):
    assert check_read_only(query) == query


def test_show_as_a_name_is_not_a_command():
    assert check_read_only("MATCH (n:Show) RETURN n.show LIMIT 1")


def test_the_issues_memory_blowup_is_refused_before_sending():
    with pytest.raises(QueryRejected, match="48,000,000 values"):
        check_read_only(ISSUE_QUERY)


@pytest.mark.parametrize("query", [
    "RETURN range(1, toInteger('6000000'))",  # bounds must be literals...
    "MATCH (n) RETURN range(0, size(keys(n)))",
    "RETURN range(1, 10, $step)",  # ...or integer $parameters that were given
    "RETURN range(1)",
])
def test_range_bounds_must_be_numbers(query):
    with pytest.raises(QueryRejected, match="integer bounds"):
        check_read_only(query, {"step": "2"})


def test_ranges_multiply():
    n = int(MAX_RANGE_ELEMENTS ** 0.5)
    assert check_read_only(f"UNWIND range(1, {n}) AS a UNWIND range(1, {n}) AS b RETURN count(*)")
    with pytest.raises(QueryRejected, match="produce"):
        check_read_only(f"UNWIND range(1, {n}) AS a UNWIND range(0, {n}) AS b RETURN count(*)")


def test_range_bounds_from_parameters_and_steps():
    assert check_read_only("RETURN range(1, $n)", {"n": MAX_RANGE_ELEMENTS})
    assert check_read_only("RETURN range(-5, 5, 2), range(10, 1, -1)")
    assert check_read_only(f"RETURN range(1, {MAX_RANGE_ELEMENTS * 50}, 50)")
    with pytest.raises(QueryRejected, match="produce"):
        check_read_only("RETURN range(1, $n)", {"n": MAX_RANGE_ELEMENTS + 1})
    with pytest.raises(QueryRejected, match="step of 0"):
        check_read_only("RETURN range(1, 5, 0)")
    assert check_read_only("MATCH (n) RETURN n.range AS r, 'range(1, 99999999)' AS s")


def test_every_parameter_needs_a_value():
    with pytest.raises(QueryRejected, match=r"no value for \$run_id, \$user_id"):
        check_read_only("MATCH (u:User {id: $user_id})-[r {run_id: $run_id}]->() RETURN r")
    assert check_read_only("MATCH (u:User {id: $user_id}) RETURN u", {"user_id": "u1"})
    assert check_read_only("RETURN '$not_a_parameter' AS s // $nor_this")
    assert check_read_only("RETURN $`odd name` AS x", {"odd name": 1})


def test_one_statement_strips_the_end_and_refuses_two():
    assert one_statement("MATCH (n) RETURN n; // done")[0] == "MATCH (n) RETURN n"
    with pytest.raises(QueryRejected, match="one statement at a time"):
        one_statement("RETURN 1; RETURN 2")
    with pytest.raises(QueryRejected, match="empty"):
        one_statement("   ")
