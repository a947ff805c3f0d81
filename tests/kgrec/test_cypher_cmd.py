"""`kgrec cypher` (kgrec/commands/cypher_cmd.py): the real command against the session's embedded
server: parameters, table/CSV/JSON output, read-only by default, writes only with --write."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from graph import queries as Q

REPO = Path(__file__).resolve().parents[2]
USERS = ["u1", "u2", "u3"]
READ = "MATCH (u:User) WHERE u.id IN $ids RETURN u.id AS id, $k AS k, [u.id, $k] AS l ORDER BY id"


@pytest.fixture
def users(empty_store):
    empty_store.ensure_schema()
    empty_store.write(Q.MERGE_USERS, rows=[{"id": u} for u in USERS])
    return empty_store


@pytest.fixture
def kgrec(cli_env):
    def run(*args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "kgrec.cli", "cypher", *args],
                              env={**cli_env, "COLUMNS": "120"}, text=True, capture_output=True,
                              timeout=600, cwd=REPO, input=stdin)
        assert (proc.returncode == 0) == ok, f"{args}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run


def test_parameters_and_the_three_formats(users, kgrec):
    params = ["-p", 'ids=["u1", "u3"]', "--param", "k=10"]
    table = kgrec(*params, READ)
    lines = table.stdout.splitlines()
    assert any("u1" in line and "10" in line and "['u1', 10]" in line for line in lines)
    assert not any("u2" in line for line in lines)
    assert "2 rows in" in table.stderr
    rows = list(csv.DictReader(io.StringIO(kgrec(*params, "--format", "csv", READ).stdout)))
    assert rows == [{"id": "u1", "k": "10", "l": "['u1', 10]"},
                    {"id": "u3", "k": "10", "l": "['u3', 10]"}]
    got = json.loads(kgrec(*params, "--format", "json", READ).stdout)
    assert got == [{"id": "u1", "k": 10, "l": ["u1", 10]}, {"id": "u3", "k": 10, "l": ["u3", 10]}]


def test_the_statement_from_a_file_or_stdin_and_the_row_limit(users, kgrec, tmp_path):
    query = tmp_path / "q.cypher"
    query.write_text("MATCH (u:User) RETURN u.id AS id ORDER BY id;\n", encoding="utf-8")
    got = json.loads(kgrec("--file", str(query), "--format", "json", "--limit", "2").stdout)
    assert got == [{"id": "u1"}, {"id": "u2"}]
    piped = kgrec("-", "--format", "json", stdin="MATCH (u:User) RETURN count(u) AS n")
    assert json.loads(piped.stdout) == [{"n": 3}]


def test_writes_are_refused_without_the_flag_and_committed_with_it(users, kgrec):
    write = "MERGE (u:User {id: $id}) RETURN u.id AS id"
    refused = kgrec("-p", "id=u4", write, ok=False)
    assert refused.returncode == 1
    assert "MERGE writes to the graph" in refused.stderr and "Traceback" not in refused.stderr
    assert users.counts()["User"] == 3
    done = kgrec("--write", "-p", "id=u4", write)
    assert "committed (nodes created: 1" in done.stderr
    assert users.counts()["User"] == 4


@pytest.mark.parametrize(("args", "message"), [
    (["MATCH (u:User {id: $user_id}) RETURN u"], r"no value for $user_id"),
    (["-p", "user id=x", "RETURN 1"], "write it as name=value"),
    (["--format", "xml", "RETURN 1"], "--format must be one of"),
    ([], "give the statement either as an argument or with --file"),
    (["SHOW USERS"], "administers the server"),
    (["MATCH (u:User RETURN u"], "the graph refused the query"),
])
def test_mistakes_get_one_clear_line(users, kgrec, args, message):
    proc = kgrec(*args, ok=False)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
