"""A FAISS vector store with stable 64-bit ids: exact inner product, or IVF when the collection is large.

Vectors are normalised, the metric is inner product, so scores are cosine similarities: higher = more
similar. Ids are the caller's (the index packs study number and slot into them), which is what lets studies be
added, replaced and removed without renumbering anything.

Filtering happens before top-k: a search given ``allowed`` ids only ever sees those rows. When the allowed
set is small it is scored exactly by brute force; otherwise FAISS searches with an id selector, and an
approximate search that comes back short of ``k`` is redone exactly over the allowed rows, so a filtered query
returns ``k`` hits whenever ``k`` rows pass the filter.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from index.encoder import Vectors, normalise
from nlp.errors import TrialsiftError

# faiss's bundled stubs are generated from SWIG and lack much of its API (DirectMap, SearchParameters(sel=…),
# IVF attributes); it is used untyped here rather than with an ignore on every line.
faiss: Any = _faiss

Ids = npt.NDArray[np.int64]

#: At or above this many vectors, ``auto`` builds an IVF index instead of an exact one.
AUTO_IVF_THRESHOLD = 200_000
#: An IVF index is not trained on fewer vectors than this.
MIN_IVF_VECTORS = 1_000
#: Allowed sets up to this size are scored by brute force (exact, and cheaper than a selector search).
BRUTE_FORCE_LIMIT = 20_000
#: The recall@10 against exact search that IVF's ``nprobe`` is tuned to reach at build time.
TARGET_RECALL = 0.95


class StoreError(TrialsiftError):
    """The vector store was asked for something it cannot do."""


class IndexKind(StrEnum):
    """Which FAISS index backs a store."""

    EXACT = "exact"  # IndexIDMap2(IndexFlatIP): exact inner product
    IVF = "ivf"  # IndexIVFFlat, inner product, nprobe tuned to TARGET_RECALL
    AUTO = "auto"  # exact below AUTO_IVF_THRESHOLD vectors, IVF above
    # Built from embedding shards (index/scale.py), lists on disk and memory-mapped, read-only:
    IVF_PQ = "ivf-pq"  # product-quantised codes (48 bytes per 384-d vector)
    IVF_HNSW = "ivf-hnsw"  # HNSW coarse quantizer, 8-bit scalar-quantised codes (1 byte per dimension)


@dataclass(slots=True)
class IvfParams:
    nlist: int
    nprobe: int
    recall_at_10: float | None = None


class VectorStore:
    """Normalised vectors under caller-chosen int64 ids, searchable by inner product."""

    def __init__(
        self,
        dimension: int,
        index: Any | None = None,
        ivf: IvfParams | None = None,
        kind: IndexKind | None = None,
        read_only: bool = False,
    ) -> None:
        self.dimension = dimension
        self.ivf = ivf
        self._kind = kind
        #: Memory-mapped from disk (a shard build's store): searched, never changed.
        self.read_only = read_only
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        if self._index.d != dimension:
            raise StoreError(f"FAISS index has dimension {self._index.d}, expected {dimension}")
        self._rows: tuple[Ids, Vectors] | None = None  # (ids, vectors) of an exact store; see row_scores

    @property
    def kind(self) -> IndexKind:
        if self._kind is not None:
            return self._kind
        return IndexKind.IVF if self.ivf is not None else IndexKind.EXACT

    @classmethod
    def open_ondisk(cls, path: Path, dimension: int, kind: IndexKind, ivf: IvfParams) -> VectorStore:
        """A shard build's store: the index file read, its inverted lists (``.ivfdata`` beside it)
        memory-mapped, so a process holds only the centroids and codebooks plus the pages it touches."""
        try:
            with quiet_stdio():  # FAISS prints where it found the lists, on every load
                index = faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)
        except RuntimeError as err:
            raise StoreError(f"{path}: cannot open ({str(err).splitlines()[0]}); rebuild the index") from None
        # Ids to list positions, so the rows of a study can be read back (similar trials).
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        from index.scale import set_probes

        set_probes(index, ivf.nprobe)
        return cls(dimension, index=index, ivf=ivf, kind=kind, read_only=True)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(
                "this index is memory-mapped from a shard build and read-only; build a new one to change it"
            )

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def build(
        cls,
        dimension: int,
        ids: Ids,
        vectors: Vectors,
        kind: IndexKind = IndexKind.AUTO,
        seed: int = 0,
    ) -> VectorStore:
        """A store holding ``vectors`` under ``ids``; IVF is trained on them and its nprobe tuned."""
        ids, vectors = _check(ids, vectors, dimension)
        if kind in (IndexKind.IVF_PQ, IndexKind.IVF_HNSW):
            raise StoreError(
                f"{kind} stores are built from embedding shards (trialsift index build --backend ray), "
                "not in place; use exact or ivf here"
            )
        if kind is IndexKind.AUTO:
            kind = IndexKind.IVF if len(ids) >= AUTO_IVF_THRESHOLD else IndexKind.EXACT
        if kind is IndexKind.EXACT:
            store = cls(dimension)
            store.add(ids, vectors)
            return store
        if len(ids) < MIN_IVF_VECTORS:
            raise StoreError(
                f"an IVF index needs at least {MIN_IVF_VECTORS:,} vectors to train on, got {len(ids):,}"
            )
        nlist = int(min(65_536, max(16, 4 * np.sqrt(len(ids)))))
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(len(ids), size=min(len(ids), nlist * 40), replace=False)]
        index.cp.seed = seed
        index.train(sample)
        index.add_with_ids(vectors, ids)
        # A hash table maps ids to list positions, so rows can be read back and removed by id.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        store = cls(dimension, index=index, ivf=IvfParams(nlist=nlist, nprobe=1))
        store.tune_nprobe(ids, vectors, rng)
        return store

    def tune_nprobe(self, ids: Ids, vectors: Vectors, rng: np.random.Generator, queries: int = 200) -> float:
        """Double nprobe until recall@10 against exact search reaches TARGET_RECALL; returns the recall.

        The queries are midpoints of two random stored vectors (normalised). Stored rows, even with noise
        added, sit next to their own cluster and overstate recall badly where near-duplicates cluster
        (registries repeat outcome texts): at 1M rows they tuned nprobe to 1 for a held-out recall of 0.66,
        while midpoints track held-out recall within about 0.02.
        """
        if self.ivf is None:
            raise StoreError("only an IVF store has an nprobe to tune")
        n = min(queries, len(vectors))
        a = rng.choice(len(vectors), size=n, replace=False)
        b = rng.choice(len(vectors), size=n, replace=False)
        q = normalise(vectors[a] + vectors[b])
        # Exact neighbours straight from the array: no second index (that would double memory at scale).
        _, truth_pos = faiss.knn(q, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
        truth = [[int(ids[p]) for p in row if p >= 0] for row in truth_pos]
        nprobe = 1
        while True:
            self.ivf.nprobe = nprobe
            _, found = self.search(q, 10)
            recall = float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)]))
            if recall >= TARGET_RECALL or nprobe >= self.ivf.nlist:
                self.ivf.recall_at_10 = round(recall, 4)
                return recall
            nprobe = min(self.ivf.nlist, nprobe * 2)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add rows; an id already present is refused (remove it first to replace)."""
        self._writable()
        ids, vectors = _check(ids, vectors, self.dimension)
        if len(ids) == 0:
            return
        # FAISS itself would keep both rows of a repeated id and return the id twice.
        clash = np.intersect1d(ids, self._stored_ids()) if self.ntotal else np.zeros(0, dtype=np.int64)
        if len(clash) or len(np.unique(ids)) != len(ids):
            repeated = clash if len(clash) else np.unique(ids[np.nonzero(np.diff(np.sort(ids)) == 0)[0]])
            raise StoreError(f"ids already present or repeated: {repeated[:5].tolist()}; remove them first")
        self._index.add_with_ids(vectors, ids)
        self._rows = None

    def ids(self) -> Ids:
        """Every stored id (in no particular order)."""
        return self._stored_ids()

    def _stored_ids(self) -> Ids:
        if self.ivf is None:
            return np.asarray(faiss.vector_to_array(self._index.id_map), dtype=np.int64)
        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(self._index.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def remove(self, ids: Ids) -> int:
        """Remove rows by id; returns how many were present."""
        arr = np.ascontiguousarray(ids, dtype=np.int64)
        if len(arr) == 0:
            return 0
        self._writable()
        self._rows = None
        return int(self._index.remove_ids(faiss.IDSelectorArray(arr)))

    def row_scores(self, query: Vectors) -> tuple[Ids, npt.NDArray[np.float32]] | None:
        """Every row's inner product with one query, with the rows' ids; ``None`` for an IVF store.

        One pass over an exact store gives what several searches of it would (unfiltered, filtered, by
        endpoint), at the cost of one: the scan reads every vector either way.
        """
        if self.ivf is not None:
            return None
        if self._rows is None:
            flat = faiss.downcast_index(self._index.index)
            n = int(flat.ntotal)
            # A view of FAISS's own array, not a copy: valid until the next add or remove (which reset it).
            xb = faiss.rev_swig_ptr(flat.get_xb(), n * self.dimension) if n else np.zeros(0, np.float32)
            self._rows = (self._stored_ids(), np.asarray(xb).reshape(n, self.dimension))
        ids, xb = self._rows
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dimension)
        out = np.empty(len(ids), dtype=np.float32)
        if len(ids):
            # FAISS's SIMD kernel: 2.5x numpy's matrix-vector product (OpenBLAS sgemv) on these shapes.
            faiss.fvec_inner_products_ny(
                faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(xb), self.dimension, len(ids)
            )
        return ids, out

    def reconstruct(self, ids: Ids) -> Vectors:
        """The stored vectors of ``ids`` (each must be present)."""
        arr = np.ascontiguousarray(ids, dtype=np.int64)
        if len(arr) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(self._index.reconstruct_batch(arr), dtype=np.float32)

    def search(
        self, queries: Vectors, k: int, allowed: Ids | None = None
    ) -> tuple[npt.NDArray[np.float32], list[list[int]]]:
        """Top-``k`` rows per query: scores (rows padded with -inf) and ids (rows cut to the hits found).

        Args:
            queries: normalised query vectors, shape ``(n, dimension)``.
            k: hits per query.
            allowed: if given, only these ids can be returned (filtering before top-k).
        """
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        total = self.ntotal if allowed is None else len(allowed)
        k_eff = min(k, total)
        if k_eff <= 0:
            return np.full((len(q), 0), -np.inf, dtype=np.float32), [[] for _ in range(len(q))]
        if allowed is not None and len(allowed) <= BRUTE_FORCE_LIMIT:
            return self._brute_force(q, k_eff, allowed)
        params: Any = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = (
                faiss.SearchParametersIVF(sel=selector, nprobe=self.ivf.nprobe)
                if self.ivf is not None
                else faiss.SearchParameters(sel=selector)
            )
        elif self.ivf is not None:
            params = faiss.SearchParametersIVF(nprobe=self.ivf.nprobe)
        scores, ids = self._index.search(q, k_eff, params=params)
        hits = [[int(i) for i in row if i >= 0] for row in ids]
        if allowed is not None and any(len(h) < k_eff for h in hits):
            return self._brute_force(q, k_eff, allowed)
        return _tie_break(scores.astype(np.float32), hits)

    def _brute_force(
        self, q: Vectors, k: int, allowed: Ids
    ) -> tuple[npt.NDArray[np.float32], list[list[int]]]:
        allowed_arr = np.ascontiguousarray(allowed, dtype=np.int64)
        sims = q @ self.reconstruct(allowed_arr).T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(sims, top, axis=1).astype(np.float32)
        return _tie_break(scores, [[int(allowed_arr[j]) for j in row] for row in top])

    def to_bytes(self) -> bytes:
        self._writable()  # its lists are in a file of their own, which a save would not carry along
        return bytes(faiss.serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int, ivf: IvfParams | None = None) -> VectorStore:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if ivf is not None:
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return cls(dimension, index=index, ivf=ivf)

    def params(self) -> dict[str, Any]:
        """Build parameters for ``meta.json``."""
        out: dict[str, Any] = {"kind": str(self.kind), "vectors": self.ntotal}
        if self.read_only:
            out["ondisk"] = True
        if self.ivf is not None:
            out.update(nlist=self.ivf.nlist, nprobe=self.ivf.nprobe, recall_at_10=self.ivf.recall_at_10)
        return out


