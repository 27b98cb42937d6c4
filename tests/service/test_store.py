"""The SQLite study store: vector packing, writes and their change log, refusing foreign databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from index.documents import OutcomeEntry, StudyEntry
from index.trial_index import STORES
from service import store as store_module
from service.store import (
    SCHEMA_VERSION,
    Changes,
    StoredStudy,
    StoreError,
    StudyStore,
    pack_vectors,
    unpack_vectors,
)

DIM = 4
MODEL: dict[str, Any] = {"id": "trialsift/hashing-v1", "fingerprint": "hashing-v1:d=4:w=64", "dimension": DIM}


def stored(study_id: str, title: str = "A study", n_outcomes: int = 1) -> StoredStudy:
    """A study with vectors of the right shape per store (values tell studies apart)."""
    entry = StudyEntry(
        id=study_id,
        title=title,
        conditions=["Leukemia"],
        outcomes=[OutcomeEntry(role="primary", measure=f"Outcome {i}") for i in range(n_outcomes)],
    )
    rows = {"tci": 1, "conditions": 1, "interventions": 0, "summary": 0, "outcomes": n_outcomes}
    base = float(sum(map(ord, study_id)))
    vectors = {name: np.full((rows[name], DIM), base + i, dtype=np.float32) for i, name in enumerate(STORES)}
    return StoredStudy(
        id=study_id,
        source_format="apiv2",
        source={"protocolSection": {"identificationModule": {"nctId": study_id}}},
        study={"id": study_id, "title": title},
        extraction={"id": study_id, "outcomes": []},
        entry=entry,
        vectors=vectors,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StudyStore]:
    s = StudyStore(tmp_path / "db" / "trialsift.db", MODEL)
    yield s
    s.close()


# -- pack_vectors / unpack_vectors ---------------------------------------------------------------------------


@st.composite
def vector_sets(draw: st.DrawFn) -> dict[str, np.ndarray]:
    dim = draw(st.integers(1, 16))
    floats = st.floats(-1e6, 1e6, width=32, allow_nan=False)
    return {
        name: draw(hnp.arrays(np.float32, (draw(st.integers(0, 5)), dim), elements=floats)) for name in STORES
    }


@hypothesis_settings(max_examples=60, deadline=None)
@given(vector_sets())
def test_store_pack_unpack_round_trip(vectors: dict[str, np.ndarray]) -> None:
    out = unpack_vectors(pack_vectors(vectors))
    assert list(out) == list(STORES)
    for name in STORES:
        assert out[name].dtype == np.float32
        assert out[name].shape == vectors[name].shape
        assert np.array_equal(out[name], vectors[name])


def test_store_pack_header() -> None:
    vectors = {name: np.zeros((i, 3), dtype=np.float32) for i, name in enumerate(STORES)}
    data = pack_vectors(vectors)
    head, _, body = data.partition(b"\n")
    assert head == (
        b'{"dim": 3, "rows": {"conditions": 1, "interventions": 2, "outcomes": 4, "summary": 3, "tci": 0}}'
    )
    assert len(body) == (0 + 1 + 2 + 3 + 4) * 3 * 4


def test_store_pack_refuses_mixed_dimensions() -> None:
    vectors = {name: np.zeros((1, 4 if name == "tci" else 3), dtype=np.float32) for name in STORES}
    with pytest.raises(StoreError) as err:
        pack_vectors(vectors)
    assert str(err.value) == "vectors of different dimensions: [3, 4]"


def test_store_unpack_refuses_a_short_body() -> None:
    data = pack_vectors({name: np.ones((2, 3), dtype=np.float32) for name in STORES})
    with pytest.raises(StoreError) as err:
        unpack_vectors(data[:-4])
    assert str(err.value) == "stored vectors hold 29 floats, the header says 10 x 3"


# -- writes, reads and the change log ------------------------------------------------------------------------


def test_store_put_get_round_trip(store: StudyStore) -> None:
    a = stored("NCT00000001", n_outcomes=3)
    assert store.put([a]) == (1, [True])
    got = store.get("NCT00000001")
    assert got is not None
    assert (got.id, got.source_format, got.source, got.study, got.extraction) == (
        a.id,
        a.source_format,
        a.source,
        a.study,
        a.extraction,
    )
    assert got.entry == a.entry
    for name in STORES:
        assert np.array_equal(got.vectors[name], a.vectors[name])
    assert store.get("NCT09999999") is None
    assert (store.has("NCT00000001"), store.has("NCT09999999"), store.count()) == (True, False, 1)


def test_store_file_source_is_null(store: StudyStore) -> None:
    a = stored("UPLOAD")
    a.source = None
    store.put([a])
    got = store.get("UPLOAD")
    assert got is not None and got.source is None


def test_store_seq_numbers_and_changes(store: StudyStore) -> None:
    assert store.last_seq() == 0
    assert store.changes_since(0) == Changes(0, [], [])
    assert store.put([stored("A"), stored("B")]) == (2, [True, True])
    assert store.put([stored("A", title="A again")]) == (3, [False])
    assert store.delete("B") == 4
    assert store.delete("B") is None
    assert store.delete("NEVER") is None
    assert store.last_seq() == 4
    assert store.put([stored("C")]) == (5, [True])

    all_changes = store.changes_since(0)
    assert all_changes.seq == 5
    # "A" was written twice: it comes once, as it is now.
    assert [s.id for s in all_changes.put] == ["A", "C"]
    assert all_changes.put[0].study["title"] == "A again"
    assert all_changes.deleted == ["B"]

    later = store.changes_since(3)
    assert (later.seq, [s.id for s in later.put], later.deleted) == (5, ["C"], ["B"])
    assert store.changes_since(5) == Changes(5, [], [])
    assert store.ids() == ["A", "C"]
    assert store.count() == 2


def test_store_deleted_then_put_again_is_a_put(store: StudyStore) -> None:
    store.put([stored("A")])
    store.delete("A")
    store.put([stored("A", title="back")])
    changes = store.changes_since(0)
    assert (changes.seq, [s.id for s in changes.put], changes.deleted) == (3, ["A"], [])
    assert changes.put[0].study["title"] == "back"


def test_store_replace_keeps_created_at(store: StudyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter(["2025-01-01T00:00:00Z", "2025-02-02T00:00:00Z"])
    monkeypatch.setattr(store_module, "_now", lambda: next(times))
    store.put([stored("A")])
    store.put([stored("A", title="new")])
    got = store.get("A")
    assert got is not None
    assert (got.created_at, got.updated_at, got.study["title"]) == (
        "2025-01-01T00:00:00Z",
        "2025-02-02T00:00:00Z",
        "new",
    )


def test_store_snapshot_and_get_many(store: StudyStore) -> None:
    assert store.snapshot() == (0, [])
    store.put([stored("B"), stored("A")])
    store.put([stored("C")])
    store.put([stored("B", title="B2")])
    store.delete("C")
    # Ids in the order of their last write.
    assert store.snapshot() == (5, ["A", "B"])
    many = store.get_many(["B", "GONE", "C", "A"])
    assert [s.id for s in many] == ["B", "A"]
    assert many[0].study["title"] == "B2"


def test_store_is_shared_by_two_handles(tmp_path: Path) -> None:
    path = tmp_path / "trialsift.db"
    one, two = StudyStore(path, MODEL), StudyStore(path, MODEL)
    try:
        one.put([stored("A")])
        assert (two.last_seq(), two.ids()) == (1, ["A"])
        assert two.delete("A") == 2
        assert (one.last_seq(), one.get("A")) == (2, None)
    finally:
        one.close()
        two.close()


# -- refusing databases it cannot use ------------------------------------------------------------------------


def test_store_refuses_another_model(tmp_path: Path) -> None:
    path = tmp_path / "trialsift.db"
    StudyStore(path, MODEL).close()
    other = {"id": "sentence-transformers/all-MiniLM-L6-v2", "fingerprint": "abc123", "dimension": 384}
    with pytest.raises(StoreError) as err:
        StudyStore(path, other)
    assert str(err.value) == (
        f"{path}: holds vectors of model trialsift/hashing-v1 (hashing-v1:d=4:w=64, 4 dimensions) but the "
        "encoder is sentence-transformers/all-MiniLM-L6-v2 (abc123, 384); "
        "use another data dir or the same model"
    )


def test_store_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "trialsift.db"
    StudyStore(path, MODEL).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError) as err:
        StudyStore(path, MODEL)
    assert str(err.value) == (
        f"{path}: database schema {SCHEMA_VERSION + 1} but this trialsift uses {SCHEMA_VERSION}; "
        "reload the studies into a new data dir"
    )


def test_store_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "trialsift.db"
    path.write_bytes(b"not a database, just some text " * 100)
    with pytest.raises(StoreError) as err:
        StudyStore(path, MODEL)
    assert str(err.value) == (
        f"{path}: not a trialsift database (file is not a database); move it away or pick another data dir"
    )


def test_store_reopens_with_the_same_model(tmp_path: Path) -> None:
    path = tmp_path / "trialsift.db"
    first = StudyStore(path, MODEL)
    first.put([stored("A")])
    first.close()
    again = StudyStore(path, MODEL)
    try:
        assert (again.last_seq(), again.ids()) == (1, ["A"])
    finally:
        again.close()
