"""An index built from embedding shards: IVF trained on a sample, shards added in parallel, merged on disk.

This is how an index too large to build in one process is made (``trialsift index build --backend ray``):

1. **Embed** (on the cluster): each shard is a Parquet file of studies with their entry and vectors
   (:func:`shard_table`); shards are written in any order, by any number of workers.
2. **Plan**: the shards' ids and input positions are read (a few columns, no vectors) and every study gets its
   number in input order; of an id given twice, the later copy wins, as in a local build.
3. **Train**, per vector store: an IVF index (``ivf-pq``: product-quantised codes; ``ivf-hnsw``: an HNSW
   coarse quantizer over 8-bit scalar-quantised codes) is trained on a uniform sample of the shards' vectors.
4. **Add**: each shard's vectors are added to a copy of the trained, empty index (:func:`add_shard`, one task
   per shard, on the cluster or in this process), giving one small index per shard.
5. **Merge**: the per-shard inverted lists are concatenated into one ``.ivfdata`` file
   (``OnDiskInvertedLists.merge_from_multiple``, as ``faiss.contrib.ondisk.merge_ondisk`` does); the index
   file keeps the centroids and codebooks and points at it. Loading maps the lists into memory
   (:meth:`index.store.VectorStore.open_ondisk`): a serving process touches only the lists it probes.
6. **Measure**: recall@10 against exact search over every vector (streamed shard by shard) on 200 sampled
   queries, raising ``nprobe`` until it reaches 0.95 or stops improving; both go into ``meta.json``.

The result is an ordinary index directory: :meth:`index.trial_index.TrialIndex.load` opens it, searches and
similar-trial queries work as on any index, and it is read-only (extend it by building again).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from index.files import IndexFileError, read_meta, save_prepared
from index.store import TARGET_RECALL, IndexKind, StoreError, faiss, quiet_stdio
from index.trial_index import SLOT_BITS, STORES, EncodedStudy

#: Kinds a shard build makes (stores below MIN_TRAIN vectors stay exact).
SCALE_KINDS: Final = (IndexKind.IVF_PQ, IndexKind.IVF_HNSW)
#: Vectors sampled to train a store's coarse quantizer and codes (per centroid, and at most).
TRAIN_PER_LIST: Final = 40
MAX_TRAIN: Final = 200_000
#: Fewer vectors than this in a store and it is kept exact (PQ needs 256 training points per codebook).
MIN_TRAIN: Final = 1_000
#: Queries recall@10 is measured on.
RECALL_QUERIES: Final = 200
ORDER_COLUMNS: Final = ("source_no", "seq", "sub")


def vector_column(store: str) -> str:
    return f"v_{store}"


# -- 1. shards ---------------------------------------------------------------------------------------------


def shard_rows(
    order: Sequence[tuple[int, int, int]], studies: Sequence[EncodedStudy]
) -> dict[str, list[Any]]:
    """Columns of an embedding shard: each study's id, input position, entry and vectors (float32 bytes)."""
    columns: dict[str, list[Any]] = {
        "id": [s.entry.id for s in studies],
        "source_no": [o[0] for o in order],
        "seq": [o[1] for o in order],
        "sub": [o[2] for o in order],
        "entry": [json.dumps(s.entry.to_json(), ensure_ascii=False, sort_keys=True) for s in studies],
        "summary_windows": [len(s.vectors["summary"]) for s in studies],
    }
    for name in STORES:
        columns[vector_column(name)] = [
            np.ascontiguousarray(s.vectors[name], dtype=np.float32).tobytes() for s in studies
        ]
    return columns


def shard_table(columns: dict[str, list[Any]]) -> Any:
    """The pyarrow table of :func:`shard_rows`' columns, with a fixed schema."""
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string()),
        pa.field("source_no", pa.int64()),
        pa.field("seq", pa.int64()),
        pa.field("sub", pa.int64()),
        pa.field("entry", pa.string()),
        pa.field("summary_windows", pa.int64()),
        *[pa.field(vector_column(name), pa.binary()) for name in STORES],
    ]
    schema = pa.schema(fields)
    return pa.Table.from_pydict({f.name: columns[f.name] for f in fields}, schema=schema)


