"""search.text: the tokenizer both sides of the index share, item text and protocol queries."""

from search import text as T


def test_terms_unescape_casefold_drop_stop_words_and_stem_plurals():
    assert T.terms("L&#39;Oréal Creams &amp; Moisturizers for the FACE") == [
        "l", "oréal", "cream", "moisturizer", "face"]
    assert T.terms("Women's Body Washes, Lashes & Brushes") == [
        "women", "body", "washe", "lashe", "brushe"]  # the S stemmer is light on purpose
    assert T.terms("the and of") == []
    assert T.terms(None) == [] and T.terms(float("nan")) == []


def test_stem_is_harman_s_stemmer():
    assert [T.stem(w) for w in ("creams", "accessories", "glasses", "shampoos", "shoes",
                                "gloss", "citrus", "is")] == [
        "cream", "accessory", "glasse", "shampoo", "shoe", "gloss", "citrus", "is"]


def test_non_latin_text_stays_words():
    assert T.terms("Крем для лица 面霜") == ["крем", "для", "лица", "面霜"]


def test_item_text_is_title_brand_and_categories():
    assert T.item_text("Rose &amp; Honey  Cream", "Rosa", ["Beauty", "Face"]) == \
        "Rose & Honey Cream Rosa Beauty Face"
    assert T.item_text("", "L&#39;Lavande", ["Beauty", "Bath & Body"]) == \
        "L'Lavande Beauty Bath & Body"
    assert T.item_text(None, None, []) == ""


def test_category_query_lower_cases_and_drops_stop_and_repeated_words():
    names = ["Beauty", "Skin Care", "Face", "Creams & Moisturizers", "Body Care", "Face"]
    assert T.category_query(names) == "beauty skin care face creams moisturizers body"
    assert T.category_query(["Tools & Accessories", "Tools"]) == "tools accessories"
    assert T.category_query(["&", "and", "the"]) == ""
    assert T.category_query([]) == ""
