"""The real `kgrec search` / `kgrec search-eval` commands on the tiny shop and its trained run:
results, the saved blend, the default run, `--run none`, the same ranking as the dashboard, and
bad input answered with a message, never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from gnn.rundir import RunDir
from search.blend import Blend


def kgrec(env: dict, *args: str, columns: int = 200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgrec.cli", *args],
                          env={**env, "COLUMNS": str(columns)}, capture_output=True, text=True,
                          timeout=300)


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    return p


def refused(p: subprocess.CompletedProcess, message: str) -> None:
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "error:" in p.stderr and message in " ".join(p.stderr.split()), p.stderr


def hits(env: dict, *args: str) -> dict:
    return json.loads(ok(kgrec(env, "search", *args, "--json")).stdout)


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
    for name in ("queries_test.csv", "queries_val.csv", "blend.json", "catalogue.json", "bm25"):
        assert (tiny_run / "search" / name).exists(), name


def test_search_uses_the_runs_saved_blend_and_flips_for_the_user(evaluated, tiny_run, search_env):
    Blend(personal={"text": 0.3, "personal": 0.5, "popularity": 0.2},
          anonymous={"text": 0.5, "personal": 0.0, "popularity": 0.5},
          fitted={"note": "set by the test"}).save(tiny_run / "search" / "blend.json")
    anonymous = hits(search_env, "face cream", "--run", "tiny", "--k", "2")
    ann = hits(search_env, "face cream", "--run", "tiny", "--user", "A10", "--k", "2")
    assert [h["item_id"] for h in anonymous["hits"]] == ["l0", "r0"]
    assert anonymous["mode"] == "anonymous" and anonymous["hits"][0]["personal_score"] is None
    assert [h["item_id"] for h in ann["hits"]] == ["r0", "l0"] and ann["mode"] == "personal"
    assert ann["hits"][0]["personal_score"] > ann["hits"][1]["personal_score"]
    assert all(h["reason"] and h["text_score"] > 0 for h in ann["hits"])
    assert ann["weights"] == {"text": 0.3, "personal": 0.5, "popularity": 0.2}
    assert not any("not fitted" in n for n in ann["notes"])


def test_the_cli_and_the_dashboard_rank_alike(evaluated, tiny_run, tiny_shop, search_env):
    """The dashboard's adapter and `kgrec search --json` give the same ranking, scores and
    score parts for the same query and run, with and without a user, with and without a run."""
    from dashboard import adapters

    for run_dir, run_arg in ((tiny_run, "tiny"), (None, "none")):
        view = adapters.search_engine(tiny_shop, run_dir)
        for user in (None, "A03", "B11"):
            extra = ("--user", user) if user else ()
            cli = hits(search_env, "rose cream", "--run", run_arg, "--k", "8", *extra)
            frame, result = adapters.reranked_top(view, "rose cream", user, 8)
            assert frame["item_id"].tolist() == [h["item_id"] for h in cli["hits"]]
            assert result.mode == cli["mode"]
            for h, row in zip(cli["hits"], frame.to_dict("records")):
                assert h["score"] == pytest.approx(row["score"], nan_ok=True)
                assert (h["parts"] or {}).get("text") == pytest.approx(row["text part"])
                assert h["popularity"] == row["popularity"]


def test_search_prints_a_table_that_fits_the_terminal(evaluated, search_env):
    p = ok(kgrec(search_env, "search", "rose", "--run", "tiny", "--user", "A03", "--k", "3"))
    assert "personal" in p.stdout and "why" in p.stdout and "matches rose" in p.stdout
    assert "for user A03" in " ".join(p.stdout.split())
    for width in (80, 120):
        lines = in_a_terminal(search_env, width, "search", "rose", "--run", "tiny", "--user",
                              "A03", "--k", "3")
        assert lines and max(len(line) for line in lines) <= width, "\n".join(lines)
        text = " ".join(" ".join(lines).replace("│", " ").split())
        assert "Rose & Honey Fragrance Mist No" in text  # titles fold, never cut to "Ro…"
        assert "…" not in text


def in_a_terminal(env: dict, columns: int, *args: str) -> list[str]:
    """The lines `kgrec ARGS` writes to a terminal `columns` wide (a pseudo-terminal), escape
    sequences removed."""
    import os
    import pty
    import re

    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "kgrec.cli", *args], stdout=follower,
                         stderr=follower, stdin=subprocess.DEVNULL,
                         env={**env, "COLUMNS": str(columns), "LINES": "50"})
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert p.wait(timeout=300) == 0, out.decode(errors="replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", out.decode())
    spinner = re.compile("[\u2800-\u28ff]")  # the "loading…" status line redraws itself
    return [line for line in text.replace("\r", "").split("\n")
            if line.strip() and not spinner.search(line)]


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
    out = hits(search_env, "面霜 крем", "--run", "tiny", "--k", "2")
    assert out["matches"] == 0 and len(out["hits"]) == 2
    assert any("no item matches" in n for n in out["notes"])


def test_unknown_user_falls_back_to_anonymous(evaluated, search_env):
    out = hits(search_env, "face cream", "--run", "tiny", "--user", "nobody")
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


def test_run_none_is_text_plus_popularity_from_the_graph(evaluated, search_env):
    out = hits(search_env, "face cream", "--run", "none", "--k", "2")
    assert [h["item_id"] for h in out["hits"]] == ["l0", "r0"]
    assert out["source"] == "no run: text + popularity" and out["mode"] == "anonymous"
    assert hits(search_env, "face cream", "--run", "none", "--user", "A10")["mode"] == "anonymous"


def test_without_a_trained_run_search_is_text_plus_popularity(tiny_shop, search_env, tmp_path):
    env = {**search_env, "KGREC_RUNS_DIR": str(tmp_path / "no-runs")}
    out = hits(env, "face cream", "--k", "2")
    assert [h["item_id"] for h in out["hits"]] == ["l0", "r0"]
    assert any("no trained run found" in n for n in out["notes"])


def test_the_default_run_is_the_latest_hgt_run_and_a_first_search_says_what_it_wrote(
        evaluated, tiny_run, search_env, tmp_path):
    """Two runs: a newer mf one and an older one labelled hgt (a copy of the tiny run with its
    model name changed: search reads the model's name from the run's config). Without --run,
    search uses the hgt one, prepares it once and says what it wrote."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("product", "baseline"):
        shutil.copytree(tiny_run, runs / name, ignore=shutil.ignore_patterns("search"))
    rd = RunDir(runs / "product")
    rd.write_json(RunDir.CONFIG, {**rd.read_json(RunDir.CONFIG), "model": "hgt"})
    RunDir(runs / "baseline").model_file.touch()  # trained last
    env = {**search_env, "KGREC_RUNS_DIR": str(runs)}
    first = hits(env, "face cream", "--k", "2")
    assert first["source"] == "run product, the latest hgt run"
    notes = " ".join(first["notes"])
    assert "saved it in" in notes and str(runs / "product" / "search") in notes
    assert "not fitted yet" in notes and "kgrec search-eval --run product" in notes
    assert not (runs / "baseline" / "search").exists()
    again = hits(env, "face cream", "--k", "2")
    assert not any("saved" in n for n in again["notes"])
    assert again["hits"] == first["hits"]


def test_a_catalogue_cached_before_a_reset_is_not_used_after_a_reload(
        evaluated, tiny_run, tiny_shop, search_env, load_tiny_shop):
    """`kgrec graph reset`, then a load of other data (one more item): the run's cached item
    text and the graph-only cache are both re-read."""
    from graph import queries as Q
    from graph.maintenance import delete_all

    hits(search_env, "face cream", "--run", "tiny")  # cached
    hits(search_env, "face cream", "--run", "none")
    delete_all(tiny_shop)
    load_tiny_shop(tiny_shop)
    tiny_shop.write(Q.MERGE_ITEMS, rows=[{"id": "x1", "title": "Rose Night Balm", "price": 1.0}])
    try:
        for run in ("tiny", "none"):
            out = hits(search_env, "balm", "--run", run, "--k", "1")
            assert out["hits"][0]["item_id"] == "x1", run
            assert any("the graph changed since its items were cached (counts changed: Item "
                       "20 -> 21)" in n for n in out["notes"]), out["notes"]
    finally:
        delete_all(tiny_shop)
        load_tiny_shop(tiny_shop)
    back = hits(search_env, "balm", "--run", "tiny", "--k", "1")
    assert back["matches"] == 0