# -- 2. plan -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ShardPlan:
    """The shards and, per shard, each row's study number (``-1``: a later copy of its id wins)."""

    shards: list[Path]
    numbers: list[npt.NDArray[np.int64]]
    studies: int
    vectors: dict[str, int]

    def ids(self, shard: int, store: str, counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Row ids of a shard's vectors in ``store`` (``counts``: each study's vectors there), -1 for
        superseded rows."""
        nos = np.repeat(self.numbers[shard], counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        slots = np.arange(int(counts.sum()), dtype=np.int64) - starts
        return np.where(nos >= 0, (nos << SLOT_BITS) | slots, -1)


def plan(shards: Sequence[Path], dimension: int) -> ShardPlan:
    """Number every study in input order, reading only ids, positions and vector byte lengths."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids: list[str] = []
    keys: list[npt.NDArray[np.int64]] = []
    sizes = [0]
    vectors = dict.fromkeys(STORES, 0)
    for path in shards:
        table = pq.read_table(path, columns=["id", *ORDER_COLUMNS, *map(vector_column, STORES)])
        ids.extend(table.column("id").to_pylist())
        keys.append(np.stack([table.column(c).to_numpy() for c in ORDER_COLUMNS], axis=1).astype(np.int64))
        sizes.append(sizes[-1] + table.num_rows)
        for name in STORES:
            lengths = pc.binary_length(table.column(vector_column(name))).to_numpy()
            vectors[name] += int(lengths.sum()) // (4 * dimension)
    everything = np.concatenate(keys) if keys else np.zeros((0, 3), dtype=np.int64)
    # Positions in input order (source, record, study within the record).
    order = np.lexsort(everything.T[::-1])
    last: dict[str, int] = {}
    for position in order.tolist():  # a later copy of an id replaces the earlier one, as in a local build
        last[ids[position]] = position
    place = np.empty(len(order), dtype=np.int64)
    place[order] = np.arange(len(order))
    kept = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    kept = kept[np.argsort(place[kept], kind="stable")]
    rank = np.full(len(ids), -1, dtype=np.int64)
    rank[kept] = np.arange(len(kept))
    numbers = [rank[sizes[i] : sizes[i + 1]] for i in range(len(shards))]
    return ShardPlan(list(shards), numbers, len(kept), vectors)


