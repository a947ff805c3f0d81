"""Splits without leakage, the graphs a model sees, and negative sampling.

A `Split` of a `GraphSnapshot` holds, for the target user->item relation:
- `train`: the positives used to fit (their edges are the only target edges of `train_graph`);
- `val`: carved from the training part, per user (random or latest), for early stopping;
- `test`: the held-out edges of warm items; `cold_test`: those of the cold items.
Cold items (`cold_item_fraction` of the items with interactions) lose every interaction edge: they
appear in neither graph's user-item relations, nor as positives or negatives; they keep their KG
edges (brand, category, item-item), which is how a KG model can still embed them.

Two message-passing graphs, each with the KG edge types of the snapshot and reverses:
- `train_graph` (used while fitting): target edges = `train`; no val/test/cold edge;
- `eval_graph` (used to score the test set): target edges = `train` + `val` (both are training
  data of the split: a deployed model would see them); no test/cold edge.
Other user-item relations of the snapshot (the auxiliary behaviours: views, carts, favourites when
the target is purchases) stay in both graphs, and their items stay rankable; only the target
relation's history is excluded from rankings. Always removed from them: edges marked test (split
code 2) and edges of cold items. `aux_test_edges` says what happens to the held-out pairs' own
auxiliary edges:
- "keep" (default; the published protocol of the multi-behaviour benchmarks): they stay, so "the
  user already has it in the cart" is visible to the model, as it would be in production;
- "drop": every (user, item) pair held out from a graph (val + test in `train_graph`, test in
  `eval_graph`) loses its auxiliary edges too, which shows how much of a score is that effect.
Temporal split: every behaviour of a user at or after that user's cutoff (the time of the user's
first held-out target edge; with `val_mode="latest"` the training graph's cutoff is the first
validation edge) is removed from the graph, whatever its item; edges of unknown time (-1) stay.
The "known positives" that negatives avoid are `train` (no refit on train+val: keep it simple).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from core.errors import DataError
from gnn.snapshot import GraphSnapshot

log = logging.getLogger(__name__)

EdgeType = tuple[str, str, str]
TRAIN, TEST = 1, 2  # split codes of gnn.snapshot


def target_edge_type(data: HeteroData, target: str | None = None) -> EdgeType:
    """The user->item relation to predict: `target`, else "purchased" if present, else
    "reviewed"."""
    rels = [et[1] for et in data.edge_types if et[0] == "user" and et[2] == "item"]
    if target is None:
        target = next((r for r in ("purchased", "reviewed") if r in rels), None)
        if target is None:
            raise DataError("the graph has no PURCHASED or REVIEWED edges to learn from "
                            f"(user->item relations: {rels or 'none'}); load interactions first "
                            "or pass a target relation")
    if target not in rels:
        raise DataError(f"target relation {target!r} is not in the graph "
                        f"(user->item relations: {rels or 'none'})")
    return ("user", target, "item")


def check_trainable(snapshot: GraphSnapshot) -> None:
    """DataError naming the fix when `snapshot` has nothing to learn from: no nodes at all, or
    no user-item interactions."""
    data = snapshot.data
    counts = {t: int(data[t].num_nodes or 0) for t in data.node_types}
    if not any(counts.values()):
        raise DataError("the graph is empty: run `kgrec etl load …` to load data first")
    if not any(data[et].edge_index.size(1) for et in data.edge_types
               if et[0] == "user" and et[2] == "item"):
        raise DataError(f"the graph has no user-item interactions to train on (nodes: "
                        f"{', '.join(f'{n:,} {t}' for t, n in counts.items())}): load "
                        "interactions with `kgrec etl load …` first")


def is_user_item(et: EdgeType) -> bool:
    return {et[0], et[2]} == {"user", "item"}


@dataclass(eq=False)
class Graph:
    """What a model sees: node counts, id maps and message-passing edges in one index space.

    The target relation's edges are the users' history: they are propagated over and excluded
    from recommendations. `cache` holds tensors models derive from the graph (adjacency, ...).
    """

    data: HeteroData
    ids: dict[str, np.ndarray]
    target: EdgeType
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_users(self) -> int:
        return int(self.data["user"].num_nodes)

    @property
    def n_items(self) -> int:
        return int(self.data["item"].num_nodes)

    @property
    def history(self) -> Tensor:
        """[2, E] (user, item) pairs of the target relation, sorted by user then item."""
        return self.data[self.target].edge_index

    def kg_edge_types(self) -> list[EdgeType]:
        return [et for et in self.data.edge_types if not is_user_item(et)]

    def user_item_pairs(self) -> Tensor:
        """Every (user, item) pair linked by any user-item relation, reverse types included."""
        parts = [self.data[et].edge_index if et[0] == "user" else self.data[et].edge_index.flip(0)
                 for et in self.data.edge_types if is_user_item(et)]
        return torch.cat(parts, 1) if parts else torch.empty(2, 0, dtype=torch.long)


@dataclass(eq=False)
class Split:
    train_graph: Graph
    eval_graph: Graph
    train: Tensor  # [2, E] (user, item)
    val: Tensor
    test: Tensor  # warm items only
    cold_test: Tensor
    cold_items: Tensor  # item indices, sorted
    mode: str  # "given" | "temporal"

    @property
    def target(self) -> EdgeType:
        return self.train_graph.target

    @property
    def warm_items(self) -> Tensor:
        """Bool mask of the items that may be recommended in the warm (main) evaluation."""
        mask = torch.ones(self.train_graph.n_items, dtype=torch.bool)
        mask[self.cold_items] = False
        return mask

    def summary(self) -> dict[str, int | str]:
        return {"mode": self.mode, "train": self.train.size(1), "val": self.val.size(1),
                "test": self.test.size(1), "cold_test": self.cold_test.size(1),
                "cold_items": self.cold_items.numel()}


# ----------------------------------------------------------------------------- splitting

def make_split(snapshot: GraphSnapshot, cfg) -> Split:
    """Split the target relation of `snapshot` as `cfg` (a TrainConfig) says; seeded."""
    data = snapshot.data
    target = target_edge_type(data, cfg.target)
    store = data[target]
    ei = store.edge_index
    if ei.size(1) == 0:
        raise DataError(f"no {target[1]} edges to learn from: load interactions first")
    users, items = ei[0].numpy(), ei[1].numpy()
    n_items = int(data["item"].num_nodes)
    codes = store.split.numpy() if "split" in store else np.zeros(len(users), np.int64)
    first_ts = store.first_ts.numpy() if "first_ts" in store else np.full(len(users), -1)
    rng = np.random.default_rng(cfg.seed)

    mode = cfg.split
    if mode == "auto":
        mode = "given" if (codes != 0).any() else "temporal"
    if mode == "given":
        if not (codes != 0).any():
            raise DataError("split 'given' asked for, but the data carries no split labels: "
                            "use --split temporal (or auto)")
        if (codes == 0).any():
            log.warning("%d edges without a split label are treated as training",
                        int((codes == 0).sum()))
        is_test = codes == TEST
    else:
        if (first_ts < 0).all():
            log.warning("no interaction times: the temporal split falls back to a random order")
        # ties (day-resolution timestamps) are broken at random, seeded
        tie = rng.random(len(users))
        rank = _rank_within(users, first_ts.astype(np.float64) + tie * 0.5)
        n = np.bincount(users)[users]
        n_test = np.clip(np.round(cfg.temporal_fraction * n), 0, n - 1)
        is_test = rank >= n - n_test

    # cold items: chosen among the items that have interactions
    with_edges = np.unique(items)
    n_cold = int(round(cfg.cold_item_fraction * len(with_edges)))
    cold = np.sort(rng.choice(with_edges, n_cold, replace=False)) if n_cold else \
        np.empty(0, np.int64)
    cold_mask = np.zeros(n_items, bool)
    cold_mask[cold] = True
    is_cold = cold_mask[items]

    pool = ~is_test & ~is_cold
    is_val = np.zeros(len(users), bool)
    if cfg.val_fraction > 0:
        idx = np.flatnonzero(pool)
        u = users[idx]
        key = rng.random(len(idx))
        if cfg.val_mode == "latest":
            key = -(first_ts[idx].astype(np.float64)) + key * 0.5  # latest first, ties at random
        rank = _rank_within(u, key)
        n_users = int(data["user"].num_nodes)
        n = np.bincount(u, minlength=n_users)[u]
        # stochastic rounding per user: the expected share is exactly val_fraction, while each
        # user keeps >= 1 training edge
        n_val = np.minimum(np.floor(cfg.val_fraction * n + rng.random(n_users)[u]), n - 1)
        is_val[idx[rank < n_val]] = True

    def pick(mask: np.ndarray) -> Tensor:
        return ei[:, torch.from_numpy(np.flatnonzero(mask))]

    train, val = pick(pool & ~is_val), pick(is_val)
    test, cold_test = pick(is_test & ~is_cold), pick(is_test & is_cold)
    cold_t = torch.from_numpy(cold.astype(np.int64))

    held_eval = torch.cat([test, cold_test], 1)
    held_train = torch.cat([val, held_eval], 1)
    cut_train = cut_eval = None
    if mode == "temporal":
        ts = torch.from_numpy(first_ts.astype(np.int64))
        n_users = int(data["user"].num_nodes)
        later = np.flatnonzero(is_test)
        cut_eval = user_cutoffs(ei[:, later], ts[later], n_users)
        if cfg.val_mode == "latest":
            later = np.flatnonzero(is_test | is_val)
        cut_train = user_cutoffs(ei[:, later], ts[later], n_users)
    if cfg.aux_test_edges == "keep":
        held_train = held_eval = torch.empty(2, 0, dtype=torch.long)
    train_graph = _build_graph(snapshot, target, train, held_train, cold_t, cut_train)
    eval_graph = _build_graph(snapshot, target, torch.cat([train, val], 1), held_eval, cold_t,
                              cut_eval)
    split = Split(train_graph, eval_graph, train, val, test, cold_test, cold_t, mode)
    log.info("split %s", split.summary())
    if train.size(1) == 0:
        raise DataError("the split leaves no training edges: the graph is too small")
    return split


def graph_from_snapshot(snapshot: GraphSnapshot, target: str | None = None) -> Graph:
    """Serving / fold-in: every target edge of the snapshot is history."""
    et = target_edge_type(snapshot.data, target)
    return _build_graph(snapshot, et, snapshot.data[et].edge_index,
                        torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))


def user_cutoffs(pairs: Tensor, times: Tensor, n_users: int) -> Tensor:
    """Per user, the earliest known time (>= 0) of its `pairs` ([2, E], times [E]); the largest
    int64 for users without one (no cutoff)."""
    cut = torch.full((n_users,), torch.iinfo(torch.long).max, dtype=torch.long)
    known = times >= 0
    return cut.scatter_reduce(0, pairs[0, known], times[known], reduce="amin")


def _build_graph(snapshot: GraphSnapshot, target: EdgeType, history: Tensor, held: Tensor,
                 cold_items: Tensor, cutoff: Tensor | None = None) -> Graph:
    """Message-passing graph: `history` as the target relation, KG edges as they are, other
    user-item relations minus the `held` pairs, the cold items, test-labelled edges and (with a
    per-user `cutoff` time) every edge first seen at or after its user's cutoff."""
    src = snapshot.data
    n_items = int(src["item"].num_nodes)
    data = HeteroData()
    for t in src.node_types:
        data[t].num_nodes = int(src[t].num_nodes)
    held_keys = pair_keys(held, n_items).sort().values
    cold = torch.zeros(n_items, dtype=torch.bool)
    cold[cold_items] = True
    for et in src.edge_types:
        if not is_user_item(et):
            data[et].edge_index = src[et].edge_index
            continue
        if et[0] != "user":
            continue  # reverse user-item types are rebuilt from the filtered forward type
        if et == target:
            ei = _sorted_pairs(history, n_items)  # sorted by user: `history_of` relies on it
        else:
            st = src[et]
            ei = st.edge_index
            keep = ~cold[ei[1]] & ~is_member(pair_keys(ei, n_items), held_keys)
            if "split" in st:
                keep &= st.split != TEST
            if cutoff is not None and "first_ts" in st:
                keep &= ~((st.first_ts >= 0) & (st.first_ts >= cutoff[ei[0]]))
            ei = ei[:, keep]
        data[et].edge_index = ei
        data[et[2], "rev_" + et[1], et[0]].edge_index = ei.flip(0)
    return Graph(data, snapshot.ids, target)


