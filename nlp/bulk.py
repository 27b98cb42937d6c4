"""Bulk annotation: stream records through the extractor on several processes, in input order.

The reading process only splits the input into records (JSON Lines are not even parsed there); worker
processes parse, extract and encode them in chunks (``nlp.pipe`` batches), and the results come back in input
order. Each worker holds one chunk at a time and results never run more than ``4 × workers`` chunks ahead
of the output, so memory stays flat whatever the input size.

>>> from nlp.bulk import annotate
>>> run = annotate(["studies.jsonl.gz"], workers=2)     # doctest: +SKIP
>>> for study in run: ...                                # doctest: +SKIP
>>> run.errors                                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Final

from nlp.errors import RecordError, TrialsiftError
from nlp.ingest import JsonLine, parsed, read_record
from nlp.ingest.sources import Inputs, Item
from nlp.pipeline import Extractor, default_extractor
from nlp.study import Study

#: Records per chunk sent to a worker: ~250 outcomes, one ``nlp.pipe`` batch, and a small enough unit that
#: the reader keeps both cores busy.
CHUNK_SIZE: Final = 64

#: Turns a study and its extraction into what the caller wants back (the JSON dict, a JSON line, table
#: rows). It runs in the worker, so that the encoding is parallel too; it must be a module-level function.
Encode = Callable[[Study, dict[str, Any]], Any]


def _as_dict(study: Study, result: dict[str, Any]) -> dict[str, Any]:
    return result


def encode_json(study: Study, result: dict[str, Any]) -> str:
    """A study's result as one JSON line (no newline): keys in the spec's order, UTF-8 kept as is."""
    return json.dumps(result, ensure_ascii=False)


@dataclass(slots=True)
class Annotated:
    """One study's result, as the ``encode`` function shaped it."""

    id: str
    value: Any


@dataclass(slots=True)
class Chunk:
    """The results of one chunk of input records, in input order, with counts for the run's summary."""

    items: list[Annotated | RecordError]
    stats: Counter[str] = field(default_factory=Counter)


def summarize(result: dict[str, Any], stats: Counter[str]) -> None:
    """Add one study's counts to ``stats``: outcomes, what they have, their categories and endpoints."""
    stats["studies"] += 1
    for o in result["outcomes"]:
        stats["outcomes"] += 1
        stats["with_endpoint"] += bool(o["endpoints"])
        stats["with_points"] += bool(o["timing"]["points"])
        stats["with_horizon"] += o["timing"]["horizon_days"] is not None
        stats["with_criteria"] += bool(o["criteria"])
        stats["category " + o["category"]] += 1
        for endpoint in o["endpoints"]:
            stats["endpoint " + endpoint] += 1
    stats["dose_groups"] += len(result["dose_groups"])


def _failed(study: Study, err: Exception) -> RecordError:
    source, _, line = study.origin.rpartition(":")
    where = (source, int(line)) if line.isdigit() else (study.origin or study.id, None)
    return RecordError(where[0], where[1], f"extraction failed: {type(err).__name__}: {err}", id=study.id)


def process_chunk(items: list[Item], encode: Encode = _as_dict) -> Chunk:
    """Parse, extract and encode one chunk of records (in a worker, or in-process for one worker).

    A study the extractor fails on (a bug, not bad input) is reported as a RecordError in its place rather
    than stopping a run of hundreds of thousands.
    """
    records = list(parsed(items))
    extractor = default_extractor()
    results: list[dict[str, Any] | RecordError]
    with _memory_zone(extractor, len(records)):
        try:
            results = list(extractor.extract_items(records))
        except Exception:  # a bug, not bad input: find the failing study, one at a time
            results = [_extract_one(extractor, record) for record in records]
    chunk = Chunk([])
    for record, result in zip(records, results, strict=True):
        if isinstance(result, RecordError):
            chunk.items.append(result)
            chunk.stats["errors"] += 1
        else:
            assert isinstance(record, Study)
            summarize(result, chunk.stats)
            chunk.items.append(Annotated(result["id"], encode(record, result)))
    return chunk


