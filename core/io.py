"""File helpers every layer shares: atomic writes, secret files, locks, batching.

Atomic writes go through a uniquely named temporary file in the destination's own directory
(so `os.replace` never crosses a file system, and two writers never share a temporary name),
created with the final file's mode; a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PRIVATE_FILE = 0o600  # what the home holds (event store, quarantine, passwords): owner only
PRIVATE_DIR = 0o700


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any],
                 mode: int | None = None) -> Path:
    """Call `write(tmp)` to fill a fresh temporary path beside `path`, then move it into place.
    `write` may also create a directory there (a directory replacing a directory is swapped by
    two renames: atomic for readers of the new copy, never a half-written one).

    `write` receives a path that does not exist yet (so writers that insist on creating the file
    themselves, like `np.savez` or `DataFrame.to_parquet`, work); `mode` sets the file's
    permissions (default: the process umask, as a plain open would)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # `write` creates it; mkstemp only reserved a unique name
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        if tmp.is_dir() and path.is_dir():
            # a directory cannot replace a non-empty one: swap names, then drop the old copy
            old = path.with_name(f"{tmp.name}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, mode: int | None = None) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode)


def atomic_write_json(path: str | os.PathLike, obj: Any, mode: int | None = None,
                      indent: int | None = 2) -> Path:
    text = json.dumps(obj, indent=indent) + ("\n" if indent is not None else "")
    return atomic_write_text(path, text, mode)


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The parsed file, or `default` when it does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def secret_file(path: str | os.PathLike, make: Callable[[], str]) -> str:
    """The content of a secret file, created with `make()` and mode 0600 on first use.

    O_EXCL: two processes starting at once never both write it (the loser reads the winner's)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(make())
    return path.read_text().strip()


def private_dir(path: str | os.PathLike) -> Path:
    """Create `path` (and missing parents) readable by the owner only; an existing directory
    keeps its mode."""
    path = Path(path)
    if not path.is_dir():
        old = os.umask(0o077)
        try:
            path.mkdir(parents=True, exist_ok=True)
        finally:
            os.umask(old)
    return path


class LockBusy(Exception):
    """Raised by `file_lock(..., wait=False)` when another process holds the lock."""


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, wait: bool = True,
              on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive `flock` on `path` for the duration of the block (released if the process
    dies). `wait=False` raises LockBusy instead of blocking; `on_wait` is called once before
    blocking on a lock someone else holds (to tell the user why nothing happens)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if not wait:
                raise LockBusy(str(path)) from None
            if on_wait is not None:
                on_wait()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"'size' must be >= 1 (got {size})")
    batch: list[T] = []
    for x in items:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
