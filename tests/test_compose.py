"""docker-compose.yml validates with a real compose client (no daemon is needed for `config`)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def compose_cmd() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture
def compose():
    cmd = compose_cmd()
    if cmd is None:
        pytest.skip("no compose client installed (./scripts/install.sh installs Debian's "
                    "docker-compose when run as root)")
    return cmd


def run(cmd, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")} | env
    return subprocess.run(cmd + ["config"], cwd=REPO, env=full, capture_output=True, text=True)


def test_compose_file_validates(compose):
    p = run(compose, NEO4J_PASSWORD="a-test-password")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for service in ("neo4j:", "dashboard:", "trainer:"):
        assert service in out
    assert "image: neo4j:5" in out
    assert "capabilities:" in out and "gpu" in out  # the trainer requests a GPU
    assert "healthcheck:" in out
    assert "127.0.0.1:7687" in out or "host_ip: 127.0.0.1" in out  # Bolt on loopback only


def test_compose_has_no_default_password(compose):
    p = run(compose)
    assert p.returncode != 0
    assert "NEO4J_PASSWORD" in p.stderr
