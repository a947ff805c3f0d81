"""Readers: one per source format, each mapping its files to `CanonicalTables`.

    read(fmt, path, quarantine) -> CanonicalTables      (validated; bad rows in `quarantine`)

Formats (documented in docs/formats.md): "amazon-kg" (a directory like data/amazon_beauty),
"rees46" (one REES46 events CSV, optionally gzipped), "csv" (the generic CSV/Parquet directory).
A missing file or an unexpected header raises `InputFileError` naming the file and what was
expected; malformed rows never raise: they go to the quarantine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from core.errors import ConfigError
from etl.canonical import CanonicalTables
from etl.quarantine import Quarantine
from etl.readers.amazon import read_amazon
from etl.readers.generic import read_generic
from etl.readers.rees46 import read_rees46

log = logging.getLogger(__name__)

Reader = Callable[[Path, Quarantine], CanonicalTables]

READERS: dict[str, Reader] = {
    "amazon-kg": read_amazon,
    "rees46": read_rees46,
    "csv": read_generic,
}


def read(fmt: str, path: Path, quarantine: Quarantine) -> CanonicalTables:
    """Read `path` in format `fmt` into validated canonical tables."""
    try:
        reader = READERS[fmt]
    except KeyError:
        raise ConfigError(
            f"unknown --format {fmt!r}: expected one of {', '.join(sorted(READERS))}"
        ) from None
    started = time.perf_counter()
    tables = reader(Path(path), quarantine)
    log.info(
        "read %s (%s) in %.1f s: %s; %d rows quarantined %s",
        path, fmt, time.perf_counter() - started, tables.counts(), len(quarantine),
        quarantine.counts(),
    )
    return tables


__all__ = ["READERS", "Reader", "read"]
