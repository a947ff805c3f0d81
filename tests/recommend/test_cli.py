"""`kgrec recommend` / `kgrec explain` options and errors (in-process, typer's runner), and the
ways --users can be given."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.errors import ConfigError, InputFileError
from gnn.rundir import RunDir
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
    res = run_cli("recommend", "--run", HGT_RUN, "--all", "--device", "gpu")
    assert res.exit_code == 1 and "--device must be one of auto, cpu, cuda (got 'gpu')" in res.output
    res = run_cli("recommend", "--run", "never-trained", "--all")
    assert res.exit_code == 1
    assert "no run named 'never-trained'" in res.output
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


# --- bad input (issue 12 item 13) -----------------------------------------------------------------

def test_a_binary_users_file_is_a_clear_error(run_cli, recgraph, tmp_path):
    noise = bytes(range(256)) * 8
    for name in ("users.bin", "users.txt", "users.csv", "users.parquet"):
        f = tmp_path / name
        f.write_bytes(noise)
        res = run_cli("recommend", "--run", HGT_RUN, "--users", str(f))
        assert res.exit_code == 1, res.output
        assert res.output.startswith(f"error: {f}: not a ")
        assert "Traceback" not in res.output and "UnicodeDecodeError" not in res.output.split(
            "(")[0]
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"u1\nu2\x00\x00\n")
    with pytest.raises(InputFileError, match=r"line 2 holds a NUL byte"):
        read_user_ids(str(nul))


def test_out_into_a_missing_directory_says_it_creates_it(run_cli, recgraph, tmp_path):
    out = tmp_path / "new" / "dir" / "recs.parquet"
    user = recgraph.store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 1")[0]["id"]
    res = run_cli("recommend", "--run", HGT_RUN, "--users", user, "--k", "2", "--from-snapshot",
                  "--out", str(out))
    assert res.exit_code == 0, res.output
    assert f"{out.parent} does not exist: creating it for --out" in res.output
    assert len(pd.read_parquet(out)) == 2
    res = run_cli("recommend", "--run", HGT_RUN, "--users", user, "--out", str(tmp_path))
    assert res.exit_code == 1 and "is a directory: give a file name" in res.output


# --- run names and the job lock (issue 11 item 8) -------------------------------------------------

def test_run_names_are_one_path_component_for_every_command(run_cli, cfg, tmp_path):
    outside = Path(cfg.runs_dir).parent / "x"
    keep = RunDir(outside).job_dir / "keep"
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_text("not yours")
    for run in ("../x", str(outside), "a/b", ".."):
        for args in (["recommend", "--run", run, "--all"], ["explain", "u", "i", "--run", run],
                     ["demo", "--prefix", run]):
            res = run_cli(*args)
            assert res.exit_code == 1, (args, res.output)
            assert "run name" in res.output and "no '..', no '/'" in res.output, res.output
    assert keep.read_text() == "not yours"


HOLD = """
import sys, time
from gnn.rundir import RunDir
with RunDir(sys.argv[1]).lock("a test"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_two_jobs_never_share_a_runs_job_folder(run_cli, recgraph):
    """Another process holds the run's job lock: a recommend job on that run stops at once,
    saying why, and leaves the other job's folder alone."""
    job = RunDir(recgraph.hgt_dir).job_dir
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(recgraph.hgt_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        job.mkdir(exist_ok=True)
        (job / "job.json").write_text("{}")  # what the other job is working on
        res = run_cli("recommend", "--run", HGT_RUN, "--all", "--from-snapshot", "--restart")
        assert res.exit_code == 1
        assert f"run '{HGT_RUN}' is busy: another process is running" in res.output
        assert (job / "job.json").read_text() == "{}"
    finally:
        holder.kill()
        holder.wait()
        shutil.rmtree(job, ignore_errors=True)


def test_unknown_users_among_known_ones_are_named(run_cli, recgraph, tmp_path):
    user = recgraph.store.read("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 1")[0]["id"]
    res = run_cli("recommend", "--run", HGT_RUN, "--users", f"{user},ghost-9", "--k", "2",
                  "--from-snapshot", "--out", str(tmp_path / "r.parquet"))
    assert res.exit_code == 0, res.output
    assert "1 of the users are not in the graph, skipped (e.g. ghost-9)" in res.output
    assert pd.read_parquet(tmp_path / "r.parquet")["user_id"].unique().tolist() == [user]
