import pandas as pd
import pytest

from etl.canonical import (
    EDGE_TYPE,
    SCHEMA,
    CanonicalTables,
    ContractError,
    aggregate_behaviour,
    conform,
    empty,
)


def _events(rows):
    frame = pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "ts", "rating", "split", "session"]
    )
    return conform("events", frame)


def _tables(events: pd.DataFrame) -> CanonicalTables:
    return CanonicalTables(
        users=conform("users", pd.DataFrame({"user_id": events["user_id"].unique()})),
        items=conform(
            "items",
            pd.DataFrame({"item_id": events["item_id"].unique()}).reindex(columns=SCHEMA["items"].names),
        ),
        events=events,
    )


def test_empty_tables_are_valid():
    tables = CanonicalTables().validate()
    assert all(len(df) == 0 for df in tables.tables().values())
    assert list(empty("events").dtypes.astype(str)) == ["str", "str", "str", "Int64", "Float64", "str", "str"]


def test_validate_names_table_and_column():
    events = _events(
        [("u1", "i1", "view", 1, None, None, None), ("u2", "i1", "click", None, None, "dev", None)]
    )
    tables = _tables(events)
    tables.events = pd.concat([events, events.iloc[[0]].assign(user_id="ghost")], ignore_index=True)
    with pytest.raises(ContractError) as err:
        tables.validate()
    message = str(err.value)
    assert "events.event_type: 1 values outside" in message and "'click'" in message
    assert "events.split: 1 values outside {test,train}" in message
    # references are checked once the columns are right
    assert "events.user_id" not in message

    tables.events = conform("events", tables.events.assign(event_type="view", split=pd.NA))
    expected = r"events\.user_id: 1 values not in users\.user_id \(e\.g\. 'ghost'\)"
    with pytest.raises(ContractError, match=expected):
        tables.validate()


def test_validate_dtypes_uniqueness_and_empty_ids():
    tables = CanonicalTables(users=pd.DataFrame({"user_id": ["u1", "u1", " "]}, dtype="str"))
    tables.items = empty("items").astype({"price": "str"})
    with pytest.raises(ContractError) as err:
        tables.validate()
    message = str(err.value)
    assert "users.user_id: 1 empty strings" in message
    assert "users.user_id: 1 duplicated keys" in message
    assert "items.price: expected dtype float64, got str" in message

    tables = CanonicalTables(brands=pd.DataFrame({"name": ["x"]}, dtype="str"))
    with pytest.raises(ContractError, match="brands: expected columns brand_id,name, got name"):
        tables.validate()


def test_aggregate_behaviour():
    events = _events(
        [
            ("u1", "i1", "view", 30, None, "train", "s1"),
            ("u1", "i1", "view", 10, None, "train", "s1"),
            ("u1", "i1", "view", None, None, "train", "s2"),
            ("u1", "i1", "cart", 40, None, "train", "s1"),
            ("u1", "i1", "remove_from_cart", 50, None, "train", "s1"),
            ("u1", "i2", "review", 5, 4.0, "train", None),
            ("u1", "i2", "review", 9, 2.0, "test", None),
            ("u2", "i2", "purchase", None, None, None, None),
            ("u2", "i2", "review", 7, None, "test", None),
        ]
    )
    out = aggregate_behaviour(events).set_index(["user_id", "item_id", "event_type"])
    assert set(out.index.get_level_values("event_type")) == {"view", "cart", "review", "purchase"}
    view = out.loc[("u1", "i1", "view")]
    assert (view["edge_type"], view["count"], view["first_ts"], view["last_ts"], view["split"]) == (
        "VIEWED", 3, 10, 30, "train"
    )
    assert pd.isna(view["rating"])
    review = out.loc[("u1", "i2", "review")]
    assert review["rating"] == 3.0 and pd.isna(review["split"])  # train and test disagree
    purchase = out.loc[("u2", "i2", "purchase")]
    assert pd.isna(purchase["first_ts"]) and pd.isna(purchase["last_ts"]) and pd.isna(purchase["split"])
    assert pd.isna(out.loc[("u2", "i2", "review"), "rating"])
    assert out.dtypes[["count", "first_ts", "last_ts", "rating"]].astype(str).tolist() == [
        "int64", "Int64", "Int64", "Float64"
    ]
    assert EDGE_TYPE == {"view": "VIEWED", "cart": "CARTED", "favorite": "FAVORITED",
                         "purchase": "PURCHASED", "review": "REVIEWED"}
