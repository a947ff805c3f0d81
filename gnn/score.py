"""Batch top-K scoring: recommendations for many users in chunks, and similar items.

    Scorer(model, graph, device=)            a trained model bound to a graph (its histories)
    scorer.topk(users, k)                    (items [B, k], scores [B, k]); seen items excluded
    scorer.chunks(users, k, chunk_users)     the same, one chunk of users at a time
    scoring_graph(run, store, users, ...)    the graph to score: whole-graph export (--all), or
                                             the run's snapshot + a few users' current histories
    RecommendJob(...).run(...)               the batch job behind `kgrec recommend`: Parquet
                                             parts + an optional sink per chunk (graph write-back),
                                             checkpointed so a killed job resumes
    bound_topk(user_emb, item_emb, users, k) a bare matmul + top-k: the speed bound (bench)

Scores are the model's own (`<user, item>` for the embedding models, `model.score_users` for the
memory-based ones). "Seen" is the model's history relation in the graph (the interactions it
learned from: reviews or purchases) or, with `exclude="all"`, every user-item relation.

Fold-in: the model's `embeddings(graph)` recomputes every user from its neighbourhood in the
graph it is given, so events loaded after training change that user's recommendations without
retraining. For every user (`--all`) that graph is exported from the store when the job starts;
for a few users it is the run's snapshot with those users' current histories spliced in
(`gnn.foldin`: one targeted query instead of an export of the whole graph).

Resume: the job keeps the run's job folder (`RunDir.job_dir`: the graph it scores, `job.json`
with the finished chunks, one Parquet part per chunk). A chunk counts as finished once its
Parquet part is written and its sink (the graph write) has returned; a re-run with the same
parameters skips finished chunks and scores the same graph; a half-written chunk is simply redone
(the graph write replaces a user's edges, so redoing it is harmless). The folder is removed when the job
ends, so the next run starts afresh. A job of a single chunk has nothing to resume and keeps
no state. The caller holds the run's job lock (`RunDir.lock`): two jobs never share the folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor

from core.errors import ConfigError, DataError
from core.io import atomic_write, atomic_write_json
from core.progress import Progress, no_progress
from gnn.data import Graph, graph_from_snapshot, history_of, pair_keys
from gnn.evaluate import topk_scores
from gnn.foldin import fold_in
from gnn.rundir import RunDir
from gnn.runtime import resolve_device
from gnn.snapshot import GraphSnapshot, export

log = logging.getLogger(__name__)

EXCLUDE = ("history", "all", "none")
PARQUET_COLUMNS = ["user_id", "item_id", "score", "rank", "model", "run_id"]
SIMILAR_COLUMNS = ["item_id", "similar_item_id", "score", "rank", "model", "run_id"]
Sink = Callable[[pd.DataFrame, list[str]], Any]  # (rows of one chunk, the chunk's ids)


# ---------------------------------------------------------------------------------- scoring

class Scorer:
    """A trained recommender bound to one graph: chunked top-k with seen items excluded."""

    def __init__(self, model, graph: Graph | GraphSnapshot, exclude: str = "history",
                 device: str = "cpu") -> None:
        if exclude not in EXCLUDE:
            raise ConfigError(f"'exclude' must be one of {', '.join(EXCLUDE)} (got {exclude!r})")
        if isinstance(graph, GraphSnapshot):
            graph = graph_from_snapshot(graph, model.meta["target"][1])
        self.model = model
        self.graph = graph
        self.exclude = exclude
        u, i = model.embeddings(graph)
        vectors = not (u.is_sparse or i.is_sparse)
        # a bare matmul only when the score is the dot product (pairwise features or a blend:
        # the model's own scoring); the vectors are kept either way (explanations, similarity)
        self.dense = model.dot_product_only and vectors
        self.user_emb: Tensor | None = u.float().contiguous() if vectors else None
        self.item_emb: Tensor | None = i.float().contiguous() if vectors else None
        # the matmul, the masking and the top-k run on `device` ("auto": CUDA when present);
        # a model's own scoring (blend, pairwise features, sparse models) stays on the CPU
        asked = resolve_device(device)  # (an error when CUDA is asked for and absent)
        self.device = asked if self.dense else torch.device("cpu")
        if self.device.type != asked.type:
            log.info("%s scores with its own scoring on the CPU (not a bare dot product)",
                     model.name)
        self._user_dev = self.user_emb.to(self.device) if self.dense else None
        self._item_t = self.item_emb.T.contiguous().to(self.device) if self.dense else None
        self.seen = self._seen_pairs()
        # CSR row pointers into `seen` (sorted by user): a chunk of consecutive users masks its
        # seen items with one slice instead of a search per user
        self._ptr = None if self.seen is None else torch.searchsorted(
            self.seen[0].contiguous(), torch.arange(len(self.user_ids) + 1))
        self._dicts: tuple[pa.Array, pa.Array] | None = None

    @property
    def user_ids(self) -> np.ndarray:
        return self.graph.ids["user"]

    @property
    def item_ids(self) -> np.ndarray:
        return self.graph.ids["item"]

    def user_index(self, ids: Sequence[str]) -> tuple[Tensor, list[str]]:
        """(rows of the known ids, in the given order; the ids not in the graph)."""
        pos = pd.Index(self.user_ids).get_indexer(pd.Index(list(map(str, ids))))
        missing = [str(u) for u, p in zip(ids, pos) if p < 0]
        return torch.from_numpy(pos[pos >= 0].astype(np.int64)), missing

    def scores(self, users: Tensor) -> Tensor:
        """[len(users), n_items] raw scores (on `self.device`)."""
        if self.dense:
            return self._user_dev[users.to(self.device)] @ self._item_t
        return self.model.score_users(users, self.graph).float()

    def topk(self, users: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Top-k items per user (item -1 pads where fewer than k candidates are left), on the
        CPU."""
        users = torch.as_tensor(users, dtype=torch.long).view(-1)
        scores = self.scores(users)
        if self.seen is not None:
            if _is_range(users):  # CSR slice of consecutive users
                lo, hi = int(self._ptr[users[0]]), int(self._ptr[users[-1] + 1])
                rows, items = self.seen[0, lo:hi] - users[0], self.seen[1, lo:hi]
            else:
                rows, items = history_of(self.seen, users)
            scores[rows.to(self.device), items.to(self.device)] = -torch.inf
        items, val = topk_scores(scores, k, None, users, None)
        return items.cpu(), val.cpu()

    def chunks(self, users: Tensor, k: int,
               chunk_users: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """(users, items, scores) per chunk of `chunk_users` users."""
        for part in torch.as_tensor(users, dtype=torch.long).split(chunk_users):
            items, scores = self.topk(part, k)
            yield part, items, scores

    def similar(self, items: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Top-k most similar items (the model's own `similar_items`), the item itself excluded."""
        return self.model.similar_items(torch.as_tensor(items, dtype=torch.long), k,
                                        source=self.graph)

    def frame(self, users: Tensor, items: Tensor, scores: Tensor, model: str,
              run_id: str) -> pd.DataFrame:
        """Long format (user_id, item_id, score, rank, model, run_id); padding rows dropped."""
        return _long_frame(self.user_ids, self.item_ids, users, items, scores, model, run_id,
                           ("user_id", "item_id"))

    def table(self, users: Tensor, items: Tensor, scores: Tensor, model: str,
              run_id: str) -> pa.Table:
        """The same rows as `frame`, as an Arrow table whose ids are dictionary-encoded against
        the graph's id arrays (no Python string per row: this is what the batch job writes)."""
        if self._dicts is None:
            self._dicts = (pa.array(self.user_ids.astype(str)),
                           pa.array(self.item_ids.astype(str)))
        return _arrow_frame(*self._dicts, users, items, scores, model, run_id,
                            ("user_id", "item_id"))

    def node_embeddings(self) -> dict[str, tuple[np.ndarray, Tensor]]:
        """`{node type: (ids, matrix)}` for explanations (graph.explain.NodeEmbeddings); only the
        user and item vectors are exposed by the models (a blended or pairwise model's are its
        network's), and sparse stand-ins (itemknn, kglink) are none."""
        if self.user_emb is None:
            return {}
        return {"user": (self.user_ids, self.user_emb), "item": (self.item_ids, self.item_emb)}

    def _seen_pairs(self) -> Tensor | None:
        """[2, E] (user, item) pairs to exclude, sorted by user (what `topk_scores` expects)."""
        if self.exclude == "none":
            return None
        if self.exclude == "history":
            return self.graph.history
        pairs = self.graph.user_item_pairs()
        keys = torch.unique(pair_keys(pairs, self.graph.n_items))  # sorted
        n = self.graph.n_items
        return torch.stack([keys // n, keys % n])


def _is_range(users: Tensor) -> bool:
    """users == [a, a+1, ..., b] (what `--all` scores, chunk by chunk)."""
    n = users.numel()
    return n > 0 and int(users[-1]) - int(users[0]) == n - 1 and \
        bool((users[1:] - users[:-1] == 1).all())


def bound_topk(user_emb: Tensor, item_emb: Tensor, users: Tensor, k: int,
               chunk_users: int) -> int:
    """The speed bound of scoring: matmul + top-k over the same embeddings and chunks, nothing
    else (no exclusion, no output). Returns the number of users scored."""
    item_t = item_emb.T.contiguous()
    n = 0
    for part in users.split(chunk_users):
        val, idx = (user_emb[part] @ item_t).topk(k, dim=1)
        n += len(part)
    return n


def _long_frame(src_ids: np.ndarray, dst_ids: np.ndarray, rows: Tensor, items: Tensor,
                scores: Tensor, model: str, run_id: str, names: tuple[str, str]) -> pd.DataFrame:
    b, k = items.shape
    items_np = items.numpy().reshape(-1)
    ok = items_np >= 0
    src = np.repeat(rows.numpy(), k)[ok]
    return pd.DataFrame({
        names[0]: src_ids[src].astype(str),
        names[1]: dst_ids[items_np[ok]].astype(str),
        "score": scores.numpy().reshape(-1)[ok].astype(np.float64),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), b)[ok],
        "model": model,
        "run_id": run_id,
    })


def _arrow_frame(src_dict: pa.Array, dst_dict: pa.Array, rows: Tensor, items: Tensor,
                 scores: Tensor, model: str, run_id: str, names: tuple[str, str]) -> pa.Table:
    b, k = items.shape
    items_np = items.numpy().reshape(-1)
    ok = items_np >= 0
    n = int(ok.sum())
    src = np.repeat(rows.numpy(), k)[ok].astype(np.int32)
    const = pa.array(np.zeros(n, dtype=np.int32))
    return pa.table({
        names[0]: pa.DictionaryArray.from_arrays(pa.array(src), src_dict),
        names[1]: pa.DictionaryArray.from_arrays(pa.array(items_np[ok].astype(np.int32)),
                                                 dst_dict),
        "score": pa.array(scores.numpy().reshape(-1)[ok].astype(np.float64)),
        "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int64), b)[ok]),
        "model": pa.DictionaryArray.from_arrays(const, pa.array([model])),
        "run_id": pa.DictionaryArray.from_arrays(const, pa.array([run_id])),
    })


def _concat_parts(paths: list[Path], columns: list[str], out: Path) -> int:
    """Concatenate Parquet parts into `out` with plain string columns (Arrow only, no pandas
    objects); returns the number of rows."""
    schema = pa.schema([(c, pa.float64() if c == "score" else pa.int64() if c == "rank"
                         else pa.string()) for c in columns])
    tables = [pq.read_table(p).select(columns).cast(schema) for p in paths]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    _write_table(table, out)
    return table.num_rows


def _write_table(table: pa.Table, path: Path) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


# ---------------------------------------------------------------------------------- the graph

def scoring_graph(rd: RunDir, store, users: Sequence[str] | None, *, from_snapshot: bool = False,
                  progress: Progress = no_progress) -> tuple[GraphSnapshot, str]:
    """(the graph to score, how it was made, in words).

    - `from_snapshot`: the graph the run was trained on, as it is (no fold-in);
    - a few `users` (not None) and a run with a snapshot: that snapshot with the users' current
      histories read from `store` by id (`gnn.foldin`; no export of the whole graph);
    - every user (`users` None), or a run without a snapshot: the whole graph exported."""
    from graph import queries as Q
    from graph.recommendations import current_histories

    if from_snapshot:
        return rd.load_snapshot(), "the run's graph snapshot (no fold-in)"
    if users is not None and rd.has_snapshot():
        progress("read histories", 0, 1)
        hist = current_histories(store, users)
        progress("read histories", 1, 1)
        snapshot, rep = fold_in(rd.load_snapshot(), hist)
        how = (f"the run's graph snapshot + the current histories of {_n(rep.users, 'user')} "
               f"({_n(rep.edges, 'edge')}")
        how += f"; {rep.new_users:,} new since training" if rep.new_users else ""
        how += (f"; {rep.unknown_items:,} edges to items added since training left out: "
                "`--all` or retraining sees them") if rep.unknown_items else ""
        return snapshot, how + ")"
    steps = len(Q.NODE_LABELS) + len(Q.BEHAVIOUR_EDGES) + len(Q.KG_EDGES)
    snapshot = export(store, progress=lambda what, n: progress("export graph", 1, steps))
    return snapshot, "the current graph (exported)"


# ---------------------------------------------------------------------------------- the job

@dataclass
class JobParams:
    """What identifies a job: a re-run with equal params resumes it."""

    run_id: str
    model: str
    model_version: str  # size and mtime of the model file: a retrained model starts afresh
    k: int
    exclude: str
    users: str  # "all", or a hash of the sorted requested ids
    chunk_users: int
    write_graph: bool
    similar_k: int  # 0: no similar items

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class JobResult:
    run_id: str
    model: str
    users: int = 0  # users scored
    recommendations: int = 0  # rows written to Parquet
    relationships: int = 0  # RECOMMENDED edges created (write-back)
    similar_relationships: int = 0
    chunks: int = 0
    resumed_chunks: int = 0  # chunks found finished by an earlier, killed run
    missing_users: list[str] = field(default_factory=list)
    out: str | None = None
    similar_out: str | None = None
    export_seconds: float = 0.0  # making the graph to score (export, or snapshot + fold-in)
    embed_seconds: float = 0.0
    score_seconds: float = 0.0  # scoring + Parquet parts, graph writes excluded
    write_seconds: float = 0.0  # graph writes (sink)
    similar_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def users_per_s(self) -> float:
        return self.users / self.score_seconds if self.score_seconds else 0.0

    @property
    def relationships_per_s(self) -> float:
        return self.relationships / self.write_seconds if self.write_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["users_per_s"] = round(self.users_per_s, 1)
        d["relationships_per_s"] = round(self.relationships_per_s, 1)
        d["missing_users"] = self.missing_users[:20]
        return d


class RecommendJob:
    """`kgrec recommend`: score users in chunks, write Parquet, hand each chunk to a sink.

    `snapshot_fn` makes the graph to score (called only when no unfinished job can be resumed;
    `scoring_graph` is the usual one); `sink(frame, user_ids)` writes one chunk to the graph;
    `similar_sink(frame, item_ids)` one chunk of similar items. Outputs default to the run's
    batch files (`RunDir.recommendations_file`, `RunDir.similar_file`).
    """

    def __init__(self, run: RunDir | Path, model, *, k: int = 20,
                 users: Sequence[str] | None = None, exclude: str = "history",
                 chunk_users: int = 4096, out: Path | None = None, sink: Sink | None = None,
                 similar_k: int = 0, similar_out: Path | None = None,
                 similar_sink: Sink | None = None, model_file: Path | None = None,
                 device: str = "cpu") -> None:
        if k < 1:
            raise ConfigError(f"'k' must be >= 1 (got {k})")
        if chunk_users < 1:
            raise ConfigError(f"'chunk_users' must be >= 1 (got {chunk_users})")
        if exclude not in EXCLUDE:
            raise ConfigError(f"'exclude' must be one of {', '.join(EXCLUDE)} (got {exclude!r})")
        self.rd = run if isinstance(run, RunDir) else RunDir(run)
        self.model = model
        self.k, self.exclude, self.chunk_users, self.device = k, exclude, chunk_users, device
        self.requested = None if users is None else list(dict.fromkeys(map(str, users)))
        self.out = Path(out) if out else self.rd.recommendations_file
        self.sink = sink
        self.similar_k = similar_k
        self.similar_out = Path(similar_out) if similar_out else self.rd.similar_file
        self.similar_sink = similar_sink
        self.dir = self.rd.job_dir
        model_file = Path(model_file) if model_file else self.rd.model_file
        version = "unknown"
        if model_file.exists():
            st = model_file.stat()
            version = f"{st.st_size}-{st.st_mtime_ns}"
        self.params = JobParams(
            run_id=self.rd.name, model=model.name, model_version=version, k=k,
            exclude=exclude, users="all" if users is None else _hash_ids(self.requested),
            chunk_users=chunk_users, write_graph=sink is not None, similar_k=similar_k)
        self.scorer: Scorer | None = None
        self.persist = True  # keep resume state (decided per run: not for a single chunk)

    # --- public ---
    def pending(self) -> dict[str, Any] | None:
        """The unfinished job with the same parameters, if any (its state)."""
        state = self._load_state()
        return state if state and state.get("key") == self.params.key() else None

    def run(self, snapshot_fn: Callable[[], GraphSnapshot], progress: Progress | None = None,
            on_chunk: Callable[[int], None] | None = None, restart: bool = False) -> JobResult:
        """Run (or resume) the job. `on_chunk(i)` after chunk i is recorded as finished."""
        progress = progress or no_progress
        t_start = time.perf_counter()
        res = JobResult(run_id=self.params.run_id, model=self.params.model)
        state = None if restart else self.pending()
        if state is None:
            if self.dir.exists():
                log.info("discarding an unfinished job with other parameters in %s", self.dir)
                shutil.rmtree(self.dir)
            t = time.perf_counter()
            snapshot = snapshot_fn()
            res.export_seconds = time.perf_counter() - t
        else:
            log.info("resuming the unfinished job in %s (%d chunks done)", self.dir,
                     len(state["done"]))
            snapshot = GraphSnapshot.load(self.dir / "snapshot")
        t = time.perf_counter()
        self.scorer = scorer = Scorer(self.model, snapshot, self.exclude, self.device)
        res.embed_seconds = time.perf_counter() - t

        users, missing = self._users(scorer)
        res.missing_users = missing
        if missing:
            log.info("%d requested users are not in the graph (e.g. %s)", len(missing),
                        ", ".join(missing[:5]))
        if len(users) == 0:
            raise DataError("none of the requested users is in the graph"
                            + (f" (e.g. {', '.join(missing[:3])})" if missing else "")
                            + ": check the ids, or load their data first")
        parts = list(users.split(self.chunk_users))
        # one chunk and no similar items: nothing to resume, so no state and no saved graph
        self.persist = len(parts) > 1 or bool(self.similar_k)
        if state is None:
            (self.dir / "parts").mkdir(parents=True, exist_ok=True)
            state = {"key": self.params.key(), "params": asdict(self.params), "done": [],
                     "similar_done": [], "started_at": time.time()}
            if self.persist:
                atomic_write(self.dir / "snapshot", snapshot.save)
                self._save_state(state)
        res.chunks = len(parts)
        done = set(state["done"])
        res.resumed_chunks = len(done & set(range(len(parts))))
        for i, part in enumerate(parts):
            if i in done:
                progress("score", len(part), len(users))
                continue
            t = time.perf_counter()
            items, scores = scorer.topk(part, self.k)
            table = scorer.table(part, items, scores, self.params.model, self.params.run_id)
            _write_table(table, self._part(i))
            res.score_seconds += time.perf_counter() - t
            if self.sink is not None:
                t = time.perf_counter()
                n = self.sink(table.to_pandas(), [str(x) for x in scorer.user_ids[part.numpy()]])
                res.write_seconds += time.perf_counter() - t
                res.relationships += int(n or 0)
            state["done"].append(i)
            self._save_state(state)
            progress("score", len(part), len(users))
            if on_chunk:
                on_chunk(i)
        res.users = len(users)
        t = time.perf_counter()
        res.recommendations = _concat_parts([self._part(i) for i in range(len(parts))],
                                            PARQUET_COLUMNS, self.out)
        res.score_seconds += time.perf_counter() - t
        res.out = str(self.out)

        if self.similar_k:
            t = time.perf_counter()
            res.similar_relationships = self._similar(scorer, state, progress)
            res.similar_seconds = time.perf_counter() - t
            res.similar_out = str(self.similar_out)

        shutil.rmtree(self.dir, ignore_errors=True)
        res.seconds = time.perf_counter() - t_start
        self.rd.write_json(RunDir.RECOMMEND_SUMMARY, res.to_dict())
        return res

    # --- internals ---
    def _users(self, scorer: Scorer) -> tuple[Tensor, list[str]]:
        if self.requested is None:
            return torch.arange(len(scorer.user_ids)), []
        return scorer.user_index(self.requested)

    def _similar(self, scorer: Scorer, state: dict[str, Any], progress: Progress) -> int:
        n_items = len(scorer.item_ids)
        parts = list(torch.arange(n_items).split(self.chunk_users))
        done = set(state["similar_done"])
        created = 0
        for i, part in enumerate(parts):
            path = self._part(i, "similar")
            if i not in done:
                items, scores = scorer.similar(part, self.similar_k)
                items = torch.where(torch.isfinite(scores), items, torch.full_like(items, -1))
                frame = _long_frame(scorer.item_ids, scorer.item_ids, part, items, scores,
                                    self.params.model, self.params.run_id,
                                    ("item_id", "similar_item_id"))
                atomic_write(path, lambda tmp, f=frame: f.to_parquet(tmp, index=False))
                if self.similar_sink is not None:
                    created += int(self.similar_sink(
                        frame, [str(x) for x in scorer.item_ids[part.numpy()]]) or 0)
                state["similar_done"].append(i)
                self._save_state(state)
            progress("similar items", len(part), n_items)
        _concat_parts([self._part(i, "similar") for i in range(len(parts))], SIMILAR_COLUMNS,
                      self.similar_out)
        return created

    def _part(self, i: int, kind: str = "chunk") -> Path:
        return self.dir / "parts" / f"{kind}-{i:06d}.parquet"

    def _load_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / "job.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _save_state(self, state: dict[str, Any]) -> None:
        if self.persist:
            atomic_write_json(self.dir / "job.json", state)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _hash_ids(ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for u in sorted(ids):
        h.update(u.encode())
        h.update(b"\0")
    return f"{len(ids)}:{h.hexdigest()[:16]}"
