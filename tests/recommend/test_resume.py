"""A killed `kgrec recommend` resumes from its last finished chunk and ends with the same result
as an uninterrupted run. The kill is real: the command's process SIGKILLs itself right after its
second chunk is recorded as finished."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from gnn.rundir import RunDir
from graph.recommendations import per_user_counts, write_recommendations

from .conftest import HGT_RUN, kgrec

KILLER = """
import os, signal, sys
import gnn.score as S

real_run = S.RecommendJob.run

def run(self, snapshot_fn, progress=None, on_chunk=None, restart=False):
    def die(i):
        if i == 1:  # chunk 1 (the second) is recorded as finished: kill -9 now
            os.kill(os.getpid(), signal.SIGKILL)
    return real_run(self, snapshot_fn, progress=progress, on_chunk=die, restart=restart)

S.RecommendJob.run = run
sys.argv = ["kgrec", *sys.argv[1:]]
from kgrec.cli import main
main()
"""


def test_killed_job_resumes_from_the_last_finished_chunk(recgraph, cli, cli_env, tmp_path):
    store = recgraph.store
    users = [r["id"] for r in store.read("MATCH (u:User) RETURN u.id AS id")]
    write_recommendations(store, pd.DataFrame(columns=["user_id", "item_id", "score", "rank"]),
                          model="hgt", run_id=HGT_RUN, users=users)  # no hgt edges to start
    out = tmp_path / "recs.parquet"
    args = ["recommend", "--run", HGT_RUN, "--all", "--k", "4", "--write-graph",
            "--chunk-users", "100", "--out", str(out)]  # 501 users: 6 chunks

    killed = subprocess.run([sys.executable, "-c", KILLER, *args], env=cli_env, text=True,
                            capture_output=True, timeout=600)
    assert killed.returncode == -9, killed.stderr
    job = RunDir(recgraph.hgt_dir).job_dir
    state = json.loads((job / "job.json").read_text())
    assert state["done"] == [0, 1]
    assert not out.exists()
    counts = per_user_counts(store, HGT_RUN)
    assert len(counts) == 200 and set(counts.values()) == {4}  # chunks 0 and 1 only

    resumed = cli(*args)
    assert "resuming an unfinished job: 2 chunks already done" in resumed.stdout
    assert "2 of 6" in resumed.stdout  # chunks resumed
    assert not job.exists()
    counts = per_user_counts(store, HGT_RUN)
    assert len(counts) == recgraph.n_users and set(counts.values()) == {4}
    result = pd.read_parquet(out)
    assert len(result) == 4 * recgraph.n_users

    # an uninterrupted run of the same job gives the same recommendations
    fresh = tmp_path / "fresh.parquet"
    cli("recommend", "--run", HGT_RUN, "--all", "--k", "4", "--chunk-users", "100",
        "--out", str(fresh), "--restart")
    pd.testing.assert_frame_equal(pd.read_parquet(fresh), result)
    summary = json.loads((recgraph.hgt_dir / "recommend.json").read_text())
    assert summary["users"] == recgraph.n_users and summary["resumed_chunks"] == 0


def test_a_job_with_other_options_does_not_resume(recgraph, cli_env, tmp_path):
    args = ["recommend", "--run", HGT_RUN, "--all", "--k", "3", "--chunk-users", "100",
            "--out", str(tmp_path / "a.parquet")]
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], env=cli_env, text=True,
                            capture_output=True, timeout=600)
    assert killed.returncode == -9
    other = kgrec(cli_env, "recommend", "--run", HGT_RUN, "--all", "--k", "2",
                  "--chunk-users", "100", "--out", str(tmp_path / "b.parquet"))
    assert other.returncode == 0, other.stderr
    assert "resuming" not in other.stdout
    assert len(pd.read_parquet(tmp_path / "b.parquet")) == 2 * recgraph.n_users
    assert not RunDir(recgraph.hgt_dir).job_dir.exists()
