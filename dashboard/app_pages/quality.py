"""Model quality: metrics at K for every run under runs/, the cold-start slice, coverage and
popularity bias of the recommendations, and search metrics."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, ui

METRICS = ("recall", "ndcg", "hr", "precision", "mrr")

st.title("Model quality")
runs = data.runs()
if runs.empty:
    ui.empty_state(f"No trained run yet under `{data.runs_dir()}` (each run writes "
                   "`runs/NAME/metrics.json`). Train the attention model and baselines (one "
                   "without the knowledge graph, one that counts its links):",
                   ui.TRAIN_CMD + "\nkgrec train --model lightgcn --run beauty-lightgcn"
                   "\nkgrec train --model kglink --run beauty-kglink",
                   icon=":material/model_training:")
    st.stop()

st.caption(f"{len(runs)} run{'s' if len(runs) != 1 else ''} under `{data.runs_dir()}`. Test "
           "metrics on held-out interactions, full ranking over all items with each user's "
           "training items excluded.")

ks = sorted({int(c.split("@")[1]) for c in runs.columns
             if "@" in c and c.split("@")[0] in METRICS and c.split("@")[1].isdigit()})
if not ks:
    st.warning("The runs' metrics.json files have no ranking metrics (keys like \"ndcg@10\"). "
               "Re-evaluate a run:")
    st.code("kgrec evaluate --run beauty-hgt", language="bash")
    st.stop()

k = st.segmented_control("K", ks, default=ks[0], key="quality_k") or ks[0]
cols = [f"{m}@{k}" for m in METRICS if f"{m}@{k}" in runs.columns]
table = runs.set_index("run")[["model"] + cols].sort_values(cols[0] if cols else "model",
                                                            ascending=False)
st.subheader(f"Ranking metrics at {k}")
st.dataframe(table, width="stretch", column_config={
    c: st.column_config.NumberColumn(c, format="%.4f") for c in cols})
long = runs.melt(id_vars=["run"], value_vars=cols, var_name="metric", value_name="value").dropna()
st.altair_chart(alt.Chart(long).mark_bar().encode(
    x=alt.X("metric:N", title=None, sort=cols), y=alt.Y("value:Q"),
    xOffset=alt.XOffset("run:N"), color=alt.Color("run:N", title="run"),
    tooltip=["run", "metric", alt.Tooltip("value:Q", format=".4f")]), width="stretch")

extra = [c for c in ("train_seconds", "seconds_to_best", "epochs", "best_epoch", "peak_rss_mb",
                     "split", "dataset", "test_users") if c in runs.columns]
if extra:
    with st.expander("Training details"):
        st.dataframe(runs.set_index("run")[extra], width="stretch")

# --- cold start ---------------------------------------------------------------------------------
st.subheader("Cold-start items")
cold_cols = [c for c in ("cold_item_recall@20", "cold_item_recall@20_baseline") if c in runs]
# runs evaluated with a cold slice whose model cannot score items without interactions (pop,
# mf, lightgcn, itemknn): they report no cold metric (their ranking would be tie order)
unscored = runs[runs["cold_item_recall@20_baseline"].notna() & runs["cold_item_recall@20"].isna()] \
    if {"cold_item_recall@20", "cold_item_recall@20_baseline"} <= set(runs.columns) else runs[:0]
if len(unscored):
    st.caption("Not scored on the cold slice (the model sees no knowledge graph, so items "
               "without interactions would be ranked in tie order): " +
               ", ".join(f"{r} ({m})" for r, m in zip(unscored["run"], unscored["model"])))
if "cold_item_recall@20" not in runs.columns or runs["cold_item_recall@20"].isna().all():
    st.caption("No run reports the cold-start slice (`cold_item_recall@20`): train a model that "
               "scores items from the knowledge graph (hgt, lightgcn-kg, kglink) with the "
               "default cold_item_fraction.")
else:
    cold = runs[["run"] + cold_cols].dropna(subset=["cold_item_recall@20"])
    cold = cold.rename(columns={"cold_item_recall@20": "model",
                                "cold_item_recall@20_baseline": "popular in the user's categories"})
    cold_long = cold.melt(id_vars=["run"], var_name="ranker", value_name="recall@20").dropna()
    st.caption("Items held out of every training interaction, reached only through their brand, "
               "categories and item–item edges: Recall@20 among the cold items.")
    st.altair_chart(alt.Chart(cold_long).mark_bar().encode(
        x=alt.X("run:N", title=None), y=alt.Y("recall@20:Q"), xOffset="ranker:N",
        color=alt.Color("ranker:N", title=None,
                        legend=alt.Legend(orient="bottom", labelLimit=400)),
        tooltip=["run", "ranker", alt.Tooltip("recall@20:Q", format=".4f")]), width="stretch")

# --- coverage and popularity bias ---------------------------------------------------------------
st.subheader("Coverage and popularity bias")
cov_cols = [c for c in runs.columns if c.startswith(("coverage@", "gini@"))]
if cov_cols:
    cov_long = runs.melt(id_vars=["run"], value_vars=cov_cols, var_name="metric",
                         value_name="value").dropna()
    c1, c2 = st.columns(2)
    for col, prefix, text in ((c1, "coverage@", "share of items recommended to anyone "
                               "(higher: more of the catalogue used)"),
                              (c2, "gini@", "Gini of how often items are recommended "
                               "(lower: more even)")):
        part = cov_long[cov_long["metric"].str.startswith(prefix)]
        with col:
            st.markdown(f"**{prefix[:-1]}** — {text}")
            if part.empty:
                st.caption("not reported")
            else:
                st.altair_chart(alt.Chart(part).mark_bar().encode(
                    x=alt.X("run:N", title=None), y=alt.Y("value:Q", title=None),
                    xOffset="metric:N", color=alt.Color("metric:N", title=None),
                    tooltip=["run", "metric", alt.Tooltip("value:Q", format=".4f")]),
                    width="stretch")

rec_runs = data.recommendation_runs()
events = data.events()
if rec_runs.empty:
    ui.empty_state("The popularity-bias plot compares what a run recommends with what users "
                   "interacted with; it needs recommendations written to the graph:",
                   ui.RECOMMEND_CMD, icon=":material/bar_chart:")
elif events is None or events.empty:
    st.caption("The popularity-bias plot needs the event store beside the graph "
               "(written by `kgrec etl load`).")
else:
    ids = ui.unique(rec_runs["run_id"].astype(str))
    c1, c2 = st.columns([3, 1])
    run_id = c1.selectbox("Recommendations of run", ids, key="bias_run")
    bias_k = c2.number_input("Top K", 1, 100, 10, key="bias_k")
    train = events if "split" not in events.columns else events[events["split"] != "test"]
    universe = pd.Index(events["item_id"].unique(), name="item_id")
    pop = train.groupby("item_id").size().reindex(universe, fill_value=0).rename("interactions")
    rec = data.recommended_item_counts(run_id, int(bias_k)).set_index("item_id")["n"]
    frame = pd.DataFrame({"interactions": pop}).join(rec.rename("recommended"), how="outer")
    frame = frame.fillna(0)
    # ten popularity buckets with (about) equal numbers of items, least popular first
    ranks = frame["interactions"].rank(method="first")
    frame["bucket"] = np.ceil(ranks / len(frame) * 10).clip(1, 10).astype(int)
    share = frame.groupby("bucket")[["interactions", "recommended"]].sum()
    share = share / share.sum()
    share = share.rename(columns={"interactions": "training interactions",
                                  "recommended": f"top-{bias_k} recommendations"})
    bias_long = share.reset_index().melt(id_vars="bucket", var_name="share of",
                                         value_name="share")
    covered = int((frame["recommended"] > 0).sum())
    m1, m2, m3 = st.columns(3)
    m1.metric("Items recommended", f"{covered:,} of {len(frame):,}",
              help=f"catalogue coverage of run {ui.md(run_id)}'s top-{bias_k} lists in the graph")
    top_bucket = share.iloc[-1]
    m2.metric("Top-10% items' share", f"{top_bucket.iloc[1]:.0%}",
              delta=f"{top_bucket.iloc[1] - top_bucket.iloc[0]:+.0%} vs interactions",
              delta_color="inverse")
    rec_w = frame["recommended"]
    avg_pop = float((frame["interactions"] * rec_w).sum() / max(rec_w.sum(), 1))
    m3.metric("Mean popularity of a recommended item", f"{avg_pop:,.1f}",
              help="training interactions of the recommended item, averaged over all slots")
    st.altair_chart(alt.Chart(bias_long).mark_bar().encode(
        x=alt.X("bucket:O", title="item popularity decile (1 = least popular 10% of items)"),
        y=alt.Y("share:Q", axis=alt.Axis(format="%")), xOffset="share of:N",
        color=alt.Color("share of:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["bucket", "share of", alt.Tooltip("share:Q", format=".1%")]), width="stretch")

# --- search ------------------------------------------------------------------------------------
search_cols = [c for c in runs.columns if c.startswith("search.")]
st.subheader("Search")
if not search_cols:
    ui.empty_state("No run has search metrics yet (`runs/NAME/search_metrics.json`):",
                   ui.SEARCH_CMD, icon=":material/search:")
else:
    rows = []
    for _, r in runs.iterrows():
        for method in ("bm25", "popularity", "gnn", "anonymous", "reranked"):
            vals = {m: r.get(f"search.{method}.{m}") for m in ("ndcg@10", "mrr", "hr@10")}
            if any(v is not None and not pd.isna(v) for v in vals.values()):
                rows.append({"run": r["run"], "method": method, **vals})
    if rows:
        sf = pd.DataFrame(rows)
        st.dataframe(sf, hide_index=True, width="stretch", column_config={
            c: st.column_config.NumberColumn(c, format="%.4f") for c in ("ndcg@10", "mrr",
                                                                          "hr@10")})
    lat = [c for c in search_cols if "latency" in c]
    if lat:
        st.dataframe(runs.set_index("run")[lat].dropna(how="all"), width="stretch")