#: Studies a process extracts before it bounds its memory. spaCy caches how it tokenized each new word,
#: except inside a memory zone; the first studies fill that cache with the common words, so the zones
#: that follow cost nothing measurable (without this warm-up they cost 5-10% of the rate). The vocabulary
#: this adds is fixed: about 15 MB.
WARM_STUDIES: Final = 1024
_extracted = 0


def _memory_zone(extractor: Extractor, n: int) -> contextlib.AbstractContextManager[None]:
    """A spaCy memory zone, once this process has extracted ``WARM_STUDIES`` studies."""
    global _extracted
    _extracted += n
    return contextlib.nullcontext() if _extracted <= WARM_STUDIES else extractor.memory_zone()


def _extract_one(extractor: Extractor, record: Study | RecordError) -> dict[str, Any] | RecordError:
    if isinstance(record, RecordError):
        return record
    try:
        return next(iter(extractor.extract_items([record])))
    except Exception as err:  # reported as that study's error; the run goes on
        return _failed(record, err)


def skip_done(items: Iterable[Item], done: Counter[str], skipped: Counter[str]) -> Iterator[Item]:
    """Leave out the studies ``done`` holds (as many times as it counts each id), for ``--resume``.

    Ids are counted, not just listed, so that an input holding one id twice is resumed exactly. A JSON
    line's id is read without parsing its study; once every done study has been met, the rest of the
    input passes straight through.

    Args:
        items: the input, as ``Inputs`` yields it.
        done: ids already in the output, with their counts; decremented as they are met.
        skipped: counts the ids left out.
    """
    remaining = sum(done.values())
    for item in items:
        if not remaining:
            yield item
            continue
        for one, key in _with_ids(item):
            if key is not None and done[key] > 0:
                done[key] -= 1
                skipped[key] += 1
                remaining -= 1
            else:
                yield one


