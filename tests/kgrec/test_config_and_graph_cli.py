"""Config from the environment, and `kgrec graph start|status|stop` as a user runs them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Config
from core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_config_defaults_to_embedded_and_reads_neo4j_env():
    cfg = Config.from_env({})
    assert cfg.graph.embedded and cfg.graph.database_name == "kg"
    assert cfg.graph.host == "127.0.0.1"
    cfg = Config.from_env({"NEO4J_URI": "bolt://db:7687", "NEO4J_USER": "neo4j",
                           "NEO4J_PASSWORD": "s3cret", "KGREC_BOLT_PORT": "7999"})
    assert not cfg.graph.embedded and cfg.graph.database_name == "neo4j"
    assert cfg.graph.bolt_port == 7999
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg.to_dict())


def test_config_errors_name_the_variable():
    with pytest.raises(ConfigError, match="KGREC_BOLT_PORT"):
        Config.from_env({"KGREC_BOLT_PORT": "seven"})
    with pytest.raises(ConfigError, match="NEO4J_PASSWORD"):
        Config.from_env({"NEO4J_URI": "bolt://db:7687"})


def test_graph_start_status_stop_through_the_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env["KGREC_HOME"] = str(tmp_path / "home")

    def kgrec(*args):
        return subprocess.run([sys.executable, "-m", "kgrec.cli", "graph", *args], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=300)

    assert kgrec("status").returncode == 3
    try:
        p = kgrec("start")
        assert p.returncode == 0 and "bolt://127.0.0.1:" in p.stdout, p.stderr
        assert kgrec("start").stdout.split("pid")[1] == p.stdout.split("pid")[1]  # no-op
        assert kgrec("status").returncode == 0
    finally:
        assert "stopped" in kgrec("stop").stdout
    assert kgrec("status").returncode == 3


def test_unreachable_neo4j_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(NEO4J_URI="bolt://127.0.0.1:1", NEO4J_USER="neo4j", NEO4J_PASSWORD="x")
    p = subprocess.run([sys.executable, "-m", "kgrec.cli", "graph", "counts"], env=env,
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "127.0.0.1:1" in p.stderr and "Traceback" not in p.stderr
