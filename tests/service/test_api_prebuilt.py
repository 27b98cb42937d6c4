"""A server over a prebuilt, memory-mapped index (``TRIALSIFT_INDEX``): searches answer, writes get 409."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from index.documents import make_entry
from index.encoder import HashingEncoder
from index.scale import build_from_shards, shard_rows, shard_table
from index.store import IndexKind
from index.trial_index import TrialIndex
from nlp.pipeline import Extractor
from service.app import create_app
from service.engine import Engine
from tests.service.conftest import AUTH, make_settings, sample_studies, seed_text


@pytest.fixture(scope="module")
def prebuilt(extractor: Extractor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 sample studies, embedded with the service tests' hashing encoder, in two shards."""
    root = tmp_path_factory.mktemp("prebuilt")
    studies = sample_studies(60)
    entries = [make_entry(s, r) for s, r in zip(studies, extractor.extract_studies(studies), strict=True)]
    encoded = TrialIndex(HashingEncoder()).encode_studies(entries)
    shards = []
    for n, (a, b) in enumerate([(0, 25), (25, 60)]):
        path = root / f"part-{n}.parquet"
        pq.write_table(shard_table(shard_rows([(0, i, 0) for i in range(a, b)], encoded[a:b])), path)
        shards.append(path)
    encoder = HashingEncoder()
    model = {"id": encoder.model_id, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension}
    build_from_shards(shards, root / "index", model, kind=IndexKind.IVF_PQ, min_train=300)
    return root / "index"


@pytest.fixture(scope="module")
def client(
    prebuilt: Path, extractor: Extractor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("data"), index=prebuilt)
    engine = Engine.open(settings, extractor=extractor)
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c
    engine.close()
    # Free the memory-mapped FAISS stores here: left for a later collection, their destructors ran in
    # processes the later tests fork (bulk-annotation workers), which then died of SIGSEGV.
    engine.index = TrialIndex(HashingEncoder())
    gc.collect()


def test_searches_answer_from_the_prebuilt_index(client: TestClient) -> None:
    first = sample_studies(1)[0]
    found = client.post("/v1/outcomes/search", json={"query": "overall survival", "limit": 5})
    assert found.status_code == 200, found.text
    assert len(found.json()["hits"]) == 5
    trials = client.get("/v1/search", params={"q": first.title, "limit": 3})
    assert trials.status_code == 200 and trials.json()["hits"][0]["id"] == first.id
    similar = client.get(f"/v1/studies/{first.id}/similar", params={"limit": 3})
    assert similar.status_code == 200, similar.text
    assert first.id not in [h["id"] for h in similar.json()["hits"]]
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["studies"]) == (200, 60)


def test_writes_are_refused_with_409(client: TestClient, prebuilt: Path) -> None:
    detail = (
        f"this server serves the prebuilt index {prebuilt} read-only (TRIALSIFT_INDEX); "
        "write to a server with a store, or rebuild the index with the study"
    )
    put = client.post(
        "/v1/studies",
        params={"id": "IM96"},
        content=seed_text(),
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    assert (put.status_code, put.json()["detail"]) == (409, detail)
    gone = client.delete(f"/v1/studies/{sample_studies(1)[0].id}", headers=AUTH)
    assert (gone.status_code, gone.json()["detail"]) == (409, detail)
