"""What the HTTP routes call: extraction, the study store and the search index, loaded once per process.

The :class:`Engine` owns the extraction pipeline, the encoder, the SQLite :class:`~service.store.StudyStore`
and the in-memory :class:`~index.trial_index.TrialIndex`. Reads run concurrently under a shared lock;
applying changes takes it exclusively. Before every read the engine applies what any process wrote to the
store since it last looked (one cheap ``max(seq)`` query), so with several workers a study ingested through
one is searchable through all of them at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from index import files
from index.build import Progress
from index.documents import StudyEntry, make_entry
from index.encoder import Encoder, encode
from index.files import META, IndexFileError
from index.filters import SearchFilters
from index.similar import SimilarHit
from index.trial_index import EncodedStudy, OutcomeHit, SearchMode, TrialHit, TrialIndex, item_texts
from nlp.errors import RecordError, TrialsiftError
from nlp.pipeline import Extractor
from nlp.study import Study
from service.settings import EncoderName, Settings
from service.store import StoredStudy, StudyStore

log = logging.getLogger("trialsift.engine")


class NotFound(TrialsiftError, KeyError):
    """An id that is not stored."""

    def __str__(self) -> str:
        return str(self.args[0])


class ReadOnlyIndex(TrialsiftError):
    """A write to a server that serves a prebuilt index (``TRIALSIFT_INDEX``)."""


@dataclass(slots=True)
class Ingested:
    """What ingesting one study did."""

    id: str
    created: bool
    extraction: dict[str, Any]


@dataclass(slots=True)
class LoadReport:
    added: int = 0
    skipped: int = 0
    errors: list[RecordError] | None = None


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (so writes are not starved)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def make_encoder(settings: Settings) -> Encoder:
    """The encoder the settings name (the model itself loads on first use)."""
    if settings.encoder is EncoderName.HASHING:
        from index.encoder import HashingEncoder

        return HashingEncoder()
    from index.encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


def model_info(encoder: Encoder) -> dict[str, Any]:
    return {"id": encoder.model_id, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension}


class Engine:
    """Extraction, storage and search for one process. Build with :meth:`open`; :meth:`close` at the end.

    Args:
        settings: the service settings.
        encoder: embeds texts and queries (default: the one ``settings.encoder`` names).
        extractor: the extraction pipeline (default: built here).
    """

    def __init__(
        self, settings: Settings, encoder: Encoder | None = None, extractor: Extractor | None = None
    ) -> None:
        self.settings = settings
        self.encoder = encoder if encoder is not None else make_encoder(settings)
        self.extractor = extractor if extractor is not None else Extractor()
        self.store = StudyStore(settings.db_path, model_info(self.encoder))
        self.index = TrialIndex(self.encoder, settings.index_kind)
        self.applied_seq = 0
        self.snapshot_seq = 0
        self.ready = False
        self._lock = ReadWriteLock()
        self._sync_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: Settings,
        encoder: Encoder | None = None,
        extractor: Extractor | None = None,
        warm: bool = True,
    ) -> Engine:
        """Open the store, load the index snapshot (or build it from the store), apply later changes
        and (``warm``) warm the models up, so the first request is as fast as the others. A bulk load
        serves no query: it skips the warm-up (BM25 alone is seconds at 10k studies)."""
        engine = cls(settings, encoder, extractor)
        engine._load_index()
        engine.sync()
        if warm:
            engine.warm_up()
        engine.ready = True
        return engine

    def close(self, save: bool = True) -> None:
        """Save the index snapshot if it is behind the store, and close the database."""
        if save and not self.read_only:
            self.sync()
            if self.applied_seq != self.snapshot_seq:
                self.save_snapshot()
        self.ready = False
        self.store.close()

    # -- index snapshot ---------------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Serving a prebuilt index (``settings.index``): searches only, no writes."""
        return self.settings.index is not None

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyIndex(
                f"this server serves the prebuilt index {self.settings.index} read-only (TRIALSIFT_INDEX); "
                "write to a server with a store, or rebuild the index with the study"
            )

    def _load_index(self) -> None:
        if self.settings.index is not None:
            # Memory-mapped where it was built from shards: the lists stay on disk, shared by every worker.
            self.index = TrialIndex.load(self.settings.index, self.encoder)
            log.info(
                "serving the prebuilt index %s (%d studies), read-only", self.settings.index, len(self.index)
            )
            return
        path = self.settings.index_dir
        if (path / META).exists():
            try:
                # The seq first: should another worker save a newer snapshot meanwhile, this one loads that
                # and replays changes it already holds, which is harmless; the other order could skip some.
                seq = int((files.read_meta(path).get("store") or {}).get("seq", -1))
                index = TrialIndex.load(path, self.encoder)
                if 0 <= seq <= self.store.last_seq():
                    self.index, self.applied_seq, self.snapshot_seq = index, seq, seq
                    log.info("loaded index snapshot at seq %d (%d studies)", seq, len(index))
                    return
                log.warning("index snapshot at %s is not of this store (seq %d); rebuilding", path, seq)
            except IndexFileError as err:
                log.warning("cannot use the index snapshot (%s); rebuilding it from the store", err)
        self._rebuild_index()

    def _rebuild_index(self) -> None:
        """Build the index from the stored vectors (no embedding), then save it."""
        seq, ids = self.store.snapshot()
        index = TrialIndex(self.encoder, self.settings.index_kind)
        for start in range(0, len(ids), 1000):
            index.add_encoded([s.encoded() for s in self.store.get_many(ids[start : start + 1000])])
        index.optimise()
        self.index, self.applied_seq = index, seq
        if ids:
            self.save_snapshot()

    def save_snapshot(self) -> None:
        """Save the index beside the store, recording which store ``seq`` it reflects."""
        with self._snapshot_lock, self._lock.read():
            seq = self.applied_seq
            self.index.save(
                self.settings.index_dir, extra_meta={"store": {"seq": seq, "database": self.store.path.name}}
            )
        self.snapshot_seq = seq
        log.info("saved index snapshot at seq %d", seq)

    # -- keeping up with the store ----------------------------------------------------------------------

    def sync(self) -> int:
        """Apply what was written to the store since this process last looked; returns how many changes."""
        if self.read_only or self.store.last_seq() == self.applied_seq:
            return 0
        with self._sync_lock:
            changes = self.store.changes_since(self.applied_seq)
            if changes.seq == self.applied_seq:
                return 0
            with self._lock.write():
                if changes.deleted:
                    self.index.remove(changes.deleted)
                if changes.put:
                    self.index.add_encoded([s.encoded() for s in changes.put])
                self.applied_seq = changes.seq
            return len(changes.put) + len(changes.deleted)

    def warm_up(self) -> None:
        """Load the model and build BM25 and the endpoint concepts now rather than on a first request."""
        with self._lock.read():
            encode(self.encoder, ["warm up"])
            if len(self.index):
                self.index.search("objective response rate", k=1)
                self.index.search_outcomes("objective response rate", k=1)

    # -- extraction ---------------------------------------------------------------------------------------

    def extract(self, studies: Sequence[Study]) -> list[dict[str, Any]]:
        """The spec's JSON for each study."""
        return list(self.extractor.extract_studies(studies))

    # -- studies ---------------------------------------------------------------------------------------

    def _stored(
        self, items: Sequence[tuple[Study, Any]], vectors_from: TrialIndex | None = None
    ) -> list[StoredStudy]:
        """Extract and embed studies (``(study, source as given)`` pairs) into the rows the store keeps.
        ``vectors_from``: an index whose vectors a study with unchanged texts takes instead of embedding."""
        studies = [study for study, _ in items]
        extractions = self.extract(studies)
        entries = [make_entry(s, x) for s, x in zip(studies, extractions, strict=True)]
        encoded = _reuse_vectors(vectors_from, entries) if vectors_from is not None else {}
        fresh = self.index.encode_studies([e for e in entries if e.id not in encoded])
        encoded.update({e.entry.id: e for e in fresh})
        return [
            StoredStudy(
                id=study.id,
                source_format=study.source_format,
                source=source,
                study=asdict(study),
                extraction=extraction,
                entry=encoded[study.id].entry,
                vectors=encoded[study.id].vectors,
            )
            for (study, source), extraction in zip(items, extractions, strict=True)
        ]

    def ingest(self, items: Sequence[tuple[Study, Any]]) -> list[Ingested]:
        """Store, extract and index studies (``(study, source as given)`` pairs); searchable on return."""
        self._writable()
        rows = self._stored(items)
        _, created = self.store.put(rows)
        self._after_write()
        return [Ingested(r.id, c, r.extraction) for r, c in zip(rows, created, strict=True)]

    def delete(self, study_id: str) -> None:
        self._writable()
        if self.store.delete(study_id) is None:
            raise NotFound(f"study {study_id!r} is not stored")
        self._after_write()

    def get(self, study_id: str) -> StoredStudy:
        stored = self.store.get(study_id)
        if stored is None:
            raise NotFound(f"study {study_id!r} is not stored")
        return stored

    def _after_write(self) -> None:
        self.sync()
        if self.applied_seq - self.snapshot_seq >= self.settings.snapshot_every:
            # Off the request: a snapshot of 10k studies takes seconds; reads go on meanwhile.
            threading.Thread(target=self._snapshot_quietly, name="trialsift-snapshot", daemon=True).start()

    def _snapshot_quietly(self) -> None:
        if not self._snapshot_lock.locked():
            try:
                self.save_snapshot()
            except (OSError, IndexFileError) as err:
                log.error("could not save the index snapshot: %s", err)

    def load(
        self,
        items: Iterable[Study | RecordError],
        *,
        batch: int = 64,
        progress: Progress | None = None,
        vectors_from: TrialIndex | None = None,
    ) -> LoadReport:
        """Bulk-load studies into the store (ids already stored are skipped), then save the index.

        Args:
            items: studies (and unreadable records, which are reported, not stored).
            batch: studies per transaction.
            progress: studies/s on stderr.
            vectors_from: an index built by ``trialsift index build`` with the same encoder: a study whose
                texts it holds unchanged takes its vectors from there instead of being embedded again.
        """
        self._writable()
        report = LoadReport(errors=[])
        pending: list[Study] = []

        def flush() -> None:
            self.store.put(self._stored([(s, None) for s in pending], vectors_from))
            report.added += len(pending)
            if progress is not None:
                progress.update(len(pending))
            pending.clear()

        seen: set[str] = set()
        for item in items:
            if isinstance(item, RecordError):
                assert report.errors is not None
                report.errors.append(item)
                continue
            if item.id in seen or self.store.has(item.id):
                report.skipped += 1
                continue
            seen.add(item.id)
            pending.append(item)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        if progress is not None:
            progress.close()
        self.sync()
        if report.added or not (self.settings.index_dir / META).exists():
            with self._lock.write():
                self.index.optimise()
            self.save_snapshot()
        return report

    # -- search ----------------------------------------------------------------------------------------

    def _reader(self) -> contextlib.AbstractContextManager[None]:
        """Enter a read: this thread's FAISS threads set, later writes applied, the shared lock held."""
        if getattr(_THREAD, "threads", None) != self.settings.threads:
            configure_threads(self.settings.threads)
        self.sync()
        return self._lock.read()

    def search(self, query: str, mode: SearchMode, k: int, filters: SearchFilters | None) -> list[TrialHit]:
        with self._reader():
            return self.index.search(query, k=k, mode=mode, filters=filters)

    def search_outcomes(
        self, query: str, mode: SearchMode, k: int, filters: SearchFilters | None
    ) -> list[OutcomeHit]:
        with self._reader():
            return self.index.search_outcomes(query, k=k, mode=mode, filters=filters)

    def similar(self, study_id: str, k: int, filters: SearchFilters | None) -> list[SimilarHit]:
        with self._reader():
            if study_id not in self.index:
                raise NotFound(f"study {study_id!r} is not stored")
            return self.index.similar(study_id, k=k, filters=filters)

    def counts(self) -> dict[str, int]:
        with self._lock.read():
            return {**self.index.counts(), "store_seq": self.applied_seq}


