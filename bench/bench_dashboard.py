"""Dashboard render time through a real browser, with warm caches -> bench/results/dashboard.json.

    python bench/bench_dashboard.py [--users 10] [--repeats 3] [--run NAME] [--out PATH]

Runs against the configured graph (KGREC_HOME / NEO4J_* as every command; run it after
`kgrec demo`, or after `kgrec etl load`, `kgrec train --run NAME` and `kgrec recommend --run NAME
--all --write-graph`): starts `kgrec dashboard` on a free loopback port and drives the system's
chromium (/usr/bin/chromium, headless, offline) with Playwright.

Measured, per page (the user explorer of a user with recommendations; the search page with a
shopper and a run), after one untimed warm-up visit of every URL (server caches warm):
- `full_load`: a new page load of the shareable URL (page.goto) until the page's content is
  drawn (user: the recommendations table and the explanation graph; search: both result
  tables and the score-parts chart) and the script has finished;
- `in_app`: the same page for another user / query from inside the app (typing in the page's
  box), which is how one moves around once the app is open;
- `server_script_ms`: the Python script time of those runs, from the dashboard's own log
  (KGREC_DASHBOARD_TIMING=1), to tell server time from browser time.
Target (issue 6): p95 <= 1 s for the user page and the search page.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provenance import provenance  # noqa: E402

from dashboard.harness import CHROMIUM, DONE, LOCAL, DashboardDidNotStart, launch, serve  # noqa: E402

QUERIES = ["face cream", "argan oil shampoo", "nail polish", "eyeliner pencil", "hair dryer",
           "sunscreen spf 30", "anti aging serum", "lip gloss", "makeup brush set",
           "body lotion", "dry shampoo", "eye shadow palette"]
TARGET_S = 1.0


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if not len(a):
        return {"n": 0}
    return {"n": int(len(a)), "p50": round(float(np.percentile(a, 50)), 3),
            "p95": round(float(np.percentile(a, 95)), 3), "mean": round(float(a.mean()), 3),
            "min": round(float(a.min()), 3), "max": round(float(a.max()), 3)}


def url_has(page, key: str, value: str) -> None:
    """Wait until the page's URL carries key=value (the script sets it while it runs)."""
    page.wait_for_url(lambda u: parse_qs(urlsplit(u).query).get(key) == [value],
                      timeout=120_000)


def wait_user_page(page, user: str) -> None:
    url_has(page, "user", user)
    page.get_by_role("heading", name=f"User {user}").wait_for(timeout=120_000)
    page.locator('[data-testid="stTable"]').first.wait_for(timeout=120_000)
    # the explanation graph, or the note that this recommendation has no short path
    page.locator('[data-testid="stGraphVizChart"] svg, [data-testid="stAlert"]').first.wait_for(
        timeout=120_000)
    page.wait_for_selector(DONE, timeout=120_000)


