"""The service's persistent store: SQLite (WAL) holding every study, its extraction and its vectors.

SQLite is the source of truth; the FAISS/BM25 index beside it (``DATA_DIR/index``) is a snapshot that can
always be rebuilt from it without embedding anything again, because each study's vectors are stored with it.

Every write appends to ``changes`` (an increasing ``seq``). A process serving the index remembers the last
``seq`` it applied; before answering it applies what other processes wrote since (see
:mod:`service.engine`), which is how several uvicorn workers serve one store and a study added through
one of them is searchable through all of them at once. The index snapshot records the ``seq`` it reflects,
so a restart loads it and replays only the changes made after it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from index.documents import StudyEntry
from index.encoder import Vectors
from index.trial_index import STORES, EncodedStudy
from nlp.errors import TrialsiftError

#: Bumped when the tables change; an older database is refused with a message saying what to do.
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id TEXT PRIMARY KEY,
    source_format TEXT NOT NULL,
    source TEXT,              -- the input as given (JSON: a record, or {"text", "id"}); NULL for files
    study TEXT NOT NULL,      -- the normalised Study (JSON)
    extraction TEXT NOT NULL, -- the spec's JSON for the study
    entry TEXT NOT NULL,      -- what the index keeps of it (index.documents.StudyEntry, JSON)
    vectors BLOB NOT NULL,    -- its vectors per index store (see pack_vectors)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    study_id TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


class StoreError(TrialsiftError):
    """The database cannot be used (another model's vectors, a newer schema, a damaged file)."""


@dataclass(slots=True)
class StoredStudy:
    """One study as stored."""

    id: str
    source_format: str
    source: Any  # the input as given: a registry record (dict), {"text": ..., "id": ...}, or None
    study: dict[str, Any]
    extraction: dict[str, Any]
    entry: StudyEntry
    vectors: dict[str, Vectors]
    created_at: str = ""
    updated_at: str = ""

    def encoded(self) -> EncodedStudy:
        return EncodedStudy(self.entry, self.vectors)


@dataclass(slots=True)
class Changes:
    """What changed after some ``seq``: the studies now stored under changed ids, and ids now gone."""

    seq: int
    put: list[StoredStudy]
    deleted: list[str]


def pack_vectors(vectors: dict[str, Vectors]) -> bytes:
    """Vectors per store as bytes: a JSON header of row counts and dimension, a newline, float32 rows."""
    dims = {v.shape[1] for v in vectors.values()}
    if len(dims) != 1:
        raise StoreError(f"vectors of different dimensions: {sorted(dims)}")
    header = {"dim": dims.pop(), "rows": {name: len(vectors[name]) for name in STORES}}
    body = b"".join(np.ascontiguousarray(vectors[name], dtype="<f4").tobytes() for name in STORES)
    return json.dumps(header, sort_keys=True).encode() + b"\n" + body


def unpack_vectors(data: bytes) -> dict[str, Vectors]:
    """The inverse of :func:`pack_vectors`."""
    head, _, body = data.partition(b"\n")
    header = json.loads(head)
    dim = int(header["dim"])
    flat = np.frombuffer(body, dtype="<f4")
    total = sum(header["rows"].values())
    if flat.size != total * dim:
        raise StoreError(f"stored vectors hold {flat.size} floats, the header says {total} x {dim}")
    out: dict[str, Vectors] = {}
    pos = 0
    for name in STORES:
        n = int(header["rows"][name])
        out[name] = flat[pos : pos + n * dim].reshape(n, dim).astype(np.float32)
        pos += n * dim
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class StudyStore:
    """Studies in SQLite. One connection per thread; writes are serialised by SQLite's write lock
    (``BEGIN IMMEDIATE``), so any number of threads and processes may share one file.

    Args:
        path: the database file (created with its tables when missing).
        model: the encoder's ``{"id", "fingerprint", "dimension"}``; a database holding another model's
            vectors is refused.
    """

    def __init__(self, path: str | Path, model: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._init(model)

    # -- connections ----------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash; only a power loss can drop the last ones.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _write(self) -> _Transaction:
        return _Transaction(self._db(), immediate=True)

    def _read(self) -> _Transaction:
        return _Transaction(self._db(), immediate=False)

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def _init(self, model: dict[str, Any]) -> None:
        try:
            db = self._db()
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"{self.path}: not a trialsift database ({err}); move it away or pick another data dir"
            ) from None
        with self._write() as tx:
            meta = dict(tx.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                tx.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                tx.execute("INSERT INTO meta VALUES ('model', ?)", (_dumps(model),))
                return
        if int(meta.get("schema_version", 0)) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema {meta.get('schema_version')} but this trialsift uses "
                f"{SCHEMA_VERSION}; reload the studies into a new data dir"
            )
        stored = json.loads(meta["model"])
        if stored != model:
            raise StoreError(
                f"{self.path}: holds vectors of model {stored.get('id')} ({stored.get('fingerprint')}, "
                f"{stored.get('dimension')} dimensions) but the encoder is {model.get('id')} "
                f"({model.get('fingerprint')}, {model.get('dimension')}); use another data dir or the "
                "same model"
            )

    # -- writes ---------------------------------------------------------------------------------------

    def put(self, studies: list[StoredStudy]) -> tuple[int, list[bool]]:
        """Insert or replace studies in one transaction; returns the last ``seq`` and, per study,
        whether it was new."""
        now = _now()
        created: list[bool] = []
        with self._write() as tx:
            seq = 0
            for s in studies:
                cur = tx.execute("INSERT INTO changes (op, study_id, at) VALUES ('put', ?, ?)", (s.id, now))
                seq = int(cur.lastrowid or 0)
                old = tx.execute("SELECT created_at FROM studies WHERE id = ?", (s.id,)).fetchone()
                created.append(old is None)
                s.created_at = old[0] if old else now
                s.updated_at = now
                tx.execute(
                    "INSERT OR REPLACE INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        s.id,
                        s.source_format,
                        None if s.source is None else _dumps(s.source),
                        _dumps(s.study),
                        _dumps(s.extraction),
                        _dumps(s.entry.to_json()),
                        pack_vectors(s.vectors),
                        s.created_at,
                        s.updated_at,
                        seq,
                    ),
                )
        return seq, created

    def delete(self, study_id: str) -> int | None:
        """Delete a study; returns the change's ``seq``, or ``None`` when no such study is stored."""
        with self._write() as tx:
            cur = tx.execute("DELETE FROM studies WHERE id = ?", (study_id,))
            if cur.rowcount == 0:
                return None
            cur = tx.execute(
                "INSERT INTO changes (op, study_id, at) VALUES ('delete', ?, ?)", (study_id, _now())
            )
            return int(cur.lastrowid or 0)

    # -- reads ----------------------------------------------------------------------------------------

    def get(self, study_id: str) -> StoredStudy | None:
        with self._read() as tx:
            return _fetch(tx, study_id)

    def has(self, study_id: str) -> bool:
        with self._read() as tx:
            return tx.execute("SELECT 1 FROM studies WHERE id = ?", (study_id,)).fetchone() is not None

    def count(self) -> int:
        with self._read() as tx:
            return int(tx.execute("SELECT count(*) FROM studies").fetchone()[0])

    def ids(self) -> list[str]:
        with self._read() as tx:
            return [r[0] for r in tx.execute("SELECT id FROM studies ORDER BY seq, id")]

    def last_seq(self) -> int:
        """The ``seq`` of the last write (0 for a new store); cheap enough to ask before every read."""
        row = self._db().execute("SELECT max(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def changes_since(self, seq: int) -> Changes:
        """What changed after ``seq``, read in one snapshot (so ``Changes.seq`` covers exactly these)."""
        with self._read() as tx:
            rows = tx.execute(
                "SELECT seq, study_id FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
            last = max((int(r[0]) for r in rows), default=seq)
            put: list[StoredStudy] = []
            deleted: list[str] = []
            seen: set[str] = set()
            for _, study_id in rows:
                if study_id in seen:
                    continue
                seen.add(study_id)
                stored = _fetch(tx, study_id)
                if stored is None:
                    deleted.append(study_id)
                else:
                    put.append(stored)
        return Changes(last, put, deleted)

    def snapshot(self) -> tuple[int, list[str]]:
        """The ``seq`` of the last write and every stored id then: for building an index from scratch.

        Studies read later (:meth:`get_many`) may be newer than ``seq``; replaying the changes after
        ``seq`` on top is idempotent, so the index still ends up exactly as stored.
        """
        with self._read() as tx:
            seq = int(tx.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])
            ids = [r[0] for r in tx.execute("SELECT id FROM studies ORDER BY seq, id")]
        return seq, ids

    def get_many(self, ids: list[str]) -> list[StoredStudy]:
        """The stored studies among ``ids``, in that order (ids no longer stored are left out)."""
        out: list[StoredStudy] = []
        with self._read() as tx:
            for study_id in ids:
                stored = _fetch(tx, study_id)
                if stored is not None:
                    out.append(stored)
        return out


_COLUMNS: Final = "id, source_format, source, study, extraction, entry, vectors, created_at, updated_at"


def _fetch(tx: sqlite3.Connection, study_id: str) -> StoredStudy | None:
    row = tx.execute(f"SELECT {_COLUMNS} FROM studies WHERE id = ?", (study_id,)).fetchone()
    return None if row is None else _stored(row)


def _stored(row: tuple[Any, ...]) -> StoredStudy:
    return StoredStudy(
        id=row[0],
        source_format=row[1],
        source=None if row[2] is None else json.loads(row[2]),
        study=json.loads(row[3]),
        extraction=json.loads(row[4]),
        entry=StudyEntry.from_json(json.loads(row[5])),
        vectors=unpack_vectors(row[6]),
        created_at=row[7],
        updated_at=row[8],
    )


class _Transaction:
    """``BEGIN [IMMEDIATE]`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection, immediate: bool) -> None:
        self.db, self.immediate = db, immediate

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
