"""Loading into the real embedded server through the real `kgrec` command.

Acceptance for issue 2: counts, idempotency, kill-and-resume, quarantine, REES46, pseudonymize.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from etl_cli import FIX, KGREC, REPO, digest, frame, kgrec

from etl.canonical import EDGE_TYPE
from etl.home import EtlHome
from etl.load import EVENT_KEY, load_tables
from etl.quarantine import Quarantine
from etl.readers import read
from graph import queries as Q
from graph import server
from graph.export import export_frames


def test_amazon_slice_loads_expected_counts_and_is_idempotent(empty_store, cli_env):
    tables = read("amazon-kg", FIX / "amazon_small", Quarantine())
    out = kgrec(cli_env, "etl", "load", "--format", "amazon-kg", str(FIX / "amazon_small")).stdout
    assert "rows/s" in out and "quarantined rows" in out
    counts = empty_store.counts()
    assert counts["User"] == len(tables.users)
    assert counts["Item"] == len(tables.items)
    assert counts["Brand"] == len(tables.brands)
    assert counts["Category"] == len(tables.categories)
    assert counts["REVIEWED"] == len(tables.events)
    assert counts["IN_CATEGORY"] == len(tables.item_categories)
    assert counts["SUBCATEGORY_OF"] == len(tables.category_parents)
    rel = tables.item_relations["relation"].value_counts()
    assert counts["ALSO_BOUGHT"] == rel.get("also_bought", 0)
    first = digest(empty_store)
    kgrec(cli_env, "etl", "load", "--format", "amazon-kg", str(FIX / "amazon_small"))
    assert empty_store.counts() == counts
    assert digest(empty_store) == first


def test_behaviour_edges_carry_aggregates_and_split(empty_store, cli_env):
    kgrec(cli_env, "etl", "load", "--format", "amazon-kg", str(FIX / "amazon_small"))
    edges = pd.concat(list(empty_store.stream(Q.BEHAVIOUR_EDGES["REVIEWED"])))
    assert set(edges["split"]) == {"train", "test"}
    assert (edges["count"] == 1).all()
    assert (edges["first_ts"] == edges["last_ts"]).all() and (edges["first_ts"] > 1e9).all()


def test_killed_load_resumes_to_the_same_graph(empty_store, cli_env, tmp_path):
    src = str(FIX / "amazon_small")
    kgrec(cli_env, "etl", "load", "--format", "amazon-kg", src, "--batch-size", "40")
    reference = digest(empty_store)
    ref_counts = empty_store.counts()

    from graph.maintenance import delete_all

    delete_all(empty_store)
    home = Path(cli_env["KGREC_HOME"])
    (home / "events.parquet").unlink()
    proc = subprocess.Popen(KGREC + ["etl", "load", "--format", "amazon-kg", src,
                                     "--batch-size", "40"], env=cli_env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill it once some, but not all, batches are recorded in its checkpoint
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ckpts = list((home / "etl").glob("*.json"))
        if ckpts and "IN_CATEGORY" in ckpts[0].read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((home / "etl").glob("*.json")), "the load finished before it could be killed"
    partial = empty_store.counts()
    assert partial["REVIEWED"] < ref_counts["REVIEWED"]  # it really stopped midway

    # a kill mid-write may leave a temporary file; whether it did is timing, so make one
    stale = home / "etl" / ".0123456789abcdef.json.x1y2z3.tmp"
    stale.write_text("{")
    out = kgrec(cli_env, "etl", "load", "--format", "amazon-kg", src, "--batch-size", "40").stdout
    assert "resumed steps" in out
    assert not stale.exists()  # the resumed load cleared what the killed one left
    assert empty_store.counts() == ref_counts
    assert digest(empty_store) == reference
    assert not list((home / "etl").glob("*.json"))  # checkpoint removed when done


def test_rees46_load_builds_behaviour_edges_and_hierarchy(empty_store, cli_env):
    tables = read("rees46", FIX / "rees46_small.csv", Quarantine())
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(FIX / "rees46_small.csv"))
    counts = empty_store.counts()
    ev = tables.events
    for etype, rel in {"view": "VIEWED", "cart": "CARTED", "purchase": "PURCHASED"}.items():
        pairs = ev[ev["event_type"] == etype][["user_id", "item_id"]].drop_duplicates()
        assert counts[rel] == len(pairs), rel
    assert counts["SUBCATEGORY_OF"] == len(tables.category_parents) > 0
    views = pd.concat(list(empty_store.stream(Q.BEHAVIOUR_EDGES["VIEWED"])))
    expected = ev[ev["event_type"] == "view"].groupby(["user_id", "item_id"]).size()
    got = views.set_index(["src", "dst"])["count"]
    assert got.sort_index().tolist() == expected.sort_index().tolist()


def test_new_events_accumulate_but_the_same_file_does_not(empty_store, cli_env, tmp_path):
    small = FIX / "rees46_small.csv"
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(small))
    before = pd.concat(list(empty_store.stream(Q.BEHAVIOUR_EDGES["VIEWED"])))
    row = before.iloc[0]
    extra = tmp_path / "more.csv"
    header = small.read_text().splitlines()[0]
    line = next(x for x in small.read_text().splitlines()[1:]
                if f",{row['dst']}," in x and ",view," in x and x.split(",")[7] == row["src"])
    fields = line.split(",")
    fields[0] = "2019-12-31 23:59:59 UTC"  # a later view of the same item by the same user
    extra.write_text(header + "\n" + ",".join(fields) + "\n")
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(extra))
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(extra))  # twice: no double count
    after = pd.concat(list(empty_store.stream(Q.BEHAVIOUR_EDGES["VIEWED"]))).set_index(["src", "dst"])
    assert after.loc[(row["src"], row["dst"]), "count"] == row["count"] + 1
    assert after.loc[(row["src"], row["dst"]), "last_ts"] > row["last_ts"]


def test_bad_rows_are_quarantined_not_lost(empty_store, cli_env):
    bad = FIX / "rees46_bad.csv"
    q = Quarantine()
    tables = read("rees46", bad, q)
    p = kgrec(cli_env, "etl", "load", "--format", "rees46", str(bad))
    qfile = Path(cli_env["KGREC_QUARANTINE_DIR"]) / "rees46_bad.csv"
    rejected = pd.read_csv(qfile)
    assert len(rejected) == len(q) > 0
    assert set(rejected.columns) >= {"file", "line", "reason", "raw"}
    assert f"{len(rejected):,}" in p.stdout
    # every data line of the file is either loaded (as an event) or quarantined
    data_lines = len(bad.read_bytes().splitlines()) - 1
    assert len(tables.events) + len(rejected) == data_lines


def test_missing_and_wrong_format_files_are_one_line_errors(cli_env, tmp_path):
    p = kgrec(cli_env, "etl", "load", "--format", "rees46", str(tmp_path / "nope.csv"), check=False)
    assert p.returncode == 1
    assert "nope.csv" in p.stderr and "Traceback" not in p.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b,c\n1,2,3\n")
    p = kgrec(cli_env, "etl", "load", "--format", "rees46", str(wrong), check=False)
    assert p.returncode == 1 and "wrong.csv" in p.stderr and "event_time" in p.stderr
    assert "Traceback" not in p.stderr
    p = kgrec(cli_env, "etl", "load", "--format", "parquet-ish", str(wrong), check=False)
    assert p.returncode == 1 and "--format" in p.stderr


def test_pseudonymize_replaces_user_ids(empty_store, cli_env):
    tables = read("rees46", FIX / "rees46_small.csv", Quarantine())
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(FIX / "rees46_small.csv"),
          "--pseudonymize")
    ids = set(pd.concat(list(empty_store.stream(Q.NODE_IDS["User"])))["id"])
    assert len(ids) == len(tables.users)
    assert not ids & set(tables.users["user_id"])
    salt = Path(cli_env["KGREC_HOME"]) / "salt"
    assert oct(salt.stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_full_bundled_dataset_counts(empty_store, cli_env):
    """The issue's acceptance numbers, through the CLI and a Cypher count via the driver."""
    kgrec(cli_env, "etl", "load", "--format", "amazon-kg", str(REPO / "data" / "amazon_beauty"),
          timeout=900)
    counts = empty_store.counts()
    assert counts["User"] == 22_363
    assert counts["Item"] == 12_101
    assert sum(counts[r] for r in Q.BEHAVIOUR_TYPES) == 198_502


