"""Cypher console: read-only queries against the graph, as a table (graph/console.py)."""

import streamlit as st

from core.errors import GraphError, GraphUnavailable, QueryRejected
from dashboard import data
from graph import console
from graph.queries import CONSOLE_EXAMPLES as EXAMPLES

st.title("Cypher console")
st.caption("Read-only. Write clauses (CREATE, MERGE, DELETE, SET, REMOVE, DROP, LOAD CSV, "
           "FOREACH, CALL … IN TRANSACTIONS), administration commands and write procedures are "
           "refused before anything is sent; queries run in READ mode with a row limit and a "
           "time limit.")

try:
    store = data.store()
except GraphUnavailable as e:
    data.reset_store()
    st.error(f"The graph cannot be reached: {e}", icon=":material/cloud_off:")
    st.code("kgrec graph start", language="bash")
    st.stop()


def _use_example() -> None:
    name = st.session_state.get("console_example")
    if name in EXAMPLES:
        st.session_state["cypher"] = EXAMPLES[name]


if "cypher" not in st.session_state:
    st.session_state["cypher"] = EXAMPLES["Largest categories"]
st.selectbox("Examples", list(EXAMPLES), index=None, key="console_example",
             placeholder="load an example query", on_change=_use_example)

with st.form("console_form", border=False):
    text = st.text_area("Cypher", key="cypher", height=160,
                        help="One read-only statement. $parameters are not supported here.")
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    row_limit = c1.number_input("Row limit", min_value=1, max_value=10_000,
                                value=console.DEFAULT_ROW_LIMIT, step=100)
    timeout_s = c2.number_input("Time limit (s)", min_value=1, max_value=120,
                                value=int(console.DEFAULT_TIMEOUT_S))
    submitted = c3.form_submit_button("Run", type="primary", icon=":material/play_arrow:")

if submitted:
    try:
        st.session_state["console_result"] = console.run_read_only(
            store, text, row_limit=int(row_limit), timeout_s=float(timeout_s))
        st.session_state["console_error"] = None
    except QueryRejected as e:
        st.session_state["console_result"] = None
        st.session_state["console_error"] = ("refused", str(e))
    except GraphError as e:
        st.session_state["console_result"] = None
        st.session_state["console_error"] = ("failed", str(e))

err = st.session_state.get("console_error")
res = st.session_state.get("console_result")
if err:
    kind, message = err
    if kind == "refused":
        st.error(f"Not sent — {message}", icon=":material/block:")
    else:
        st.error(message, icon=":material/error:")
elif res is not None:
    n = len(res.frame)
    more = f" — cut at the row limit ({res.row_limit:,}); add LIMIT or raise it" \
        if res.truncated else ""
    st.caption(f"{n:,} row{'s' if n != 1 else ''} in {res.seconds * 1000:,.0f} ms{more}")
    if res.frame.columns.empty:
        st.info("The query returned no columns.")
    else:
        st.dataframe(res.frame, width="stretch", hide_index=True)
