"""A shard build (``index.scale``): numbering, sampling, training, per-shard adds, on-disk merge, recall."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.documents import StudyEntry, make_entry
from index.encoder import HashingEncoder
from index.files import IndexFileError, read_meta
from index.scale import (
    MIN_TRAIN,
    build_from_shards,
    exact_neighbours,
    factory_string,
    midpoint_queries,
    nlist_for,
    plan,
    read_vectors,
    sample,
    shard_rows,
    shard_table,
)
from index.store import IndexKind, StoreError, faiss
from index.trial_index import STORES, TrialIndex, row_id
from nlp.ingest import read_path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "studies.jsonl.gz"
DIM = 64


@pytest.fixture(scope="module")
def corpus_entries(extractor: Any, tmp_path_factory: pytest.TempPathFactory) -> list[StudyEntry]:
    """120 corpus studies, extracted: about 700 outcomes, enough to train PQ codebooks on."""
    path = tmp_path_factory.mktemp("in") / "s.jsonl"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        path.write_text("".join(itertools.islice(handle, 120)), encoding="utf-8")
    studies = [s for s in read_path(path) if not isinstance(s, Exception)]
    return [make_entry(s, r) for s, r in zip(studies, extractor.extract_studies(studies), strict=True)]


def _write_shards(directory: Path, entries: list[StudyEntry], cuts: list[int]) -> list[Path]:
    """Entries in input order, embedded with the hashing encoder, cut into shards at ``cuts``."""
    encoder = TrialIndex(HashingEncoder(DIM))
    encoded = encoder.encode_studies(entries)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    bounds = [0, *cuts, len(entries)]
    for n, (a, b) in enumerate(itertools.pairwise(bounds)):
        order = [(0, i, 0) for i in range(a, b)]
        path = directory / f"part-{n:05d}.parquet"
        pq.write_table(shard_table(shard_rows(order, encoded[a:b])), path)
        paths.append(path)
    # Written in another order than the input's: the build must not depend on it.
    return paths[::-1]


MODEL = {"id": "hashing", "fingerprint": "test", "dimension": DIM}


def _model_of(encoder: HashingEncoder) -> dict[str, Any]:
    return {"id": encoder.model_id, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension}


@pytest.fixture(scope="module")
def built(corpus_entries: list[StudyEntry], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One index from three shards and one from a single shard, same studies (IVF-PQ from 300 vectors)."""
    root = tmp_path_factory.mktemp("scale")
    model = _model_of(HashingEncoder(DIM))
    three = _write_shards(root / "three", corpus_entries, [40, 90])
    one = _write_shards(root / "one", corpus_entries, [])
    build_from_shards(three, root / "idx3", model, kind=IndexKind.IVF_PQ, min_train=300)
    build_from_shards(one, root / "idx1", model, kind=IndexKind.IVF_PQ, min_train=300)
    return root / "idx3", root / "idx1"


def test_the_merged_index_holds_every_study_and_vector(
    built: tuple[Path, Path], corpus_entries: list[StudyEntry]
) -> None:
    idx = TrialIndex.load(built[0], HashingEncoder(DIM))
    local = TrialIndex(HashingEncoder(DIM))
    local.add(corpus_entries)
    assert idx.counts() == local.counts()
    assert idx.ids() == local.ids()  # numbered in input order, not shard order
    for study_id in local.ids()[:20]:
        assert idx.get(study_id).to_json() == local.get(study_id).to_json()
    meta = read_meta(built[0])
    stores = meta["build"]["stores"]
    # Stores of 300 vectors or more are IVF-PQ on disk; smaller ones exact.
    assert {n: stores[n]["kind"] for n in STORES} == {
        n: ("ivf-pq" if local.stores[n].ntotal >= 300 else "exact") for n in STORES
    }
    assert stores["outcomes"]["factory"] == f"IVF{nlist_for(local.stores['outcomes'].ntotal)},PQ16x8np"
    assert sorted(idx.stores["outcomes"].ids().tolist()) == sorted(local.stores["outcomes"].ids().tolist())
    for name in STORES:
        if stores[name]["kind"] == "exact":
            ids = local.stores[name].ids()
            np.testing.assert_array_equal(
                idx.stores[name].reconstruct(ids), local.stores[name].reconstruct(ids)
            )


