"""kgrec dashboard: `kgrec dashboard` (or `streamlit run dashboard/app.py`).

This file only builds the navigation; each page is a module under dashboard/app_pages/ and
reads through dashboard/data.py (cached) -> graph/views.py, gnn/ (no Cypher in pages).

Why app_pages/ and not pages/: Streamlit (1.67) switches to its legacy "pages directory" mode
whenever a folder named `pages` sits next to the main script; a deep link such as
/users?user=X then runs that page file alone, skipping this navigation and set_page_config.
"""

import logging
import os
import sys
import time
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repository root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# an emoji icon: a ":material/...:" page icon makes the browser fetch it from fonts.gstatic.com
st.set_page_config(page_title="kgrec", page_icon="🕸️", layout="wide")

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:",
            default=True),  # served at "/" (Streamlit ignores a default page's url_path)
    st.Page("app_pages/users.py", title="User explorer", icon=":material/person_search:",
            url_path="users"),
    st.Page("app_pages/items.py", title="Item explorer", icon=":material/inventory_2:",
            url_path="items"),
    st.Page("app_pages/search.py", title="Search", icon=":material/search:", url_path="search"),
    st.Page("app_pages/quality.py", title="Model quality", icon=":material/monitoring:",
            url_path="quality"),
    st.Page("app_pages/console.py", title="Cypher console", icon=":material/terminal:",
            url_path="console"),
]

_t0 = time.perf_counter()
_page = st.navigation(PAGES, position="sidebar")
try:
    _page.run()
finally:
    # KGREC_DASHBOARD_TIMING=1: one log line per script run (bench/bench_dashboard.py reads it)
    if os.environ.get("KGREC_DASHBOARD_TIMING") == "1":
        logging.getLogger("kgrec.dashboard").warning(
            "timing page=%s script_ms=%.1f", _page.url_path or "overview",
            (time.perf_counter() - _t0) * 1000)
