"""Coordinate ascent over a grid: the few weights of the no-learning scorers (kglink's feature
weights, the score blend's prior weights) are fitted this way on validation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace as changed  # (not a file's replace)

import torch

from gnn.data import Split

IMPROVEMENT = 1e-6  # a move must beat the best score by more than this


def coordinate_ascent(start: dict[str, float], grid: Iterable[float],
                      score: Callable[[dict[str, float]], float],
                      passes: int) -> tuple[dict[str, float], float]:
    """(values, best score): from `start`, try every other `grid` value of one coordinate at a
    time (in `start`'s key order) and keep a move that improves `score`; at most `passes`
    passes, and none after a pass without a move. `score(start)` is evaluated first."""
    grid = tuple(grid)
    values, best = dict(start), score(dict(start))
    for _ in range(passes):
        moved = False
        for name in values:
            for v in grid:
                if v != values[name]:
                    s = score({**values, name: v})
                    if s > best + IMPROVEMENT:
                        best, values, moved = s, {**values, name: v}, True
        if not moved:
            break
    return values, best


def sampled_validation(split: Split, n_users: int | None, seed: int) -> Split:
    """`split` with its validation edges cut to those of `n_users` users sampled by `seed`
    (None, or no more users than that: the split as it is). The searches score every
    validation user at each of their ~100 evaluations, so a sample keeps them to seconds."""
    users = split.val[0].unique()
    if n_users is None or len(users) <= n_users:
        return split
    gen = torch.Generator().manual_seed(seed)
    keep = torch.zeros(int(users.max()) + 1, dtype=torch.bool)
    keep[users[torch.randperm(len(users), generator=gen)[:n_users]]] = True
    return changed(split, val=split.val[:, keep[split.val[0]]])
