"""ETL: source files -> readers -> canonical tables (validated, bad rows quarantined) -> graph.

    etl.readers     one reader per source format, `read(fmt, path, quarantine)`; CSV text in
                    `readers.textfile`, Parquet in `readers.parquetfile`, row checks in
                    `readers.common`
    etl.canonical   `CanonicalTables`, their contracts, `aggregate_behaviour`
    etl.normalize   brand/title/category normalisation, `pseudonymize`
    etl.quarantine  `Quarantine`: rejected rows with file, line, reason, detail and raw text
    etl.home        `EtlHome`: what a load keeps in KGREC_HOME (event store, salt, checkpoints,
                    the load lock), private to the owner
    etl.load        `load_tables`: canonical tables -> the graph, one load of a home at a time
"""
