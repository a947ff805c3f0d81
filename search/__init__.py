"""Product search: BM25 over the catalogue's text, re-ranked per shopper with a trained run.

One job per module, from the bottom:
    text        the tokenizer both sides of the index share; item text; protocol queries
    config      SearchConfig, QueryError
    catalogue   the searchable items (from the graph or a snapshot), cached with a fingerprint
    index       the BM25 index (bm25s), saved with the run and memory-mapped
    popularity  the one popularity definition (training split only), from a snapshot or the graph
    personal    a run's user and item vectors aligned with the catalogue
    blend       the feature weights and their fit on validation queries
    results     what a search returns: hits (scores, reasons, score parts), ranked candidates
    engine      SearchEngine: candidates, features, the ranking, hits with reasons and score parts
    serving     a run's vectors, popularity and histories (RunAssets) -> an engine
    protocol    the evaluation protocol (Ai et al. 2017): queries, tie-aware metrics, methods
    assets      what a run keeps for search and the engines `kgrec search` and the dashboard use
    evaluate    the protocol on a trained run (`kgrec search-eval`), search_metrics.json
"""
