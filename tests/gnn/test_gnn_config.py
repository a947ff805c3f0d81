"""gnn.config: settings given as KEY=VALUE are read as their field's type; every bad value is a
ConfigError that names the field, the rule and the value."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from gnn.config import TrainConfig, parse_settings


def test_settings_are_read_as_their_fields_type():
    got = parse_settings(["cold_item_fraction=0", "max_minutes=null", "target=purchased",
                          'dataset="beauty"', "kg_links=true", "epochs=3", "lr=1e-2",
                          "dropout= 0.5 "])
    assert got == {"cold_item_fraction": 0.0, "max_minutes": None, "target": "purchased",
                   "dataset": "beauty", "kg_links": True, "epochs": 3, "lr": 0.01,
                   "dropout": 0.5}
    assert isinstance(got["cold_item_fraction"], float)
    assert parse_settings(["dataset=123"]) == {"dataset": "123"}  # text stays text


def test_settings_win_and_null_means_null():
    assert TrainConfig.for_model("hgt").max_minutes == 7  # the default budget
    assert TrainConfig.for_model("hgt", max_minutes=None).max_minutes == 7  # option not given
    cfg = TrainConfig.for_model("hgt", parse_settings(["max_minutes=null", "epochs=7"]),
                                epochs=3)
    assert cfg.max_minutes is None and cfg.epochs == 7


@pytest.mark.parametrize("item,message", [
    ("cold_item_frac=0", "unknown training setting 'cold_item_frac': did you mean cold_item_fraction"),
    ("epochs", "expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("epochs=abc", "'epochs' must be an integer"),
    ("epochs=2.5", "'epochs' must be an integer (got 2.5)"),
    ("lr=fast", "'lr' must be a number"),
    ("dim=null", "'dim' must be an integer"),
    ("kg_links=maybe", "'kg_links' must be true or false"),
    ("model=mf", "choose the model with --model"),
    ("lr=-1", "'lr' must be > 0 (got -1.0)"),
    ("epochs=0", "'epochs' must be >= 1 (got 0)"),
    ("heads=0", "'heads' must be >= 1 (got 0)"),
    ("reg=-0.1", "'reg' must be >= 0 (got -0.1)"),
    ("max_minutes=0", "'max_minutes' must be > 0, or null for no limit (got 0.0)"),
    ("loss=hinge", "'loss' must be one of bpr, softmax (got 'hinge')"),
    ("scale_lr=cubic", "'scale_lr' must be one of none, sqrt, linear"),
    ("val_fraction=1", "'val_fraction' must be in [0, 1) (got 1.0)"),
    ("lr=NaN", "'lr' must be a number (got nan)"),
    ("kg_exclude=brand,colour", "'kg_exclude' parts must be among item-item, brand, category "
                                "(got 'colour')"),
    ("attention=no", "'attention' must be true or false"),
])
def test_bad_settings_are_clear_errors(item, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig.for_model("hgt", parse_settings([item]))
    assert message in str(e.value)


def test_options_are_checked_like_settings():
    with pytest.raises(ConfigError, match="'lr' must be > 0"):
        TrainConfig.for_model("mf", lr=-1.0)
    with pytest.raises(ConfigError, match="unknown training setting 'lrate'"):
        TrainConfig.for_model("mf", lrate=0.1)
    with pytest.raises(ConfigError, match="'dim' must be an integer"):
        TrainConfig(dim="64")


def test_saved_configs_from_other_versions_still_load(tmp_path):
    path = tmp_path / "config.json"
    TrainConfig.for_model("mf", dim=8).save(path)
    text = path.read_text().replace('"dim": 8', '"dim": 8, "retired_knob": 1')
    path.write_text(text)
    assert TrainConfig.load(path) == TrainConfig.for_model("mf", dim=8)
