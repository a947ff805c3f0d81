"""A trained run's serving data (`RunAssets`: user and item vectors, popularity, histories) and
the engine built from it over a catalogue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DataError
from core.io import atomic_write
from search.blend import Blend
from search.catalogue import Catalogue, positions
from search.config import SearchConfig
from search.engine import SearchEngine
from search.index import TextIndex
from search.personal import Personal


@dataclass
class RunAssets:
    """What search needs from a trained run, in the snapshot's index space: user and item
    vectors, item popularity and each user's history (known interactions)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_emb: np.ndarray
    item_emb: np.ndarray
    popularity: np.ndarray  # [n_items] interactions per item
    hist_ptr: np.ndarray  # CSR over users: items of user u = hist_items[ptr[u]:ptr[u+1]]
    hist_items: np.ndarray

    @classmethod
    def from_model(cls, model, graph, popularity: np.ndarray | None = None) -> RunAssets:
        """From a `gnn.models` recommender and a `gnn.data.Graph` (whose history is known);
        popularity: given, else the graph's history per item."""
        u, i = model.embeddings(graph)
        if u.is_sparse or i.is_sparse:
            raise DataError(f"the run's model ({model.name}) has no dense user/item vectors; "
                            "search needs mf, lightgcn, lightgcn-kg or hgt: train one of those")
        h = graph.history.numpy()
        n_users, n_items = len(graph.ids["user"]), len(graph.ids["item"])
        h = h[:, np.lexsort((h[1], h[0]))]
        ptr = np.r_[0, np.cumsum(np.bincount(h[0], minlength=n_users))]
        pop = np.bincount(h[1], minlength=n_items).astype(np.float64) if popularity is None \
            else np.asarray(popularity, np.float64)
        return cls(graph.ids["user"], graph.ids["item"], u.numpy().astype(np.float32),
                   i.numpy().astype(np.float32), pop, ptr, h[1].copy())

    def save(self, path: Path) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, user_ids=self.user_ids.astype(str),
                         item_ids=self.item_ids.astype(str), user_emb=self.user_emb,
                         item_emb=self.item_emb, popularity=self.popularity,
                         hist_ptr=self.hist_ptr, hist_items=self.hist_items)

        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> RunAssets:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["user_ids"].astype(object), z["item_ids"].astype(object),
                       z["user_emb"], z["item_emb"], z["popularity"], z["hist_ptr"],
                       z["hist_items"])

    def engine(self, catalogue: Catalogue, blend: Blend | None = None,
               cfg: SearchConfig | None = None, index: TextIndex | None = None
               ) -> SearchEngine:
        """A search engine over `catalogue` with these vectors, popularity and histories."""
        pos = positions(self.item_ids, catalogue.ids)  # catalogue -> run item
        ok = pos >= 0
        pop = np.zeros(len(catalogue))
        pop[ok] = self.popularity[pos[ok]]
        to_cat = np.full(len(self.item_ids), -1)
        to_cat[pos[ok]] = np.flatnonzero(ok)
        personal = Personal.aligned(self.user_ids, self.user_emb, self.item_ids, self.item_emb,
                                    catalogue)
        history = History(personal.user_index, self.hist_ptr, to_cat[self.hist_items])
        return SearchEngine(catalogue, popularity=pop, personal=personal, blend=blend,
                            history=history, cfg=cfg, index=index)


class History(Mapping):
    """User id -> catalogue indices of the user's items (users without any are absent), sliced
    from the CSR arrays on demand: a dict of every user's history costs more than a search."""

    def __init__(self, user_index: dict[str, int], ptr: np.ndarray, items: np.ndarray) -> None:
        self.user_index, self.ptr, self.items = user_index, ptr, items

    def __getitem__(self, user: str) -> np.ndarray:
        u = self.user_index.get(str(user))
        items = self.items[self.ptr[u]: self.ptr[u + 1]] if u is not None else self.items[:0]
        items = items[items >= 0]
        if not len(items):
            raise KeyError(user)
        return items

    def __iter__(self) -> Iterator[str]:
        return (u for u in self.user_index if u in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)
