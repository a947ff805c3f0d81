"""search.index: BM25 with match levels, saved and memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import DataError
from search import text as T
from search.index import TextIndex

TEXTS = ["Rose Face Cream", "Face Wash", "Hand Cream", "Rose Perfume Beauty", ""]


def test_match_counts_the_query_terms_each_item_contains():
    ix = TextIndex.build(TEXTS)
    m = ix.match(T.terms("face creams nowhere"))
    assert m.terms == ["face", "cream"]  # "nowhere" is not in the index
    assert m.level.tolist() == [2, 1, 1, 0, 0]
    assert (m.scores[:3] > 0).all() and (m.scores[3:] == 0).all()
    assert m.scores[0] > m.scores[1] and m.scores[0] > m.scores[2]
    assert m.matched(0) == ["face", "cream"] and m.matched(2) == ["cream"]
    assert ix.match([]).scores.tolist() == [0.0] * 5


def test_saved_index_loads_memory_mapped_with_the_same_scores(tmp_path):
    ix = TextIndex.build(TEXTS, k1=1.2, b=0.6, fingerprint="abc")
    ix.save(tmp_path / "bm25")
    back = TextIndex.load(tmp_path / "bm25")
    assert isinstance(back.bm25.scores["data"], np.memmap)
    q = T.terms("rose face cream")
    np.testing.assert_array_equal(back.match(q).scores, ix.match(q).scores)
    assert back.fits("abc", 1.2, 0.6)
    assert not back.fits("other", 1.2, 0.6) and not back.fits("abc", 1.5, 0.6)
    ix.save(tmp_path / "bm25")  # replacing a saved index works (atomic directory swap)
    assert TextIndex.load(tmp_path / "bm25").n == len(TEXTS)


def test_an_empty_catalogue_cannot_be_indexed():
    with pytest.raises(DataError, match="empty catalogue"):
        TextIndex.build([])
