"""The real `kgrec search` / `kgrec search-eval` commands on the tiny shop and its trained run:
results, the saved blend, and bad input answered with a message, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from search import engine as S


def kgrec(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgrec.cli", *args], env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=300)


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    return p


def refused(p: subprocess.CompletedProcess, message: str) -> None:
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "error:" in p.stderr and message in " ".join(p.stderr.split()), p.stderr


@pytest.fixture(scope="module")
def evaluated(tiny_run, search_env):
    """`kgrec search-eval --run tiny`, once for the module."""
    p = ok(kgrec(search_env, "search-eval", "--run", "tiny"))
    return p, json.loads((tiny_run / "search_metrics.json").read_text())


def test_search_eval_writes_the_metrics_file(evaluated, tiny_run):
    p, out = evaluated
    for key in ("bm25.ndcg@10", "reranked.ndcg@10", "reranked.mrr", "latency_p95_ms",
                "popularity.hr@10", "gnn.mrr"):
        assert isinstance(out[key], float), key
    assert "reranked" in p.stdout and "search_metrics.json" in p.stdout
    assert out["skipped"]["empty_query"] == 1
    assert out["protocol"]["catalogue_source"] == "graph"
    for name in ("queries_test.csv", "queries_val.csv", "blend.json", "catalogue.parquet"):
        assert (tiny_run / "search" / name).exists(), name


def test_search_uses_the_runs_saved_blend_and_flips_for_the_user(evaluated, tiny_run, search_env):
    S.Blend(personal={"text": 0.3, "personal": 0.5, "popularity": 0.2},
            anonymous={"text": 0.5, "personal": 0.0, "popularity": 0.5},
            fitted={"note": "set by the test"}).save(tiny_run / "search" / "blend.json")

    def run(*extra: str) -> dict:
        return json.loads(ok(kgrec(search_env, "search", "face cream", "--run", "tiny", "--json",
                                   *extra)).stdout)

    anonymous, ann = run("--k", "2"), run("--user", "A10", "--k", "2")
    assert [h["item_id"] for h in anonymous["hits"]] == ["l0", "r0"]
    assert anonymous["mode"] == "anonymous" and anonymous["hits"][0]["personal_score"] is None
    assert [h["item_id"] for h in ann["hits"]] == ["r0", "l0"] and ann["mode"] == "personal"
    assert ann["hits"][0]["personal_score"] > ann["hits"][1]["personal_score"]
    assert all(h["reason"] and h["text_score"] > 0 for h in ann["hits"])


def test_search_prints_a_table_with_scores_and_reasons(evaluated, search_env):
    p = ok(kgrec(search_env, "search", "rose", "--run", "tiny", "--user", "A03", "--k", "3"))
    assert "personal" in p.stdout and "why" in p.stdout and "matches rose" in p.stdout
    assert "for user A03" in " ".join(p.stdout.split())


@pytest.mark.parametrize("query,message", [
    ("", "the query is empty"),
    ("   \t ", "the query is empty"),
    ("?!&%", "no searchable words"),
    ("[/]", "no searchable words"),  # rich markup in a query is text, not a crash
])
def test_empty_queries_are_refused_clearly(evaluated, search_env, query, message):
    refused(kgrec(search_env, "search", query, "--run", "tiny"), message)


def test_markup_and_brackets_in_queries_are_shown_as_text(evaluated, search_env):
    p = ok(kgrec(search_env, "search", "[bold]rose[/] [pink] cream", "--run", "tiny", "--k", "2"))
    assert "[bold]rose[/] [pink] cream" in p.stdout and "matches" in p.stdout


def test_a_10k_character_query_answers_with_a_note(evaluated, search_env):
    p = ok(kgrec(search_env, "search", "cream " * 2000, "--run", "tiny", "--k", "2"))
    assert "only the first 1,000 were used" in " ".join(p.stderr.split())
    assert "Face Cream" in p.stdout


def test_non_latin_query_falls_back_to_popular_items(evaluated, search_env):
    p = ok(kgrec(search_env, "search", "面霜 крем", "--run", "tiny", "--k", "2", "--json"))
    out = json.loads(p.stdout)
    assert out["matches"] == 0 and len(out["hits"]) == 2
    assert any("no item matches" in n for n in out["notes"])


def test_unknown_user_falls_back_to_anonymous(evaluated, search_env):
    p = ok(kgrec(search_env, "search", "face cream", "--run", "tiny", "--user", "nobody",
                 "--json"))
    out = json.loads(p.stdout)
    assert out["mode"] == "anonymous" and out["hits"]
    assert any("unknown user 'nobody'" in n for n in out["notes"])


@pytest.mark.parametrize("args,message", [
    (("search", "cream", "--run", "nope"), "no run named 'nope'"),
    (("search", "cream", "--run", "../etc"), "run name '../etc'"),
    (("search", "cream", "--k", "0", "--run", "tiny"), "--k must be between 1 and 1000"),
    (("search-eval", "--run", "nope"), "no run named 'nope'"),
    (("search-eval", "--run", "tiny", "--queries", "/no/such.csv"), "no such file"),
])
def test_bad_options_are_refused_clearly(evaluated, search_env, args, message):
    refused(kgrec(search_env, *args), message)


def test_search_eval_on_a_queries_file_skips_unknown_users_and_items(evaluated, tiny_run,
                                                                     search_env, tmp_path):
    test = pd.read_csv(tiny_run / "search" / "queries_test.csv", dtype=str)
    rows = pd.concat([test.head(5), pd.DataFrame({
        "user_id": ["ghost", "A01", "A02"], "item_id": ["r1", "no-such-item", "r2"],
        "query": ["rose", "rose", "   "], "slice": "file"})], ignore_index=True)
    rows.to_csv(tmp_path / "q.csv", index=False)
    ok(kgrec(search_env, "search-eval", "--run", "tiny", "--queries", str(tmp_path / "q.csv")))
    out = json.loads((tiny_run / "search_metrics.json").read_text())
    assert out["queries"] == 5
    assert out["skipped"] == {"unknown_item": 1, "unknown_user": 1, "empty_query": 1}


def test_without_a_trained_run_search_is_text_plus_popularity(tiny_shop, search_env, tmp_path):
    env = {**search_env, "KGREC_RUNS_DIR": str(tmp_path / "no-runs")}
    p = ok(kgrec(env, "search", "face cream", "--k", "2", "--json"))
    out = json.loads(p.stdout)
    assert [h["item_id"] for h in out["hits"]] == ["l0", "r0"]
    assert any("no trained run found" in n for n in out["notes"])
