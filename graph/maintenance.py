"""Whole-graph maintenance."""

from graph import queries as Q


def delete_all(store, batch: int = 20_000) -> int:
    """Delete every node (and its relationships) in batches; returns the number deleted."""
    total = 0
    while True:
        n = store.write(Q.DELETE_ALL_BATCH, limit=batch)[0]["n"]
        total += n
        if n < batch:
            return total
