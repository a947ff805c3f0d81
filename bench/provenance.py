"""What every benchmark writes beside its numbers, so they can be reproduced: the commit (and
whether the tree had changes), the command line, the date, the machine, and a fingerprint of the
data it measured."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark's child process: this one's, with the repository first on
    PYTHONPATH (what was already there kept: e.g. packages installed beside the image's)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def provenance(data: dict) -> dict:
    """{commit, dirty, command, date, machine, data}; `data` describes what was measured.
    BENCH_COMMIT, when set, names the commit (a copy whose git state is not the tree's: a device
    machine's copy of a working tree)."""
    named = os.environ.get("BENCH_COMMIT")
    return {"commit": named or _git("rev-parse", "HEAD"),
            "dirty": False if named else bool(_git("status", "--porcelain",
                                                   "--untracked-files=no")),
            "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(), "data": data}


def footer(out: dict, threads: str) -> list[str]:
    """The Markdown lines that end a result table: the machine (`threads`: how the runs were
    threaded) and the commit and command of `out` (a result with `provenance`'s fields)."""
    m = out["machine"]
    return ["", f"Machine: {m['cpus']} CPUs, torch {m['torch']}, {threads}, load average at the "
            f"end {tuple(round(x, 1) for x in m['load_average'])}",
            f"Commit {out['commit']}{' (with changes)' if out['dirty'] else ''}, {out['date']}: "
            f"`{out['command']}`", ""]


def machine() -> dict:
    import torch

    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "memory_gb": mem, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "cuda": torch.cuda.is_available(), "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def fingerprint(*paths: Path) -> str:
    """sha256 of the files' bytes (directories: their files, sorted by path)."""
    h = hashlib.sha256()
    for p in paths:
        files = sorted(f for f in Path(p).rglob("*") if f.is_file()) if Path(p).is_dir() \
            else [Path(p)]
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