def _with_ids(item: Item) -> list[tuple[Item, str | None]]:
    """The item with its study id; a JSON line whose id cannot be peeked is parsed into its records."""
    if isinstance(item, JsonLine):
        nct = item.peek_id()
        if nct is not None:
            return [(item, nct)]
        return [(one, one.id if isinstance(one, Study) else None) for one in item.parse()]
    return [(item, item.id if isinstance(item, Study) else None)]


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_workers() -> int:
    """Worker processes to use by default: one per core this process may run on.

    Measured on a 2-core machine (``benchmarks/annotate_speed.py``): 2 workers beat 1 by about 1.7x; the
    reading process needs little CPU because workers parse the records.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker_init(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the reading process handles it (committing what it has) and
    # shuts the workers down; a worker dying of it mid-chunk would only turn that into a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A reading process killed outright (SIGKILL, the OOM killer) cannot shut its pool down, and forked
    # workers hold the pool's pipes open themselves, so they would wait for work forever: ask the kernel to
    # end each worker with its parent.
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: workers outlive a killed parent
            pass
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


_PR_SET_PDEATHSIG: Final = 1


def _context() -> Any:
    # fork starts a worker in milliseconds with spaCy already imported; spawn (elsewhere) re-imports it.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else "spawn")


class WorkerDied(TrialsiftError):
    """A worker process died (killed, out of memory) in the middle of a run."""


def _worker_loop(conn: Connection, encode: Encode, parent: int) -> None:
    """A worker: take a chunk, send back its Chunk, until told to stop (None) or the pipe closes."""
    _worker_init(parent)
    try:
        while (chunk := conn.recv()) is not None:
            conn.send(process_chunk(chunk, encode))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        conn.close()


#: Chunks queued per worker: the next ones wait in the pipe, so a worker never idles while the reading
#: process is busy reading or writing. With one chunk at a time, 2 workers ran 1.3x faster than 1; with
#: 2 queued 1.6-1.9x, with 3 about 2x (11.6k corpus studies: 216, 252-297 and 328 studies/s).
_DEPTH: Final = 3


class _Pool:
    """Worker processes, each with its own pipe and a feeder thread that sends it chunks.

    Not ``ProcessPoolExecutor``: when one of its workers is killed with chunks queued in its shared pipe,
    its shutdown deadlocks (CPython 3.11), and a bulk run would hang instead of stopping. Here each worker
    has its own pipe; sends happen on a feeder thread, so the reading process never blocks on a busy worker
    and keeps taking results; a dead worker is seen at once through its process sentinel.
    """

    def __init__(self, workers: int, encode: Encode) -> None:
        context = _context()
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        self.inboxes: list[queue.SimpleQueue[list[Item] | None]] = []
        self.feeders: list[threading.Thread] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            proc = context.Process(target=_worker_loop, args=(theirs, encode, os.getpid()), daemon=True)
            proc.start()
            theirs.close()  # so later workers do not inherit it
            inbox: queue.SimpleQueue[list[Item] | None] = queue.SimpleQueue()
            feeder = threading.Thread(target=_feed, args=(inbox, ours), daemon=True)
            feeder.start()
            self.conns.append(ours)
            self.procs.append(proc)
            self.inboxes.append(inbox)
            self.feeders.append(feeder)

    def send(self, w: int, chunk: list[Item]) -> None:
        """Queue a chunk for worker ``w``."""
        self.inboxes[w].put(chunk)

    def _died(self, w: int) -> WorkerDied:
        proc = self.procs[w]
        proc.join(timeout=1)
        return WorkerDied(f"worker process {proc.pid} died (exit code {proc.exitcode})")

    def results(self, busy: Iterable[int]) -> list[tuple[int, Chunk]]:
        """Wait for results from busy workers: (worker, its next Chunk) for each one ready.

        Raises:
            WorkerDied: a busy worker died before sending its result.
        """
        busy = list(busy)
        ready = set(wait([self.conns[w] for w in busy] + [self.procs[w].sentinel for w in busy]))
        out = []
        for w in busy:
            if self.conns[w] in ready or self.procs[w].sentinel in ready:
                try:
                    out.append((w, self.conns[w].recv()))
                except (EOFError, OSError) as err:
                    raise self._died(w) from err
        return out

    def close(self, busy: Iterable[int]) -> None:
        """Stop the workers: idle ones are told to, busy ones (a run stopped early) are killed."""
        for w in busy:
            self.procs[w].kill()
        for inbox in self.inboxes:
            inbox.put(None)
        for feeder in self.feeders:
            feeder.join(timeout=10)
        for conn, proc in zip(self.conns, self.procs, strict=True):
            proc.join(timeout=10)
            if proc.is_alive():  # pragma: no cover - a worker that ignores its stop message
                proc.kill()
                proc.join()
            conn.close()


def _feed(inbox: queue.SimpleQueue[list[Item] | None], conn: Connection) -> None:
    """Send a worker its chunks, then its stop message (None); a dead worker just ends the thread."""
    while True:
        chunk = inbox.get()
        try:
            conn.send(chunk)
        except OSError:  # the worker is gone; the reading process learns it from the sentinel
            return
        if chunk is None:
            return


def run_chunks(
    items: Iterable[Item], *, workers: int = 1, encode: Encode = _as_dict, chunk_size: int = CHUNK_SIZE
) -> Iterator[Chunk]:
    """Annotate records chunk by chunk, in input order, on ``workers`` processes.

    Args:
        items: studies, unreadable-record errors and unparsed JSON lines, as ``Inputs`` yields them.
        workers: processes to extract on; 1 extracts in this process.
        encode: shapes each study's result (runs in the worker).
        chunk_size: records per chunk.

    Yields:
        One Chunk per ``chunk_size`` input records, in input order.

    Raises:
        WorkerDied: a worker process died; the chunks yielded so far are complete.
    """
    chunks = _chunks(items, chunk_size)
    if workers <= 1:
        for chunk in chunks:
            yield process_chunk(chunk, encode)
        return
    pool = _Pool(workers, encode)
    queued: dict[int, deque[int]] = {w: deque() for w in range(workers)}  # worker -> its chunks, in order
    done: dict[int, Chunk] = {}  # results that came back ahead of their turn
    sent = next_out = 0
    exhausted = False
    try:
        while True:
            # Keep _DEPTH chunks queued per worker, but never more than 4 per worker ahead of the output, so
            # a slow chunk cannot make finished ones pile up in memory behind it.
            for w in range(workers):
                while not exhausted and len(queued[w]) < _DEPTH and sent - next_out < 4 * workers:
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        exhausted = True
                        break
                    pool.send(w, chunk)
                    queued[w].append(sent)
                    sent += 1
            busy = [w for w in range(workers) if queued[w]]
            if not busy:
                return
            for w, result in pool.results(busy):
                done[queued[w].popleft()] = result
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
    finally:
        pool.close(w for w in range(workers) if queued[w])


def _records(records: Iterable[Any]) -> Iterator[Item]:
    for i, record in enumerate(records, start=1):
        if isinstance(record, Study | RecordError | JsonLine):
            yield record
        elif isinstance(record, Mapping):
            try:
                yield read_record(dict(record), source=f"<record {i}>")
            except RecordError as err:
                yield err
        else:
            yield RecordError(
                f"<record {i}>",
                None,
                f"expected an API v2 study dict or a Study, found {type(record).__name__}",
            )


class Annotation(Iterator[dict[str, Any]]):
    """The iterator :func:`annotate` returns: one spec dict per study, in input order.

    ``errors`` lists the records that could not be read (or extracted) so far, in input order; a warning
    says how many when the iteration ends with some. Used as a context manager (``with annotate(...) as
    run:``), it shuts its worker processes down on leaving the block, even when the loop stops early.
    """

    def __init__(self, chunks: Iterator[Chunk]) -> None:
        self._chunks = chunks
        self._ready: deque[dict[str, Any]] = deque()
        self.errors: list[RecordError] = []
        self.stats: Counter[str] = Counter()
        self._warned = False

    def __next__(self) -> dict[str, Any]:
        while not self._ready:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                if self.errors and not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"{len(self.errors)} record(s) could not be read; see .errors"
                        f" (first: {self.errors[0]})",
                        stacklevel=2,
                    )
                raise
            self.stats.update(chunk.stats)
            for item in chunk.items:
                if isinstance(item, RecordError):
                    self.errors.append(item)
                else:
                    self._ready.append(item.value)
        return self._ready.popleft()

    def __enter__(self) -> Annotation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop early: shut the worker processes down and drop results not yet handed out."""
        self._ready.clear()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def annotate(
    records: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Iterable[Any],
    *,
    workers: int | None = 1,
    chunk_size: int = CHUNK_SIZE,
) -> Annotation:
    """Annotate studies lazily, in input order, on ``workers`` processes.

    Args:
        records: input files, directories, glob patterns or ``-`` (a path, or a list of them: any format
            ``trialsift annotate`` reads), or an iterable of API v2 study dicts or ``Study`` objects.
        workers: worker processes; ``None`` for one per core; 1 runs in this process.
        chunk_size: records per chunk sent to a worker.

    Returns:
        An :class:`Annotation`: iterate it for the spec's JSON of each study; its ``errors`` lists every
        record that could not be read. Nothing is read before the first ``next()``.
    """
    n = default_workers() if workers is None else workers
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    items: Iterable[Item]
    if isinstance(records, str | os.PathLike):
        items = Inputs([os.fspath(records)], defer=n > 1)
    elif (
        isinstance(records, list | tuple)
        and records
        and all(isinstance(r, str | os.PathLike) for r in records)
    ):
        items = Inputs([os.fspath(r) for r in records], defer=n > 1)
    else:
        items = _records(records)
    return Annotation(run_chunks(items, workers=n, chunk_size=chunk_size))
