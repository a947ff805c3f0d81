"""Shared page pieces: empty states (each names the command to run), formatting, the
explanation-path graph (Graphviz DOT, rendered client-side by `st.graphviz_chart`)."""

from __future__ import annotations

import datetime as dt
import math
import re
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

import streamlit as st

from core.errors import GraphUnavailable, KgrecError
from dashboard import data

LOAD_CMD = "kgrec demo    # or: kgrec etl load --format amazon-kg data/amazon_beauty"
TRAIN_CMD = "kgrec train --model hgt --run beauty-hgt"
RECOMMEND_CMD = "kgrec recommend --run beauty-hgt --all --k 20 --write-graph"
SEARCH_CMD = "kgrec search-eval --run beauty-hgt"

# node type -> (fill, border); a palette that stays distinguishable for colour-blind readers
NODE_COLOURS = {
    "User": ("#dbe7f5", "#4c78a8"),
    "Item": ("#dcefd9", "#59a14f"),
    "Brand": ("#fde5cc", "#f28e2b"),
    "Category": ("#eadcf0", "#b07aa1"),
}
TARGET_BORDER = "#e15759"


# --- empty states ------------------------------------------------------------------------------

def empty_state(message: str, command: str | None = None, icon: str = ":material/info:") -> None:
    st.info(message, icon=icon)
    if command:
        st.code(command, language="bash")


def graph_counts() -> dict[str, int]:
    """The graph's counts, or stop the page with an explanation: unreachable / empty."""
    try:
        counts = data.counts()
    except GraphUnavailable as e:
        data.reset_store()
        st.error(f"The graph cannot be reached: {md(e)}", icon=":material/cloud_off:")
        st.markdown("Start the embedded graph, or check `NEO4J_URI`, `NEO4J_USER` and "
                    "`NEO4J_PASSWORD` if you use Neo4j:")
        st.code("kgrec graph start", language="bash")
        st.stop()
    except KgrecError as e:
        st.error(md(e))
        st.stop()
    if not (counts.get("User") and counts.get("Item")):
        empty_state("The graph is empty: no users or items are loaded yet. Load the bundled "
                    "Amazon Beauty data (the whole demo pipeline):", LOAD_CMD,
                    icon=":material/database:")
        st.stop()
    return counts


# --- formatting ---------------------------------------------------------------------------------

