"""`kgrec etl load` as a user meets it (issue 12): what it says about odd files, pseudonyms
and what a load wrote. Real commands, real files, the real embedded server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
from etl_cli import FIX, ids, kgrec

from etl.quarantine import Quarantine
from etl.readers import read


def test_random_bytes_are_not_called_an_empty_file(cli_env, tmp_path):
    noise = np.random.default_rng(7).bytes(20_000)
    (tmp_path / "noise.csv").write_bytes(noise)
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "events.csv").write_bytes(noise)
    for fmt, path in (("rees46", tmp_path / "noise.csv"), ("csv", tmp_path / "shop")):
        p = kgrec(cli_env, "etl", "load", "--format", fmt, str(path), check=False)
        assert p.returncode == 1, p.stdout
        assert "not a text (CSV) file" in p.stderr and "empty file" not in p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def _users(store) -> set[str]:
    return ids(store, "User")


def test_pseudonymized_reloads_keep_the_users_and_mixing_is_refused(empty_store, cli_env):
    src = str(FIX / "rees46_small.csv")
    n_users = len(read("rees46", FIX / "rees46_small.csv", Quarantine()).users)
    salt = Path(cli_env["KGREC_HOME"]) / "salt"
    first = kgrec(cli_env, "etl", "load", "--format", "rees46", src, "--pseudonymize")
    users, salt_bytes = _users(empty_store), salt.read_bytes()
    second = kgrec(cli_env, "etl", "load", "--format", "rees46", src, "--pseudonymize")
    assert _users(empty_store) == users and len(users) == n_users  # not doubled
    assert salt.read_bytes() == salt_bytes
    for out in (first.stdout, second.stdout):
        assert "pseudonymized with the salt in" in out and str(salt) in out.replace("\n", "")

    plain = kgrec(cli_env, "etl", "load", "--format", "rees46", src, check=False)
    assert plain.returncode == 1 and "holds pseudonymized user ids" in plain.stderr
    assert "--pseudonymize" in plain.stderr and _users(empty_store) == users

    moved = salt.with_name("salt.kept")
    shutil.move(salt, moved)
    try:
        lost = kgrec(cli_env, "etl", "load", "--format", "rees46", src, "--pseudonymize",
                     check=False)
        assert lost.returncode == 1 and "is gone" in lost.stderr and str(salt) in lost.stderr
        assert not salt.exists() and _users(empty_store) == users  # no new salt made
    finally:
        shutil.move(moved, salt)


def test_pseudonymizing_beside_plain_ids_is_refused(empty_store, cli_env):
    src = str(FIX / "rees46_small.csv")
    kgrec(cli_env, "etl", "load", "--format", "rees46", src)
    users = _users(empty_store)
    p = kgrec(cli_env, "etl", "load", "--format", "rees46", src, "--pseudonymize", check=False)
    assert p.returncode == 1 and "already holds plain user ids" in p.stderr
    assert "kgrec graph reset" in p.stderr and _users(empty_store) == users


def _table_rows(out: str) -> dict[str, list[str]]:
    """{first cell: other cells} of the box-drawn table rows in `out`."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def test_the_load_summary_shows_this_load_apart_from_the_graph_totals(empty_store, cli_env):
    rees = read("rees46", FIX / "rees46_small.csv", Quarantine())
    generic = read("csv", FIX / "generic_small", Quarantine())
    kgrec(cli_env, "etl", "load", "--format", "rees46", str(FIX / "rees46_small.csv"))
    out = kgrec(cli_env, "etl", "load", "--format", "csv", str(FIX / "generic_small")).stdout
    assert "loaded generic_small: what this load wrote" in out
    rows = _table_rows(out)
    assert rows["what"] == ["this load", "new", "graph total"]
    total = len(rees.users) + len(generic.users)  # no user in common
    assert rows["User"] == [str(len(generic.users)), str(len(generic.users)), str(total)]
    assert rows["Item"][0] == str(len(generic.items))
    assert rows["events (event store)"][:2] == [str(len(generic.events))] * 2
    assert "VIEWED" in rows and rows["VIEWED"][2] == str(empty_store.counts()["VIEWED"])
    again = _table_rows(kgrec(cli_env, "etl", "load", "--format", "csv",
                              str(FIX / "generic_small")).stdout)
    assert again["User"] == [str(len(generic.users)), "0", str(total)]  # merged, nothing new
    assert again["events (event store)"][1] == "0"
