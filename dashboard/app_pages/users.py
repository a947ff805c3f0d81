"""User explorer: find a user, their history by behaviour, their recommendations with reasons,
and the explanation paths as a graph. The URL (?user=&run=&k=&item=) reproduces the view."""

import pandas as pd
import streamlit as st

from dashboard import data, ui

st.title("User explorer")
counts = ui.graph_counts()
qp = st.query_params


def _pick(uid: str) -> None:
    st.session_state["user_q"] = uid
    for key in ("item", "run"):
        if key in st.query_params:
            del st.query_params[key]


if "user_q" not in st.session_state:
    st.session_state["user_q"] = qp.get("user", "")
text = st.text_input("Find a user", key="user_q", placeholder="a user id or its first characters",
                     help="Type a full id, or a prefix and pick from the matches.").strip()

selected: str | None = None
if text:
    if data.user_summary(text) is not None:
        selected = text
    else:
        matches = data.find_users(text, limit=25)
        if len(matches) == 1:
            selected = matches[0]
        elif matches:
            more = " (first 25)" if len(matches) == 25 else ""
            choice = st.selectbox(f"{len(matches)} users start with “{ui.md(text)}”{more}",
                                  matches,
                                  index=None, placeholder="pick a user")
            selected = choice
        else:
            st.warning(f"No user id starts with “{ui.md(text)}”.", icon=":material/person_off:")

if not selected:
    if "user" in qp:
        del qp["user"]
    st.markdown("Or start from one of these users:")
    sample = data.sample_users(8)
    cols = st.columns(4)
    for i, uid in enumerate(sample):
        cols[i % 4].button(ui.md(uid), key=f"sample_{uid}", on_click=_pick, args=(uid,),
                           icon=":material/person:", width="stretch")
    st.stop()

if qp.get("user") != selected:
    qp["user"] = selected

summary = data.user_summary(selected) or {"id": selected, "edges": {}}
edges = summary["edges"]
st.subheader(f"User {ui.md(selected)}")
mcols = st.columns(len(data.BEHAVIOURS) + 1)
for i, b in enumerate(data.BEHAVIOURS):  # every behaviour type of the schema
    mcols[i].metric(b.lower(), f"{edges.get(b, 0):,}")
mcols[-1].metric("recommended", f"{edges.get('RECOMMENDED', 0):,}")
st.caption("Share this view: the address bar holds the user, run and item shown.")


