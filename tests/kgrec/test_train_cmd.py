"""`kgrec train | evaluate | compare` as a user runs them: real commands on a real slice of
Amazon Beauty loaded through the real ETL into the session's embedded server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
SLICE = REPO / "tests" / "recommend" / "fixtures" / "beauty_slice"
FAST = ["--epochs", "2", "--dim", "8", "--set", "batch_size=512"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def kgrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The installed command in its own process."""
    return subprocess.run([sys.executable, "-m", "kgrec.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@dataclass
class Out:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(cfg, monkeypatch):
    """The same command in this process (Typer's runner: no interpreter start per call), with
    the session's home and runs folder; `columns` > 0 makes the console an 80-column (or other)
    terminal."""
    from kgrec.cli import app

    runner = CliRunner()

    def run(*args: str, columns: int = 0, runs: Path | None = None) -> Out:
        env = {"KGREC_HOME": str(cfg.graph.home), "KGREC_RUNS_DIR": str(runs or cfg.runs_dir),
               "KGREC_QUARANTINE_DIR": str(cfg.etl.quarantine_dir)}
        if columns:
            env.update(TTY_COMPATIBLE="1", COLUMNS=str(columns), NO_COLOR="1")
        r = runner.invoke(app, list(args), env=env)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Out(r.exit_code, ANSI.sub("", r.stdout), ANSI.sub("", r.stderr))

    return run


def one_error_line(p) -> str:
    """The command failed with exit 1 and one line on stderr, no traceback: that line."""
    code = p.returncode if hasattr(p, "returncode") else p.code
    assert code == 1, (p.stdout, p.stderr)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def snapshot(store, cfg, tmp_path_factory) -> Path:
    """The slice loaded with `kgrec etl load` and exported once (the train commands below read
    it with --snapshot, so they do not depend on what other tests leave in the store)."""
    from gnn.snapshot import export
    from graph.maintenance import delete_all

    delete_all(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(KGREC_HOME=str(cfg.graph.home), KGREC_QUARANTINE_DIR=str(cfg.etl.quarantine_dir),
               KGREC_RUNS_DIR=str(cfg.runs_dir))
    p = kgrec(env, "etl", "load", "--format", "amazon-kg", str(SLICE))
    assert p.returncode == 0, p.stderr
    path = tmp_path_factory.mktemp("train_cmd") / "snapshot"
    export(store).save(path)
    return path


def test_train_on_an_empty_graph_says_what_to_do(empty_store, cli_env):
    line = one_error_line(kgrec(cli_env, "train", "--model", "pop", "--run", "t"))
    assert "the graph is empty" in line and "kgrec etl load" in line


def test_train_evaluate_compare(snapshot, cli, cfg):
    r = cli("train", "--model", "pop", "--run", "p1", "--snapshot", str(snapshot))
    assert r.code == 0, r.stderr
    run = Path(cfg.runs_dir) / "p1"
    assert (run / "snapshot" / "graph.pt").exists()  # cached for evaluate
    before = json.loads((run / "metrics.json").read_text())
    r = cli("evaluate", "--run", "p1")  # no --snapshot: the run's cached copy
    assert r.code == 0, r.stderr
    after = json.loads((run / "metrics.json").read_text())
    assert after["ndcg@10"] == before["ndcg@10"]
    assert after["train_seconds"] == before["train_seconds"]
    r = cli("train", "--model", "mf", "--run", "m1", "--snapshot", str(snapshot), *FAST)
    assert r.code == 0, r.stderr
    assert "epoch   2  loss" in r.stdout  # one line per epoch, drawn by the CLI
    m1 = json.loads((Path(cfg.runs_dir) / "m1" / "metrics.json").read_text())
    # an 80-column terminal: every metric of both runs in full, never "0.0…"
    r = cli("compare", str(run), "m1", columns=80)
    assert r.code == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    for value in (before["ndcg@10"], before["recall@20"], m1["ndcg@10"], m1["recall@20"]):
        assert f"{value:.4f}" in r.stdout
    assert "…" not in r.stdout and "p1" in r.stdout and "m1" in r.stdout


def test_kg_baselines_train_and_compare_explains_a_missing_cold_metric(snapshot, cli, cfg):
    """Issue 13: kglink and lightgcn-kg through `kgrec train`; models that cannot score items
    without interactions report no cold metric, and `compare` says why."""
    runs = Path(cfg.runs_dir)
    for model, extra in (("kglink", ["--epochs", "1"]), ("lightgcn-kg", FAST), ("pop", [])):
        r = cli("train", "--model", model, "--run", f"kg-{model}", "--snapshot", str(snapshot),
                *extra)
        assert r.code == 0, r.stderr
        m = json.loads((runs / f"kg-{model}" / "metrics.json").read_text())
        assert m["model"] == model and 0 <= m["ndcg@10"] <= 1
        assert (m["cold_item_recall@20"] is None) == (model == "pop")
    r = cli("compare", "kg-kglink", "kg-lightgcn-kg", "kg-pop", columns=120)
    assert r.code == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "kg-pop cannot score items without interactions" in text
    assert "kg-kglink cannot" not in text and "kg-lightgcn-kg cannot" not in text


def test_train_never_replaces_a_run_unasked(snapshot, cli, cfg):
    run = Path(cfg.runs_dir) / "keep"
    args = ["--run", "keep", "--snapshot", str(snapshot)]
    assert cli("train", "--model", "pop", *args).code == 0
    for model in ("itemknn", "pop"):  # another model, or the same one again
        line = one_error_line(cli("train", "--model", model, *args))
        assert "already exists" in line and "--resume" in line and "--overwrite" in line
        assert json.loads((run / "metrics.json").read_text())["model"] == "pop"
    line = one_error_line(cli("train", "--model", "mf", *args, "--resume"))
    assert "trains pop, not mf" in line
    r = cli("train", "--model", "mf", *args, *FAST, "--overwrite")
    assert r.code == 0, r.stderr
    assert json.loads((run / "metrics.json").read_text())["model"] == "mf"
    assert (run / "snapshot" / "graph.pt").exists()
    r = cli("train", "--model", "mf", *args, "--epochs", "3", "--resume")
    assert r.code == 0, r.stderr
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_compare_skips_a_run_without_metrics(snapshot, cli, tmp_path):
    runs = tmp_path / "runs"
    assert cli("train", "--model", "pop", "--run", "ok", "--snapshot", str(snapshot),
               runs=runs).code == 0
    (runs / "failed").mkdir()
    (runs / "failed" / "config.json").write_text("{}")  # what a failed train leaves
    r = cli("compare", *sorted(str(p) for p in runs.iterdir()), runs=runs)  # `compare runs/*`
    assert r.code == 0, r.stderr
    assert "skipped" in r.stdout and "failed" in r.stdout and "ok" in r.stdout


def test_settings_and_bad_values_are_one_clear_line(snapshot, cli, cfg):
    snap = ["--snapshot", str(snapshot)]
    line = one_error_line(cli("train", "--model", "mf", "--run", "a", "--lr", "-1", *snap))
    assert "'lr' must be > 0 (got -1.0)" in line
    line = one_error_line(cli("train", "--run", "a", "--set", "colditem=0", *snap))
    assert "unknown training setting 'colditem'" in line and "cold_item_fraction" in line
    line = one_error_line(cli("train", "--run", "a", "--set", "epochs=abc", *snap))
    assert "'epochs' must be an integer" in line
    assert not (Path(cfg.runs_dir) / "a").exists()
    # hgt has a time budget by default: null lifts it
    r = cli("train", "--model", "hgt", "--run", "s", *snap, *FAST,
            "--set", "cold_item_fraction=0", "--set", "max_minutes=null")
    assert r.code == 0, r.stderr
    saved = json.loads((Path(cfg.runs_dir) / "s" / "config.json").read_text())
    assert saved["cold_item_fraction"] == 0 and saved["max_minutes"] is None
    assert saved["batch_size"] == 512 and saved["epochs"] == 2


def test_errors_name_the_fix(snapshot, cli):
    assert "kgrec train --run nope" in one_error_line(cli("evaluate", "--run", "nope"))
    line = one_error_line(cli("train", "--model", "bert", "--run", "x", "--snapshot",
                              str(snapshot)))
    assert "--model must be one of" in line
    line = one_error_line(cli("train", "--model", "pop", "--run", "../evil", "--snapshot",
                              str(snapshot)))
    assert "run name" in line


def test_a_fit_after_the_network_gets_its_own_bar_not_the_steps_bar():
    """The score blend's and kglink's weight searches report through the same callback as the
    training steps; they draw their own bars (the steps bar once showed 480/84)."""
    from kgrec.commands.train_cmd import epoch_reporters

    calls = []
    _, on_step = epoch_reporters(lambda *a: calls.append(a), "hgt", 3)
    on_step("epoch 1/3", 1, 10)
    on_step("epoch 1/3: validating", 0, 0)
    on_step("blend weights", 1, 7)
    on_step("weight search (pass 1)", 1, 54)
    assert calls == [("hgt: steps", 1, 30), ("hgt: blend weights", 1, 7),
                     ("hgt: weight search (pass 1)", 1, 54)]