@contextlib.contextmanager
def quiet_stdio() -> Iterator[None]:
    """File descriptors 1 and 2 to /dev/null for a C++ call that prints there."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _check(ids: Ids, vectors: Vectors, dimension: int) -> tuple[Ids, Vectors]:
    ids_arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    if vecs.ndim != 2 or vecs.shape[1] != dimension:
        raise StoreError(f"vectors have shape {vecs.shape}, expected (n, {dimension})")
    if len(ids_arr) != len(vecs):
        raise StoreError(f"{len(ids_arr)} ids for {len(vecs)} vectors")
    return ids_arr, vecs


def _tie_break(
    scores: npt.NDArray[np.float32], hits: list[list[int]]
) -> tuple[npt.NDArray[np.float32], list[list[int]]]:
    """Equal scores in id order. FAISS orders ties differently for different k, so without this, pages
    of one ranking (each searched to its own depth) could repeat a hit and skip another."""
    for r, row in enumerate(hits):
        n = len(row)
        if n > 1 and np.any(scores[r, 1:n] == scores[r, : n - 1]):
            order = sorted(range(n), key=lambda j: (-float(scores[r, j]), row[j]))
            scores[r, :n] = scores[r, order]
            hits[r] = [row[j] for j in order]
    return scores, hits