def wait_search_page(page, user: str, query: str) -> None:
    url_has(page, "q", query)
    page.get_by_role("heading", name=f"Re-ranked for {user}").wait_for(timeout=120_000)
    page.locator('[data-testid="stTable"]').nth(1).wait_for(timeout=120_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=120_000)
    page.wait_for_selector(DONE, timeout=120_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10, help="users (and queries) visited")
    ap.add_argument("--repeats", type=int, default=3, help="timed visits per URL")
    ap.add_argument("--run", default=None, help="run whose recommendations are shown "
                                                "(default: the first found in the graph)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dashboard.json")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: install the Debian package `chromium`")

    from core.config import Config
    from graph import views
    from graph.store import GraphStore

    cfg = Config.from_env()
    with GraphStore(cfg.graph) as store:
        counts = store.counts()
        if not counts.get("RECOMMENDED"):
            sys.exit("the graph has no recommendations: run `kgrec demo` (or kgrec etl load, "
                     "kgrec train --run NAME, kgrec recommend --run NAME --all --write-graph)")
        runs = views.recommendation_runs(store)
        run = args.run or str(runs["run_id"].iloc[0])
        users = views.sample_users(store, limit=args.users)
    from gnn.rundir import RunDir

    if not RunDir.named(cfg.runs_dir, run).is_trained():
        sys.exit(f"run {run!r} is not under {cfg.runs_dir}: set KGREC_RUNS_DIR")
    queries = (QUERIES * (1 + len(users) // len(QUERIES)))[: len(users)]

    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    log = Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "dashboard.log"
    timings: dict[str, list[float]] = {k: [] for k in
                                       ("user_full", "user_in_app", "search_full",
                                        "search_in_app")}
    try:
        with serve(log) as url:
            def user_url(u: str) -> str:
                return f"{url}/users?user={u}&run={run}"

            def search_url(u: str, q: str) -> str:
                return f"{url}/search?q={q.replace(' ', '+')}&user={u}&run={run}"

            with sync_playwright() as p:
                ctx = launch(p, tempfile.mkdtemp(prefix="chromium-"), height=1200)
                page = ctx.new_page()
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL)
                           else r.abort())
                print(f"warming up {len(users)} user pages and {len(queries)} searches…")
                for u, q in zip(users, queries):
                    page.goto(user_url(u), timeout=300_000)
                    wait_user_page(page, u)
                    page.goto(search_url(u, q), timeout=300_000)
                    wait_search_page(page, u, q)
                warm_log_lines = len(log.read_text().splitlines())
                print("timing…")
                for _ in range(args.repeats):
                    for i, (u, q) in enumerate(zip(users, queries)):
                        t0 = time.perf_counter()
                        page.goto(user_url(u))
                        wait_user_page(page, u)
                        timings["user_full"].append(time.perf_counter() - t0)
                        # in the app: the next user typed into the search box
                        nxt = users[(i + 1) % len(users)]
                        box = page.locator('input[aria-label="Find a user"]')
                        t0 = time.perf_counter()
                        box.fill(nxt)
                        box.press("Enter")
                        wait_user_page(page, nxt)
                        timings["user_in_app"].append(time.perf_counter() - t0)

                        t0 = time.perf_counter()
                        page.goto(search_url(u, q))
                        wait_search_page(page, u, q)
                        timings["search_full"].append(time.perf_counter() - t0)
                        q2 = queries[(i + 1) % len(queries)]
                        t0 = time.perf_counter()
                        page.locator('input[aria-label="Query"]').fill(q2)
                        page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
                        wait_search_page(page, u, q2)
                        timings["search_in_app"].append(time.perf_counter() - t0)
                ctx.close()
    except DashboardDidNotStart as e:
        sys.exit(str(e))
    load_after = os.getloadavg()

    timed_lines = "\n".join(log.read_text().splitlines()[warm_log_lines:])
    script = {}
    for m in re.finditer(r"timing page=(\S+) script_ms=([\d.]+)", timed_lines):
        script.setdefault(m.group(1), []).append(float(m.group(2)) / 1000)
    result = {
        "benchmark": "dashboard render time through a real browser, warm caches",
        **provenance({"graph": {"backend": "neo4j" if cfg.graph.uri else "embedded",
                                "counts": counts}}),
        "machine_extra": {"load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after],
                    "browser": subprocess.run([CHROMIUM, "--version"], capture_output=True,
                                              text=True).stdout.strip()},
        "graph": {"backend": "neo4j" if cfg.graph.uri else "embedded", "counts": counts},
        "run": run, "users": len(users), "repeats": args.repeats,
        "target_p95_s": TARGET_S,
        "user_page": {"full_load_s": stats(timings["user_full"]),
                      "in_app_s": stats(timings["user_in_app"]),
                      "server_script_s": stats(script.get("users", []))},
        "search_page": {"full_load_s": stats(timings["search_full"]),
                        "in_app_s": stats(timings["search_in_app"]),
                        "server_script_s": stats(script.get("search", []))},
    }
    for name in ("user_page", "search_page"):
        r = result[name]
        r["meets_target_full_load"] = r["full_load_s"]["p95"] <= TARGET_S
        r["meets_target_in_app"] = r["in_app_s"]["p95"] <= TARGET_S
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("user_page", "search_page")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
