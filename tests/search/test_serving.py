"""search.serving: a run's vectors, popularity and histories, saved and aligned with a catalogue."""

from __future__ import annotations

import numpy as np

from search.serving import History, RunAssets


def _assets() -> RunAssets:
    # run items b, a, z (z is not in the catalogue); users u0: [a, z], u1: none, u2: [b]
    return RunAssets(user_ids=np.array(["u0", "u1", "u2"], object),
                     item_ids=np.array(["b", "a", "z"], object),
                     user_emb=np.eye(3, dtype=np.float32), item_emb=np.eye(3, dtype=np.float32),
                     popularity=np.array([3.0, 1.0, 7.0]), hist_ptr=np.array([0, 2, 2, 3]),
                     hist_items=np.array([1, 2, 0]))


def test_engine_aligns_vectors_popularity_and_history_with_the_catalogue(catalogue):
    cat = catalogue(["alpha", "beta", "gamma"])
    cat.ids = np.array(["a", "b", "c"], object)  # c is new: unknown to the run
    engine = _assets().engine(cat)
    assert engine.popularity.tolist() == [1.0, 3.0, 0.0]
    assert engine.personal.item_known.tolist() == [True, True, False]
    assert engine.personal.scores(0, np.array([0, 1])).tolist() == [0.0, 1.0]  # u0 · a, u0 · b
    assert engine.history.get("u0").tolist() == [0]  # z is not in the catalogue
    assert engine.history.get("u1") is None and engine.history.get("nobody") is None
    assert engine.history.get("u2").tolist() == [1] and dict(engine.history).keys() == {"u0", "u2"}


def test_assets_round_trip(tmp_path):
    a = _assets()
    a.save(tmp_path / "serving.npz")
    b = RunAssets.load(tmp_path / "serving.npz")
    for f in ("user_ids", "item_ids", "user_emb", "item_emb", "popularity", "hist_ptr",
              "hist_items"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_history_is_a_mapping_of_the_users_with_items():
    h = History({"u": 0, "v": 1}, np.array([0, 1, 1]), np.array([5]))
    assert h["u"].tolist() == [5] and "v" not in h and len(h) == 1 and list(h) == ["u"]
