"""`kgrec demo`: the whole pipeline on the bundled real dataset with the embedded graph.

Each stage runs the real `kgrec` command a user would type, so the demo shows exactly what the
commands print: load -> train the attention model (quick configuration) and the baselines ->
compare -> write recommendations back to the graph -> three users' lists with reasons -> one
search -> how to open the dashboard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import typer

from core.errors import InputFileError, KgrecError
from gnn.rundir import RunDir, check_run_name
from kgrec.commands.common import config, console, friendly_errors

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "amazon_beauty"
# quick configuration: a few epochs (hgt ~14 s an epoch on 2 CPU cores; its blend's weight
# searches on 2,000 sampled validation users), so the demo ends within 8 minutes;
# bench/results/models*.md have the fully trained comparison
QUICK = {"hgt": ["--epochs", "5", "--set", "fit_users=2000"], "lightgcn": ["--epochs", "6"],
         "mf": ["--epochs", "10"], "itemknn": [], "pop": []}
SEARCH_QUERY = "moisturizer for dry skin"


def bundled_data() -> Path:
    if not (BUNDLED / "interactions.csv.gz").exists():
        raise InputFileError(f"{BUNDLED}: the bundled dataset is missing; run kgrec from a "
                             "checkout of the repository (it ships data/amazon_beauty)")
    return BUNDLED


def kgrec(*args: str, env: dict[str, str] | None = None) -> None:
    """Run one real `kgrec` command, its output shown as is; a failure stops the demo."""
    console.print(f"[dim]$ kgrec {' '.join(args)}[/dim]", highlight=False)
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", *args], env=env)
    if p.returncode != 0:
        raise KgrecError(f"`kgrec {' '.join(args)}` failed (exit {p.returncode}); see above")


@friendly_errors
def demo(
    reload: bool = typer.Option(False, "--reload", help="Load the data again even if loaded."),
    prefix: str = typer.Option("demo", "--prefix", help="Run names: PREFIX-hgt, PREFIX-mf, …"),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                   help="Also train pop, itemknn, mf and lightgcn to compare."),
    data_dir: Path | None = typer.Option(None, "--data",
                                         help="Another dataset in the amazon-kg layout "
                                              "(default: the bundled data/amazon_beauty)."),
) -> None:
    """The whole pipeline on the bundled Amazon Beauty data (about 7 minutes on 2 CPU cores)."""
    import pandas as pd

    from kgrec.commands.common import open_store
    from kgrec.commands.etl_cmd import run_load, summary_table
    from kgrec.commands.graph_cmd import counts_table

    t0 = time.perf_counter()
    cfg = config()
    hgt = check_run_name(f"{prefix}-hgt")  # the one run-name rule: a bad --prefix stops here
    data = bundled_data() if data_dir is None else data_dir
    console.rule(f"[bold]1. load {'the bundled Amazon Beauty' if data_dir is None else data} "
                 "graph")
    with open_store(cfg) as store:
        counts = store.counts()
    if counts.get("REVIEWED") and not reload:
        console.print("the graph is already loaded (use --reload to load it again)")
        console.print(counts_table(counts))
    else:
        summary, qfile = run_load(cfg, "amazon-kg", data)
        console.print(summary_table(summary, qfile))

    console.rule("[bold]2. train the attention model (quick configuration) and the baselines")
    # the demo's own runs (--prefix) are replaced when the demo runs again
    kgrec("train", "--model", "hgt", "--run", hgt, "--overwrite", *QUICK["hgt"])
    rd = RunDir.named(cfg.runs_dir, hgt)
    runs = [hgt]
    if baselines:
        # the baselines reuse the graph snapshot exported for the first run
        env = dict(os.environ, KGREC_SNAPSHOT=str(rd.snapshot_dir))
        for model in ("pop", "itemknn", "mf", "lightgcn"):
            kgrec("train", "--model", model, "--run", f"{prefix}-{model}", "--overwrite",
                  *QUICK[model], env=env)
            runs.append(f"{prefix}-{model}")
    kgrec("compare", *runs)
    console.print("[dim]quick configuration (few epochs); fully trained models: "
                  "bench/results/models.md[/dim]")

    console.rule("[bold]3. write top-20 recommendations back into the graph")
    # --from-snapshot: the graph has not changed since training, so the run's own snapshot is
    # the current graph (saves an export; after new events, leave it out to fold them in)
    kgrec("recommend", "--run", hgt, "--all", "--k", "20", "--write-graph", "--from-snapshot")

    console.rule("[bold]4. three users: recommendations and why")
    recs = pd.read_parquet(rd.recommendations_file)
    users = recs["user_id"].drop_duplicates().head(3).tolist()
    # a per-user request: the users' current histories folded into the run's graph (no export),
    # written beside the batch output (runs/NAME/user_recommendations.parquet), never over it
    kgrec("recommend", "--run", hgt, "--users", ",".join(users), "--k", "5")
    for user in users:
        top = recs[recs["user_id"] == user].sort_values("rank").iloc[0]["item_id"]
        kgrec("explain", user, str(top), "--run", hgt, "--n", "2")

    console.rule("[bold]5. search, personalised for the first user")
    kgrec("search", SEARCH_QUERY, "--user", users[0], "--run", hgt, "--k", "5")

    console.rule("[bold]done")
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s. Explore it with:\n"
                  "  kgrec dashboard            # then open the printed http://127.0.0.1:… URL\n"
                  f"  kgrec explain USER ITEM --run {hgt}\n"
                  "  Cypher recipes: docs/cypher.md")