def _reuse_vectors(index: TrialIndex, entries: Sequence[StudyEntry]) -> dict[str, EncodedStudy]:
    out: dict[str, EncodedStudy] = {}
    for entry in entries:
        if entry.id not in index:
            continue
        old = index.get(entry.id)
        if item_texts(old) != item_texts(entry) or old.summary != entry.summary:
            continue
        out[entry.id] = EncodedStudy(entry, {name: index.study_rows(entry.id, name) for name in index.stores})
    return out


_THREAD = threading.local()


def configure_threads(threads: int) -> None:
    """Threads for FAISS (OpenMP) and torch. One per worker: single queries gain nothing from more, and
    uvicorn's workers already use the cores.

    OpenMP's thread count is a per-thread setting: a request thread that never set it uses every core, so
    every thread that searches calls this once (see :meth:`Engine._reader`).
    """
    import faiss
    from threadpoolctl import threadpool_limits

    # BLAS pools (numpy's and FAISS's OpenBLAS) are process-wide and spin while they wait for work: with
    # one per worker on every core, two workers' pools fight over the cores (search went 3x slower).
    threadpool_limits(limits=threads)
    faiss.omp_set_num_threads(threads)
    _THREAD.threads = threads
    try:
        import torch
    except ImportError:  # pragma: no cover - torch comes with sentence-transformers
        return
    torch.set_num_threads(threads)
