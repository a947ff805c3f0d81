"""hgt's cold-item scorer: a small network that orders the items without interactions for a
user from what the model knows of the pair, trained on validation pairs of warm items posed as
cold ("pseudo-cold").

    features of (u, c), c a candidate without interactions, each for a block of users over the
    candidates:
        network         u . e(c)                   (e(c): the cold-item map's embedding),
                                                    standardised per user over the candidates
        history_mean    mean_{h in H(u)} e(h) . e(c)              (standardised per user)
        history_cosine  sum_{h in H(u)} cos(e(h), e(c))           (standardised per user)
        <link>          log(1 + #links of c to H(u)) per item-item relation (each direction),
                        shared brand, IDF-weighted shared categories (`pairwise.LinkFeatures`,
                        kglink's features without popularity, which a cold item lacks)
    head  = Linear(F, 32) - ReLU - Linear(32, 1) on the features normalised by their fitting
            means and deviations
    score = the blended score's mean and deviation over the user's cold items, re-ordered by
            the head: score(u, c) = mean_u + std_u * z_u(head(u, c))

so the cold items keep their place against the warm ones (the same per-user mean and spread as
without the head; warm scores untouched) and only their order among themselves is the head's.

Fitting (`fit`, after the cold-item map, on the training graph only): the warm items are cut into
disjoint sets of at most `SET_ITEMS`; for each set, its items get the cold-item map's embedding
from their neighbours (as a cold item would; the map's features leave the item itself out) and
the validation pairs whose item is in the set are the positives, each in a softmax against
`NEGATIVES` items of its set (`USERS` users per set at most). The test edges are never looked
at. The head is fitted on 70 % of the sets; its record gives its Recall@20 within the set on the
other 30 % next to the network's own on the same pairs.

Why (issue 13): the network with the map wins on cold pairs without a direct KG link to the
history, the link count wins on those with one, and no fixed blend of the two took both (every
fusion tried stayed <= 1.06x kglink on Beauty's cold slice, `bench/results/cold-map-3seeds.md`);
the head learns, per pair, how much the exact links count against the network's similarity.
The same head on the link features alone (no network) reaches ~kglink's level, so what it adds
is the network's (`bench/results/cold-head*.md`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gnn.data import EdgeType, Graph, Split
from gnn.models import cold_map
from gnn.models.blend import standardise
from gnn.models.pairwise import LinkFeatures, link_features

log = logging.getLogger(__name__)

SET_ITEMS = 2000  # pseudo-cold items per set (a softmax over them): ~1,090 on Beauty
MAX_SETS = 10
USERS = 2000  # validation users per set at most
HIDDEN = 32
STEPS = 80
NEGATIVES = 50  # sampled from the pair's set, per validation pair
LR = 0.05
HELD = 0.3  # share of the sets held out for the record
CHUNK = 1 << 24  # feature values per scoring chunk (64 MB)
NETWORK = ("network", "history_mean", "history_cosine")


def link_names(lf: LinkFeatures) -> list[str]:
    return [n for n in lf.names if n != "pop"]


def features(graph: Graph, users: Tensor, items: np.ndarray, user_emb: Tensor,
             item_emb: Tensor, names: list[str]) -> Tensor:
    """[B, len(items), len(names)]: the features of the module docstring for `users` over the
    candidates `items` (`item_emb` holds the candidates' cold embeddings)."""
    lf = link_features(graph)
    rows = lf.users(users)
    cand = item_emb[torch.from_numpy(items)]
    hist_sum = torch.from_numpy(np.asarray(rows @ item_emb.numpy(), np.float32))
    n_hist = torch.from_numpy(np.asarray(rows.sum(1), np.float32)).clamp_min(1.0)
    unit = nn.functional.normalize(item_emb, dim=1)
    cols = {"network": lambda: standardise(user_emb[users] @ cand.T),
            "history_mean": lambda: standardise((hist_sum / n_hist) @ cand.T),
            "history_cosine": lambda: standardise(torch.from_numpy(
                np.asarray(rows @ unit.numpy(), np.float32)) @ unit[torch.from_numpy(items)].T)}
    have = set(link_names(lf))
    out = torch.zeros(len(users), len(items), len(names))
    for k, name in enumerate(names):
        if name in cols:
            out[..., k] = cols[name]()
        elif name in have:
            out[..., k] = lf.columns(rows, name, items)
    return out


class ColdHead(nn.Module):
    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(n_features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp((x - self.mean) / self.std).squeeze(-1)


def _recall20(scores: Tensor, row: Tensor, col: Tensor) -> tuple[float, int]:
    """Per-user Recall@20 within the set (sum over users, users)."""
    top = scores.topk(min(20, scores.size(1)), dim=1).indices
    hit = (top[row] == col[:, None]).any(1).float()
    n = torch.bincount(row, minlength=scores.size(0)).float()
    per = torch.zeros(scores.size(0)).index_add_(0, row, hit) / n.clamp_min(1)
    return float(per[n > 0].sum()), int((n > 0).sum())


def _scores(head: ColdHead, x: Tensor) -> Tensor:
    """head(x) for [users, items, F], in chunks of users."""
    step = max(1, CHUNK // max(x.size(1) * x.size(2), 1))
    return torch.cat([head(part) for part in x.split(step)])


def _train(samples: list[Tensor], n_features: int, seed: int) -> ColdHead:
    """Fit on [pairs, 1 + NEGATIVES, F] blocks (the positive first): softmax cross-entropy."""
    torch.manual_seed(seed)
    head = ColdHead(n_features)
    x = torch.cat(samples)
    flat = x.reshape(-1, n_features)
    head.mean.copy_(flat.mean(0))
    head.std.copy_(flat.std(0).clamp_min(1e-6))
    target = torch.zeros(len(x), dtype=torch.long)
    opt = torch.optim.Adam(head.mlp.parameters(), lr=LR)
    with torch.enable_grad():
        for _ in range(STEPS):
            opt.zero_grad()
            nn.functional.cross_entropy(head(x), target).backward()
            opt.step()
    head.eval()
    return head


def fit(split: Split, user_emb: Tensor, item_emb: Tensor, map_weight: Tensor,
        kg_edge_types: list[EdgeType], map_parts: list[str], seed: int = 0,
        names: list[str] | None = None) -> tuple[ColdHead | None, dict[str, Any]]:
    """The head fitted on pseudo-cold validation pairs of `split`'s training graph (the network's
    embeddings there: `user_emb`, `item_emb`; the fitted cold-item map `map_weight`), and its
    record. (None, why) when there is nothing to fit it on. `names`: a subset of the features
    (the benchmark's ablation; default all)."""
    t0 = time.perf_counter()
    g = split.train_graph
    known = cold_map.with_interactions(g)
    warm = np.flatnonzero(known)
    if not split.val.size(1) or len(warm) < 2:
        return None, {"fitted": False, "why": "no validation pairs of warm items to fit it on"}
    names = names or [*NETWORK, *link_names(link_features(g))]
    x_map = cold_map.features(g, item_emb.numpy(), known, kg_edge_types, map_parts)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    n_sets = min(MAX_SETS, max(2, int(np.ceil(len(warm) / SET_ITEMS))))
    n_held = max(1, int(round(HELD * n_sets)))
    samples, held, net_hits, n_pairs = [], [], [], 0
    for k, members in enumerate(np.array_split(rng.permutation(warm), n_sets)):
        members = np.sort(members[:SET_ITEMS])
        emb = item_emb.clone()
        emb[torch.from_numpy(members)] = torch.from_numpy(x_map[members]) @ map_weight
        in_set = torch.zeros(g.n_items, dtype=torch.bool)
        in_set[torch.from_numpy(members)] = True
        pairs = split.val[:, in_set[split.val[1]]]
        users = pairs[0].unique()
        if len(users) > USERS:
            users = users[torch.from_numpy(np.sort(rng.choice(len(users), USERS, False)))]
            pairs = pairs[:, torch.isin(pairs[0], users)]
        if not pairs.size(1):
            continue
        n_pairs += pairs.size(1)
        x = features(g, users, members, user_emb, emb, names)
        row = torch.searchsorted(users, pairs[0])
        col = torch.searchsorted(torch.from_numpy(members), pairs[1])
        if k < n_held:
            held.append((x, row, col))
            net_hits.append(_recall20(x[..., 0], row, col))
        else:
            neg = torch.randint(len(members), (len(col), NEGATIVES), generator=gen)
            samples.append(x[row[:, None], torch.cat([col[:, None], neg], 1)])
    if not samples or not held:
        return None, {"fitted": False, "why": "too few validation pairs of warm items"}
    head = _train(samples, len(names), seed)
    with torch.no_grad():
        head_hits = [_recall20(_scores(head, x), row, col) for x, row, col in held]

    def mean(hits: list[tuple[float, int]]) -> float:
        return round(sum(h for h, _ in hits) / max(sum(n for _, n in hits), 1), 4)

    log.info("cold-item scorer fitted in %.1f s", time.perf_counter() - t0)
    return head, {"fitted": True, "features": names, "sets": n_sets, "held_out_sets": len(held),
                  "pairs": n_pairs, "held_out_recall@20": {"head": mean(head_hits),
                                                          "network": mean(net_hits)}}


def apply(head: ColdHead, names: list[str], scores: Tensor, users: Tensor, graph: Graph,
          user_emb: Tensor, item_emb: Tensor) -> Tensor:
    """`scores` [B, n_items] with the columns of the items without interactions in `graph`
    re-ordered by the head (their per-user mean and deviation kept), in place."""
    cold = np.flatnonzero(~cold_map.with_interactions(graph))
    if len(cold) < 2 or not len(users):
        return scores
    c = torch.from_numpy(cold)
    block = scores[:, c].float()
    mu, sd = block.mean(1, keepdim=True), block.std(1, keepdim=True).nan_to_num(0.0)
    step = max(1, CHUNK // (len(cold) * len(names)))
    with torch.no_grad():
        h = torch.cat([head(features(graph, u, cold, user_emb, item_emb, names))
                       for u in users.cpu().split(step)])
    scores[:, c] = (mu + sd * standardise(h)).to(scores.dtype)
    return scores
