"""Cypher console: read-only queries against the graph, as a table (graph/console.py)."""

import streamlit as st

from core.errors import GraphError, GraphUnavailable, QueryRejected
from dashboard import data
from graph import console
from graph.queries import CONSOLE_EXAMPLES as EXAMPLES

st.title("Cypher console")
st.caption("Read-only. Write clauses (CREATE, MERGE, DELETE, SET, REMOVE, DROP, LOAD CSV, "
           "FOREACH, CALL … IN TRANSACTIONS), administration commands (SHOW other than indexes, "
           "constraints, functions and procedures), write procedures and large range() calls are "
           "refused before anything is sent; queries run as a read-only user with a row limit, "
           "and are stopped on the server at the time limit. The recipes of docs/cypher.md run "
           "here: give their $parameters in Parameters.")

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
                        help="One read-only statement; values as $parameters.")
    params_text = st.text_area(
        "Parameters", key="console_params", height=80, placeholder="user_id=A2V5R832QCSOMX\nk=10",
        help="One name=value per line for the statement's $parameters. JSON values are typed "
             '(k=10, flag=true, ids=["a","b"], id="0042" for a number as text); anything else '
             "is text.")
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    row_limit = c1.number_input("Row limit", min_value=1, max_value=10_000,
                                value=console.DEFAULT_ROW_LIMIT, step=100)
    timeout_s = c2.number_input("Time limit (s)", min_value=1, max_value=120,
                                value=int(console.DEFAULT_TIMEOUT_S))
    submitted = c3.form_submit_button("Run", type="primary", icon=":material/play_arrow:")

if submitted:
    try:
        st.session_state["console_result"] = console.run_read_only(
            store, text, params=console.parse_params((params_text or "").splitlines()),
            row_limit=int(row_limit), timeout_s=float(timeout_s))
        st.session_state["console_error"] = None
    except QueryRejected as e:
        st.session_state["console_result"] = None
        st.session_state["console_error"] = ("refused", str(e))
    except GraphUnavailable as e:  # e.g. the embedded server died: the next run reconnects
        data.reset_store()
        st.session_state["console_result"] = None
        st.session_state["console_error"] = ("failed", str(e))
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
        st.dataframe(res.frame.convert_dtypes(), width="stretch", hide_index=True)