def read_vectors(plan_: ShardPlan, shard: int, store: str, dimension: int) -> tuple[Any, Any]:
    """``(row ids, vectors)`` of one shard in one store, without superseded rows."""
    import pyarrow.parquet as pq

    column = pq.read_table(plan_.shards[shard], columns=[vector_column(store)]).column(0).to_pylist()
    counts = np.array([len(b) // (4 * dimension) for b in column], dtype=np.int64)
    data = b"".join(column)
    vecs = (
        np.frombuffer(data, dtype=np.float32).reshape(-1, dimension)
        if data
        else np.zeros((0, dimension), np.float32)
    )
    ids = plan_.ids(shard, store, counts)
    keep = ids >= 0
    return ids[keep], np.ascontiguousarray(vecs[keep])


# -- 3. train ----------------------------------------------------------------------------------------------


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4·√n (16 to 65,536), FAISS's rule of thumb."""
    return int(min(65_536, max(16, 4 * np.sqrt(n))))


def factory_string(kind: IndexKind, nlist: int, dimension: int) -> str:
    if kind is IndexKind.IVF_PQ:
        m = next(m for m in (48, 32, 24, 16, 12, 8, 4, 2, 1) if dimension % m == 0 and dimension // m >= 4)
        # "np": no polysemous training (30 s of simulated annealing for codes only Hamming filters use).
        return f"IVF{nlist},PQ{m}x8np"
    if kind is IndexKind.IVF_HNSW:
        return f"IVF{nlist}_HNSW32,SQ8"
    raise StoreError(f"{kind} is not a kind a shard build makes (one of {', '.join(SCALE_KINDS)})")


def _mix(ids: Any, seed: int) -> Any:
    """A 64-bit hash of each id (splitmix64): a pseudo-random draw that does not depend on sharding."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sample(plan_: ShardPlan, store: str, dimension: int, size: int, seed: int) -> Any:
    """A uniform sample of about ``size`` vectors of a store, in id order.

    Rows are drawn by a hash of their id, so the sample (and the index trained on it) is the same however
    the studies were sharded; every shard is read once.
    """
    total = plan_.vectors[store]
    threshold = np.uint64(min(2**64 - 1, int(2**64 * min(1.0, size / max(total, 1)))))
    ids_parts, hash_parts, vec_parts = [], [], []
    for shard in range(len(plan_.shards)):
        ids, vecs = read_vectors(plan_, shard, store, dimension)
        hashes = _mix(ids, seed)
        keep = hashes <= threshold
        ids_parts.append(ids[keep])
        hash_parts.append(hashes[keep])
        vec_parts.append(vecs[keep])
    if not ids_parts:
        return np.zeros((0, dimension), np.float32)
    ids, hashes = np.concatenate(ids_parts), np.concatenate(hash_parts)
    picked = np.argsort(hashes, kind="stable")[:size]  # the lowest hashes: a uniform draw of `size`
    picked = picked[np.argsort(ids[picked], kind="stable")]
    return np.ascontiguousarray(np.concatenate(vec_parts)[picked])


def train(kind: IndexKind, vectors: Any, nlist: int, seed: int = 0) -> Any:
    """An empty IVF index of ``kind`` trained on ``vectors`` (inner product on normalised vectors)."""
    dimension = vectors.shape[1]
    index = faiss.index_factory(dimension, factory_string(kind, nlist, dimension), faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


# -- 4. add, 5. merge ---------------------------------------------------------------------------------------


def part_path(work: Path, store: str, shard: int) -> Path:
    """Where :func:`add_shard` writes a shard's index for a store."""
    return work / f"{store}.part-{shard:05d}.faiss"


def add_shard(trained: bytes, plan_: ShardPlan, store: str, work: Path, shard: int) -> int:
    """Add one shard's vectors to a copy of the trained index and write it under ``work``; returns how
    many. A function of its arguments alone, so Ray can run one per shard anywhere (and retry it)."""
    out = part_path(work, store, shard)
    index = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
    dimension = index.d
    ids, vecs = read_vectors(plan_, shard, store, dimension)
    if len(ids):
        index.add_with_ids(vecs, ids)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, out)
    return len(ids)


def merge(trained: bytes, parts: Sequence[Path], ivfdata: Path) -> Any:
    """One index whose inverted lists, concatenated from ``parts``' in order, live in ``ivfdata``."""
    index = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
    ivf = faiss.extract_index_ivf(index)
    lists = []
    for part in parts:
        # Mapped, not read: the parts together may exceed memory.
        loaded = faiss.read_index(str(part), faiss.IO_FLAG_MMAP)
        part_ivf = faiss.extract_index_ivf(loaded)
        part_ivf.own_invlists = False
        lists.append((loaded, part_ivf.invlists))
    merged = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(ivfdata))
    vector = faiss.InvertedListsPtrVector()
    for _, invlists in lists:
        vector.push_back(invlists)
    with quiet_stdio():  # FAISS reports resizing the file it merges into
        total = merged.merge_from_multiple(vector.data(), vector.size(), False)
    index.ntotal = ivf.ntotal = total
    ivf.replace_invlists(merged, True)
    merged.this.disown()
    return index


# -- 6. measure -------------------------------------------------------------------------------------------


def exact_neighbours(plan_: ShardPlan, store: str, queries: Any, k: int = 10) -> list[list[int]]:
    """The exact top-``k`` row ids of each query over every vector of a store, streamed shard by shard.

    Equal scores rank by id (near-duplicate texts have equal vectors), so the truth does not depend on how
    the rows were sharded.
    """
    best: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    for shard in range(len(plan_.shards)):
        ids, vecs = read_vectors(plan_, shard, store, queries.shape[1])
        if not len(ids):
            continue
        scores = queries @ vecs.T
        kk = min(k, len(ids))
        kth = np.partition(scores, len(ids) - kk, axis=1)[:, len(ids) - kk]
        for r, row in enumerate(scores):
            candidates = np.flatnonzero(row >= kth[r])  # every row tied with the k-th too
            merged = best[r] + [(-float(row[c]), int(ids[c])) for c in candidates]
            best[r] = sorted(merged)[:k]
    return [[rid for _, rid in row] for row in best]


def midpoint_queries(vectors: Any, n: int, seed: int) -> Any:
    """Queries between two stored vectors (normalised midpoints): see ``VectorStore.tune_nprobe``."""
    rng = np.random.default_rng(seed)
    n = min(n, len(vectors))
    a = rng.choice(len(vectors), size=n, replace=False)
    b = rng.choice(len(vectors), size=n, replace=False)
    q = vectors[a] + vectors[b]
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q / np.maximum(norms, 1e-12), dtype=np.float32)


