"""Text for search: one tokenizer for items and queries, item text, and protocol queries.

- `terms(text)`: NFKC + HTML-unescaped + casefolded words (Unicode `\\w`, so non-Latin scripts
  stay words: they simply match nothing in an English catalogue), stop words removed, then a
  light plural stemmer (Harman's "S" stemmer) so that a query "creams" meets a title "Cream".
  The same function runs on both sides of the index, which is what makes BM25 scores meaningful.
- `item_text(title, brand, categories)`: everything the catalogue says about an item: title, brand
  and category names (an item is found by its category even when its title does not name it, and
  the protocol's category-name queries meet the same text a shopper's words do).
- `category_query(names)`: the product-search evaluation query of Ai et al. (SIGIR 2017): the
  item's category names lower-cased, stop words and repeated words removed, in order.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence

from bm25s.stopwords import STOPWORDS_EN

STOP_WORDS: frozenset[str] = frozenset(STOPWORDS_EN)
VERSION = 2  # of `terms` + `item_text`: a saved index built with another version is rebuilt

_POSSESSIVE = re.compile(r"['’]s\b")
_WORD = re.compile(r"\w+")


def clean(text: object) -> str:
    """Display text: HTML entities unescaped, Unicode NFKC, runs of whitespace collapsed."""
    if text is None or (isinstance(text, float) and text != text):  # None or NaN
        return ""
    s = unicodedata.normalize("NFKC", html.unescape(str(text)))
    return " ".join(s.split())


def words(text: object) -> list[str]:
    """Lower-cased words of `text` (possessive 's dropped), stop words kept, no stemming."""
    s = _POSSESSIVE.sub("", clean(text).casefold())
    return _WORD.findall(s.replace("_", " "))


def stem(word: str) -> str:
    """Harman's S stemmer (1991): plural -> singular only; conservative by design."""
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def terms(text: object) -> list[str]:
    """Index/query terms of `text`: words without stop words, stemmed (order and repeats kept)."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS]


def item_text(title: object, brand: object, categories: Iterable[object]) -> str:
    """What an item is found by: its title, brand and category names (broadest first)."""
    return " ".join(x for x in [clean(title), clean(brand), *(clean(c) for c in categories)] if x)


def category_query(names: Sequence[object]) -> str:
    """The evaluation query of an item from its category names ("" when nothing is left)."""
    out: list[str] = []
    for w in words(" ".join(clean(n) for n in names)):
        if w not in STOP_WORDS and w not in out:
            out.append(w)
    return " ".join(out)
