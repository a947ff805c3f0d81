"""The recommenders behind one interface (`gnn.models.base.Recommender`), by name."""

from __future__ import annotations

from gnn.config import TrainConfig
from gnn.models.base import Recommender


def registry() -> dict[str, type[Recommender]]:
    from gnn.models.behaviour_pop import BehaviourKNN, BehaviourPop
    from gnn.models.hgt import HGT
    from gnn.models.itemknn import ItemKNN
    from gnn.models.kglink import KGLink
    from gnn.models.lightgcn import LightGCN
    from gnn.models.lightgcn_kg import LightGCNKG
    from gnn.models.mf import MF
    from gnn.models.pop import Popularity

    return {m.name: m for m in (HGT, LightGCN, LightGCNKG, MF, ItemKNN, Popularity, KGLink,
                                BehaviourPop, BehaviourKNN)}


def create(name: str, cfg: TrainConfig | None = None) -> Recommender:
    cls = registry()[name]
    return cls(cfg or TrainConfig.for_model(name))


def load(path) -> Recommender:
    from gnn.checkpoint import load_model

    return load_model(path)


__all__ = ["Recommender", "create", "load", "registry"]
