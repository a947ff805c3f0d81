"""ETL: source files -> readers -> canonical tables (validated, bad rows quarantined) -> graph.

    etl.readers     one reader per source format, `read(fmt, path, quarantine)`
    etl.canonical   `CanonicalTables`, their contracts, `aggregate_behaviour`
    etl.normalize   brand/title/category normalisation, `pseudonymize`
    etl.quarantine  `Quarantine`: rejected rows with file, line, reason and raw text
"""