def fmt_ts(ts: Any) -> str:
    """Seconds (or milliseconds) since the epoch -> YYYY-MM-DD; '' when unknown."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return ""
    try:
        v = float(ts)
    except (TypeError, ValueError):
        return str(ts)
    if v < 0:
        return ""
    if v > 1e11:  # milliseconds
        v /= 1000
    return dt.datetime.fromtimestamp(v, tz=dt.UTC).strftime("%Y-%m-%d")


def short(text: Any, n: int = 60) -> str:
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def item_label(item_id: str, title: Any) -> str:
    t = short(title, 70)
    return f"{t} ({item_id})" if t else str(item_id)


def page_url(page: str, **params: str) -> str:
    """A relative link to another page of the app with query parameters."""
    q = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return f"./{page}" + (f"?{q}" if q else "")


def item_links(ids: Iterable[Any]) -> list[str]:
    return [page_url("items", item=i) for i in ids]


def user_links(ids: Iterable[Any]) -> list[str]:
    return [page_url("users", user=u) for u in ids]


# Link columns that show the id and open its page (LinkColumn shows the regex's first group).
ITEM_LINK = st.column_config.LinkColumn("item", display_text=r"item=([^&]*)",
                                        help="opens the item explorer")
USER_LINK = st.column_config.LinkColumn("user", display_text=r"user=([^&]*)",
                                        help="opens the user explorer")


def legend() -> None:
    chips = " ".join(
        f"<span style='background:{fill};border:2px solid {border};border-radius:10px;"
        f"padding:1px 8px;margin-right:6px;font-size:0.85em'>{label}</span>"
        for label, (fill, border) in NODE_COLOURS.items())
    chips += (f"<span style='border:3px solid {TARGET_BORDER};border-radius:10px;"
              "padding:1px 8px;font-size:0.85em'>recommended item</span>")
    st.markdown(chips, unsafe_allow_html=True)


# --- the explanation graph -----------------------------------------------------------------------

def _dot_id(node_type: str, node_id: str) -> str:
    return '"' + f"{node_type}:{node_id}".replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _wrap(text: str, width: int = 24, lines: int = 2) -> str:
    parts = textwrap.wrap(text, width) or [text]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = short(parts[-1] + " …", width)
    return "\n".join(parts)


def explanation_dot(paths: Sequence[data.PathView], user_id: str, item_id: str) -> str:
    """One graph of all `paths` (user on the left, the recommended item on the right), nodes
    coloured by type, edges labelled by relationship; items and users link to their pages."""
    nodes: dict[str, tuple[str, str, str]] = {}
    edges: dict[tuple[str, str, str], None] = {}
    for p in paths:
        ids = [_dot_id(t, i) for t, i, _ in p.nodes]
        for (t, i, label), nid in zip(p.nodes, ids):
            if nid not in nodes or not nodes[nid][2]:
                nodes[nid] = (t, i, label)
        for a, b, rel in zip(ids, ids[1:], p.rels):
            edges[(a, b, rel)] = None
    user_nid, item_nid = _dot_id("User", user_id), _dot_id("Item", item_id)
    lines = [
        "digraph explanation {",
        '  graph [rankdir=LR, bgcolor="transparent", nodesep=0.2, ranksep=0.45, '
        'fontname="Helvetica"];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, '
        'penwidth=1.5, margin="0.12,0.06"];',
        '  edge [fontname="Helvetica", fontsize=10, color="#888888", fontcolor="#555555", '
        'arrowsize=0.6];',
    ]
    for nid, (t, i, label) in nodes.items():
        fill, border = NODE_COLOURS.get(t, ("#eeeeee", "#999999"))
        text = _wrap(str(label or i))
        kind = "user" if t == "User" else t.lower()
        title = (label if i.startswith("group:")
                 else f"{t} {i}" + (f": {label}" if label and label != i else ""))
        attrs = [f"label={_dot_str(text)}", f'fillcolor="{fill}"', f'color="{border}"',
                 f"tooltip={_dot_str(title)}"]
        if nid == item_nid:
            attrs += [f'color="{TARGET_BORDER}"', "penwidth=3"]
        if nid == user_nid:
            attrs += ["penwidth=3"]
        if i.startswith("group:"):  # several customers: nothing to open
            pass
        elif t == "Item":
            attrs.append(f"URL={_dot_str(page_url('items', item=i))}")
            attrs.append('target="_self"')
        elif t == "User" and nid != user_nid:
            attrs.append(f"URL={_dot_str(page_url('users', user=i))}")
            attrs.append('target="_self"')
        lines.append(f"  {nid} [{', '.join(attrs)}, class={_dot_str(kind)}];")
    for a, b, rel in edges:
        lines.append(f"  {a} -> {b} [label={_dot_str(rel.lower().replace('_', ' '))}];")
    if user_nid in nodes:
        lines.append(f"  {{ rank=min; {user_nid}; }}")
    if item_nid in nodes:
        lines.append(f"  {{ rank=max; {item_nid}; }}")
    lines.append("}")
    return "\n".join(lines)


# Catalogue text (titles, brands, categories, ids, whatever a file held) is data, never markup.
# Streamlit renders Markdown (GitHub-flavoured, plus emoji shortcodes, :color[...] directives and
# $math$) in st.markdown, headings, captions, alerts, st.table cells, widget and button labels,
# tabs and help tooltips; every piece of data that goes into one of those passes through `md()`.
# Elements that never parse (st.dataframe cells, st.text, selectbox options, chart labels) take
# the raw text.
_MD_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
# Streamlit's Markdown also rewrites *text* after parsing, where a backslash no longer counts:
# bare URLs and e-mail addresses become links (GFM autolink literals) and :name: becomes an
# emoji. An invisible word joiner after ':', '@' and 'www' breaks those patterns; the text
# reads the same.
_WJ = "\u2060"
_AUTO = re.compile(r"(:|@|www(?=\.))", re.IGNORECASE)


def md(text: Any) -> str:
    """Plain text made inert inside Markdown (a heading, a sentence, a table cell, a label):
    whitespace collapsed, every ASCII punctuation character backslash-escaped (no link, image,
    emphasis, HTML, math or directive can start), autolinks and emoji shortcodes broken by an
    invisible word joiner."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    s = _AUTO.sub(lambda m: m.group(1) + _WJ, " ".join(str(text).split()))
    return _MD_PUNCT.sub(r"\\\1", s)


def md_link(label: Any, url: str) -> str:
    return f"[{md(label)}]({url})"


def md_num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, fmt)


def reason_markdown(parts: Sequence[tuple[str, bool]]) -> str:
    """An explanation sentence (`graph.explain.Path.parts`) as Markdown: every piece escaped,
    the catalogue names in italics."""
    def piece(text: str, name: bool) -> str:
        inner = f"*{md(text)}*" if name else md(text)
        return (" " if text[:1].isspace() else "") + inner + (" " if text[-1:].isspace() else "")

    return "".join(piece(text, name) for text, name in parts)


def unique(seq: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(seq))
