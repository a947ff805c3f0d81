"""The dashboard in a real browser: `kgrec dashboard` (which runs `streamlit run` headless) on
127.0.0.1 and a free port, driven by Playwright with the system's Debian chromium, offline.

Opens the user page of a known user (recommendations, the explanation-path graph, its reasons),
runs a search, and saves screenshots under the test's temporary directory and test-artifacts/.
Every request leaving 127.0.0.1 is blocked and recorded: the pages must not need the internet.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from dash_fixtures import REPO, RUN, K

from dashboard.harness import CHROMIUM, DONE, LOCAL, launch, serve

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is absent: install the Debian package "
                                       "`chromium` to run the real-browser test")


@pytest.fixture
def dashboard_url(dash, tmp_path):
    """`kgrec dashboard --port P` against the test graph; stopped afterwards."""
    with serve(tmp_path / "dashboard.log", env=dash.env, timeout=120) as url:
        yield url


def save(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    return path


def test_user_page_and_search_in_a_real_browser(dash, dashboard_url, tmp_path):
    from playwright.sync_api import sync_playwright

    user = dash.users[0]
    external: list[str] = []
    with sync_playwright() as p:
        ctx = launch(p, tempfile.mkdtemp(prefix="chromium-", dir=tmp_path), height=1500)
        try:
            page = ctx.new_page()

            def offline(route):
                if route.request.url.startswith(LOCAL):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)

            # --- the user page of a known user, from a shareable URL
            page.goto(f"{dashboard_url}/users?user={user}&run={RUN}", timeout=120_000)
            page.wait_for_selector(DONE, timeout=180_000)
            page.get_by_role("heading", name=f"User {user}").wait_for(timeout=60_000)
            # recommendations: the top-K table with links to the items, and the list to explain
            recs = page.locator('[data-testid="stTable"]').first
            recs.wait_for(timeout=60_000)
            assert recs.locator('a[href*="items?item="]').count() == K
            assert recs.get_by_text("You ", exact=False).count() >= 1  # reasons in the table
            explain_box = page.locator('[data-testid="stSelectbox"]').filter(
                has_text="Recommendation to explain")
            explain_box.wait_for(timeout=60_000)
            shown = explain_box.inner_text() + " ".join(
                explain_box.locator("input").evaluate_all("els => els.map(e => e.value)"))
            assert "#" in shown and " · " in shown, shown  # "#1 · title (item id)"
            metric = page.locator('[data-testid="stMetric"]').filter(has_text="recommended")
            assert metric.inner_text().split()[-1] == str(K)
            # an explanation path: the graph, drawn client-side, from the user to the item
            svg = page.locator('[data-testid="stGraphVizChart"] svg')
            svg.wait_for(timeout=60_000)
            drawn = svg.text_content()
            assert "You" in drawn and f"User:{user}" in drawn
            assert svg.locator("g.node").count() >= 3 and svg.locator("g.edge").count() >= 2
            assert svg.locator('a[*|href^="./items?item="]').count() >= 1  # clickable items
            reason = page.locator('[data-testid="stMarkdownContainer"]').filter(
                has_text="1. You ")
            assert reason.count() >= 1
            assert f"user={user}" in page.url and "item=" in page.url
            shot_user = save(page, tmp_path, "dashboard-user.png")

            # --- a search, typed like a person would
            page.goto(f"{dashboard_url}/search", timeout=120_000)
            page.wait_for_selector(DONE, timeout=120_000)
            page.locator('input[aria-label="Query"]').fill("face cream")
            page.locator('input[aria-label="Shopper (optional)"]').fill(user)
            page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
            page.get_by_role("heading", name=f"Re-ranked for {user}").wait_for(timeout=180_000)
            page.get_by_role("heading", name="BM25 (text only)").wait_for(timeout=10_000)
            page.locator('[data-testid="stTable"]').nth(1).wait_for(timeout=120_000)
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
            for table in page.locator('[data-testid="stTable"]').all()[:2]:
                assert table.locator('a[href*="items?item="]').count() >= 1
            page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=60_000)
            page.wait_for_selector(DONE, timeout=120_000)
            assert page.get_by_text("Mode:").first.inner_text().find("personal") >= 0
            assert "q=face+cream" in page.url or "q=face%20cream" in page.url
            shot_search = save(page, tmp_path, "dashboard-search.png")
        finally:
            ctx.close()
    assert external == [], f"the dashboard tried to reach the internet: {external[:5]}"
    for shot in (shot_user, shot_search):
        assert shot.stat().st_size > 20_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
