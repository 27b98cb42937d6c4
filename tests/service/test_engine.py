"""The engine: several processes on one store, index snapshots, rebuilding, bulk loading."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.documents import make_entry
from index.encoder import HashingEncoder, Vectors
from index.files import META
from index.trial_index import STORES, SearchMode, TrialIndex
from nlp.errors import RecordError
from nlp.ingest import read_path
from nlp.pipeline import Extractor
from nlp.study import Study
from service.engine import Engine, NotFound
from service.settings import Settings
from tests.service.conftest import make_settings, sample_studies

VR_ID = "NCT04092803"
VR_QUERY = "virtual reality distraction lumbar puncture"
N_LOADED = 4


class RecordingEncoder(HashingEncoder):
    """The hashing encoder (same model id and fingerprint), remembering every window it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[str] = []

    def encode_windows(self, windows: Sequence[str]) -> Vectors:
        self.windows.extend(windows)
        return super().encode_windows(windows)


def vr_study() -> Study:
    study = sample_studies(42)[41]
    assert study.id == VR_ID
    return study


def store_seq_in_meta(settings: Settings) -> Any:
    return json.loads((settings.index_dir / META).read_text(encoding="utf-8"))["store"]


def lexical_ids(engine: Engine, query: str = VR_QUERY) -> list[str]:
    return [h.id for h in engine.search(query, SearchMode.LEXICAL, 10, None)]


@pytest.fixture
def data_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def loaded(data_settings: Settings, extractor: Extractor) -> Settings:
    """A data dir holding four sample studies and their index snapshot; no engine left open."""
    engine = Engine.open(data_settings, extractor=extractor)
    report = engine.load(sample_studies(N_LOADED))
    assert (report.added, report.skipped, report.errors) == (N_LOADED, 0, [])
    engine.close()
    return data_settings


