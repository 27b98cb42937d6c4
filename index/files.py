"""An index directory on disk: data files plus ``meta.json``, saved atomically by generations.

Every save writes its data files under new names (``trials.tci.7.faiss``, ``studies.7.jsonl.gz``), flushes
them to disk, and only then replaces ``meta.json``, which names the files of its generation and their
checksums. Until that one ``os.replace`` happens, ``meta.json`` still names the previous generation's files,
which are untouched, so a save killed at any point leaves the previous index loadable. Files of older
generations are deleted after the switch. A lock file keeps two writers from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp.errors import TrialsiftError

META = "meta.json"
LOCK = ".lock"
FORMAT = "trialsift-index"
# 2: one row per condition and per intervention (1 had one row for all of a study's conditions).
FORMAT_VERSION = 2
_GENERATION_FILE = re.compile(r"^(?P<stem>.+)\.(?P<gen>\d+)\.(?P<ext>[a-z.]+)$")


class IndexFileError(TrialsiftError):
    """An index directory that cannot be loaded: missing, damaged, or built for another model."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    sha256: str
    bytes: int


def read_meta(directory: Path) -> dict[str, Any]:
    """``meta.json`` of an index directory, checked for format and version."""
    path = directory / META
    if not directory.is_dir():
        raise IndexFileError(f"{directory}: no such index directory (build one with `trialsift index build`)")
    if not path.is_file():
        raise IndexFileError(
            f"{directory}: not an index directory (no {META}); build one with `trialsift index build`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise IndexFileError(f"{path}: unreadable ({err}); rebuild the index") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise IndexFileError(f"{path}: not a trialsift index (format is not {FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise IndexFileError(
            f"{path}: index format version {meta.get('version')!r}, this trialsift reads version "
            f"{FORMAT_VERSION}; rebuild the index with `trialsift index build`"
        )
    return meta


def _listed(directory: Path, meta: Mapping[str, Any], key: str) -> tuple[Path, int, str]:
    """Path, size and sha256 of the data file ``meta`` lists under ``key``."""
    try:
        info = meta["files"][key]
        name, size, digest = str(info["name"]), int(info["bytes"]), str(info["sha256"])
    except (KeyError, TypeError):
        raise IndexFileError(f"{directory / META}: lists no file {key!r}; rebuild the index") from None
    return directory / name, size, digest


def read_file(directory: Path, meta: Mapping[str, Any], key: str) -> bytes:
    """The bytes of the data file ``meta`` lists under ``key``, checked against its size and sha256."""
    path, size, digest = _listed(directory, meta, key)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise IndexFileError(
            f"{path}: cannot read ({err.strerror}); the index is incomplete, rebuild it"
        ) from None
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        raise IndexFileError(f"{path}: contents do not match {META} (damaged file); rebuild the index")
    return data


def file_path(directory: Path, meta: Mapping[str, Any], key: str, *, checksum: bool = True) -> Path:
    """The path of the data file ``meta`` lists under ``key``, checked against its size, and against its
    sha256 unless ``checksum`` is false (for files mapped into memory rather than read: hashing a
    multi-gigabyte file would read it all at every load)."""
    path, size, digest = _listed(directory, meta, key)
    try:
        actual = path.stat().st_size
    except OSError as err:
        raise IndexFileError(
            f"{path}: cannot read ({err.strerror}); the index is incomplete, rebuild it"
        ) from None
    if actual != size or (checksum and _sha256(path) != digest):
        raise IndexFileError(f"{path}: contents do not match {META} (damaged file); rebuild the index")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def save_prepared(directory: Path, files: Mapping[str, Path], meta: dict[str, Any], generation: int) -> None:
    """Write ``meta.json`` for data files already written in ``directory`` under generation ``generation``
    (a shard build writes files too large to hold in memory, and one names another inside it)."""
    with write_lock(directory):
        listed: dict[str, dict[str, Any]] = {}
        for key, path in files.items():
            if (
                path.parent != directory
                or not (m := _GENERATION_FILE.match(path.name))
                or int(m["gen"]) != generation
            ):
                raise IndexFileError(f"{path}: not a generation-{generation} file of {directory}")
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            listed[key] = {"name": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size}
        _switch(directory, meta, generation, listed)


@contextlib.contextmanager
def write_lock(directory: Path) -> Iterator[None]:
    """Hold the directory's writer lock; a second writer fails at once instead of interleaving."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexFileError(f"{directory}: another process is writing this index") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_generation(
    directory: Path, files: Mapping[str, tuple[str, str, bytes]], meta: dict[str, Any]
) -> int:
    """Write one generation atomically; returns its number.

    Args:
        directory: the index directory (created if missing).
        files: ``key -> (stem, extension, bytes)``, e.g. ``("trials.tci", "faiss", data)``.
        meta: everything else for ``meta.json``; ``format``, ``version``, ``generation`` and ``files`` are
            filled in here.
    """
    with write_lock(directory):
        previous = 0
        if (directory / META).is_file():
            with contextlib.suppress(IndexFileError):
                previous = int(read_meta(directory).get("generation", 0))
        generation = max(previous, _highest_generation(directory)) + 1
        listed: dict[str, dict[str, Any]] = {}
        for key, (stem, ext, data) in files.items():
            name = f"{stem}.{generation}.{ext}"
            _write_durably(directory / name, data)
            listed[key] = {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        _switch(directory, meta, generation, listed)
        return generation


def _switch(
    directory: Path, meta: dict[str, Any], generation: int, listed: dict[str, dict[str, Any]]
) -> None:
    """Replace ``meta.json`` (the one step that switches readers to the new files), then drop older files."""
    full = {"format": FORMAT, "version": FORMAT_VERSION, **meta, "generation": generation, "files": listed}
    _write_durably(directory / META, (json.dumps(full, indent=2, sort_keys=True) + "\n").encode())
    _remove_other_generations(directory, generation)


def _write_durably(path: Path, data: bytes) -> None:
    # Write beside the target, flush to disk, then rename: readers see the old file or the whole new one.
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _highest_generation(directory: Path) -> int:
    gens = [int(m["gen"]) for p in directory.iterdir() if (m := _GENERATION_FILE.match(p.name))]
    return max(gens, default=0)


def _remove_other_generations(directory: Path, keep: int) -> None:
    for path in directory.iterdir():
        m = _GENERATION_FILE.match(path.name)
        if (m and int(m["gen"]) != keep) or (path.name.startswith(".") and path.name.endswith(".tmp")):
            with contextlib.suppress(OSError):
                path.unlink()
