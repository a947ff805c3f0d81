"""Every dashboard page through `streamlit.testing.v1.AppTest`, against the embedded graph holding
the real amazon_small slice and a tiny trained run: no exception, the expected elements present,
the shareable URL state, and the empty states naming the command to run."""

from __future__ import annotations

from dash_fixtures import APP, RUN, TIMEOUT, K, app, texts
from streamlit.testing.v1 import AppTest

from graph.server import free_port


def codes(at: AppTest) -> str:
    return "\n".join(texts(at.code))


# --- pages with data ------------------------------------------------------------------------------

def test_overview_counts_dataset_and_runs(dash):
    at = app()
    assert texts(at.title) == ["Overview"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == f"{dash.counts['User']:,}"
    assert metrics["Items"] == f"{dash.counts['Item']:,}"
    assert metrics["Recommendations"] == f"{dash.counts['RECOMMENDED']:,}"
    assert metrics["Events"] == f"{dash.counts['REVIEWED']:,}"  # amazon-kg: one review per edge
    runs = at.dataframe[-1].value
    assert RUN in runs.index and runs.loc[RUN, "model"] == "hgt"
    assert "ndcg@10" in runs.columns
    assert len(at.get("vega_lite_chart")) >= 6


def test_user_page_recommendations_reasons_and_paths(dash):
    user = dash.users[0]
    at = app("users", user=user)
    assert f"User {user}" in texts(at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["recommended"] == str(K)
    recs = at.table[0].value
    assert len(recs) == K and list(recs["rank"]) == list(range(1, K + 1))
    assert recs["score"].astype(float).is_monotonic_decreasing
    assert recs["item"].str.contains(r"\]\(\./items\?item=", regex=True).all()  # links
    why = recs["why (the best explanation path)"]
    assert why.str.startswith("You ").any(), "no recommendation has an explanation"
    # the explanation graph of the first recommendation with at least one path
    assert len(at.get("graphviz_chart")) == 1
    dot = at.get("graphviz_chart")[0].proto.spec
    assert f'"User:{user}"' in dot and "rank=max" in dot
    reasons = [m for m in texts(at.markdown) if m.startswith("**1.**")]
    assert reasons and "You " in reasons[0]
    # the URL holds the view
    assert at.query_params["user"] == [user] or at.query_params["user"] == user
    assert "run" in at.query_params and "item" in at.query_params


def test_user_page_explains_the_item_named_in_the_url(dash):
    from graph import views

    user = dash.users[1]
    recs = views.user_recommendations(dash.store, user)
    item = recs.sort_values("rank")["item_id"].iloc[-1]
    at = app("users", user=user, run=RUN, item=item, k=str(K))
    box = [s for s in at.selectbox if s.label == "Recommendation to explain"][0]
    assert box.value == item


def test_user_page_history_tab(dash):
    user = dash.users[0]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("app_pages/users.py")
    at.query_params["user"] = user
    at.session_state["user_tab"] = ":material/history: History"
    at.run()
    assert not at.exception
    hist = at.dataframe[0].value
    assert len(hist) >= 5  # a 5-core dataset: every user reviewed at least 5 items
    assert {"item", "title", "first", "last", "split"} <= set(hist.columns)
    assert any(t.label.startswith("reviewed (") for t in at.tabs)


def test_user_search_by_prefix_then_pick(dash):
    at = app("users")
    assert len(at.button) >= 1  # sample users to start from
    prefix = dash.users[0][:2].lower()  # ids are upper case: the search ignores case
    at.text_input(key="user_q").input(prefix).run()
    assert not at.exception
    matches = [s for s in at.selectbox if "start with" in s.label]
    if matches:  # several users share the prefix: pick one
        pick = matches[0].options[0]
        matches[0].select(pick).run()
    else:
        pick = [s for s in texts(at.subheader) if s.startswith("User ")][0][5:]
    assert f"User {pick}" in texts(at.subheader)
    assert at.query_params["user"] in (pick, [pick])


def test_user_without_recommendations_names_the_command(dash):
    at = app("users", user=dash.users_without_recs[0])
    info = " ".join(texts(at.info))
    assert "no recommendations" in info
    assert "kgrec recommend" in codes(at)


def test_unknown_user_is_a_warning(dash):
    at = app("users", user="no-such-user-zz")
    assert any("No user id starts with" in w for w in texts(at.warning))


def test_item_page_brand_categories_related_and_buyers(dash):
    item = dash.items[0]  # the most recommended item of the run
    at = app("items", item=item)
    md = " ".join(texts(at.markdown))
    assert f"**Item id:** {item}" in md and "**Categories:**" in md and "Beauty" in md
    assert "#### Who buys it" in md and "#### Similar items" in md
    buyers = [d.value for d in at.dataframe if "behaviour" in d.value.columns]
    assert buyers and len(buyers[0]) >= 1
    assert any("SIMILAR_TO" in c for c in texts(at.caption))  # written by --similar-items
    assert any(c.startswith("Recommended to") for c in texts(at.caption))


def test_item_search_by_title_words(dash):
    at = app("items")
    at.text_input(key="item_q").input("cream").run()
    assert not at.exception
    assert at.selectbox and at.selectbox[0].options


def test_search_page_bm25_and_reranked_side_by_side(dash):
    user = dash.users[0]
    at = app("search", q="face cream", user=user, run=RUN)
    assert texts(at.subheader)[:2] == ["BM25 (text only)", f"Re-ranked for {user}"]
    assert len(at.get("vega_lite_chart")) == 1  # the score parts as stacked bars
    bm25, reranked = at.table[0].value, at.table[1].value
    parts = at.dataframe[0].value
    assert 0 < len(bm25) <= 10 and len(reranked) == 10 and len(parts) == 10
    assert bm25["BM25"].astype(float).is_monotonic_decreasing
    assert {"rank", "vs BM25", "item", "score"} <= set(reranked.columns)
    assert {"score", "text", "personal", "popularity", "why"} <= set(parts.columns)
    known = parts.dropna(subset=["text"])
    assert len(known) and ((known[["text", "personal", "popularity"]].sum(axis=1)
                            - known["score"]).abs() < 1e-6).all(), "the parts do not add up"
    assert "Score parts of the re-ranked list" in texts(at.subheader)
    assert any("Mode: **personal**" in c for c in texts(at.caption))
    assert at.query_params["q"] in ("face cream", ["face cream"])


def test_search_page_without_run_and_with_a_bad_query(dash):
    at = app("search", q="face cream")
    at.selectbox(key="search_run").select("")  # "none (text + popularity)"
    at.button[0].click().run()  # the search form commits on submit
    assert not at.exception
    assert any("Mode: **anonymous**" in c for c in texts(at.caption))
    at.text_input(key="search_q").input("the and of")
    at.button[0].click().run()
    assert not at.exception
    assert any("no searchable words" in w for w in texts(at.warning))


def test_quality_page_metrics_cold_start_bias_and_search(dash):
    at = app("quality")
    heads = texts(at.subheader)
    assert heads[:4] == ["Ranking metrics at 10", "Cold-start items",
                         "Coverage and popularity bias", "Search"]
    table = at.dataframe[0].value
    assert RUN in table.index and {"recall@10", "ndcg@10", "hr@10"} <= set(table.columns)
    metrics = {m.label: m.value for m in at.metric}
    assert "Items recommended" in metrics  # the popularity-bias panel found the run's edges
    search = [d.value for d in at.dataframe if "method" in d.value.columns]
    assert search and {"bm25", "reranked"} <= set(search[0]["method"])


def test_quality_page_names_runs_without_a_cold_metric(dash, monkeypatch, tmp_path):
    """Issue 13: a model that cannot score items without interactions reports no cold metric
    (null); the page says which runs those are instead of drawing a tie-order number."""
    import json

    for run, model, cold in (("kg-run", "kglink", 0.31), ("plain-run", "lightgcn", None)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.json").write_text(json.dumps(
            {"model": model, "ndcg@10": 0.05, "recall@20": 0.1, "cold_item_recall@20": cold,
             "cold_item_recall@20_baseline": 0.1}))
    monkeypatch.setenv("KGREC_RUNS_DIR", str(tmp_path))
    at = app("quality")
    notes = [c for c in texts(at.caption) if "Not scored on the cold slice" in c]
    assert len(notes) == 1 and "plain-run (lightgcn)" in notes[0] and "kg-run" not in notes[0]


def test_console_page_runs_a_read_and_refuses_a_write(dash):
    at = app("console")
    at.text_area(key="cypher").input("MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 3")
    at.button[0].click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == sorted(dash.users + dash.users_without_recs)[:3]
    before = dash.store.counts()
    at.text_area(key="cypher").input("MATCH (u:User) DETACH DELETE u")
    at.button[0].click().run()
    assert any("Not sent" in e and "DELETE" in e for e in texts(at.error))
    assert dash.store.counts() == before


# --- empty states ---------------------------------------------------------------------------------

def test_no_trained_run_names_the_train_command(dash, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_RUNS_DIR", str(tmp_path / "no_runs"))
    at = app("quality")
    assert any("No trained run yet" in i for i in texts(at.info))
    assert "kgrec train" in codes(at)
    at = app("search", q="face cream")
    assert any("No trained run yet" in i for i in texts(at.info))
    assert any("Mode: **anonymous**" in c for c in texts(at.caption))


def test_unreachable_graph_names_the_fix(dash, monkeypatch):
    port = free_port()  # a port nobody listens on
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("NEO4J_USER", "neo4j")
    monkeypatch.setenv("NEO4J_PASSWORD", "x")
    for page in (None, "users", "items", "search"):
        at = app(page)
        assert any("cannot be reached" in e for e in texts(at.error)), page
        assert "kgrec graph start" in codes(at)


def test_empty_graph_names_the_load_command(dash):
    from dash_fixtures import wipe

    wipe(dash.store)  # `dash` rebuilds the graph for the tests after this one
    for page in (None, "users", "items", "search"):
        at = app(page)
        assert any("The graph is empty" in i for i in texts(at.info)), page
        assert "kgrec demo" in codes(at) and "kgrec etl load" in codes(at)
    at = app("console")  # the console still works on an empty graph
    at.text_area(key="cypher").input("MATCH (n) RETURN count(n) AS n")
    at.button[0].click().run()
    assert at.dataframe[0].value["n"].tolist() == [0]
