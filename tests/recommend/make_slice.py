"""Regenerate tests/recommend/fixtures/beauty_slice/ from data/amazon_beauty (deterministic).

The slice: the 150 most-reviewed items of the bundled Amazon Beauty 5-core and the users with at
least 6 reviews among them, with every file of the amazon-kg layout restricted to those users and
items (item relations: both ends in the slice). Run: python tests/recommend/make_slice.py
"""

from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "data" / "amazon_beauty"
DST = Path(__file__).resolve().parent / "fixtures" / "beauty_slice"
N_ITEMS, MIN_USER = 150, 6


def main() -> None:
    inter = pd.read_csv(SRC / "interactions.csv.gz", dtype=str)
    pop = inter["item_id"].value_counts()
    items = set(pop.index[:N_ITEMS])  # ties broken by value_counts' stable order
    sub = inter[inter["item_id"].isin(items)]
    per_user = sub["user_id"].value_counts()
    users = set(per_user.index[per_user >= MIN_USER])
    sub = sub[sub["user_id"].isin(users)]
    items = set(sub["item_id"])
    DST.mkdir(parents=True, exist_ok=True)
    sub.sort_values(["user_id", "item_id"]).to_csv(DST / "interactions.csv.gz", index=False)
    ts = pd.read_csv(SRC / "interactions_timestamps.csv.gz", dtype=str)
    ts = ts.merge(sub[["user_id", "item_id"]], on=["user_id", "item_id"])
    ts.sort_values(["user_id", "item_id"]).to_csv(DST / "interactions_timestamps.csv.gz",
                                                  index=False)
    meta = pd.read_csv(SRC / "items.csv", dtype=str, keep_default_na=False)
    meta[meta["item_id"].isin(items)].sort_values("item_id").to_csv(DST / "items.csv", index=False)
    titles = pd.read_csv(SRC / "items_titles.csv.gz", dtype=str, keep_default_na=False)
    titles[titles["item_id"].isin(items)].sort_values("item_id").to_csv(
        DST / "items_titles.csv.gz", index=False)
    rel = pd.read_csv(SRC / "item_relations.csv.gz", dtype=str)
    rel = rel[rel["item_id"].isin(items) & rel["related_item_id"].isin(items)]
    rel.sort_values(["item_id", "relation", "related_item_id"]).to_csv(
        DST / "item_relations.csv.gz", index=False)
    print(f"{len(users)} users, {len(items)} items, {len(sub)} interactions, "
          f"{len(rel)} item relations -> {DST}")


if __name__ == "__main__":
    main()
