"""Catalogue text is shown as text, never as Markdown or HTML (issue 11 item 7).

A brand, titles, a category and a user id made of Markdown, HTML, a bare URL, an e-mail
address, an emoji shortcode, a colour directive and math are loaded through the real ETL (the
amazon-kg reader) into the dashboard's graph, with recommendations written back; the user and
item pages (AppTest) must show them as text. Every string the pages hand to an element that
Streamlit renders as Markdown (st.markdown, captions, headings, alerts, st.table cells, labels
of buttons, selects, tabs and metrics, help tooltips) is parsed with a CommonMark parser: no
link, image or HTML may come out of it, and its text must not hold what Streamlit's renderer
turns into links, emoji or directives after parsing (GFM autolink literals, :shortcodes:,
:color[...]); unescaped `$` would start math. The evil strings themselves must be readable on
the page.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pytest
from dash_fixtures import RUN, app
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from dashboard import ui

BRAND = "[x](http://example.org) ![i](http://example.org/p.png)"
TITLE_1 = ("**Bold** <b>html</b> <script>alert(1)</script> :smile: www.example.org "
           "mail@example.org $x^2$ :red[red] [t](https://example.org/t)")
TITLE_2 = "Cream ![img](http://example.org/i.png) <img src=x onerror=alert(1)> _it_ `code`"
CATEGORY = "[c](http://example.org) *cat* :red[cat] <i"  # no '>' or '|': they split paths
USER = "[u](http://example.org/u)"
ITEM_1, ITEM_2 = "B0EVIL0001", "B0EVIL0002"
WJ = "\u2060"  # the word joiner dashboard.ui.md puts after ':', '@' and 'www'

# what Streamlit's Markdown renderer rewrites after parsing (its regular expressions for GFM
# autolink literals), and the data's emoji shortcode and colour directive (the page's own
# :material/...: icons and :gray[...] notes are markup on purpose)
AUTOLINK = re.compile(r"(https?://|www(?=\.))", re.IGNORECASE)
EMAIL = re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+")
SHORTCODE = re.compile(r":smile:")
DIRECTIVE = re.compile(r":red\[")
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _write_gz(path: Path, frame: pd.DataFrame) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        frame.to_csv(f, index=False)


def _evil_dataset(tmp: Path) -> Path:
    d = tmp / "evil"
    d.mkdir()
    _write_gz(d / "interactions.csv.gz", pd.DataFrame(
        {"user_id": [USER], "item_id": [ITEM_1], "split": ["train"]}))
    pd.DataFrame({"item_id": [ITEM_1, ITEM_2], "brand": [BRAND, BRAND],
                  "categories": [f"Beauty | {CATEGORY}"] * 2}).to_csv(d / "items.csv",
                                                                     index=False)
    _write_gz(d / "items_titles.csv.gz", pd.DataFrame({
        "item_id": [ITEM_1, ITEM_2], "title": [TITLE_1, TITLE_2], "price": [1.0, 2.0],
        "category_path": [f"Beauty > {CATEGORY}"] * 2}))
    _write_gz(d / "item_relations.csv.gz", pd.DataFrame(
        {"item_id": [ITEM_1], "relation": ["bought_together"], "related_item_id": [ITEM_2]}))
    return d


@pytest.fixture
def evil(dash, tmp_path):
    """The evil catalogue loaded on top of the dashboard's graph (through the real reader and
    loader), the user's recommendations written back; `dash` rebuilds the graph afterwards."""
    from etl.load import fingerprint, load_tables
    from etl.quarantine import Quarantine
    from etl.readers import read
    from graph.recommendations import write_recommendations

    path = _evil_dataset(tmp_path)
    quarantine = Quarantine()
    tables = read("amazon-kg", path, quarantine)
    load_tables(dash.store, tables, home=Path(dash.cfg.graph.home), source="evil",
                fingerprint=fingerprint("amazon-kg", path, False, dash.store.cfg.batch_size))
    got = dash.store.read("MATCH (i:Item {id: $id})-[:HAS_BRAND]->(b:Brand) "
                          "RETURN i.title AS title, b.name AS brand", id=ITEM_2)
    assert got == [{"title": TITLE_2, "brand": BRAND}], got  # loaded as it is, nothing lost
    recs = pd.DataFrame({"user_id": [USER, USER], "item_id": [ITEM_2, dash.items[0]],
                         "score": [0.9, 0.5], "rank": [1, 2]})
    assert write_recommendations(dash.store, recs, model="hgt", run_id=RUN, users=[USER]) == 2
    return dash


