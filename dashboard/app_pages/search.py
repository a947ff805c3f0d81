"""Search: BM25 text retrieval next to the personalised re-ranking, with the score parts.
The URL (?q=&user=&run=) reproduces the search."""

import altair as alt
import pandas as pd
import streamlit as st

from core.errors import KgrecError
from dashboard import adapters, data, ui

st.title("Search")
counts = ui.graph_counts()
qp = st.query_params

trained = data.trained_runs()
NO_RUN = ""  # text + popularity only
run_options = trained + [NO_RUN]

for key, param in (("search_q", "q"), ("search_user", "user")):
    if key not in st.session_state:
        st.session_state[key] = qp.get(param, "")
if "search_run" not in st.session_state:
    wanted = qp.get("run")
    st.session_state["search_run"] = wanted if wanted in trained else run_options[0]

with st.form("search_form", border=False):
    c1, c2, c3, c4 = st.columns([4, 2, 2, 1], vertical_alignment="bottom")
    query = c1.text_input("Query", key="search_q", placeholder="e.g. argan oil shampoo")
    user = c2.text_input("Shopper (optional)", key="search_user", placeholder="a user id",
                         help="With a shopper the run's GNN scores personalise the ranking.")
    run = c3.selectbox("Run", run_options, key="search_run",
                       format_func=lambda r: r or "none (text + popularity)")
    k = c4.number_input("K", 1, 50, 10, key="search_k")
    st.form_submit_button("Search", type="primary", icon=":material/search:")

query, user = query.strip(), user.strip() or None
run = run or None
for param, value in (("q", query), ("user", user), ("run", run)):
    if value and qp.get(param) != value:
        qp[param] = value
    elif not value and param in qp:
        del qp[param]

if not trained:
    ui.empty_state("No trained run yet: search ranks by text and popularity only. Train a model "
                   "to personalise it:", ui.TRAIN_CMD, icon=":material/model_training:")
if not query:
    st.caption("Type a query: the left column ranks by BM25 over the item text alone, the right "
               "one re-ranks the text candidates with the shopper's GNN score and popularity.")
    st.stop()

try:
    view = data.search_engine(run)
except KgrecError as e:
    st.error(f"The search index of run {run} cannot be loaded: {e}")
    st.stop()

try:
    bm25, notes = adapters.bm25_top(view, query, int(k))
    reranked, result = adapters.reranked_top(view, query, user, int(k))
except KgrecError as e:  # search.config.QueryError: empty query, only stop words...
    st.warning(str(e), icon=":material/search_off:")
    st.stop()

for note in ui.unique(list(view.notes) + list(result.notes)):
    st.caption(f"ℹ️ {note}")
st.caption(f"Mode: **{result.mode}** · {result.matches:,} items match "
           f"{', '.join(result.terms)} · items matching more of the words first, then blend "
           "weights: " + ", ".join(f"{name} {v:.2f}" for name, v in result.weights.items())
           + ("" if result.weights_fitted or run is None else " (defaults, not fitted)"))

bm25_rank = dict(zip(bm25["item_id"], bm25["rank"]))


def _moved(row) -> str:
    before = bm25_rank.get(row["item_id"])
    if before is None:
        return "new"
    d = before - row["rank"]
    return f"↑{d}" if d > 0 else f"↓{-d}" if d < 0 else "="


left, right = st.columns(2)
with left:
    st.subheader("BM25 (text only)")
    st.table(pd.DataFrame({
        "rank": bm25["rank"].astype(int),
        "item": [ui.md_link(i, u) for i, u in zip(bm25["item_id"], ui.item_links(bm25["item_id"]))],
        "title": bm25["title"].map(lambda t: ui.md(ui.short(t, 60))),
        "BM25": bm25["bm25"].map(lambda v: ui.md_num(v, ".2f"))}),
        hide_index=True, border="horizontal")
with right:
    st.subheader("Re-ranked" + (" for " + user if result.mode == "personal" else ""))
    st.table(pd.DataFrame({
        "rank": reranked["rank"].astype(int),
        "vs BM25": reranked.apply(_moved, axis=1),
        "item": [ui.md_link(i, u) for i, u in zip(reranked["item_id"],
                                                  ui.item_links(reranked["item_id"]))],
        "title": reranked["title"].map(lambda t: ui.md(ui.short(t, 60))),
        "score": reranked["score"].map(lambda v: ui.md_num(v, ".2f"))}),
        hide_index=True, border="horizontal")

# --- the score parts of the re-ranked list ------------------------------------------------------
st.subheader("Score parts of the re-ranked list")
st.caption("Each part is the blend weight times the feature standardised over the BM25 "
           "candidates: the BM25 score, the shopper's user · item score from the run, and log "
           "popularity; a feature an item lacks (no interactions yet, unknown to the run) is "
           "left out and its weight spread over the others. The parts add up to the score; "
           "items that match more of the query's words rank first.")
parts = reranked.dropna(subset=["text part"])
if parts.empty:
    st.caption("No candidate matched the text: the list comes from the fallback ranking.")
else:
    long = parts.melt(id_vars=["rank", "item_id", "title"],
                      value_vars=["text part", "personal part", "popularity part"],
                      var_name="part", value_name="value")
    long["item"] = long.apply(lambda r: f"#{r['rank']} {ui.short(r['title'], 40)}", axis=1)
    order = [f"#{r} {ui.short(t, 40)}" for r, t in zip(parts["rank"], parts["title"])]
    st.altair_chart(alt.Chart(long).mark_bar().encode(
        x=alt.X("sum(value):Q", title="score (standardised units)"),
        y=alt.Y("item:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
        color=alt.Color("part:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=["text part", "personal part", "popularity part"],
                                        range=["#4c78a8", "#e15759", "#f28e2b"])),
        tooltip=["item", "part", alt.Tooltip("value:Q", format="+.3f")]), width="stretch")
st.dataframe(pd.DataFrame({
    "rank": reranked["rank"], "item": ui.item_links(reranked["item_id"]),
    "score": reranked["score"], "text": reranked["text part"],
    "personal": reranked["personal part"], "popularity": reranked["popularity part"],
    "BM25": reranked["bm25"], "user · item": reranked["personal"],
    "interactions": reranked["popularity"], "why": reranked["reason"]}),
    hide_index=True, width="stretch", key="parts_table", column_config={
        "score": st.column_config.NumberColumn("score", format="%.2f"),
        "text": st.column_config.NumberColumn("text part", format="%+.2f"),
        "personal": st.column_config.NumberColumn("personal part", format="%+.2f"),
        "popularity": st.column_config.NumberColumn("popularity part", format="%+.2f"),
        "BM25": st.column_config.NumberColumn("BM25", format="%.2f"),
        "user · item": st.column_config.NumberColumn("user · item", format="%.3f"),
        "item": ui.ITEM_LINK})
