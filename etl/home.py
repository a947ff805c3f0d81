"""What the ETL keeps in a kgrec home (`KGREC_HOME`), and the lock that serialises loads.

    <home>/                  0700 (created so; an existing directory keeps its mode)
      events.parquet         every event loaded so far, deduplicated (0600)
      salt                   the pseudonymisation salt (0600), made by the first --pseudonymize
      etl/                   0700
        load.lock            held by the load that is writing; another load waits, saying so
        <fingerprint>.json   a load's checkpoint: finished batches per step (0600), removed
                             when the load is done

Files are replaced atomically through a unique temporary name in their own directory
(`core.io.atomic_write`), so a killed load leaves the old file or the new one, and two processes
never share a temporary file. A load killed mid-write leaves its temporary file behind; the next
load removes such leftovers once it holds the lock (no other load can be writing then). The
quarantine files live in `KGREC_QUARANTINE_DIR` (0700, files 0600: they hold raw rows with user
ids).

One salt per home: the same user id gets the same pseudonym on every load into this home. A
graph never mixes plain and pseudonymized user ids (`check_user_ids`): each returning user would
count twice.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from core.errors import DataError
from core.io import file_lock, private_dir, secret_file
from etl.normalize import PSEUDONYM_LENGTH
from graph import queries as Q

PSEUDONYM = re.compile(f"[0-9a-f]{{{PSEUDONYM_LENGTH}}}")
SAMPLE_USERS = 200  # user ids of the graph looked at to tell plain ids from pseudonyms


class EtlHome:
    """The ETL's files in one home (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def events(self) -> Path:
        return self.root / "events.parquet"

    @property
    def salt_file(self) -> Path:
        return self.root / "salt"

    @property
    def etl_dir(self) -> Path:
        return self.root / "etl"

    def checkpoint(self, fingerprint: str) -> Path:
        return self.etl_dir / f"{fingerprint}.json"

    def prepare(self) -> EtlHome:
        """Create the home and its etl/ folder readable by the owner only."""
        private_dir(self.root)
        private_dir(self.etl_dir)
        return self

    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Held while a load writes (event store, graph, checkpoint); `on_wait` is called once
        if another load of this home holds it."""
        self.prepare()
        with file_lock(self.etl_dir / "load.lock", on_wait=on_wait):
            self.remove_leftovers()
            yield

    def remove_leftovers(self) -> list[Path]:
        """Delete the temporary files of killed loads (the event store's and the checkpoints'
        `.NAME.*.tmp`); call with the lock held. The removed paths."""
        stale = [*self.root.glob(f".{self.events.name}.*.tmp"), *self.etl_dir.glob(".*.json.*.tmp")]
        for f in stale:
            f.unlink(missing_ok=True)
        return stale

    def forget_loads(self) -> None:
        """Drop the event store and the load checkpoints (after the graph was emptied: a later
        load must not add old events back). The salt stays: pseudonyms remain stable."""
        self.events.unlink(missing_ok=True)
        if self.etl_dir.is_dir():
            for f in self.etl_dir.glob("*.json"):
                f.unlink(missing_ok=True)

    def salt(self) -> bytes:
        """The home's salt, created on first use (32 random bytes, file mode 0600)."""
        return bytes.fromhex(secret_file(self.salt_file, lambda: secrets.token_hex(32)))


def _look_pseudonymized(ids: Iterable[object]) -> bool:
    return all(isinstance(i, str) and PSEUDONYM.fullmatch(i) for i in ids)


def check_user_ids(store, home: EtlHome, pseudonymize: bool, incoming: pd.Series) -> None:
    """Refuse a load that would put plain user ids beside pseudonyms (or the reverse), and a
    pseudonymized load whose salt is gone while the graph holds pseudonyms: in both cases every
    returning user would become a second node. `incoming`: this load's user ids (before
    pseudonymisation); plain ids that look like pseudonyms themselves cannot be told apart."""
    ids = [r["id"] for r in store.read(Q.SAMPLE_USER_IDS, n=SAMPLE_USERS)]
    if not ids or (not pseudonymize and _look_pseudonymized(incoming.head(SAMPLE_USERS))):
        return
    pseudonyms = _look_pseudonymized(ids)
    fresh = "or empty the graph (kgrec graph reset --yes) and load every source "
    if pseudonymize and not pseudonyms:
        raise DataError(
            f"the graph already holds plain user ids (e.g. {ids[0]!r}): pseudonymized ids "
            f"beside them would count every returning user twice. Load without "
            f"--pseudonymize, {fresh}with --pseudonymize")
    if not pseudonymize and pseudonyms:
        raise DataError(
            f"the graph holds pseudonymized user ids (e.g. {ids[0]!r}): plain ids beside "
            f"them would count every returning user twice. Load with --pseudonymize (salt "
            f"{home.salt_file}), {fresh}without it")
    if pseudonymize and not home.salt_file.exists():
        raise DataError(
            f"the graph holds pseudonymized user ids but their salt {home.salt_file} is gone: a "
            f"new salt would give every returning user a new id. Restore the file, {fresh}"
            f"with --pseudonymize")