def set_probes(index: Any, nprobe: int) -> None:
    """Search ``nprobe`` lists; an HNSW coarse quantizer then explores ``max(64, 2·nprobe)`` candidates.

    HNSW's default breadth (16) cannot return 64 or 256 nearest centroids: with it, IVF-HNSW's recall@10
    stayed at 0.81 whatever nprobe (1M vectors); with this, it reaches 0.96 at nprobe 64 (200k vectors).
    """
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = nprobe
    quantizer = faiss.downcast_index(ivf.quantizer)
    if isinstance(quantizer, faiss.IndexHNSW):
        quantizer.hnsw.efSearch = max(64, 2 * nprobe)


def tune(
    index: Any, queries: Any, truth: list[list[int]], target: float = TARGET_RECALL
) -> tuple[int, float]:
    """Double ``nprobe`` until recall@10 reaches ``target``, stops improving, or probes every list."""
    ivf = faiss.extract_index_ivf(index)
    nprobe, best = 1, (1, -1.0)
    while True:
        set_probes(index, nprobe)
        _, found = index.search(queries, 10)
        recall = float(
            np.mean(
                [len(set(t) & set(f.tolist())) / max(len(t), 1) for t, f in zip(truth, found, strict=True)]
            )
        )
        if recall > best[1] + 0.002:
            best = (nprobe, recall)
        elif nprobe > best[0]:  # no gain from doubling: codes, not probes, limit recall now
            set_probes(index, best[0])
            return best
        if recall >= target or nprobe >= ivf.nlist:
            set_probes(index, best[0])
            return best
        nprobe = min(ivf.nlist, nprobe * 2)


# -- the build --------------------------------------------------------------------------------------------


MapShards = Callable[[Callable[[int], int], Sequence[int]], list[int]]


def _serial(fn: Callable[[int], int], shards: Sequence[int]) -> list[int]:
    return [fn(s) for s in shards]


@dataclass(slots=True)
class StoreReport:
    name: str
    params: dict[str, Any]
    seconds: dict[str, float]


