import hashlib
import hmac

import pandas as pd
import pytest

from core.errors import ConfigError
from etl.canonical import CanonicalTables, conform
from etl.normalize import (
    BRAND_PLACEHOLDERS,
    brand_ids,
    brand_table,
    clean_text,
    path_hierarchy,
    pseudonym,
    pseudonymize,
)


def test_clean_text():
    s = pd.Series(["L&#39;Oreal  Paris ", "a\tb\nc", "   ", None, "Soap &amp; Glory"], dtype="str")
    out = clean_text(s)
    assert out[0] == "L'Oreal Paris" and out[1] == "a b c" and out[4] == "Soap & Glory"
    assert out[2:4].isna().all()


def test_brand_ids_and_placeholders():
    raw = pd.Series(
        ["L&#39;Oreal Paris", "L'OREAL  PARIS", "Generic", " unknown ", "N/A", "-", "", None, "No Brand"],
        dtype="str",
    )
    ids = brand_ids(raw)
    assert ids[0] == ids[1] == "l'oreal paris"
    assert ids[2:].isna().all()
    assert {"generic", "unknown", "n/a", "na", "none", "null", "-", "no brand", "unbranded", ""} == BRAND_PLACEHOLDERS


def test_brand_table_picks_the_most_frequent_spelling():
    counts = pd.Series({"L&#39;Oreal Paris": 3, "L'Oreal Paris": 2, "L'OREAL PARIS": 4, "generic": 9, "Avon": 1})
    table = brand_table(counts).set_index("brand_id")["name"]
    # "L'Oreal Paris" is seen 3 + 2 = 5 times once unescaped: more than "L'OREAL PARIS"
    assert table.to_dict() == {"avon": "Avon", "l'oreal paris": "L'Oreal Paris"}


def test_path_hierarchy():
    paths = pd.Series(
        ["electronics.audio.headphone", "electronics.smartphone", "", None, "electronics.smartphone"],
        dtype="str",
    )
    h = path_hierarchy(paths, sep=".", joiner=".", key=str)
    assert h.leaf.tolist()[:2] == ["electronics.audio.headphone", "electronics.smartphone"]
    assert h.leaf[2:4].isna().all()
    assert dict(zip(h.categories["category_id"], h.categories["name"])) == {
        "electronics": "electronics",
        "electronics.audio": "audio",
        "electronics.audio.headphone": "headphone",
        "electronics.smartphone": "smartphone",
    }
    assert set(map(tuple, h.parents.to_numpy())) == {
        ("electronics.audio", "electronics"),
        ("electronics.audio.headphone", "electronics.audio"),
        ("electronics.smartphone", "electronics"),
    }


def test_pseudonymize():
    users = conform("users", pd.DataFrame({"user_id": ["A1", "B2"]}))
    items = conform(
        "items", pd.DataFrame({"item_id": ["i"], "title": [None], "price": [None], "brand_id": [None]})
    )
    events = conform(
        "events",
        pd.DataFrame({"user_id": ["A1", "B2", "A1"], "item_id": "i", "event_type": "view", "ts": None,
                      "rating": None, "split": None, "session": None}),
    )
    tables = CanonicalTables(users=users, items=items, events=events, stats={"x": 1})
    salt = b"0123456789abcdef"
    out = pseudonymize(tables, salt).validate()
    expected = hmac.new(salt, b"A1", hashlib.sha256).hexdigest()[:20]
    assert pseudonym("A1", salt) == expected
    assert out.users["user_id"].tolist() == [expected, pseudonym("B2", salt)]
    assert out.events["user_id"].tolist() == [expected, pseudonym("B2", salt), expected]
    assert all(len(u) == 20 for u in out.users["user_id"])
    assert tables.users["user_id"].tolist() == ["A1", "B2"]  # the input is left alone
    assert pseudonymize(tables, b"another salt....").users["user_id"][0] != expected
    with pytest.raises(ConfigError):
        pseudonymize(tables, b"")
