"""`kgrec recommend` / `kgrec explain` options and errors (in-process, typer's runner), and the
ways --users can be given."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.errors import ConfigError, InputFileError
from kgrec.cli import app
from kgrec.commands.recommend_cmd import read_user_ids

from .conftest import HGT_RUN


@pytest.fixture
def run_cli(cli_env):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env={**cli_env, "COLUMNS": "200"})

    return run


def test_users_or_all_is_required(run_cli):
    for args in ([], ["--users", "a", "--all"]):
        res = run_cli("recommend", "--run", HGT_RUN, *args)
        assert res.exit_code == 1
        assert "give either --users FILE|IDS or --all" in res.output


def test_bad_k_and_unknown_run(run_cli, recgraph):
    res = run_cli("recommend", "--run", HGT_RUN, "--all", "--k", "0")
    assert res.exit_code == 1 and "--k must be between 1 and 1000 (got 0)" in res.output
    res = run_cli("recommend", "--run", "never-trained", "--all")
    assert res.exit_code == 1
    assert "run 'never-trained' has no trained model" in res.output
    assert "kgrec train --run never-trained" in res.output


def test_only_unknown_users_is_an_error_naming_them(run_cli, recgraph):
    res = run_cli("recommend", "--run", HGT_RUN, "--users", "ghost-1,ghost-2", "--from-snapshot")
    assert res.exit_code == 1
    assert "none of the requested users is in the graph (e.g. ghost-1, ghost-2)" in res.output


def test_explain_bad_options(run_cli):
    res = run_cli("explain", "u", "i", "--n", "0")
    assert res.exit_code == 1 and "--n must be between 1 and 20 (got 0)" in res.output
    res = run_cli("explain", "u", "i", "--max-length", "5")
    assert res.exit_code == 1 and "--max-length must be between 2 and 4 (got 5)" in res.output


def test_read_user_ids_from_files_and_lists(tmp_path):
    txt = tmp_path / "users.txt"
    txt.write_text("# ids\nu1\n\n u2 \n")
    assert read_user_ids(str(txt)) == ["u1", "u2"]
    csv = tmp_path / "users.csv"
    pd.DataFrame({"user_id": ["a", "b"], "x": [1, 2]}).to_csv(csv, index=False)
    assert read_user_ids(str(csv)) == ["a", "b"]
    pq = tmp_path / "users.parquet"
    pd.DataFrame({"user_id": ["c"]}).to_parquet(pq)
    assert read_user_ids(str(pq)) == ["c"]
    assert read_user_ids("u1, u2,u3") == ["u1", "u2", "u3"]
    with pytest.raises(InputFileError, match="expected a user_id column"):
        pd.DataFrame({"id": ["a"]}).to_csv(tmp_path / "bad.csv", index=False)
        read_user_ids(str(tmp_path / "bad.csv"))
    with pytest.raises(InputFileError, match="file not found"):
        read_user_ids(str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError):
        read_user_ids(" , ")
