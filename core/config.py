"""One typed configuration object, composed of one dataclass per stage.

Values come from (lowest to highest precedence) the dataclass defaults, the environment
(`NEO4J_*`, `KGREC_*`) and command-line options. `Config.to_dict()` is saved with every run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigError


@dataclass
class GraphConfig:
    """Where the graph lives. With no `uri`, kgrec runs its embedded Bolt server."""

    uri: str | None = None  # NEO4J_URI, e.g. bolt://localhost:7687; None = embedded server
    user: str | None = None  # NEO4J_USER
    password: str | None = field(default=None, repr=False)  # NEO4J_PASSWORD
    database: str | None = None  # NEO4J_DATABASE; "neo4j" on Neo4j, "kg" embedded
    home: Path = Path(".kgrec")  # KGREC_HOME: embedded server data, event store, salts
    host: str = "127.0.0.1"  # KGREC_GRAPH_HOST: embedded server bind address
    bolt_port: int = 0  # KGREC_BOLT_PORT: 0 = pick a free port on first start
    http_port: int = 0  # KGREC_HTTP_PORT: 0 = pick a free port on first start
    heap: str = "2g"  # KGREC_GRAPH_HEAP: JVM max heap of the embedded server
    start_timeout_s: float = 180.0
    batch_size: int = 20_000  # rows per UNWIND batch
    # KGREC_GRAPH_RETRY_S: how long the driver's managed transactions retry transient errors (the
    # one retry layer). A dead embedded server is reported at once, not retried (graph/store.py).
    max_transaction_retry_time_s: float = 30.0

    @property
    def embedded(self) -> bool:
        return not self.uri

    @property
    def database_name(self) -> str:
        return self.database or ("kg" if self.embedded else "neo4j")


@dataclass
class EtlConfig:
    quarantine_dir: Path = Path("quarantine")  # KGREC_QUARANTINE_DIR
    pseudonymize: bool = False


@dataclass
class Config:
    graph: GraphConfig = field(default_factory=GraphConfig)
    etl: EtlConfig = field(default_factory=EtlConfig)
    runs_dir: Path = Path("runs")  # KGREC_RUNS_DIR

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        cfg = cls()
        g = cfg.graph
        g.uri = env.get("NEO4J_URI") or None
        g.user = env.get("NEO4J_USER") or None
        g.password = env.get("NEO4J_PASSWORD") or None
        g.database = env.get("NEO4J_DATABASE") or None
        g.home = Path(env.get("KGREC_HOME", g.home))
        g.host = env.get("KGREC_GRAPH_HOST", g.host)
        g.bolt_port = _int(env, "KGREC_BOLT_PORT", g.bolt_port)
        g.http_port = _int(env, "KGREC_HTTP_PORT", g.http_port)
        g.heap = env.get("KGREC_GRAPH_HEAP", g.heap)
        g.max_transaction_retry_time_s = _float(env, "KGREC_GRAPH_RETRY_S",
                                                g.max_transaction_retry_time_s)
        cfg.etl.quarantine_dir = Path(env.get("KGREC_QUARANTINE_DIR", cfg.etl.quarantine_dir))
        cfg.runs_dir = Path(env.get("KGREC_RUNS_DIR", cfg.runs_dir))
        if g.uri and not (g.user and g.password):
            raise ConfigError("NEO4J_URI is set but NEO4J_USER / NEO4J_PASSWORD are not: set both.")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


def _int(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer (got {raw!r})") from None


def _float(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{key} must be a number of seconds >= 0 (got {raw!r})")
    return value


def _jsonable(obj: Any) -> Any:
    """Dataclasses to dicts, paths to strings; secrets (fields with repr=False) left out."""
    if is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj) if f.repr}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


__all__ = ["Config", "EtlConfig", "GraphConfig", "asdict"]