def build_from_shards(
    shards: Sequence[Path],
    out: Path,
    model: dict[str, Any],
    *,
    kind: IndexKind = IndexKind.IVF_HNSW,
    seed: int = 0,
    map_shards: MapShards = _serial,
    extra_meta: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    min_train: int = MIN_TRAIN,
) -> dict[str, Any]:
    """Build the index directory ``out`` (which must not hold an index) from embedding shards.

    Args:
        shards: Parquet files of :func:`shard_table`, in any order.
        out: the index directory to create.
        model: ``{"id", "fingerprint", "dimension"}`` of the encoder that made the vectors.
        kind: ``ivf-pq`` or ``ivf-hnsw`` for stores of ``MIN_TRAIN`` vectors or more (smaller ones: exact).
        seed: for the training sample, k-means and the recall queries.
        map_shards: runs ``fn(shard)`` for every shard and returns the results in order (Ray tasks, or
            this process).
        extra_meta: more keys for ``meta.json``.
        log: called with a line per step.
        min_train: stores with fewer vectors stay exact.

    Returns:
        The ``meta.json`` written (with the files it lists).
    """
    if kind not in SCALE_KINDS:
        raise StoreError(f"a shard build makes {' or '.join(SCALE_KINDS)} stores, not {kind}")
    if (out / "meta.json").exists():
        raise IndexFileError(f"{out}: an index is already there; a shard build writes a new index directory")
    say = log or (lambda line: None)
    dimension = int(model["dimension"])
    started = time.perf_counter()
    the_plan = plan(shards, dimension)
    say(f"planned {the_plan.studies:,} studies in {len(shards)} shards")
    generation = 1
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    prepared: dict[str, Path] = {"studies": _write_studies(the_plan, out / f"studies.{generation}.jsonl.gz")}
    stores: dict[str, dict[str, Any]] = {}
    for name in STORES:
        total = the_plan.vectors[name]
        t0 = time.perf_counter()
        if total < min_train:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
            for shard in range(len(shards)):
                ids, vecs = read_vectors(the_plan, shard, name, dimension)
                if len(ids):
                    index.add_with_ids(vecs, ids)
            path = out / f"vectors.{name}.{generation}.faiss"
            faiss.write_index(index, str(path))
            prepared[f"store.{name}"] = path
            stores[name] = {"kind": str(IndexKind.EXACT), "vectors": int(index.ntotal)}
            continue
        nlist = nlist_for(total)
        training = sample(
            the_plan, name, dimension, min(MAX_TRAIN, max(nlist * TRAIN_PER_LIST, 10_000)), seed
        )
        trained = faiss.serialize_index(train(kind, training, nlist, seed)).tobytes()
        t_train = time.perf_counter() - t0
        parts = [part_path(work, name, shard) for shard in range(len(shards))]
        added = map_shards(functools.partial(add_shard, trained, the_plan, name, work), range(len(shards)))
        t_add = time.perf_counter() - t0 - t_train
        ivfdata = out / f"vectors.{name}.{generation}.ivfdata"
        merged = merge(trained, parts, ivfdata)
        for part in parts:
            part.unlink()
        t_merge = time.perf_counter() - t0 - t_train - t_add
        queries = midpoint_queries(training, RECALL_QUERIES, seed + 1)
        truth = exact_neighbours(the_plan, name, queries)
        nprobe, recall = tune(merged, queries, truth)
        # Written after tuning: the file keeps the tuned nprobe and the quantizer's search breadth.
        path = out / f"vectors.{name}.{generation}.faiss"
        faiss.write_index(merged, str(path))
        del merged
        prepared[f"store.{name}"] = path
        prepared[f"store.{name}.ivfdata"] = ivfdata
        stores[name] = {
            "kind": str(kind),
            "vectors": int(sum(added)),
            "nlist": nlist,
            "nprobe": nprobe,
            "recall_at_10": round(recall, 4),
            "recall_queries": len(queries),
            "trained_on": len(training),
            "factory": factory_string(kind, nlist, dimension),
            "ondisk": True,
            "seconds": {
                "train": round(t_train, 2),
                "add": round(t_add, 2),
                "merge": round(t_merge, 2),
                "measure": round(time.perf_counter() - t0 - t_train - t_add - t_merge, 2),
            },
        }
        say(
            f"{name}: {total:,} vectors, {kind} nlist {nlist}, recall@10 {recall:.3f} at nprobe {nprobe} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    shutil.rmtree(work)
    counts = {"studies": the_plan.studies, **{f"{n}_vectors": int(stores[n]["vectors"]) for n in STORES}}
    meta: dict[str, Any] = {
        "model": model,
        "metric": "inner_product",
        "normalized": True,
        "counts": counts,
        "ids": {"next_study_no": the_plan.studies, "slot_bits": SLOT_BITS},
        "build": {
            "kind": str(kind),
            "stores": stores,
            "from_shards": {"shards": len(shards), "seconds": round(time.perf_counter() - started, 2)},
        },
        "read_only": True,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra_meta or {}),
    }
    save_prepared(out, prepared, meta, generation)
    return read_meta(out)


def _write_studies(plan_: ShardPlan, path: Path) -> Path:
    """``studies.N.jsonl.gz`` as :meth:`TrialIndex.save` writes it (rows carry their number; any order)."""
    import pyarrow.parquet as pq

    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        for shard, numbers in enumerate(plan_.numbers):
            table = pq.read_table(plan_.shards[shard], columns=["entry", "summary_windows"])
            entries = table.column("entry").to_pylist()
            windows = table.column("summary_windows").to_pylist()
            for no, entry, summary_windows in zip(numbers.tolist(), entries, windows, strict=True):
                if no < 0:
                    continue
                row = {"no": no, "summary_windows": summary_windows, "entry": json.loads(entry)}
                out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return path
