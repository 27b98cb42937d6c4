"""Input specs for bulk runs: files, directories, glob patterns, URIs and ``-`` (standard input).

A spec is expanded into the files it names, in a stable order (directories and patterns sorted by path), so
that the same command reads the same records in the same order on every run, which is what makes re-runs
byte-identical and ``--resume`` exact. A spec that names nothing is reported as a ``RecordError`` in its
place, never dropped.

A spec with a scheme (``s3://bucket/dump/``, ``gs://…``, ``hdfs://…``, ``file:///…``) is read through the
filesystem pyarrow has for it: a file, or every non-hidden file below a "directory", sorted by path.
"""

from __future__ import annotations

import glob
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from nlp.errors import RecordError
from nlp.ingest import JsonLine, parsed, read_stream
from nlp.study import Study

STDIN: Final = "-"
_GLOB_CHARS: Final = frozenset("*?[")

#: What a bulk reader yields: a read study, an unreadable record, or a JSON line left for a worker to parse.
Item = Study | RecordError | JsonLine


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read and its size in bytes, when known: a local ``path``, a ``uri`` read through
    pyarrow's filesystems, or neither (standard input)."""

    name: str
    path: Path | None
    size: int | None
    uri: str | None = None

    @property
    def location(self) -> str:
        """Where another process finds the file: its URI or local path (``-`` for standard input)."""
        if self.uri is not None:
            return self.uri
        return str(self.path) if self.path is not None else STDIN


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _directory(root: Path) -> list[Source] | RecordError:
    files = sorted((p for p in root.rglob("*") if p.is_file() and not _hidden(p, root)), key=_order)
    if not files:
        return RecordError(str(root), None, "the directory holds no files (hidden ones are not read)")
    return [Source(str(p), p, p.stat().st_size) for p in files]


def _order(path: Path) -> tuple[str, ...]:
    # One order for directories and patterns alike: by path components, so "a/x" comes before "a-b".
    return path.parts


def _matching_files(pattern: str) -> list[Path]:
    """The files a glob pattern names, each once (``d/**`` matches ``d`` and its subdirectories too), and
    every non-hidden file below a directory it matches."""
    files: set[Path] = set()
    for match in map(Path, glob.glob(pattern, recursive=True)):
        if match.is_dir():
            files.update(p for p in match.rglob("*") if p.is_file() and not _hidden(p, match))
        elif match.is_file():
            files.add(match)
    return sorted(files, key=_order)


def expand(specs: Sequence[str]) -> list[Source | RecordError]:
    """The files the input specs name, in order, with a RecordError for each spec that names none.

    Args:
        specs: file paths, directories (every non-hidden file below, sorted by path), glob patterns
            (``shards/*.jsonl.gz``, ``**`` for any depth; sorted) or ``-`` for standard input.

    Returns:
        Sources and errors in the specs' order.
    """
    out: list[Source | RecordError] = []
    for spec in specs:
        path = Path(spec)
        if "://" in spec:
            found = _remote(spec)
            out.extend(found if isinstance(found, list) else [found])
        elif spec == STDIN:
            out.append(Source("<stdin>", None, None))
        elif path.is_dir():
            found = _directory(path)
            out.extend(found if isinstance(found, list) else [found])
        elif path.exists():
            out.append(Source(spec, path, path.stat().st_size))
        elif _GLOB_CHARS & set(spec):
            files = _matching_files(spec)
            if not files:
                out.append(RecordError(spec, None, "no file matches this pattern"))
            out.extend(Source(str(p), p, p.stat().st_size) for p in files)
        else:
            out.append(RecordError(spec, None, "no such file or directory"))
    return out


