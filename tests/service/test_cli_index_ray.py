"""``trialsift index build --backend ray`` on the two-node cluster: the local build's studies, IVF-HNSW lists
merged from the cluster's shards and memory-mapped when loaded, recall@10 in ``meta.json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.encoder import default_encoder
from index.files import read_meta
from index.trial_index import STORES, TrialIndex
from service.cli import EXIT_USAGE, main
from service.cli_index import EXIT_SOME_FAILED
from tests.service.conftest import Cluster

TRIALSIFT = Path(sys.executable).with_name("trialsift")
TIMEOUT = 300


@pytest.fixture(scope="module")
def local_index(ray_inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "idx"
    assert main(["index", "build", str(ray_inputs), "--out", str(out), "-q"]) == EXIT_SOME_FAILED
    return out


def test_ray_index_build_on_two_nodes(
    cluster: Cluster, ray_inputs: Path, local_index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    argv = [str(TRIALSIFT), "index", "build", str(ray_inputs), "--out", str(out), "--backend", "ray"]
    done = subprocess.run(
        [*argv, "--address", cluster.address],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=cluster.env,
    )
    assert done.returncode == EXIT_SOME_FAILED, done.stderr
    assert f"cannot read {ray_inputs / 'a.jsonl'}:11: not valid JSON" in done.stderr
    assert "300 studies" in done.stderr and "on 2 Ray CPUs" in done.stderr
    assert not (out / ".shards").exists() and not (out / ".build").exists()

    encoder = default_encoder()
    ray_index = TrialIndex.load(out, encoder)
    local = TrialIndex.load(local_index, encoder)
    assert ray_index.read_only
    assert ray_index.counts() == local.counts()
    assert ray_index.ids() == local.ids()  # input order, whichever actor embedded which study
    for study_id in local.ids():
        assert ray_index.get(study_id).to_json() == local.get(study_id).to_json()

    meta = read_meta(out)
    stores = meta["build"]["stores"]
    assert stores["outcomes"]["kind"] == "ivf-hnsw" and stores["outcomes"]["ondisk"] is True
    assert stores["outcomes"]["vectors"] == local.stores["outcomes"].ntotal
    assert 0.5 <= stores["outcomes"]["recall_at_10"] <= 1.0
    for name in STORES:
        if stores[name]["kind"] == "exact":
            # Embedded in other batches (padding differs): the same vectors to within float noise.
            ids = local.stores[name].ids()
            cos = np.sum(
                ray_index.stores[name].reconstruct(ids) * local.stores[name].reconstruct(ids), axis=1
            )
            assert cos.min() > 0.999

    found = subprocess.run(
        [
            str(TRIALSIFT),
            "search",
            "--index",
            str(out),
            "--outcomes",
            "--json",
            "-k",
            "5",
            "objective response rate",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    # Endpoint-first ranking over the memory-mapped lists: every hit measures the endpoint the query names.
    assert len(hits) == 5
    assert all("objective_response_rate" in h["endpoints"] for h in hits)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "exact"], "--backend ray builds ivf-pq or ivf-hnsw indexes, not exact"),
        (["--limit", "5"], "--annotations, --limit and --no-resume are for the local backend"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
    ],
)
def test_ray_index_usage_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["index", "build", "x.jsonl", "--out", str(tmp_path / "i"), "--backend", "ray", *extra]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    assert capsys.readouterr().err == f"trialsift: error: {message}\n"


def test_shard_kinds_need_the_ray_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["index", "build", "x.jsonl", "--out", str(tmp_path / "i"), "--kind", "ivf-pq"])
    assert exited.value.code == EXIT_USAGE
    message = "--kind ivf-pq is built from shards: use it with --backend ray"
    assert capsys.readouterr().err == f"trialsift: error: {message}\n"