def _rank_within(groups: np.ndarray, key: np.ndarray) -> np.ndarray:
    """0-based rank of each element by `key` (ascending) within its group."""
    order = np.lexsort((key, groups))
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    run = np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    rank = np.empty(len(groups), np.int64)
    rank[order] = np.arange(len(groups)) - run
    return rank


def _sorted_pairs(pairs: Tensor, n_items: int) -> Tensor:
    order = pair_keys(pairs, n_items).argsort()
    return pairs[:, order]


# ----------------------------------------------------------------------------- pairs, negatives

def pair_keys(pairs: Tensor, n_items: int) -> Tensor:
    """(user, item) pairs [2, E] -> one int64 key per pair (user * n_items + item)."""
    return pairs[0].long() * n_items + pairs[1].long()


def is_member(keys: Tensor, sorted_keys: Tensor) -> Tensor:
    """Bool mask: which `keys` occur in `sorted_keys` (binary search, no hash set)."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def history_of(history: Tensor, users: Tensor) -> tuple[Tensor, Tensor]:
    """(row in `users`, item) of every pair of `history` ([2, E], sorted by user) whose user is in
    `users`: the entries to mask in a [len(users), n_items] score block."""
    start = torch.searchsorted(history[0], users)
    counts = torch.searchsorted(history[0], users, right=True) - start
    rows = torch.repeat_interleave(torch.arange(len(users)), counts)
    # position of entry j of row b: start[b] + j
    offset = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts)
    return rows, history[1, offset + torch.arange(int(counts.sum()))]


def sample_negatives(users: Tensor, k: int, known_keys: Tensor, pool: Tensor, n_items: int,
                     generator: torch.Generator, tries: int = 200) -> Tensor:
    """[B, k] items drawn uniformly from `pool`, redrawn where (user, item) is a known positive
    (only the collisions are redrawn: on real data one or two rounds)."""
    neg = pool[torch.randint(len(pool), (users.numel(), k), generator=generator)]
    for _ in range(tries):
        bad = is_member(users[:, None] * n_items + neg, known_keys)
        n_bad = int(bad.sum())
        if not n_bad:
            return neg
        neg[bad] = pool[torch.randint(len(pool), (n_bad,), generator=generator)]
    log.warning("%d negatives are known positives after %d redraws (users who interacted with "
                "almost every item?)", n_bad, tries)
    return neg