def test_two_loads_into_one_home_wait_for_each_other_and_lose_nothing(empty_store, cli_env,
                                                                      tmp_path):
    """Two real `kgrec etl load` of different files into one home at once. The test holds the
    home's load lock while they start, so both must reach it, wait, and say so; once it is
    released they run one after the other, and every event of both is in the store and the
    graph (before: a shared temporary file, a corrupt store and lost events)."""
    src = FIX / "rees46_multibehaviour.csv.gz"
    header, *rows = gzip.decompress(src.read_bytes()).decode().splitlines()
    parts = [tmp_path / "part_a.csv", tmp_path / "part_b.csv"]
    for i, part in enumerate(parts):  # alternate rows: the same users and items in both
        part.write_text("\n".join([header, *rows[i::2]]) + "\n")
    home = EtlHome(cli_env["KGREC_HOME"])
    env = dict(cli_env, PYTHONUNBUFFERED="1")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with home.lock():
        procs = [subprocess.Popen(KGREC + ["etl", "load", "--format", "rees46", str(part)],
                                  env=env, cwd=REPO, stdout=log.open("w"),
                                  stderr=subprocess.STDOUT)
                 for part, log in zip(parts, logs, strict=True)]
        deadline = time.monotonic() + 600
        while not all("waiting for another load of this home" in log.read_text() for log in logs):
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            assert time.monotonic() < deadline, "the loads never reached the lock"
            time.sleep(0.2)
    assert [p.wait(timeout=600) for p in procs] == [0, 0], [log.read_text() for log in logs]

    both = read("rees46", src, Quarantine()).events
    stored = pd.read_parquet(home.events)
    assert len(stored) == len(both)
    assert set(stored[EVENT_KEY].itertuples(index=False)) == \
        set(both[EVENT_KEY].itertuples(index=False))
    for event_type, rel in EDGE_TYPE.items():
        expected = both[both["event_type"] == event_type].groupby(["user_id", "item_id"]).size()
        edges = frame(empty_store, Q.BEHAVIOUR_EDGES[rel]) if len(expected) else None
        if edges is not None:
            got = edges.set_index(["src", "dst"])["count"].sort_index()
            assert got.tolist() == expected.sort_index().tolist(), rel
    leftovers = [p.name for d in (home.root, home.etl_dir) for p in d.iterdir() if "tmp" in p.name]
    assert leftovers == []