def recommendations_tab() -> None:
    recs = data.user_recommendations(selected)
    if recs.empty:
        runs = data.runs()
        if runs.empty:
            ui.empty_state("No trained run yet, so no recommendations. Train a model, then write "
                           "its top-K back to the graph:",
                           ui.TRAIN_CMD + "\n" + ui.RECOMMEND_CMD, icon=":material/model_training:")
        else:
            ui.empty_state("This user has no recommendations in the graph. Write a run's top-K "
                           "back to the graph:", ui.RECOMMEND_CMD, icon=":material/recommend:")
    else:
        run_ids = ui.unique(recs["run_id"].astype(str))
        run_models = dict(zip(recs["run_id"].astype(str), recs["model"]))
        default_run = qp.get("run") if qp.get("run") in run_ids else run_ids[-1]
        c1, c2 = st.columns([3, 1])
        run = c1.selectbox("Run", run_ids, index=run_ids.index(default_run),
                           format_func=lambda r: f"{r} ({run_models.get(r) or 'model ?'})")
        mine = recs[recs["run_id"].astype(str) == run].sort_values("rank")
        max_k = max(1, len(mine))
        k_default = min(int(qp.get("k", 10)) if str(qp.get("k", "10")).isdigit() else 10, max_k)
        k = c2.number_input("Top K", min_value=1, max_value=max_k, value=max(1, k_default))
        if qp.get("run") != run:
            qp["run"] = run
        if str(k) != qp.get("k", "10"):
            qp["k"] = str(k)
        top = mine.head(int(k)).reset_index(drop=True)

        reasons: list[str] = []
        path_sets: list[list[data.PathView] | None] = []
        with st.spinner("Finding explanation paths…"):
            for item_id in top["item_id"]:
                paths = data.explanations(selected, item_id, run_id=run)
                path_sets.append(paths)
                reasons.append(ui.reason_markdown(paths[0].parts) if paths
                               else "" if paths is None
                               else ":gray[no path of length ≤ 4: the model's score alone]")
        # a static table: 10 rows read better with wrapped text, and it draws fast
        st.table(pd.DataFrame({
            "rank": top["rank"].astype(int),
            "item": [ui.md_link(i, u) for i, u in zip(top["item_id"],
                                                      ui.item_links(top["item_id"]))],
            "title": top["title"].map(lambda t: ui.md(ui.short(t, 70))),
            "brand": top["brand"].map(ui.md),
            "score": top["score"].map(lambda v: ui.md_num(v, ".4f")),
            "why (the best explanation path)": reasons,
        }), hide_index=True, border="horizontal")
        if all(p is None for p in path_sets):
            ui.empty_state("Explanations are not available: they come from `graph/explain.py` "
                           "(`kgrec explain USER ITEM`), which is not installed in this "
                           "checkout yet.", None)
        else:
            st.markdown("#### Why? Explanation paths")
            items = list(top["item_id"])
            titles = dict(zip(top["item_id"], top["title"]))
            explained = [i for i, p in zip(items, path_sets) if p]
            default_item = (qp.get("item") if qp.get("item") in items
                            else explained[0] if explained else items[0])
            item_id = st.selectbox(
                "Recommendation to explain", items, index=items.index(default_item),
                format_func=lambda i: f"#{items.index(i) + 1} · {ui.item_label(i, titles.get(i))}")
            if qp.get("item") != item_id:
                qp["item"] = item_id
            paths = path_sets[items.index(item_id)] or []
            if not paths:
                st.info("No path of length ≤ 4 links this user to this item through the "
                        "knowledge graph (the model's score alone put it here).",
                        icon=":material/route:")
            else:
                ui.legend()
                st.graphviz_chart(ui.explanation_dot(paths, selected, item_id),
                                  width="stretch")
                st.caption("Hover a node for its full name; click an item or user to open "
                           "its page; use the full-screen button to zoom.")
                for i, p in enumerate(paths, 1):
                    hops = " → ".join([p.nodes[0][0]] + [
                        f"{rel.lower()} → {t}" for rel, (t, _, _) in zip(p.rels, p.nodes[1:])])
                    st.markdown(f"**{i}.** {ui.reason_markdown(p.parts)}  \n"
                                f":gray[{hops}]")


def history_tab() -> None:
    hist = data.user_history(selected)
    if hist.empty:
        st.info("This user has no behaviour edges in the graph.")
    else:
        behaviours = ui.unique(hist["behaviour"])
        tabs = st.tabs([f"{b.lower()} ({(hist['behaviour'] == b).sum()})" for b in behaviours])
        for b, tab in zip(behaviours, tabs):
            with tab:
                h = hist[hist["behaviour"] == b]
                view = pd.DataFrame({
                    "item": ui.item_links(h["item_id"]),
                    "title": h["title"].map(lambda t: ui.short(t, 90)),
                    "brand": h["brand"],
                    "price": h["price"],
                    "times": h["count"],
                    "first": h["first_ts"].map(ui.fmt_ts),
                    "last": h["last_ts"].map(ui.fmt_ts),
                    "rating": h["rating"],
                    "split": h["split"],
                })
                view = view.dropna(axis=1, how="all")
                st.dataframe(view, hide_index=True, width="stretch", column_config={
                    "price": st.column_config.NumberColumn("price", format="%.2f"),
                    "item": ui.ITEM_LINK,
                })


# on_change="rerun": only the open tab is rendered (its `.open` tells which one)
rec_tab, hist_tab = st.tabs([":material/recommend: Recommendations", ":material/history: History"],
                            key="user_tab", on_change="rerun")
if rec_tab.open:
    with rec_tab:
        recommendations_tab()
if hist_tab.open:
    with hist_tab:
        history_tab()
