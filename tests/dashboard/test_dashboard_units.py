"""Pure pieces of the dashboard: category paths of an item, the explanation graph's DOT text,
Markdown escaping."""

from __future__ import annotations

from dashboard import ui
from dashboard.data import PathView
from graph.views import category_paths


def test_category_paths_follow_parent_links_within_the_item():
    cats = [
        {"id": "beauty", "name": "Beauty", "parents": []},
        {"id": "makeup", "name": "Makeup", "parents": ["beauty"]},
        {"id": "face", "name": "Face", "parents": ["makeup", "skin care"]},  # skin care: not ours
        {"id": "concealers", "name": "Concealers", "parents": ["face"]},
        {"id": "tools", "name": "Tools", "parents": ["beauty"]},
    ]
    assert category_paths(cats) == [["Beauty", "Makeup", "Face", "Concealers"],
                                    ["Beauty", "Tools"]]
    assert category_paths([]) == []
    # a cycle in the data does not hang
    loop = [{"id": "a", "name": "A", "parents": ["b"]}, {"id": "b", "name": "B", "parents": ["a"]}]
    assert category_paths(loop) == []  # no leaf: every category has a child


def test_explanation_dot_colours_nodes_by_type_and_links_items():
    paths = [
        PathView("same_brand", "You reviewed *X*; *Y* is also by *Acme*.",
                 (("User", "u1", "You"), ("Item", "x", 'X "quoted"'), ("Brand", "acme", "Acme"),
                  ("Item", "y", "Y")), ("REVIEWED", "HAS_BRAND", "HAS_BRAND")),
        PathView("co_purchase", "…",
                 (("User", "u1", "You"), ("Item", "x", "X"),
                  ("User", "group:co:1:x", "2 other customers"), ("Item", "y", "Y")),
                 ("REVIEWED", "chose", "chose")),
    ]
    dot = ui.explanation_dot(paths, "u1", "y")
    assert dot.startswith("digraph explanation {") and dot.rstrip().endswith("}")
    for node_type, (fill, _border) in ui.NODE_COLOURS.items():
        if node_type != "Category":
            assert f'fillcolor="{fill}"' in dot, node_type
    assert dot.count('\n  "Item:x" [') == 1  # a node shared by two paths is drawn once
    assert '\\"quoted\\"' in dot  # quotes escaped in DOT strings
    assert 'URL="./items?item=y"' in dot
    group = [line for line in dot.splitlines() if line.startswith('  "User:group:')][0]
    assert "URL=" not in group and 'tooltip="2 other customers"' in group
    assert "{ rank=min; \"User:u1\"; }" in dot and "{ rank=max; \"Item:y\"; }" in dot
    assert f'color="{ui.TARGET_BORDER}"' in dot
    assert 'label="has brand"' in dot


def test_markdown_escaping_of_titles():
    assert ui.md("50% *off* [new] | $5 `x`") == "50\\% \\*off\\* \\[new\\] \\| \\$5 \\`x\\`"
    # what Streamlit turns into links or emoji after parsing gets an invisible word joiner
    wj = "\u2060"
    assert ui.md("see www.x.org, a@b.co :smile:") == \
        f"see www{wj}\\.x\\.org\\, a\\@{wj}b\\.co \\:{wj}smile\\:{wj}"
    assert ui.md("  two\n lines ") == "two lines"
    assert ui.reason_markdown([("You reviewed ", False), ("*A* [b](u)", True), (".", False)]) \
        == "You reviewed *\\*A\\* \\[b\\]\\(u\\)*\\."
    assert ui.md_link("B00_1", "./items?item=B00_1") == "[B00\\_1](./items?item=B00_1)"
    assert ui.md(None) == "" and ui.md_num(float("nan"), ".2f") == "—"
