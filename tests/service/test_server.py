"""The real server: `trialsift serve` as a subprocess on a free loopback port. A study ingested over HTTP is
found by search at once, survives a restart (SIGTERM, clean exit), and with two workers is visible through
both of them."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SEEDS

WRITE_KEY = "server-test-key"
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
IM96 = (SEEDS / "IM96.txt").read_text(encoding="utf-8")
TH027 = (SEEDS / "TH-CART-027.txt").read_text(encoding="utf-8")
# Words of one seed only, so the top hit says the right study was found.
QUERIES = {
    "SRV-IM96": "IM96 CAR-T cells advanced colorectal cancer",
    "SRV-TH027": "TH027 refractory solid tumors",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    script = Path(sys.executable).with_name("trialsift")
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


class Server:
    """One `trialsift serve` process; its stdout (the JSON access log) and stderr go to files."""

    def __init__(self, data_dir: Path, logs: Path, workers: int = 1) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.err = logs.with_suffix(".out"), logs.with_suffix(".err")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALSIFT_")}
        env.update(TRIALSIFT_ENCODER="hashing", TRIALSIFT_WRITE_KEY=WRITE_KEY)
        args = ["serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.out, "ab") as out, open(self.err, "ab") as err:
            # cwd: not the repository, so no developer's .env is read.
            self.proc = subprocess.Popen(
                [*_command(), *args, "--workers", str(workers)],
                stdout=out,
                stderr=err,
                env=env,
                cwd=data_dir.parent,
            )

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.err.read_text()[-3000:]}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=2)
                if response.status_code == 200:
                    ready: dict[str, Any] = response.json()
                    return ready
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server not ready within {START_TIMEOUT:.0f} s:\n{self.err.read_text()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM, then the exit status (the server must exit by itself, after a complete shutdown)."""
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=STOP_TIMEOUT)
        assert "Application shutdown complete" in self.err.read_text()
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def access_log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test; any still running at the end is killed."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def _start(servers: list[Server], data_dir: Path, name: str, workers: int = 1) -> Server:
    server = Server(data_dir, data_dir.parent / name, workers)
    servers.append(server)
    return server


def _top_hit(base: str | httpx.Client, query: str) -> str | None:
    params: dict[str, str | int] = {"q": query, "limit": 3}
    if isinstance(base, httpx.Client):
        response = base.get("/v1/search", params=params)
    else:  # a new connection for this one request
        response = httpx.get(f"{base}/v1/search", params=params, timeout=10)
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    return hits[0]["id"] if hits else None


def test_server_ingested_study_is_found_after_a_restart(tmp_path: Path, servers: list[Server]) -> None:
    data_dir = tmp_path / "data"
    first = _start(servers, data_dir, "first")
    assert first.wait_ready()["studies"] == 0
    with httpx.Client(base_url=first.url, timeout=30) as client:
        created = client.post("/v1/studies", json={"text": IM96, "id": "SRV-IM96"}, headers=AUTH)
        assert created.status_code == 201, created.text
        assert created.headers["location"] == "/v1/studies/SRV-IM96"
        plain = {**AUTH, "Content-Type": "text/plain"}
        created = client.post("/v1/studies", params={"id": "SRV-TH027"}, content=TH027, headers=plain)
        assert created.status_code == 201, created.text
        for study_id, query in QUERIES.items():
            assert _top_hit(client, query) == study_id
        ready = client.get("/readyz").json()
    assert (ready["studies"], ready["store_seq"]) == (2, 2)
    assert first.stop() == 0

    # The index snapshot saved at shutdown says which store change it holds.
    meta = json.loads((data_dir / "index" / "meta.json").read_text())
    assert meta["store"]["seq"] == ready["store_seq"]
    log = first.access_log()
    assert {"method": "POST", "path": "/v1/studies", "status": 201} in [
        {k: line[k] for k in ("method", "path", "status")} for line in log
    ]
    assert sum(line["path"] == "/v1/search" and line["status"] == 200 for line in log) == 2

    second = _start(servers, data_dir, "second")
    again = second.wait_ready()
    assert (again["studies"], again["store_seq"]) == (2, 2)
    with httpx.Client(base_url=second.url, timeout=30) as client:
        for study_id, query in QUERIES.items():
            assert _top_hit(client, query) == study_id
        stored = client.get("/v1/studies/SRV-IM96")
    assert stored.status_code == 200
    assert (stored.json()["id"], stored.json()["source"]) == ("SRV-IM96", {"text": IM96, "id": "SRV-IM96"})
    assert second.stop() == 0


def test_servers_sharing_a_data_dir_see_each_others_writes(tmp_path: Path, servers: list[Server]) -> None:
    # Two processes on one store, addressed separately: what two workers of one server are, made
    # deterministic (which worker takes a connection is up to the kernel and the workers' accept race).
    data_dir = tmp_path / "data"
    first = _start(servers, data_dir, "first")
    first.wait_ready()
    second = _start(servers, data_dir, "second")
    second.wait_ready()
    created = httpx.post(
        f"{first.url}/v1/studies", json={"text": IM96, "id": "SRV-IM96"}, headers=AUTH, timeout=30
    )
    assert created.status_code == 201, created.text
    assert _top_hit(second.url, QUERIES["SRV-IM96"]) == "SRV-IM96"
    assert httpx.get(f"{second.url}/readyz").json()["store_seq"] == 1
    deleted = httpx.delete(f"{second.url}/v1/studies/SRV-IM96", headers=AUTH, timeout=30)
    assert deleted.status_code == 204
    assert _top_hit(first.url, QUERIES["SRV-IM96"]) is None
    assert httpx.get(f"{first.url}/v1/studies/SRV-IM96").status_code == 404
    assert (first.stop(), second.stop()) == (0, 0)


def test_server_two_workers_see_each_others_writes(tmp_path: Path, servers: list[Server]) -> None:
    data_dir = tmp_path / "data"
    server = _start(servers, data_dir, "workers", workers=2)
    server.wait_ready()
    created = httpx.post(
        f"{server.url}/v1/studies", json={"text": IM96, "id": "SRV-IM96"}, headers=AUTH, timeout=30
    )
    assert created.status_code == 201, created.text

    # Every request, each on its own connection (so on either worker), finds it.
    assert [_top_hit(server.url, QUERIES["SRV-IM96"]) for _ in range(20)] == ["SRV-IM96"] * 20
    assert server.stop() == 0
    searches = [line for line in server.access_log() if line["path"] == "/v1/search"]
    assert [line["status"] for line in searches] == [200] * 20


def test_workers_refuse_a_port_another_process_listens_on(tmp_path: Path) -> None:
    from service import workers

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as err:
            workers.check_port("127.0.0.1", port)
        assert err.value.errno == errno.EADDRINUSE
        # The command says so and exits, instead of starting workers that fail to bind one after another.
        result = subprocess.run(
            [*_command(), "serve", "--port", str(port), "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TRIALSIFT_ENCODER": "hashing"},
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"cannot listen on 127.0.0.1:{port}: Address already in use")
