"""``trialsift annotate --backend ray``: the local backend's records from Ray, on one node and on two.

The two-node cluster runs on this machine: ``ray start --head`` plus a second ``ray start --address`` with
its own resources, token-authenticated, stopped at the end of the module. Every subprocess has a timeout, so
a hung cluster fails the test instead of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from service.cli import EXIT_OUTPUT, EXIT_SOME_UNREADABLE, EXIT_USAGE, main
from tests.service.conftest import Cluster

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "studies.jsonl.gz"
BIN = Path(sys.executable).parent
TRIALSIFT = BIN / "trialsift"
#: The process title Ray Data gives the annotating actors.
ACTOR_TITLE = "MapWorker(MapBatches(Annotator))"
#: A bound on each command: a cluster that hangs fails the test rather than stalling the run.
TIMEOUT = 240


@pytest.fixture(scope="module")
def local_output(ray_inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The local backend's outputs (JSON Lines and Parquet tables) on the same inputs."""
    root = tmp_path_factory.mktemp("local")
    assert main(["annotate", str(ray_inputs), "-o", str(root / "out.jsonl"), "-q"]) == EXIT_SOME_UNREADABLE
    assert (
        main(["annotate", str(ray_inputs), "-o", str(root / "tables"), "--format", "parquet", "-q"])
        == EXIT_SOME_UNREADABLE
    )
    return {
        "jsonl": root / "out.jsonl",
        "errors": root / "out.jsonl.errors.jsonl",
        "parquet": root / "tables",
    }


def _shard_lines(out: Path) -> list[str]:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    lines: list[str] = []
    for shard in manifest["shards"]:
        lines.extend((out / f"{shard['name']}.jsonl").read_text(encoding="utf-8").splitlines())
    assert sum(s["studies"] for s in manifest["shards"]) == manifest["studies"] == len(lines)
    return lines


def _assert_same_records(out: Path, local: dict[str, Path]) -> None:
    local_lines = local["jsonl"].read_text(encoding="utf-8").splitlines()
    ray_lines = _shard_lines(out)
    # The same records, each once: sorted, the two line lists are equal byte for byte.
    assert len(ray_lines) == len(local_lines) == 300
    assert sorted(ray_lines) == sorted(local_lines)
    assert (out / "errors.jsonl").read_text(encoding="utf-8") == local["errors"].read_text(encoding="utf-8")


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRIALSIFT), "annotate", *argv], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )


def test_local_ray_gives_the_local_records_and_errors(
    ray_inputs: Path, local_output: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    done = _run(str(ray_inputs), "-o", str(out), "--backend", "ray", "--workers", "2")
    assert done.returncode == EXIT_SOME_UNREADABLE, done.stderr
    _assert_same_records(out, local_output)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(Path(e["source"]).name, e["line"]) for e in errors] == [("a.jsonl", 11), ("a.jsonl", 21)]
    assert f"cannot read {ray_inputs / 'a.jsonl'}:11: " in done.stderr
    assert "studies annotated                        300" in done.stderr
    assert not (tmp_path / "ray.partial").exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["format"], manifest["studies"], manifest["errors"]) == ("jsonl", 300, 2)
    assert manifest["inputs"] == [str(ray_inputs / "a.jsonl"), str(ray_inputs / "b.jsonl.gz")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "csv"], "--backend ray writes jsonl or parquet shards, not csv"),
        (["--resume"], "--backend ray does not resume"),
        (["--commit-every", "5"], "--commit-every is for the local backend"),
    ],
)
def test_ray_usage_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["annotate", str(SAMPLE), "-o", str(tmp_path / "o"), "--backend", "ray", *extra])
    assert status == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_ray_needs_a_directory_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", str(SAMPLE), "--backend", "ray"]) == EXIT_USAGE
    assert "give one with -o DIR" in capsys.readouterr().err
    assert main(["annotate", "-", "-o", str(tmp_path / "o"), "--backend", "ray"]) == EXIT_USAGE
    assert "--backend ray reads files" in capsys.readouterr().err
    assert main(["annotate", str(SAMPLE), "-o", str(tmp_path / "o"), "--address", "auto"]) == EXIT_USAGE
    assert "--address joins a Ray cluster: use it with --backend ray" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert main(["annotate", str(SAMPLE), "-o", str(tmp_path / "taken"), "--backend", "ray"]) == EXIT_OUTPUT
    assert "exists; the Ray backend writes a new directory" in capsys.readouterr().err


# -- a two-node cluster on this machine (the ``cluster`` fixture, in conftest.py) -----------------------


def test_two_node_cluster_gives_the_local_tables(
    cluster: Cluster, ray_inputs: Path, local_output: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "tables"
    done = _run(
        str(ray_inputs),
        "-o",
        str(out),
        "--format",
        "parquet",
        "--backend",
        "ray",
        "--address",
        cluster.address,
        env=cluster.env,
    )
    assert done.returncode == EXIT_SOME_UNREADABLE, done.stderr
    assert "on 2 Ray CPUs" in done.stderr
    for table in ("studies", "outcomes", "dose_groups"):
        local = pq.read_table(local_output["parquet"] / f"{table}.parquet")
        shards = sorted((out / table).glob("part-*.parquet"))
        assert shards
        ray = pq.read_table(out / table)
        assert ray.schema.remove_metadata().equals(local.schema.remove_metadata())
        assert [f.metadata for f in pq.read_schema(shards[0])] == [f.metadata for f in local.schema]
        rows = sorted(json.dumps(r, sort_keys=True) for r in ray.to_pylist())
        assert rows == sorted(json.dumps(r, sort_keys=True) for r in local.to_pylist())
    assert (out / "errors.jsonl").read_text(encoding="utf-8") == local_output["errors"].read_text(
        encoding="utf-8"
    )


def _actors() -> dict[int, float]:
    """Annotating actors on this machine: pid -> CPU seconds used."""
    found: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if ACTOR_TITLE.encode() in cmdline:
            fields = stat.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    cluster: Cluster, ray_inputs: Path, local_output: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    proc = subprocess.Popen(
        [
            str(TRIALSIFT),
            "annotate",
            str(ray_inputs),
            "-o",
            str(out),
            "--address",
            cluster.address,
            "--backend",
            "ray",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.env,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        victim = None
        # An actor that has used 3 s of CPU has loaded the pipeline (about 2 s) and is annotating a batch.
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            busy = [pid for pid, cpu in _actors().items() if cpu >= 3.0]
            if busy:
                victim = busy[0]
            else:
                time.sleep(0.1)
        assert victim is not None and proc.poll() is None, "no actor was busy while the job ran"
        os.kill(victim, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_SOME_UNREADABLE, stderr
    assert victim not in _actors()
    _assert_same_records(out, local_output)
