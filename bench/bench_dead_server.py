"""A dead embedded server under a running load: how long until the command says so, what it says,
what the next command does, and whether the load resumes.

With the real CLI only (so the same script measures any checkout): `kgrec etl load` of the bundled
Beauty data into a fresh KGREC_HOME; the server process is killed with SIGKILL as soon as the
load's checkpoint records `--kill-after-batches` finished batches (so the load is mid-way,
whatever the machine's speed); then `kgrec graph counts` (the next command) and the same load
again. Writes bench/results/dead_server.json.

    .venv/bin/python bench/bench_dead_server.py [--kill-after-batches 3] [--repo OTHER_CHECKOUT]

`--repo` runs another checkout's CLI on its own data/ (e.g. the commit before the fix, for the
"before" number); the result still goes to this checkout's bench/results unless --out says else.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def kgrec(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kgrec.cli", *args], env=env,
                            cwd=env["PYTHONPATH"], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 1800) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def batches_done(home: Path) -> int:
    """Finished batches the load's checkpoint (home/etl/<fingerprint>.json) records."""
    total = 0
    for f in (home / "etl").glob("*.json"):
        try:
            total += sum(json.loads(f.read_text()).values())
        except (OSError, json.JSONDecodeError):
            pass
    return total


def wait_for(what, timeout: float = 1800):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise SystemExit("the load did not get that far")


def server_pid(home: Path) -> int | None:
    try:
        return int(json.loads((home / "graph" / "server.json").read_text())["pid"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kill-after-batches", type=int, default=3,
                   help="kill the server once the load has finished this many batches")
    p.add_argument("--repo", type=Path, default=HERE, help="the checkout whose CLI runs")
    p.add_argument("--out", type=Path, default=HERE / "bench" / "results" / "dead_server.json")
    args = p.parse_args()
    repo = args.repo.resolve()
    data = repo / "data" / "amazon_beauty"
    home = Path(tempfile.mkdtemp(prefix="kgrec-dead-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGREC_"))}
    env.update(KGREC_HOME=str(home / "home"), KGREC_QUARANTINE_DIR=str(home / "quarantine"),
               PYTHONPATH=str(repo), COLUMNS="200")
    load_args = ("etl", "load", "--format", "amazon-kg", str(data))

    load = kgrec(env, *load_args)
    wait_for(lambda: batches_done(home / "home") >= args.kill_after_batches)
    pid = server_pid(home / "home")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    rc, _, err = finish(load)
    to_error = time.monotonic() - killed
    lines = err.strip().splitlines()

    t0 = time.monotonic()
    rc_next, out_next, err_next = finish(kgrec(env, "graph", "counts"))
    next_s = time.monotonic() - t0
    t0 = time.monotonic()
    rc_again, out_again, err_again = finish(kgrec(env, *load_args))
    again_s = time.monotonic() - t0
    finish(kgrec(env, "graph", "stop"))
    shutil.rmtree(home, ignore_errors=True)

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                            text=True).stdout.strip() or "unknown: not a git checkout"
    files = sorted(f for f in data.rglob("*") if f.is_file())
    fingerprint = hashlib.sha256("".join(f"{f.name}:{f.stat().st_size}" for f in files)
                                 .encode()).hexdigest()[:16]
    result = {
        "command": " ".join([sys.executable, *sys.argv]), "commit": commit,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
        "repo": str(repo),
        "data": {"path": "data/amazon_beauty", "fingerprint": fingerprint},
        "killed_after_batches": args.kill_after_batches,
        "running_load": {"exit_code": rc, "seconds_from_kill_to_exit": round(to_error, 2),
                         "driver_retry_messages": sum("will be retried" in x for x in lines),
                         "last_line": lines[-1] if lines else ""},
        "next_command": {"command": "kgrec graph counts", "exit_code": rc_next,
                         "seconds": round(next_s, 2),
                         "said_it_restarted": "starting it again" in err_next,
                         "stderr": err_next.strip()[-400:]},
        "load_again": {"exit_code": rc_again, "seconds": round(again_s, 2),
                       "resumed": "resumed steps" in out_again,
                       "summary_tail": "\n".join(out_again.strip().splitlines()[-6:]),
                       "stderr_tail": err_again.strip()[-400:]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
