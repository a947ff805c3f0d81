"""How library code reports progress: a callback, never a bar of its own (the CLI draws them).

    progress(step, done, total)   `done` units of `step` finished in this call, out of `total`
                                  (total 0: unknown); called from the working thread
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def no_progress(step: str, done: int, total: int) -> None:
    """The default callback: report nothing."""
