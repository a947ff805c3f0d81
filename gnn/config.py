"""`TrainConfig`: every knob of a training run, saved as `config.json` in the run and inside the
checkpoint (nanoGPT-style: the saved config rebuilds the model).

Per-model defaults (`MODEL_DEFAULTS`, each with a comment saying where its values come from);
options given explicitly (CLI flags, keyword arguments) override them.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError

log = logging.getLogger(__name__)

MODELS = ("hgt", "lightgcn", "lightgcn-kg", "mf", "itemknn", "pop", "kglink",
          "behaviour-pop", "behaviour-knn")
KG_PARTS = ("item-item", "brand", "category")  # what `kg_exclude` can drop
LOSSES = ("bpr", "softmax")
BLEND_PRIORS = ("kglink", "behaviour-pop", "itemknn")  # the no-learning scorers a network may be fused with
SPLITS = ("auto", "given", "temporal")
DEVICES = ("auto", "cpu", "cuda")
LR_SCALINGS = ("none", "sqrt", "linear")


@dataclass
class TrainConfig:
    model: str = "hgt"
    dataset: str = "snapshot"  # a label written into metrics.json
    # --- what to predict and how to split (gnn.data)
    target: str | None = None  # user->item relation; None: "purchased" if present else "reviewed"
    split: str = "auto"  # auto: the data's split codes if any are set, else temporal
    temporal_fraction: float = 0.2  # temporal split: the last 20% of each user's interactions
    val_fraction: float = 0.1  # share of each user's training interactions held out for validation
    val_mode: str = "random"  # "random" | "latest" (by first_ts)
    cold_item_fraction: float = 0.1  # items whose interactions are all held out (cold-start slice)
    aux_test_edges: str = "keep"  # the held-out pairs' own auxiliary behaviour edges (a cart
    # of a test purchase): "keep" them in the graph (published protocol) | "drop" them
    behaviours: str = "auto"  # user-item relations learned from (gnn.behaviours): "all" |
    # "target" | "carted,favorited" (+ the target) | "auto": hgt, behaviour-pop all, else target
    # --- model
    dim: int = 64
    layers: int = 3  # propagation layers (lightgcn, hgt)
    heads: int = 2  # hgt: attention heads
    kg_conv: str = "sparse"  # hgt: "sparse" (HGT attention on sparse kernels) | "hgt" (PyG
    # HGTConv) | "gat" (PyG GATv2Conv per relation in HeteroConv)
    dropout: float = 0.0  # hgt: dropout on attention outputs
    id_dropout: float = 0.0  # share of id embeddings replaced by the learned default in training
    knn_neighbours: int = 100  # itemknn: neighbours kept per item
    knn_shrink: float = 0.0  # itemknn: cosine shrinkage
    kg_links: bool = False  # mf, lightgcn, hgt: add to the dot product a learned weight per
    # item-item KG relation on log(1 + links from the user's history to the candidate)
    blend: str = "off"  # neural models: fuse the trained network's scores with the no-learning
    # scorers of the same information, weights fitted on validation (gnn/models/blend.py):
    # "auto" (hgt's default: those the graph feeds) | "off" | "kglink,behaviour-pop"
    fit_users: int | None = 5000  # validation users the weight searches on validation (the
    # blend's, kglink's) score, sampled by the seed; null: every validation user (slower)
    cold_map: bool = True  # hgt: an item without interactions gets the embedding a ridge map
    # from its KG neighbourhood predicts, fitted on the warm items after training
    # (gnn/models/cold_map.py); false: the network's own KG-propagated embedding
    cold_head: bool = True  # hgt, with the cold map: the items without interactions are ordered
    # for each user by a small network over the network's scores and the KG links to the
    # history, fitted on pseudo-cold validation pairs (gnn/models/cold_head.py)
    # --- ablations (bench/bench_models.py --ablations)
    attention: bool = True  # hgt: False = uniform weights within each relation (1 / in-degree,
    # times the learned relation weight): no query/key attention parameters at all
    kg_exclude: str = ""  # models that read the KG: comma list of "item-item", "brand",
    # "category": those relations are left out of the model's graph (e.g. "brand,category")
    # --- optimisation
    epochs: int = 50
    lr: float = 1e-3
    dense_lr: float = 2.5e-4  # learning rate of dense (non-embedding) layers: Adam moves every
    # weight by ~lr per step, so a 64x64 matrix at the embeddings' lr changes its scale within
    # one epoch and swamps the embeddings
    weight_decay: float = 0.0  # AdamW decay of dense (non-embedding) parameters
    reg: float = 1e-4  # L2 on the layer-0 embeddings of each batch (LightGCN-style)
    batch_size: int = 4096  # positive edges per step (each step is one full-graph forward)
    loss: str = "bpr"  # "bpr" | "softmax" (sampled softmax over `neg_samples` negatives)
    # bpr: uniform negatives per positive, known positives redrawn; softmax: uniform negatives
    # shared by the batch
    neg_samples: int = 1
    temperature: float = 0.2  # softmax loss: logits / temperature
    aux_weight: float = 0.0  # weight of an auxiliary BPR loss per other user-item behaviour of
    # the training graph (views, carts, ... beside the target relation); 0: target only
    behaviour_lr: float = 0.05  # hgt with several behaviours: learning rate of the per-behaviour
    # gains, attention and pair weights (scalars that must move by O(1) within a few epochs)
    patience: int = 5  # evaluations without a better validation NDCG@20 before stopping
    eval_every: int = 1  # epochs between validations
    max_minutes: float | None = None  # stop training after this long (best state is kept)
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present
    eval_batch: int = 4096  # users per scoring chunk
    scale_lr: str = "none"  # data-parallel: each of N processes takes `batch_size` positives per
    # step, so the effective batch is N x batch_size; "sqrt" / "linear" multiply lr and dense_lr
    # by sqrt(N) / N (default "none": Adam's step size does not grow with the batch)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self._check_types()
        for name, value, allowed in (("model", self.model, MODELS), ("loss", self.loss, LOSSES),
                                     ("split", self.split, SPLITS),
                                     ("device", self.device, DEVICES),
                                     ("val_mode", self.val_mode, ("random", "latest")),
                                     ("kg_conv", self.kg_conv, ("sparse", "hgt", "gat")),
                                     ("scale_lr", self.scale_lr, LR_SCALINGS),
                                     ("aux_test_edges", self.aux_test_edges, ("keep", "drop"))):
            if value not in allowed:
                raise ConfigError(f"'{name}' must be one of {', '.join(allowed)} (got {value!r})")
        for name in ("val_fraction", "cold_item_fraction", "temporal_fraction", "id_dropout",
                     "dropout"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"'{name}' must be in [0, 1) (got {v})")
        for name in ("epochs", "dim", "heads", "batch_size", "neg_samples", "eval_every",
                     "eval_batch", "patience", "knn_neighbours"):
            if getattr(self, name) < 1:
                raise ConfigError(f"'{name}' must be >= 1 (got {getattr(self, name)})")
        if not [b for b in self.behaviours.split(",") if b.strip()] or \
                any(not b.strip() for b in self.behaviours.split(",")):
            raise ConfigError(f"'behaviours' must be auto, all, target or relation names "
                              f"separated by commas (got {self.behaviours!r})")
        for name in ("lr", "dense_lr", "temperature", "behaviour_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"'{name}' must be > 0 (got {getattr(self, name)})")
        for name in ("layers", "weight_decay", "reg", "knn_shrink", "aux_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"'{name}' must be >= 0 (got {getattr(self, name)})")
        if self.fit_users is not None and self.fit_users < 1:
            raise ConfigError(f"'fit_users' must be >= 1, or null for every validation user "
                              f"(got {self.fit_users})")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"'max_minutes' must be > 0, or null for no limit "
                              f"(got {self.max_minutes})")
        priors = [x.strip() for x in self.blend.split(",")]
        if self.blend not in ("auto", "off") and not set(priors) <= set(BLEND_PRIORS):
            raise ConfigError(f"'blend' must be auto, off or a comma list of "
                              f"{', '.join(BLEND_PRIORS)} (got {self.blend!r})")
        parts = [x.strip() for x in self.kg_exclude.split(",") if x.strip()]
        bad = [x for x in parts if x not in KG_PARTS]
        if bad:
            raise ConfigError(f"'kg_exclude' parts must be among {', '.join(KG_PARTS)} "
                              f"(got {', '.join(map(repr, bad))})")
        if self.dim % self.heads:
            raise ConfigError(f"'dim' (got {self.dim}) must be divisible by 'heads' "
                              f"(got {self.heads})")

    def _check_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = _types(f.name)
            ok = any(value is None if t is type(None) else
                     isinstance(value, bool) if t is bool else
                     isinstance(value, (int, float)) and not isinstance(value, bool)
                     and math.isfinite(value) if t is float else
                     isinstance(value, int) and not isinstance(value, bool) if t is int else
                     isinstance(value, t) for t in allowed)
            if not ok:
                raise ConfigError(f"'{f.name}' must be {_describe(allowed)} (got {value!r})")

    # --- construction and persistence
    @classmethod
    def for_model(cls, model: str, settings: dict[str, Any] | None = None,
                  **overrides: Any) -> TrainConfig:
        """The defaults of `model` (MODEL_DEFAULTS), then `overrides` (options: None means "not given"),
        then `settings` (from `parse_settings`: None there means None, e.g. no time limit).
        An unknown key is a ConfigError."""
        if model not in MODELS:
            raise ConfigError(f"'model' must be one of {', '.join(MODELS)} (got {model!r})")
        for key in (*overrides, *(settings or {})):
            check_key(key)
        values = {**MODEL_DEFAULTS.get(model, {}),
                  **{k: v for k, v in overrides.items() if v is not None}, **(settings or {}),
                  "model": model}
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """From a saved config: keys this version does not know are ignored (and logged)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            log.warning("ignoring unknown config keys: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(path.read_text()))


def check_key(key: str) -> str:
    """`key` if it is a TrainConfig field, else ConfigError naming the closest ones."""
    known = [f.name for f in fields(TrainConfig)]
    if key not in known:
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(f"unknown training setting {key!r}: {hint}settings are the fields of "
                          f"TrainConfig: {', '.join(known)}")
    return key


def parse_settings(items: list[str]) -> dict[str, Any]:
    """`["KEY=VALUE", ...]` (the `--set` options) -> {key: value}, each value read as the
    field's type: numbers and true/false as JSON, `null`/`none` for "not set" where a field
    allows it, text as it is (quotes optional). ConfigError for an unknown key, a missing '=',
    or a value of the wrong type."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (e.g. --set "
                              "cold_item_fraction=0)")
        if key == "model":
            raise ConfigError("--set model=…: choose the model with --model")
        allowed = _types(check_key(key))
        out[key] = _read_value(key, raw, allowed)
    return out


def _read_value(key: str, raw: str, allowed: tuple[type, ...]) -> Any:
    if raw.lower() in ("null", "none"):
        if type(None) in allowed:
            return None
        raise ConfigError(f"--set {key}={raw}: {key!r} must be {_describe(allowed)}")
    if str in allowed:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        return value if isinstance(value, str) else raw
    try:
        value = json.loads(raw.lower() if bool in allowed else raw)
    except json.JSONDecodeError:
        raise ConfigError(f"--set {key}={raw}: {key!r} must be {_describe(allowed)}") from None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return value  # the type itself is checked by TrainConfig.validate


def _types(name: str) -> tuple[type, ...]:
    hint = typing.get_type_hints(TrainConfig)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _describe(allowed: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text",
             type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in allowed)


# Where each value comes from (issue 13 asks every default to cite its source). lr, reg and
# dim of the learned models come from one validation-only search per model on Beauty, the same
# for every model (`bench/bench_tuning.py`: lr {1e-3, 5e-3, 2e-2} x reg {1e-5, 1e-4} x dim
# {64, 128}, 12 configurations, each with the same 4-minute budget at 1 thread, seed 0,
# chosen by validation NDCG@20): bench/results/tuning-amazon-beauty-MODEL.json holds the
# whole search, the choice and its test metrics. The other values are hand-set, as said.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "pop": {"epochs": 1},  # nothing to tune
    "behaviour-pop": {"epochs": 1},  # no training: the type weights are fixed (gnn/models/behaviour_pop.py)
    "behaviour-knn": {"epochs": 1, "knn_neighbours": 100},  # the same, itemknn's neighbours
    "itemknn": {"epochs": 1, "knn_neighbours": 100},  # hand-set (a common default), not tuned
    # kglink: `epochs` = passes of coordinate ascent over its weights; the weights themselves
    # are fitted on the validation edges by every run (gnn/models/kglink.py), so nothing here
    # is tuned on test
    "kglink": {"epochs": 2, "fit_users": None},  # its fit scores every validation user
    # mf: lr / reg / dim tuned (tuning-amazon-beauty-mf.json: validation NDCG@20 0.0449, test
    # NDCG@10 0.0443 vs RecBole's BPR-MF 0.039 on this split); batch hand-set
    "mf": {"lr": 1e-3, "reg": 1e-5, "dim": 128, "batch_size": 4096, "epochs": 100},
    # lightgcn: lr / reg / dim tuned (tuning-amazon-beauty-lightgcn.json: validation 0.0547,
    # test NDCG@10 0.0575); layers (the paper's 3) and batch hand-set
    "lightgcn": {"lr": 2e-2, "reg": 1e-4, "dim": 128, "layers": 3, "batch_size": 4096,
                 "epochs": 100},
    # lightgcn-kg: lr / reg / dim tuned (tuning-amazon-beauty-lightgcn-kg.json: validation
    # 0.0573, test NDCG@10 0.0571); lightgcn's layers and batch, and a 14-minute budget on 2 CPU
    # cores (twice hgt's; a larger graph: one step costs more than lightgcn's), hand-set
    "lightgcn-kg": {"lr": 2e-2, "reg": 1e-5, "layers": 3, "batch_size": 4096, "epochs": 100,
                    "max_minutes": 14},
    # hgt: lr / reg / dim tuned (tuning-amazon-beauty-hgt.json: lr 2e-2, was 5e-3 by hand;
    # validation 0.0675 within the search's 4 minutes against 0.0632 for the old lr in 7).
    # layers, heads, id_dropout hand-set while developing it (issue 3). batch 8192 (was 4096)
    # and a 7-minute budget on 2 CPU cores (was 14): half the full-graph steps per epoch, best
    # validation plus the blend in < 10 minutes at 1 % lower NDCG@10 (models-hgt-*.md, issue
    # 13); the best validation state within the budget is kept (on a GPU it is never reached)
    "hgt": {"lr": 2e-2, "reg": 1e-4, "layers": 3, "heads": 1, "batch_size": 8192,
            "epochs": 100, "id_dropout": 0.1, "max_minutes": 7,
            # fused with kglink / behaviour-pop where the graph feeds them (issues 9 and 13:
            # bench/results/models-*.json, multibehaviour.json measure with and without)
            "blend": "auto"},
}
