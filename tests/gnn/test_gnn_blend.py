"""gnn.models.blend: a network fused with the no-learning scorers of the same information —
weights from validation only, priors limited to what the model sees, scores that are what the
docstring says, and a checkpoint that keeps them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from gnn_fixtures import fast_config
from test_multibehaviour import board_with_behaviours

from core.errors import ConfigError
from gnn.config import TrainConfig
from gnn.data import make_split
from gnn.models import create
from gnn.models.ascent import sampled_validation
from gnn.models.blend import available, standardise
from gnn.rundir import RunDir
from gnn.trainer import Trainer


def fit(model_name, snapshot, fixed_split=None, **over):
    # the blend alone: hgt's cold-item scorer re-orders cold columns (tests: test_cold_head.py)
    cfg = fast_config(model_name, **{"epochs": 3, "cold_head": False, **over})
    split = fixed_split or make_split(snapshot, cfg)
    model = create(model_name, cfg)
    res = Trainer().fit(model, split)
    return model, split, res


def alphas(model) -> dict[str, float]:
    return {n: p["alpha"] for n, p in model.meta["blend"].items()}


def test_the_blend_is_fitted_on_validation_only(slice_snapshot):
    model, split, res = fit("hgt", slice_snapshot, blend="auto")
    assert set(model.meta["blend"]) == {"kglink"} and res.calibration
    assert "weights" in model.meta["blend"]["kglink"]
    # the test edges play no part: scrambling them changes neither the weights nor the search
    n = split.train_graph.n_items
    scrambled = dataclasses.replace(split, test=torch.stack([split.test[0],
                                                            (split.test[1] + 5) % n]),
                                    cold_test=split.cold_test[:, :0])
    other, _, res2 = fit("hgt", slice_snapshot, scrambled, blend="auto")
    assert other.meta["blend"] == model.meta["blend"]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in res.calibration]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in res2.calibration]
    # the validation edges drive it (the test edges as validation give another search)
    _, _, res3 = fit("hgt", slice_snapshot, dataclasses.replace(split, val=split.test),
                     blend="auto")
    assert [r.get("val_ndcg@20") for r in res3.calibration] != \
        [r.get("val_ndcg@20") for r in res.calibration]


def test_standardise_rows_and_leaves_its_input_alone_unless_asked():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 50, generator=g) * 3 + 2
    x[3] = 5.0  # a constant row becomes 0
    sd, mu = torch.std_mean(x, dim=1, keepdim=True)
    want = ((x - mu) / sd.clamp(min=1e-6)).nan_to_num(0.0)
    for dtype in (torch.float32, torch.float64, torch.float16):
        before = x.to(dtype)
        kept = before.clone()
        got = standardise(before)
        assert got.dtype == torch.float32 and torch.equal(before, kept)
        assert torch.allclose(got, want, atol=2e-2 if dtype == torch.float16 else 1e-5)
        assert (got[3] == 0).all()
    own = x.clone()
    assert standardise(own, inplace=True).data_ptr() == own.data_ptr()  # the caller's temporary
    assert torch.allclose(own, want, atol=1e-5)


def test_blended_scores_are_the_standardised_sum(slice_snapshot, tmp_path):
    model, split, _ = fit("hgt", slice_snapshot, blend="auto")
    model.meta["blend"]["kglink"]["alpha"] = 0.7  # whatever validation chose: set one
    model.invalidate()
    users = torch.arange(6)
    u, i = model.embeddings()
    prior = model.blend.prior("kglink").score_users(users, model.graph)
    want = standardise(u[users] @ i.T) + 0.7 * standardise(prior)
    got = model.score_users(users)
    assert torch.allclose(got, want, atol=1e-5) and not model.dot_product_only
    assert model.scores_cold_items  # kglink scores items without interactions
    items = torch.randint(0, i.size(0), (6,))
    assert torch.allclose(model.score(users, items), got[users, items], atol=1e-5)
    # the checkpoint keeps the blend (weights, alphas) and gives the same scores
    rd = RunDir(tmp_path / "run")
    rd.save_model(model)
    again = rd.load_model()
    again.use(model.graph)
    assert alphas(again) == alphas(model)
    assert torch.allclose(again.score_users(users), got, atol=1e-5)


def test_blend_off_is_the_plain_network(slice_snapshot):
    model, _, res = fit("hgt", slice_snapshot, blend="off")
    assert model.dot_product_only and not model.meta.get("blend") and not res.calibration


def test_priors_see_only_what_the_model_sees(slice_snapshot):
    board = board_with_behaviours()
    split = make_split(board, fast_config("hgt", split="given", cold_item_fraction=0.0))
    g = split.train_graph
    assert available(g, fast_config("hgt", blend="auto")) == \
        ["kglink", "behaviour-pop", "itemknn"]
    # the target-only ablation has no auxiliary behaviours to count, a KG ablation no links
    assert available(g, fast_config("hgt", blend="auto", behaviours="target")) == ["kglink"]
    assert available(g, fast_config("hgt", blend="auto", kg_exclude="brand")) == \
        ["behaviour-pop", "itemknn"]
    assert available(g, fast_config("lightgcn", blend="auto")) == ["kglink"]  # target only
    assert available(g, fast_config("hgt", blend="off")) == []
    with pytest.raises(ConfigError, match="'blend' must be"):
        fast_config("hgt", blend="kglink,magic")


def test_a_multi_behaviour_blend_fits_every_prior():
    model, split, res = fit("hgt", board_with_behaviours(), split="given",
                            cold_item_fraction=0.0, epochs=4)
    assert set(model.meta["blend"]) == {"kglink", "behaviour-pop", "itemknn"}
    assert all(0.0 <= a for a in alphas(model).values())
    chosen = max((r for r in res.calibration if "alphas" in r), key=lambda r: r["val_ndcg@20"])
    assert chosen["alphas"] == alphas(model)  # the best of the search is what the model uses


def test_the_searches_score_a_seeded_sample_of_validation_users(slice_snapshot):
    split = make_split(slice_snapshot, fast_config("hgt"))
    users = split.val[0].unique()
    n = len(users) // 2
    a, again, other = (sampled_validation(split, n, seed) for seed in (0, 0, 1))
    assert a.val[0].unique().numel() == n
    assert torch.equal(a.val, again.val) and not torch.equal(a.val, other.val)
    # every validation edge of a sampled user stays, and nothing but validation changes
    kept = set(a.val[0].tolist())
    assert a.val.size(1) == sum(u in kept for u in split.val[0].tolist())
    assert a.train is split.train and a.test is split.test and a.train_graph is split.train_graph
    assert sampled_validation(split, None, 0) is split
    assert sampled_validation(split, len(users), 0) is split


def test_fit_users_must_be_positive_or_null():
    assert TrainConfig.for_model("hgt", {"fit_users": None}).fit_users is None  # every user
    assert TrainConfig.for_model("kglink").fit_users is None  # kglink's own fit: every user
    with pytest.raises(ConfigError, match="fit_users"):
        TrainConfig.for_model("hgt", {"fit_users": 0})
