"""Fixtures for the HTTP API tests: one shared read-only store of 42 studies, fresh small stores for writes.

Every store uses the hashing encoder (no model). The extraction pipeline is the session one from
``tests/conftest.py``; building it is the expensive part, so every engine here reuses it.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nlp.ingest import read_path
from nlp.pipeline import Extractor
from nlp.study import Study
from service.app import create_app
from service.engine import Engine
from service.settings import Settings
from tests.conftest import ROOT, SEEDS

SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"
IM96 = SEEDS / "IM96.txt"
TH_CART = SEEDS / "TH-CART-027.txt"
WRITE_KEY = "w"
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}
#: How many sample studies the shared store holds (plus the two seeds).
SHARED_SAMPLE = 40
#: How many sample studies a fresh store holds (plus the IM96 seed).
FRESH_SAMPLE = 5

# Every setting a test relies on, spelled out, so TRIALSIFT_* variables of the shell running the tests
# cannot change what they see.
_DEFAULTS: dict[str, Any] = {
    "encoder": "hashing",
    "index_kind": "auto",
    "max_body_bytes": 5_000_000,
    "max_batch": 100,
    "max_text_chars": 200_000,
    "max_results": 1000,
    "max_query_chars": 2000,
    "write_key": WRITE_KEY,
    "read_key": None,
    "cors_origins": [],
    "threads": 1,
    "snapshot_every": 200,
    "access_log": False,
}


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: the defaults above, ``overrides`` on top, no ``.env`` file."""
    return Settings(_env_file=None, data_dir=data_dir, **{**_DEFAULTS, **overrides})


@functools.cache
def sample_records(stop: int) -> tuple[dict[str, Any], ...]:
    """The first ``stop`` raw API v2 records of the bundled sample."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in itertools.islice(f, stop))


def sample_studies(stop: int) -> list[Study]:
    studies = [s for s in itertools.islice(read_path(SAMPLE), stop) if isinstance(s, Study)]
    assert len(studies) == stop
    return studies


def seed_studies(*paths: Path) -> list[Study]:
    return [s for p in paths for s in read_path(p) if isinstance(s, Study)]


def seed_text() -> str:
    return IM96.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("shared-store"))


@pytest.fixture(scope="session")
def engine(settings: Settings, extractor: Extractor) -> Iterator[Engine]:
    """The shared store: the sample's first 40 studies and the two seeds. Tests must not write to it."""
    eng = Engine.open(settings, extractor=extractor)
    report = eng.load([*sample_studies(SHARED_SAMPLE), *seed_studies(IM96, TH_CART)])
    assert (report.added, report.skipped, report.errors) == (SHARED_SAMPLE + 2, 0, [])
    yield eng
    eng.close(save=False)


@pytest.fixture(scope="session")
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings, engine: Engine) -> Iterator[ClientFactory]:
    """``make_client(**settings overrides)``: a client of a new app over the shared engine."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            app = create_app(make_settings(settings.data_dir, **overrides), engine=engine)
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def fresh_engine(fresh_settings: Settings, extractor: Extractor) -> Iterator[Engine]:
    """A small store of its own (5 sample studies and the IM96 seed), for tests that write."""
    eng = Engine.open(fresh_settings, extractor=extractor)
    eng.load([*sample_studies(FRESH_SAMPLE), *seed_studies(IM96)])
    yield eng
    eng.close(save=False)


@pytest.fixture
def fresh_client(fresh_settings: Settings, fresh_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(fresh_settings, engine=fresh_engine)) as c:
        yield c


# -- Ray: inputs and a two-node cluster on this machine ----------------------------------------------------

RAY = Path(sys.executable).parent / "ray"


def _sample_file(path: Path, n: int, bad: bool = False) -> Path:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        lines = list(itertools.islice(handle, n))
    if bad:  # two unreadable records among the good ones, at known lines
        lines.insert(10, '{"protocolSection": \n')
        lines.insert(20, "[1, 2]\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ray_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of two shards: 150 corpus studies with two bad lines (a.jsonl), 150 more gzipped."""
    root = tmp_path_factory.mktemp("shards")
    _sample_file(root / "a.jsonl", 150, bad=True)
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        tail = list(itertools.islice(handle, 150, 300))
    with gzip.open(root / "b.jsonl.gz", "wt", encoding="utf-8") as out:
        out.write("".join(tail))
    return root


@dataclass
class Cluster:
    address: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    port = _free_port()
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
    }
    temp = tmp_path_factory.mktemp("ray")
    common = ["--num-cpus=1", "--object-store-memory=200000000", "--disable-usage-stats"]
    head = [str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"]
    second = [str(RAY), "start", f"--address=127.0.0.1:{port}", '--resources={"second_node": 1}']
    try:
        for argv in (head + common, second + common):
            started = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
            assert started.returncode == 0, started.stdout + started.stderr
        # The second node registers within seconds; both must be up before a test uses the cluster.
        deadline = time.monotonic() + 60
        report = ""
        while time.monotonic() < deadline:
            report = subprocess.run(
                [str(RAY), "status", f"--address=127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            ).stdout
            if " 0.0/2.0 CPU" in report and "0.0/1.0 second_node" in report:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the two-node cluster did not come up in 60 s: {report}")
        yield Cluster(f"127.0.0.1:{port}", env)
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120, env=env)
