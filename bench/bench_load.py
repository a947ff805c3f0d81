"""Load benchmark: the full bundled Beauty graph into a fresh embedded server.

Reports relationships/s and peak RSS (this process and the server process) for kgrec's batched
loader and, in the same run, for a naive one-transaction-per-row loader on a 2,000-row slice of
the behaviour edges. Writes bench/results/load.json.

    .venv/bin/python bench/bench_load.py [--naive-rows 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time
from pathlib import Path

import psutil
from provenance import fingerprint as data_fingerprint
from provenance import provenance

from core.config import GraphConfig
from etl.canonical import aggregate_behaviour
from etl.load import fingerprint, load_tables
from etl.quarantine import Quarantine
from etl.readers import read
from graph import queries as Q
from graph import server
from graph.store import GraphStore

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "amazon_beauty"


class PeakRss:
    """Samples the RSS of a process every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--naive-rows", type=int, default=2000)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as home:
        cfg = GraphConfig(home=Path(home))
        info = server.start(cfg)
        try:
            with GraphStore(cfg) as store, PeakRss(info.pid) as server_rss:
                t0 = time.perf_counter()
                tables = read("amazon-kg", DATA, Quarantine())
                read_s = time.perf_counter() - t0
                summary = load_tables(store, tables, home=Path(home), source="amazon_beauty",
                                      fingerprint=fingerprint("amazon-kg", DATA, False, 0))
                total_s = time.perf_counter() - t0
                rels = sum(n for k, n in summary.counts.items() if k.isupper())
                nodes = sum(n for k, n in summary.counts.items() if not k.isupper())
                # naive: one transaction per row, same statement, same kind of rows
                agg = aggregate_behaviour(tables.events.head(args.naive_rows))
                rows = [{"src": r.user_id, "dst": r.item_id, "count": int(r.count),
                         "first_ts": None, "last_ts": None, "split": None, "rating": None}
                        for r in agg.itertuples()]
                t1 = time.perf_counter()
                for row in rows:
                    store.write(Q.MERGE_BEHAVIOUR["REVIEWED"], rows=[row])
                naive_s = time.perf_counter() - t1
                t2 = time.perf_counter()
                store.write_batches(Q.MERGE_BEHAVIOUR["REVIEWED"], rows)
                batched_slice_s = time.perf_counter() - t2
        finally:
            server.stop(cfg)
    result = {
        **provenance({"path": str(DATA.relative_to(REPO)), "sha256": data_fingerprint(DATA)}),
        "dataset": "amazon_beauty (bundled)",
        "counts": summary.counts,
        "nodes": nodes,
        "relationships": rels,
        "read_seconds": round(read_s, 2),
        "total_seconds": round(total_s, 2),
        "relationships_per_s": round(rels / total_s, 1),
        "rows_written": sum(summary.rows_written.values()),
        "peak_rss_mb_loader": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_server": round(server_rss.peak / 2**20, 1),
        "naive": {"rows": len(rows), "seconds": round(naive_s, 2),
                  "relationships_per_s": round(len(rows) / naive_s, 1)},
        "batched_same_slice": {"rows": len(rows), "seconds": round(batched_slice_s, 3),
                               "relationships_per_s": round(len(rows) / batched_slice_s, 1)},
        "speedup_vs_naive": round((rels / total_s) / (len(rows) / naive_s), 1),
        "target": "full graph in < 180 s",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