@pytest.fixture
def two_engines(loaded: Settings, extractor: Extractor) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one data dir, as two uvicorn workers have."""
    a = Engine.open(loaded, extractor=extractor)
    b = Engine.open(loaded, extractor=extractor)
    yield a, b
    a.close(save=False)
    b.close(save=False)


# -- several processes, one store ----------------------------------------------------------------------------


def test_engine_ingest_through_one_is_found_by_the_other(two_engines: tuple[Engine, Engine]) -> None:
    a, b = two_engines
    assert lexical_ids(b) == []
    [done] = a.ingest([(vr_study(), None)])
    assert (done.id, done.created) == (VR_ID, True)
    assert lexical_ids(b) == [VR_ID]
    assert b.get(VR_ID).id == VR_ID
    assert [h.id for h in b.search(VR_QUERY, SearchMode.HYBRID, 1, None)] == [VR_ID]
    assert b.counts()["store_seq"] == a.counts()["store_seq"] == N_LOADED + 1
    assert b.counts()["studies"] == N_LOADED + 1


def test_engine_delete_through_one_disappears_from_the_other(two_engines: tuple[Engine, Engine]) -> None:
    a, b = two_engines
    a.ingest([(vr_study(), None)])
    assert lexical_ids(b) == [VR_ID]
    a.delete(VR_ID)
    assert lexical_ids(b) == []
    with pytest.raises(NotFound) as err:
        b.similar(VR_ID, 5, None)
    assert str(err.value) == f"study '{VR_ID}' is not stored"
    with pytest.raises(NotFound):
        b.get(VR_ID)
    assert b.counts()["studies"] == N_LOADED


def test_engine_replace_through_one_updates_the_other(two_engines: tuple[Engine, Engine]) -> None:
    a, b = two_engines
    study = sample_studies(1)[0]
    renamed = dataclasses.replace(study, title="Zyxwvut renamed trial")
    [done] = b.ingest([(renamed, None)])
    assert done.created is False
    assert lexical_ids(a, "zyxwvut") == [study.id]
    assert a.index.get(study.id).title == "Zyxwvut renamed trial"
    assert a.counts()["studies"] == N_LOADED


def test_engine_unknown_ids(two_engines: tuple[Engine, Engine]) -> None:
    a, _ = two_engines
    for call in (a.get, a.delete):
        with pytest.raises(NotFound) as err:
            call("NOPE")
        assert str(err.value) == "study 'NOPE' is not stored"


# -- snapshots -----------------------------------------------------------------------------------------------


def test_engine_close_saves_a_snapshot_that_reopens_at_its_seq(
    loaded: Settings, extractor: Extractor
) -> None:
    assert store_seq_in_meta(loaded) == {"seq": N_LOADED, "database": "trialsift.db"}
    engine = Engine.open(loaded, extractor=extractor)
    engine.ingest([(vr_study(), None)])
    assert (engine.applied_seq, engine.snapshot_seq) == (N_LOADED + 1, N_LOADED)
    assert store_seq_in_meta(loaded)["seq"] == N_LOADED  # not saved on every write
    engine.close()
    assert store_seq_in_meta(loaded) == {"seq": N_LOADED + 1, "database": "trialsift.db"}

    encoder = RecordingEncoder()
    again = Engine.open(loaded, encoder=encoder, extractor=extractor)
    try:
        assert (again.applied_seq, again.snapshot_seq, len(again.index)) == (N_LOADED + 1, N_LOADED + 1, 5)
        assert lexical_ids(again) == [VR_ID]
        titles = {again.index.get(i).field_text("tci") for i in again.index.ids()}
        assert not titles & set(encoder.windows)  # loaded, not embedded again
    finally:
        again.close()


def test_engine_snapshot_every_saves_in_the_background(data_settings: Settings, extractor: Extractor) -> None:
    settings = data_settings.model_copy(update={"snapshot_every": 2})
    engine = Engine.open(settings, extractor=extractor)
    try:
        engine.load(sample_studies(3))
        assert store_seq_in_meta(settings)["seq"] == 3
        studies = sample_studies(42)
        engine.ingest([(studies[40], None)])
        assert [t for t in threading.enumerate() if t.name == "trialsift-snapshot"] == []
        engine.ingest([(studies[41], None)])
        for t in threading.enumerate():
            if t.name == "trialsift-snapshot":
                t.join(10)
        assert store_seq_in_meta(settings)["seq"] == 5
        assert engine.snapshot_seq == 5
    finally:
        engine.close(save=False)


def _remove_dir(index_dir: Path) -> None:
    shutil.rmtree(index_dir)


def _garble_meta(index_dir: Path) -> None:
    (index_dir / META).write_text("garbage", encoding="utf-8")


def _truncate_vectors(index_dir: Path) -> None:
    [path] = index_dir.glob("vectors.outcomes.*.faiss")
    path.write_bytes(path.read_bytes()[:-10])


def _edit_meta(index_dir: Path, **changes: Any) -> None:
    meta = json.loads((index_dir / META).read_text(encoding="utf-8"))
    meta.update(changes)
    (index_dir / META).write_text(json.dumps(meta), encoding="utf-8")


def _snapshot_ahead(index_dir: Path) -> None:
    _edit_meta(index_dir, store={"seq": 999, "database": "trialsift.db"})


def _not_of_a_store(index_dir: Path) -> None:
    meta = json.loads((index_dir / META).read_text(encoding="utf-8"))
    del meta["store"]
    (index_dir / META).write_text(json.dumps(meta), encoding="utf-8")


def _other_model(index_dir: Path) -> None:
    _edit_meta(index_dir, model={"id": "other/model", "fingerprint": "x", "dimension": 64})


@pytest.mark.parametrize(
    "damage",
    [_remove_dir, _garble_meta, _truncate_vectors, _snapshot_ahead, _not_of_a_store, _other_model],
    ids=["missing", "meta-garbage", "truncated-vectors", "snapshot-ahead", "no-store-seq", "other-model"],
)
def test_engine_rebuilds_a_damaged_index_from_the_store(
    loaded: Settings, extractor: Extractor, damage: Any
) -> None:
    intact = RecordingEncoder()
    Engine.open(loaded, encoder=intact, extractor=extractor).close()
    damage(loaded.index_dir)

    encoder = RecordingEncoder()
    engine = Engine.open(loaded, encoder=encoder, extractor=extractor)
    try:
        # The same windows as opening the intact snapshot (warm-up queries): no study was embedded.
        assert encoder.windows == intact.windows
        assert (len(engine.index), engine.applied_seq, engine.snapshot_seq) == (N_LOADED, N_LOADED, N_LOADED)
        assert store_seq_in_meta(loaded) == {"seq": N_LOADED, "database": "trialsift.db"}
        first = sample_studies(1)[0]
        stored = engine.store.get(first.id)
        assert stored is not None
        for name in STORES:
            assert np.array_equal(engine.index.study_rows(first.id, name), stored.vectors[name])
    finally:
        engine.close()


def test_engine_snapshot_saved_while_loading_loses_no_change(
    loaded: Settings, extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Engine.open(loaded, extractor=extractor)
    original = TrialIndex.load.__func__  # type: ignore[attr-defined]

    def load_then_other_worker_saves(cls: type[TrialIndex], directory: Any, encoder: Any) -> TrialIndex:
        index = original(cls, directory, encoder)
        monkeypatch.setattr(TrialIndex, "load", classmethod(original))
        writer.ingest([(vr_study(), None)])
        writer.save_snapshot()
        return index  # type: ignore[no-any-return]

    monkeypatch.setattr(TrialIndex, "load", classmethod(load_then_other_worker_saves))
    reader = Engine.open(loaded, extractor=extractor)
    try:
        assert lexical_ids(reader) == [VR_ID]
    finally:
        reader.close(save=False)
        writer.close(save=False)


# -- bulk loading --------------------------------------------------------------------------------------------


def test_engine_load_skips_stored_ids_and_reports_unreadable_records(
    loaded: Settings, extractor: Extractor, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n[1]\n", encoding="utf-8")
    errors = list(read_path(bad))
    assert all(isinstance(e, RecordError) for e in errors)
    studies = sample_studies(42)
    engine = Engine.open(loaded, extractor=extractor)
    try:
        report = engine.load([studies[0], errors[0], studies[41], studies[41], errors[1], studies[1]])
        assert (report.added, report.skipped) == (1, 3)
        assert [str(e) for e in report.errors or []] == [
            f"{bad}:1: not valid JSON: Expecting property name enclosed in double quotes at column 2",
            f'{bad}:2: expected an API v2 study object with "protocolSection", found a number',
        ]
        assert engine.store.count() == N_LOADED + 1
        assert store_seq_in_meta(loaded)["seq"] == N_LOADED + 1
        assert lexical_ids(engine) == [VR_ID]
    finally:
        engine.close()


def test_engine_load_reuses_vectors_from_an_index(data_settings: Settings, extractor: Extractor) -> None:
    studies = sample_studies(4)
    extractions = list(extractor.extract_studies(studies))
    entries = [make_entry(s, x) for s, x in zip(studies, extractions, strict=True)]
    # The built index holds studies 0 and 1 as they are, study 2 with another title, not study 3.
    built = TrialIndex(HashingEncoder())
    built.add([entries[0], entries[1], dataclasses.replace(entries[2], title="An older title")])

    expected = RecordingEncoder()
    TrialIndex(expected).encode_studies([entries[2], entries[3]])

    encoder = RecordingEncoder()
    engine = Engine.open(data_settings, encoder=encoder, extractor=extractor)
    try:
        encoder.windows.clear()
        report = engine.load(studies, vectors_from=built)
        assert (report.added, report.skipped, report.errors) == (4, 0, [])
        assert encoder.windows == expected.windows  # only the changed and the new study were embedded
        for study_id in (studies[0].id, studies[1].id):
            stored = engine.store.get(study_id)
            assert stored is not None
            for name in STORES:
                assert np.array_equal(stored.vectors[name], built.study_rows(study_id, name))
        assert sorted(engine.index.ids()) == sorted(s.id for s in studies)
    finally:
        engine.close()