def _remote(uri: str) -> list[Source] | RecordError:
    """The files a URI names, through pyarrow's filesystem for its scheme."""
    import pyarrow.fs as pafs

    scheme = uri.split("://", 1)[0]
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File:
            return [Source(uri, None, info.size, uri)]
        if info.type != pafs.FileType.Directory:
            return RecordError(uri, None, "no such file or directory")
        found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as err:  # pyarrow's errors derive from these
        return RecordError(uri, None, f"cannot list: {err}")
    base = root.rstrip("/")
    files = sorted(
        (f for f in found if f.type == pafs.FileType.File and not _hidden_key(f.path[len(base) :])),
        key=lambda f: tuple(f.path.split("/")),
    )
    if not files:
        return RecordError(uri, None, "the directory holds no files (hidden ones are not read)")
    # Local paths start with "/" (file:///x), bucket paths do not (s3://bucket/x): both become scheme://path.
    uris = [f"{scheme}://{f.path}" for f in files]
    return [Source(u, None, f.size, u) for u, f in zip(uris, files, strict=True)]


def _hidden_key(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/") if part)


def open_source(source: Source, *, defer: bool = False, stdin: BinaryIO | None = None) -> Iterator[Item]:
    """The records of one source (see :func:`read_stream`); a file that cannot be opened is one error."""
    return _read_source(source, defer, stdin, None)


def _read_source(
    source: Source,
    defer: bool,
    stdin: BinaryIO | None,
    opened: Callable[[io.BufferedReader | None], None] | None,
) -> Iterator[Item]:
    if source.path is None and source.uri is None:
        stream = stdin if stdin is not None else sys.stdin.buffer
        buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[type-var]
        yield from read_stream(buffered, source.name, defer=defer)  # type: ignore[arg-type]
        return
    try:
        handle = _open(source)
    except OSError as err:
        yield RecordError(source.name, None, f"cannot open: {getattr(err, 'strerror', None) or err}")
        return
    if opened:
        opened(handle)
    try:
        yield from read_stream(handle, source.name, defer=defer)
    finally:
        if opened:
            opened(None)
        handle.close()


def _open(source: Source) -> io.BufferedReader:
    if source.uri is None:
        assert source.path is not None
        return open(source.path, "rb")
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(source.uri)
    # pyarrow would decompress by extension; read_stream tells gzip from the bytes, as for local files.
    return io.BufferedReader(fs.open_input_stream(path, compression=None))


class Inputs:
    """The records of a list of input specs, read lazily, with how far into the input the reading is.

    Args:
        specs: as for :func:`expand`.
        defer: leave JSON Lines records unparsed (``JsonLine``) for worker processes to parse.
        stdin: the stream ``-`` reads (default ``sys.stdin.buffer``).
    """

    def __init__(self, specs: Sequence[str], *, defer: bool = False, stdin: BinaryIO | None = None) -> None:
        self.entries = expand(specs)
        self.defer = defer
        self._stdin = stdin
        sizes = [e.size for e in self.entries if isinstance(e, Source)]
        #: Bytes in all inputs; None when one is standard input (of unknown length).
        self.total_bytes: int | None = None if None in sizes else sum(s for s in sizes if s is not None)
        self._done_bytes = 0
        self._handle: BinaryIO | None = None

    @property
    def bytes_read(self) -> int:
        """Bytes of the inputs read so far (compressed bytes, for gzipped files)."""
        current = 0
        if self._handle is not None:
            try:
                current = self._handle.tell()
            except (OSError, ValueError):  # a pipe, or a file closed under us
                current = 0
        return self._done_bytes + current

    def __iter__(self) -> Iterator[Item]:
        for entry in self.entries:
            if isinstance(entry, RecordError):
                yield entry
                continue
            yield from self._read(entry)
            self._done_bytes += entry.size or 0

    def studies(self) -> Iterator[Study | RecordError]:
        """The records as studies (JSON lines parsed here), for callers that do not defer."""
        return parsed(self)

    def _read(self, source: Source) -> Iterator[Item]:
        def opened(handle: io.BufferedReader | None) -> None:
            self._handle = handle

        return _read_source(source, self.defer, self._stdin, opened)