def test_sharding_does_not_change_the_index(built: tuple[Path, Path]) -> None:
    three, one = (TrialIndex.load(p, HashingEncoder(DIM)) for p in built)
    queries = ["objective response rate", "overall survival at 2 years", "dose-limiting toxicity", "pain"]
    for query in queries:
        assert [(h.id, h.outcome, h.score) for h in three.search_outcomes(query, k=10)] == [
            (h.id, h.outcome, h.score) for h in one.search_outcomes(query, k=10)
        ]
        assert [(h.id, h.score) for h in three.search(query, k=10)] == [
            (h.id, h.score) for h in one.search(query, k=10)
        ]
    m3, m1 = read_meta(built[0])["build"]["stores"], read_meta(built[1])["build"]["stores"]
    assert m3["outcomes"]["recall_at_10"] == m1["outcomes"]["recall_at_10"]


def test_recall_in_meta_is_what_exact_search_gives(built: tuple[Path, Path], tmp_path: Path) -> None:
    """Recompute recall@10 independently: brute force over every vector against the index at its nprobe."""
    meta = read_meta(built[0])
    params = meta["build"]["stores"]["outcomes"]
    idx = TrialIndex.load(built[0], HashingEncoder(DIM))
    store = idx.stores["outcomes"]
    ids = np.sort(store.ids())
    # The vectors as embedded: the exact stores of a local build hold them.
    local = TrialIndex(HashingEncoder(DIM))
    local.add([idx.get(i) for i in idx.ids()])
    vectors = local.stores["outcomes"].reconstruct(ids)
    shards = sorted((built[0].parent / "three").glob("*.parquet"))
    the_plan = plan(shards, DIM)
    training = sample(the_plan, "outcomes", DIM, params["trained_on"], 0)
    queries = midpoint_queries(training, 200, 1)
    sims = queries @ vectors.T
    truth = [ids[np.lexsort((ids, -row))[:10]].tolist() for row in sims]
    assert truth == exact_neighbours(the_plan, "outcomes", queries)
    _, found = store.search(queries, 10)
    recall = float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)]))
    assert round(recall, 4) == params["recall_at_10"]
    assert 0.5 <= params["recall_at_10"] <= 1.0
    assert params["recall_queries"] == 200 and params["ondisk"] is True


def test_the_lists_are_memory_mapped_and_read_only(built: tuple[Path, Path]) -> None:
    idx = TrialIndex.load(built[0], HashingEncoder(DIM))
    store = idx.stores["outcomes"]
    assert store.read_only and store.kind is IndexKind.IVF_PQ
    lists = faiss.extract_index_ivf(store._index).invlists
    assert faiss.downcast_InvertedLists(lists).__class__.__name__ == "OnDiskInvertedLists"
    meta = read_meta(built[0])
    ivfdata = built[0] / meta["files"]["store.outcomes.ivfdata"]["name"]
    maps = Path("/proc/self/maps").read_text()
    assert str(ivfdata) in maps
    message = "this index is memory-mapped from a shard build and read-only; build a new one to change it"
    with pytest.raises(StoreError, match=message):
        idx.remove([idx.ids()[0]])
    with pytest.raises(StoreError, match=message):
        idx.add([idx.get(idx.ids()[0])])
    with pytest.raises(StoreError, match=message):
        idx.save(built[0].parent / "copy")


