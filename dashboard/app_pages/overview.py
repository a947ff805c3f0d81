"""Overview: what is in the graph, the loaded dataset, and the trained runs side by side."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui

st.title("Overview")
cfg = data.config()
where = (f"Neo4j at `{cfg.graph.uri}` (database `{cfg.graph.database_name}`)" if cfg.graph.uri
         else f"the embedded graph in `{cfg.graph.home}`")
st.caption(f"Knowledge graph of users, items, brands and categories — {where}.")

counts = ui.graph_counts()

NODE_TYPES = ["User", "Item", "Category", "Brand"]
BEHAVIOURS = list(data.BEHAVIOURS)  # every behaviour type of the schema
ITEM_ITEM = ["ALSO_BOUGHT", "ALSO_VIEWED", "BOUGHT_TOGETHER", "SIMILAR_TO"]

cols = st.columns(6)
cols[0].metric("Users", f"{counts.get('User', 0):,}")
cols[1].metric("Items", f"{counts.get('Item', 0):,}")
cols[2].metric("Categories", f"{counts.get('Category', 0):,}")
cols[3].metric("Brands", f"{counts.get('Brand', 0):,}")
cols[4].metric("Behaviour edges", f"{sum(counts.get(b, 0) for b in BEHAVIOURS):,}")
cols[5].metric("Recommendations", f"{counts.get('RECOMMENDED', 0):,}",
               help="(:User)-[:RECOMMENDED]->(:Item) edges written by `kgrec recommend`")

node_frame = pd.DataFrame({"type": NODE_TYPES, "count": [counts.get(t, 0) for t in NODE_TYPES]})
rel_types = [t for t in counts if t not in NODE_TYPES]
rel_frame = pd.DataFrame({"type": rel_types, "count": [counts[t] for t in rel_types]})
rel_frame["group"] = rel_frame["type"].map(
    lambda t: "behaviour" if t in BEHAVIOURS else "item–item" if t in ITEM_ITEM
    else "model output" if t == "RECOMMENDED" else "knowledge graph")
rel_frame = rel_frame[rel_frame["count"] > 0]

left, right = st.columns(2)
with left:
    st.subheader("Nodes per type")
    st.altair_chart(
        alt.Chart(node_frame).mark_bar().encode(
            x=alt.X("count:Q", title="nodes"), y=alt.Y("type:N", sort="-x", title=None),
            color=alt.Color("type:N", legend=None,
                            scale=alt.Scale(domain=list(ui.NODE_COLOURS),
                                            range=[b for _, b in ui.NODE_COLOURS.values()])),
            tooltip=["type", alt.Tooltip("count:Q", format=",")]),
        width="stretch")
with right:
    st.subheader("Relationships per type")
    st.altair_chart(
        alt.Chart(rel_frame).mark_bar().encode(
            x=alt.X("count:Q", title="relationships", scale=alt.Scale(type="symlog")),
            y=alt.Y("type:N", sort="-x", title=None),
            color=alt.Color("group:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=["type", "group", alt.Tooltip("count:Q", format=",")]),
        width="stretch")

# --- the dataset (from the event store the ETL keeps beside the graph) ---------------------------
st.subheader("The dataset")
events = data.events()
if events is None or events.empty:
    st.caption("No event store beside this graph (it is written by `kgrec etl load`); the "
               "numbers above come from the graph itself.")
else:
    ev = events
    per_type = ev.groupby("event_type").size().rename("events").reset_index()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Events", f"{len(ev):,}")
    if "split" in ev.columns and ev["split"].notna().any():
        split = ev["split"].fillna("none").value_counts()
        c2.metric("Train / test", f"{split.get('train', 0):,} / {split.get('test', 0):,}",
                  help="the split the source data carries (amazon-kg: the published "
                       "PGPR/JRL split)")
    if "ts" in ev.columns and ev["ts"].notna().any():
        c3.metric("From", ui.fmt_ts(ev["ts"].min()))
        c4.metric("To", ui.fmt_ts(ev["ts"].max()))
    per_user = ev.groupby("user_id").size()
    per_item = ev.groupby("item_id").size()
    d1, d2, d3 = st.columns(3)
    with d1:
        st.markdown("**Events per type**")
        st.altair_chart(alt.Chart(per_type).mark_bar().encode(
            x=alt.X("events:Q"), y=alt.Y("event_type:N", title=None, sort="-x"),
            tooltip=["event_type", alt.Tooltip("events:Q", format=",")]), width="stretch")
    with d2:
        st.markdown("**Interactions per user**")
        hist = per_user.clip(upper=50).value_counts().sort_index().rename("users")
        hist = hist.rename_axis("interactions").reset_index()
        st.altair_chart(alt.Chart(hist).mark_bar().encode(
            x=alt.X("interactions:O", title="interactions (50 = 50 or more)",
                    axis=alt.Axis(values=[5, 10, 20, 30, 40, 50])),
            y=alt.Y("users:Q"),
            tooltip=["interactions", alt.Tooltip("users:Q", format=",")]), width="stretch")
    with d3:
        st.markdown("**Item popularity (long tail)**")
        ranked = per_item.sort_values(ascending=False).reset_index(drop=True)
        tail = pd.DataFrame({"item rank": ranked.index + 1, "interactions": ranked.values})
        if len(tail) > 2000:  # the curve, not every item
            keep = sorted(set(range(0, len(tail), max(1, len(tail) // 1000))) | {len(tail) - 1})
            tail = tail.iloc[keep]
        st.altair_chart(alt.Chart(tail).mark_line().encode(
            x=alt.X("item rank:Q", scale=alt.Scale(type="log")),
            y=alt.Y("interactions:Q", scale=alt.Scale(type="log")),
            tooltip=["item rank", "interactions"]), width="stretch")

for col, title, top, label in zip(st.columns(2), ("Largest categories", "Largest brands"),
                                  (data.top_categories, data.top_brands), ("Category", "Brand")):
    with col:
        st.markdown(f"**{title}**")
        st.altair_chart(alt.Chart(top(15)).mark_bar(color=ui.NODE_COLOURS[label][1]).encode(
            x=alt.X("items:Q"), y=alt.Y("name:N", sort="-x", title=None),
            tooltip=["name", alt.Tooltip("items:Q", format=",")]), width="stretch")

# --- trained runs ---------------------------------------------------------------------------
st.subheader("Trained runs")
runs = data.runs()
if runs.empty:
    ui.empty_state(f"No trained run yet under `{data.runs_dir()}`. Train the attention model "
                   "(and baselines to compare with):", ui.TRAIN_CMD,
                   icon=":material/model_training:")
else:
    headline = ["model", "ndcg@10", "recall@20", "hr@10", "mrr@10", "coverage@20",
                "cold_item_recall@20", "search.reranked.ndcg@10", "train_seconds"]
    show = runs.set_index("run")[[c for c in headline if c in runs.columns]]
    st.dataframe(show, width="stretch",
                 column_config={c: st.column_config.NumberColumn(c, format="%.4f")
                                for c in show.columns if c not in ("model", "train_seconds")})
    metric_cols = [c for c in ("ndcg@10", "recall@20") if c in runs.columns]
    if metric_cols:
        long = runs.melt(id_vars=["run"], value_vars=metric_cols, var_name="metric",
                         value_name="value").dropna()
        st.altair_chart(alt.Chart(long).mark_bar().encode(
            x=alt.X("run:N", title=None, sort="-y"), y=alt.Y("value:Q"),
            xOffset="metric:N", color=alt.Color("metric:N", title=None),
            tooltip=["run", "metric", alt.Tooltip("value:Q", format=".4f")]), width="stretch")
    st.page_link("app_pages/quality.py", label="All metrics, cold start and popularity bias",
                 icon=":material/monitoring:")
