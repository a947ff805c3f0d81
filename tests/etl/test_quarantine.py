import csv

from etl.quarantine import Quarantine


def test_add_counts_and_write_overwrites(tmp_path):
    q = Quarantine()
    q.add("a.csv", 3, "missing user_id", "x,,y")
    q.add("a.csv", 2, "wrong number of fields", ["a", "b,c", 'say "hi"'], "expected 2 fields, got 3")
    q.add_many("b.csv", [5, 7], "duplicate event", ["r5", "r7"])
    assert len(q) == 4
    assert q.counts() == {"missing user_id": 1, "wrong number of fields": 1, "duplicate event": 2}

    out = q.write(tmp_path / "quarantine", "shop")
    assert out == tmp_path / "quarantine" / "shop.csv"
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "line", "reason", "detail", "raw"]
    # sorted by file and line; fields given as a list are written back as one CSV line
    assert rows[1] == ["a.csv", "2", "wrong number of fields", "expected 2 fields, got 3",
                       'a,"b,c","say ""hi"""']
    assert rows[2] == ["a.csv", "3", "missing user_id", "", "x,,y"]
    assert [r[1] for r in rows[3:]] == ["5", "7"]
    # raw rows hold user ids: the folder and the file are the owner's only
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.parent.stat().st_mode & 0o777 == 0o700

    # a clean reload replaces the old file (loads are idempotent)
    Quarantine().write(tmp_path / "quarantine", "shop")
    assert out.read_text(encoding="utf-8").splitlines() == ["file,line,reason,detail,raw"]
    assert [p.name for p in out.parent.iterdir()] == ["shop.csv"]  # no temporary file left