def test_a_damaged_lists_file_is_refused(built: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "idx"
    shutil.copytree(built[1], copy)
    meta = read_meta(copy)
    ivfdata = copy / meta["files"]["store.outcomes.ivfdata"]["name"]
    with open(ivfdata, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(
        IndexFileError, match=r"contents do not match meta\.json \(damaged file\); rebuild the index"
    ):
        TrialIndex.load(copy, HashingEncoder(DIM))


def test_a_later_copy_of_an_id_wins(corpus_entries: list[StudyEntry], tmp_path: Path) -> None:
    entries = corpus_entries[:30]
    changed = StudyEntry.from_json({**entries[3].to_json(), "title": "Replaced title"})
    shards = _write_shards(tmp_path / "s", [*entries, changed], [10, 20])
    build_from_shards(shards, tmp_path / "idx", _model_of(HashingEncoder(DIM)), kind=IndexKind.IVF_PQ)
    idx = TrialIndex.load(tmp_path / "idx", HashingEncoder(DIM))
    assert len(idx) == 30
    assert idx.get(entries[3].id).title == "Replaced title"
    assert idx.ids() == [e.id for i, e in enumerate(entries) if i != 3] + [entries[3].id]


def test_an_existing_index_is_not_overwritten(built: tuple[Path, Path]) -> None:
    with pytest.raises(IndexFileError, match="an index is already there; a shard build writes a new index"):
        build_from_shards([], built[0], MODEL)


def test_kinds_built_elsewhere_are_refused() -> None:
    from index.store import VectorStore

    with pytest.raises(StoreError, match="ivf-pq stores are built from embedding shards"):
        VectorStore.build(4, np.arange(3), np.eye(3, 4, dtype=np.float32), IndexKind.IVF_PQ)
    assert factory_string(IndexKind.IVF_PQ, 100, 384) == "IVF100,PQ48x8np"
    assert factory_string(IndexKind.IVF_HNSW, 100, 384) == "IVF100_HNSW32,SQ8"
    assert MIN_TRAIN == 1000


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["A", "B", "C", "D", "E"]), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 12), max_size=3),
    seed=st.integers(0, 1000),
)
def test_plan_numbers_studies_in_input_order_last_copy_winning(
    ids: list[str], cuts: list[int], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("plan")
    rng = np.random.default_rng(seed)
    rows = [(i, study_id) for i, study_id in enumerate(ids)]
    rng.shuffle(rows)  # shards hold rows in any order
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    paths = []
    for n, (a, b) in enumerate(itertools.pairwise(bounds)):
        part = rows[a:b]
        columns: dict[str, list[Any]] = {
            "id": [r[1] for r in part],
            "source_no": [0] * len(part),
            "seq": [r[0] for r in part],
            "sub": [0] * len(part),
            "entry": ["{}"] * len(part),
            "summary_windows": [0] * len(part),
            **{f"v_{name}": [b""] * len(part) for name in STORES},
        }
        path = directory / f"p{n}.parquet"
        pq.write_table(shard_table(columns), path)
        paths.append(path)
    the_plan = plan(paths, 4)
    numbered = {}
    for path, numbers in zip(paths, the_plan.numbers, strict=True):
        table = pq.read_table(path).to_pylist()
        for row, no in zip(table, numbers.tolist(), strict=True):
            if no >= 0:
                numbered[no] = (row["seq"], row["id"])
    last = {study_id: i for i, study_id in enumerate(ids)}
    expected = sorted((i, study_id) for study_id, i in last.items())
    assert [numbered[no] for no in range(len(numbered))] == expected
    assert the_plan.studies == len(last)


def test_row_ids_of_a_shard(tmp_path: Path) -> None:
    vectors = {name: np.zeros((0, 4), np.float32) for name in STORES}
    vectors["outcomes"] = np.eye(3, 4, dtype=np.float32)
    columns = {
        "id": ["X"],
        "source_no": [0],
        "seq": [0],
        "sub": [0],
        "entry": ["{}"],
        "summary_windows": [0],
        **{f"v_{n}": [v.tobytes()] for n, v in vectors.items()},
    }
    pq.write_table(shard_table(columns), tmp_path / "p.parquet")
    the_plan = plan([tmp_path / "p.parquet"], 4)
    ids, vecs = read_vectors(the_plan, 0, "outcomes", 4)
    assert ids.tolist() == [row_id(0, 0), row_id(0, 1), row_id(0, 2)]
    np.testing.assert_array_equal(vecs, vectors["outcomes"])
    assert the_plan.vectors == {**dict.fromkeys(STORES, 0), "outcomes": 3}
    assert json.loads(columns["entry"][0]) == {}


def test_ivf_hnsw_keeps_its_tuned_search_breadth(corpus_entries: list[StudyEntry], tmp_path: Path) -> None:
    shards = _write_shards(tmp_path / "s", corpus_entries, [60])
    meta = build_from_shards(shards, tmp_path / "idx", _model_of(HashingEncoder(DIM)), min_train=300)
    params = meta["build"]["stores"]["outcomes"]
    assert (params["kind"], params["factory"]) == ("ivf-hnsw", f"IVF{params['nlist']}_HNSW32,SQ8")
    assert meta["files"]["store.outcomes.ivfdata"]["bytes"] >= params["vectors"] * DIM  # one byte a dimension
    idx = TrialIndex.load(tmp_path / "idx", HashingEncoder(DIM))
    ivf = faiss.extract_index_ivf(idx.stores["outcomes"]._index)
    quantizer = faiss.downcast_index(ivf.quantizer)
    # HNSW's default breadth (16) would cap how many lists a query can probe, and with it recall.
    assert quantizer.hnsw.efSearch == max(64, 2 * params["nprobe"])
    assert params["recall_at_10"] >= 0.9
