"""search.personal: vectors aligned with the catalogue; unknown items are NaN."""

from __future__ import annotations

import numpy as np

from search.personal import Personal


def test_aligned_vectors_score_and_find_the_closest_history_item(catalogue):
    cat = catalogue(["a", "b", "c", "d"])
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    p = Personal.aligned(["u"], np.array([[1.0, 0.0]]), ["i00", "i01", "i02"], items, cat)
    assert p.item_known.tolist() == [True, True, True, False]  # i03 is unknown to the run
    s = p.scores(0)
    assert s[:3].tolist() == [1.0, 0.0, 0.8999999761581421] and np.isnan(s[3])
    assert np.array_equal(p.scores_batch(np.array([0]))[0][:3], s[:3])
    assert p.closest(0, np.array([1, 2, 3])) == 2
    assert p.closest(3, np.array([0, 1])) is None and p.closest(0, np.array([0])) is None