def test_home_and_what_it_holds_are_readable_by_the_owner_only(empty_store, tmp_path):
    home = tmp_path / "new" / "home"
    tables = read("rees46", FIX / "rees46_small.csv", Quarantine())
    checkpoints: set[int] = set()

    def progress(step, n, total):  # look at the checkpoint while the load runs
        checkpoints.update(f.stat().st_mode & 0o777 for f in (home / "etl").glob("*.json"))

    old = os.umask(0o022)  # what most shells use: files 0644 and folders 0755 unless made private
    try:
        load_tables(empty_store, tables, home=home, fingerprint="f" * 16, source="rees46_small",
                    progress=progress, pseudonymize=True, batch_size=5)
    finally:
        os.umask(old)
    mode = {p: p.stat().st_mode & 0o777 for p in (home, home / "etl", home / "events.parquet",
                                                  home / "salt")}
    assert mode == {home: 0o700, home / "etl": 0o700, home / "events.parquet": 0o600,
                    home / "salt": 0o600}
    assert checkpoints == {0o600}
    assert server.graph_dir(empty_store.cfg).stat().st_mode & 0o777 == 0o700  # the databases


def test_multibehaviour_fixtures_load_every_behaviour_as_its_own_relation(empty_store, cli_env):
    """Issue 9: REES46-style views/carts/purchases with brands and categories, and Tmall
    purchases/carts/favourites in the generic format (favourites also spelled `collect`)."""
    rees, tmall = FIX / "rees46_multibehaviour.csv.gz", FIX / "tmall_slice"
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(rees))
    kgrec(cli_env, "etl", "load", "--format", "csv", str(tmall))
    events = pd.concat([read("rees46", rees, Quarantine()).events,
                        read("csv", tmall, Quarantine()).events])
    counts = empty_store.counts()
    for event_type, rel in EDGE_TYPE.items():
        pairs = events.loc[events["event_type"] == event_type, ["user_id", "item_id"]]
        assert counts[rel] == len(pairs.drop_duplicates()), rel
    assert all(counts[r] > 0 for r in ("VIEWED", "CARTED", "FAVORITED", "PURCHASED"))
    assert all(counts[r] > 0 for r in ("Brand", "Category", "HAS_BRAND", "IN_CATEGORY",
                                       "SUBCATEGORY_OF"))
    raw = pd.read_csv(tmall / "events.csv", dtype=str, keep_default_na=False)
    assert {"favorite", "collect"} <= set(raw["event_type"])
    favs = raw.loc[raw["event_type"].isin(["favorite", "collect"]), ["user_id", "item_id"]]
    edges = frame(empty_store, Q.BEHAVIOUR_EDGES["FAVORITED"])
    assert set(edges[["src", "dst"]].itertuples(index=False)) == \
        set(favs.itertuples(index=False))
    purchased = frame(empty_store, Q.BEHAVIOUR_EDGES["PURCHASED"])
    assert set(purchased["split"].dropna()) == {"train", "test"}  # Tmall's given split
    _, exported = export_frames(empty_store)  # the ML side sees the new relation too
    assert len(exported["FAVORITED"]) == counts["FAVORITED"]