def _markdown_strings(at: AppTest) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    out: list[str] = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning",
                 "error", "success"):
        for e in at.get(kind):
            if getattr(e.proto, "allow_html", False):  # the page's own HTML (the legend)
                assert "example" not in str(e.value), e.value
                continue
            out.append(str(e.value))
    for kind in ("button", "selectbox", "text_input", "number_input", "metric", "tab"):
        for e in at.get(kind):
            out += [s for s in (getattr(e, "label", None), getattr(e, "help", None)) if s]
    for t in at.table:
        frame = t.value
        out += [str(c) for c in frame.columns] + [str(v) for v in frame.to_numpy().ravel()]
    return out


def _rendered_text(source: str) -> str:
    """The text a CommonMark renderer shows for `source`; AssertionError when it would show a
    link (other than the app's own links to its pages, "./items?item=..."), an image or HTML."""
    parts = []
    for block in PARSER.parse(source):
        assert not block.type.startswith("html"), (block.type, source)
        for tok in block.children or []:
            assert tok.type not in ("image", "html_inline"), (tok.type, source)
            if tok.type == "link_open":
                assert re.fullmatch(r"\./(items|users)\?[a-z]+=[^:()\s]*", tok.attrs["href"]), source
            if tok.type in ("text", "text_special", "code_inline"):
                parts.append(tok.content)
    return "".join(parts)


def _check_inert(at: AppTest) -> str:
    """All Markdown of the page is inert; returns its rendered text (word joiners removed)."""
    shown = []
    for source in _markdown_strings(at):
        text = _rendered_text(source)
        for pattern in (AUTOLINK, EMAIL, SHORTCODE, DIRECTIVE):
            assert not pattern.search(text), (pattern.pattern, source)
        assert not re.search(r"(?<!\\)\$", source), ("unescaped $ starts math", source)
        shown.append(text.replace(WJ, ""))
    return "\n".join(shown)


def test_item_page_shows_catalogue_text_as_text(evil):
    at = app("items", item=ITEM_2)
    shown = _check_inert(at)
    assert TITLE_2 in [t.replace(WJ, "") for t in map(_rendered_text,
                                                      (str(h.value) for h in at.subheader))]
    assert f"Brand: {BRAND}" in shown
    assert CATEGORY in shown
    together = [d.value for d in at.dataframe if "title" in d.value.columns]
    # a plain-text cell: the title as it is (shortened to 80 characters)
    assert any(ui.short(TITLE_1, 80) in set(d["title"]) for d in together)


def test_user_page_shows_catalogue_text_as_text(evil):
    at = app("users", user=USER, run=RUN)
    shown = _check_inert(at)
    assert f"User {USER}" in shown
    recs = at.table[0].value
    cells = {c: [_rendered_text(str(v)).replace(WJ, "") for v in recs[c]] for c in recs.columns}
    assert cells["title"][0] == ui.short(TITLE_2, 70) and cells["brand"][0] == BRAND
    why = cells["why (the best explanation path)"][0]
    assert TITLE_1 in why and TITLE_2 in why  # "You reviewed TITLE_1; ... with TITLE_2."
    assert TITLE_1 in shown  # the numbered reasons under the graph


def test_searched_text_is_shown_as_text(evil):
    for page, key in (("users", "user"), ("items", "item")):
        at = app(page, **{key: "[nobody](http://example.org) :smile:"})
        shown = _check_inert(at)
        assert "[nobody](http://example.org) :smile:" in shown, page
