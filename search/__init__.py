"""Product search: item text, BM25 index, the re-ranking engine, blend fitting, the evaluation protocol."""
