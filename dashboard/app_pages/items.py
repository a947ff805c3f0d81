"""Item explorer: an item's brand and categories, similar and bought-together items, and who
buys it. The URL (?item=) reproduces the view."""

import pandas as pd
import streamlit as st

from dashboard import data, ui

st.title("Item explorer")
counts = ui.graph_counts()
qp = st.query_params

if "item_q" not in st.session_state:
    st.session_state["item_q"] = qp.get("item", "")
text = st.text_input("Find an item", key="item_q",
                     placeholder="an item id (ASIN) or words of its title",
                     help="An exact id opens the item; otherwise pick from the matches.").strip()

selected: str | None = None
if text:
    if data.item(text) is not None:
        selected = text
    else:
        found = data.find_items(text, limit=25)
        if len(found) == 1:
            selected = str(found["id"].iloc[0])
        elif len(found):
            labels = dict(zip(found["id"], found["title"]))
            selected = st.selectbox(f"{len(found)} items match “{ui.md(text)}”",
                                    list(found["id"]),
                                    index=None, placeholder="pick an item",
                                    format_func=lambda i: ui.item_label(i, labels.get(i)))
        else:
            st.warning(f"No item id starts with, and no title contains, “{ui.md(text)}”.",
                       icon=":material/search_off:")

if not selected:
    if "item" in qp:
        del qp["item"]
    st.caption("Tip: item ids also open from the user explorer and the search page.")
    st.stop()

if qp.get("item") != selected:
    qp["item"] = selected

item = data.item(selected) or {"id": selected}
st.subheader(ui.md(item.get("title") or selected))
edge_counts = data.item_edge_counts(selected)
price = item.get("price")
paths = item.get("categories") or []
left, right = st.columns([3, 1])
with left:
    st.markdown(f"**Item id:** {ui.md(selected)}  \n**Brand:** {ui.md(item.get('brand')) or '—'}"
                "  \n**Categories:** "
                + ("  \n".join(" › ".join(ui.md(c) for c in p) for p in paths) or "—"))
with right:
    st.metric("Price", f"{price:,.2f}" if isinstance(price, (int, float)) else "—")
    st.metric("Users", f"{sum(v for k, v in edge_counts.items() if k != 'RECOMMENDED'):,}",
              help=", ".join(f"{k.lower()}: {v:,}" for k, v in sorted(edge_counts.items()))
              or None)
if edge_counts.get("RECOMMENDED"):
    st.caption(f"Recommended to {edge_counts['RECOMMENDED']:,} users (all runs in the graph).")

related = data.item_related(selected)
also = data.item_also_interacted(selected, 10)
users = data.item_users(selected)


def _item_table(frame: pd.DataFrame, extra: dict[str, str]) -> None:
    view = pd.DataFrame({"item": ui.item_links(frame["item_id"]),
                         "title": frame["title"].map(lambda t: ui.short(t, 80)),
                         "brand": frame["brand"]})
    for col, label in extra.items():
        view[label] = frame[col].values
    st.dataframe(view, hide_index=True, width="stretch", column_config={"item": ui.ITEM_LINK})


left, right = st.columns(2)
with left:
    st.markdown("#### Frequently bought together")
    bt = related[related["relation"] == "BOUGHT_TOGETHER"]
    if bt.empty:
        st.caption("No bought-together items in the catalogue data.")
    else:
        _item_table(bt, {})
    st.markdown("#### Similar items")
    sim = related[related["relation"] == "SIMILAR_TO"]
    if not sim.empty:
        st.caption("By the trained model's embeddings (SIMILAR_TO, `kgrec recommend "
                   "--similar-items`).")
        _item_table(sim.sort_values("rank"), {"score": "score"})
    other = related[related["relation"].isin(["ALSO_BOUGHT", "ALSO_VIEWED"])]
    if other.empty and sim.empty:
        st.caption("No similar items: neither catalogue relations nor SIMILAR_TO edges.")
    elif not other.empty:
        st.caption("From the catalogue: customers also bought / also viewed.")
        _item_table(other.assign(rel=other["relation"].str.lower().str.replace("_", " ")),
                    {"rel": "relation"})
with right:
    st.markdown("#### Who buys it")
    if users.empty:
        st.caption("No user has a behaviour edge to this item.")
    else:
        view = pd.DataFrame({
            "user": ui.user_links(users["user_id"]), "behaviour": users["behaviour"].str.lower(),
            "times": users["count"], "last": users["last_ts"].map(ui.fmt_ts),
            "rating": users["rating"], "split": users["split"],
        }).dropna(axis=1, how="all")
        st.dataframe(view, hide_index=True, width="stretch", column_config={
            "user": ui.USER_LINK})
    st.markdown("#### Its buyers also bought")
    if also.empty:
        st.caption("No other items in these users' histories.")
    else:
        _item_table(also, {"users": "shared users"})
