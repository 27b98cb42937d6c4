"""Bulk annotation on a Ray cluster (Ray Data): the local backend's records, written as shards.

The pipeline has three stages, each a Ray Data operator:

1. **read**: one task per input file splits it into records (:class:`~nlp.ingest.JsonLine`, unparsed), with
   the file and line of each, exactly as the local reader does; unreadable records become error rows.
2. **annotate**: ``map_batches`` over an actor pool; each actor builds the spaCy pipeline once and runs
   :func:`nlp.bulk.process_chunk` on its batches, the function the local workers run.
3. **write**: a :class:`ShardSink` writes each block of results as one shard (``part-NNNNN.jsonl`` or one
   Parquet file per table) under a temporary name and renames it into place, so a task that Ray retries
   after a worker died rewrites the same shard instead of adding a second copy. Errors and counts travel
   back to the driver with each write task's result, never through worker logs.

Ray restarts a killed actor and retries its batch, and a block reaches the sink only once its annotating
task has finished, so a worker killed mid-run loses nothing and duplicates nothing.

Ray is an optional dependency (``pip install 'trialsift[ray]'``); this module imports it only when called.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from nlp.errors import RecordError, TrialsiftError
from nlp.ingest import JsonLine
from nlp.ingest.sources import Source, expand, open_source

RAY_HINT: Final = "the Ray backend needs Ray: pip install 'trialsift[ray]'"
#: Records per annotate batch: the local backend's chunk size.
BATCH_RECORDS: Final = 64
#: Bytes per block (Ray Data's ``target_max_block_size``): after the read stage about 300 registry records,
#: the unit Ray hands to one actor. Ray's default (128 MiB) would put a whole input file in one block and give
#: it to one actor while the others idle; 2 MiB blocks ran 10% slower on the corpus (more tasks to schedule),
#: 16 MiB ones 15% slower (the last blocks kept one actor busy while the other waited).
BLOCK_BYTES: Final = 8 << 20
#: Studies per output shard (a write task gathers blocks until it has this many).
SHARD_STUDIES: Final = 2_000
#: Formats the Ray backend writes.
RAY_FORMATS: Final = ("jsonl", "parquet")
TABLES: Final = ("studies", "outcomes", "dose_groups")
MANIFEST: Final = "manifest.json"


class RayUnavailable(TrialsiftError):
    """Ray is not installed, or the cluster cannot be reached."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`RayUnavailable` naming the extra to install."""
    try:
        import ray
        import ray.data  # Ray Data is a separate part of the ray[data] extra
    except ImportError:
        raise RayUnavailable(RAY_HINT) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> dict[str, float]:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``), or start Ray
    on this machine with ``num_cpus`` (default: the cores this process may use); returns its resources.

    Every node must have trialsift installed (the same version): actors import it there.
    """
    ray = import_ray()
    # Ray Data logs every dataset's start and end at INFO; the CLI reports the run itself.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not ray.is_initialized():
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
        try:
            if address is None:
                from nlp.bulk import default_workers

                ray.init(num_cpus=num_cpus or default_workers(), include_dashboard=False, **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {err}") from None
    resources: dict[str, float] = ray.cluster_resources()
    return resources


def cluster_cpus() -> int:
    """Whole CPUs in the cluster Ray is connected to."""
    ray = import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# -- stage 1: read ----------------------------------------------------------------------------------------


def source_rows(sources: Sequence[Source]) -> list[dict[str, Any]]:
    """One row per input file for the read stage: its position in the input order, name and location."""
    # Absolute paths: a worker's current directory is not the driver's.
    return [
        {"source_no": i, "name": s.name, "location": s.uri or str(Path(s.location).resolve())}
        for i, s in enumerate(sources)
    ]


def _item_row(source_no: int, seq: int, item: JsonLine | RecordError | Any) -> dict[str, Any]:
    """One read-stage row; ``seq`` is the record's place in its file (``line`` is None for whole files)."""
    row: dict[str, Any] = {
        "source_no": source_no,
        "seq": seq,
        "name": "",
        "line": None,
        "text": "",
        "several": False,
        "error": None,
        "study": None,
    }
    if isinstance(item, JsonLine):
        row.update(name=item.source, line=item.line, text=item.text, several=item.several)
    elif isinstance(item, RecordError):
        row.update(name=item.source, line=item.line, error=json.dumps(item.to_json()))
    else:  # a record read whole (a page, a CSV export, a protocol text): shipped as its pickle
        row["study"] = pickle.dumps(item)
    return row


def read_source(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The records of one input file as rows (Ray Data ``flat_map``): JSON lines unparsed, others read."""
    location = str(row["location"])
    remote = "://" in location
    source = Source(str(row["name"]), None if remote else Path(location), None, location if remote else None)
    for seq, item in enumerate(open_source(source, defer=True)):
        yield _item_row(int(row["source_no"]), seq, item)


def records_of_row(row: dict[str, Any]) -> list[Any]:
    """A read-stage row as studies and errors (a JSON line may hold several studies)."""
    (item,) = _items([row])
    return item.parse() if isinstance(item, JsonLine) else [item]


def _items(rows: Iterable[dict[str, Any]]) -> list[Any]:
    """The read stage's rows as the local reader's items: JSON lines, read studies and errors."""
    items: list[Any] = []
    for row in rows:
        if row["error"] is not None:
            items.append(RecordError.from_json(json.loads(row["error"])))
        elif row["study"] is not None:
            items.append(pickle.loads(row["study"]))
        else:
            items.append(JsonLine(str(row["name"]), int(row["line"]), str(row["text"]), bool(row["several"])))
    return items


# -- stage 2: annotate ------------------------------------------------------------------------------------


class Annotator:
    """A Ray Data actor: builds the extractor once, then annotates batches of records.

    Output rows: ``kind`` (``study``, ``error`` or ``stats``, one per batch), ``id`` and ``payload`` (the
    JSON line, the pickled table rows, the error's JSON or the batch's counts).
    """

    def __init__(self, fmt: str) -> None:
        from nlp.pipeline import default_extractor

        self.fmt = fmt
        default_extractor()

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        """Annotate one batch (a ``pyarrow.Table`` of read-stage rows)."""
        from nlp.bulk import encode_json, process_chunk
        from nlp.tables import table_rows

        encode = encode_json if self.fmt == "jsonl" else table_rows
        chunk = process_chunk(_items(batch.to_pylist()), encode)
        kinds: list[str] = []
        ids: list[str | None] = []
        payloads: list[bytes] = []
        for item in chunk.items:
            if isinstance(item, RecordError):
                kinds.append("error")
                ids.append(item.id)
                payloads.append(json.dumps(item.to_json()).encode())
            else:
                kinds.append("study")
                ids.append(item.id)
                value = item.value
                payloads.append(value.encode() if isinstance(value, str) else pickle.dumps(value))
        kinds.append("stats")
        ids.append(None)
        payloads.append(json.dumps(dict(chunk.stats)).encode())
        return {"kind": kinds, "id": ids, "payload": payloads}


# -- stage 3: write ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ShardResult:
    """What one write task wrote and met."""

    shard: str
    studies: int
    errors: list[dict[str, Any]]
    stats: dict[str, int]


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    # A retried task writes the same name: the rename replaces the first attempt's file, never adds one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class ShardSink:
    """Writes each write task's blocks as one shard; built lazily as a Ray ``Datasink`` subclass."""

    def __init__(self, directory: Path, fmt: str, shard_studies: int = SHARD_STUDIES) -> None:
        self.directory = directory
        self.fmt = fmt
        self.shard_studies = shard_studies
        self.results: list[ShardResult] = []

    # Ray calls these three.
    def write(self, blocks: Iterable[Any], ctx: Any) -> ShardResult:
        studies: list[tuple[str, bytes]] = []
        errors: list[dict[str, Any]] = []
        stats: Counter[str] = Counter()
        for block in blocks:
            table = block if hasattr(block, "column") else None
            rows = table.to_pylist() if table is not None else block.to_dict("records")
            for row in rows:
                if row["kind"] == "study":
                    studies.append((row["id"], row["payload"]))
                elif row["kind"] == "error":
                    errors.append(json.loads(row["payload"]))
                else:
                    stats.update(json.loads(row["payload"]))
        shard = f"part-{ctx.task_idx:05d}"
        if studies:
            if self.fmt == "jsonl":
                self._write_jsonl(shard, [payload for _, payload in studies])
            elif self.fmt == "parquet":
                self._write_parquet(shard, [pickle.loads(payload) for _, payload in studies])
            else:
                self._write_embeddings(shard, [pickle.loads(payload) for _, payload in studies])
        return ShardResult(shard if studies else "", len(studies), errors, dict(stats))

    def on_write_complete(self, write_result: Any) -> None:
        self.results = list(write_result.write_returns)

    def _write_jsonl(self, shard: str, lines: list[bytes]) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                for line in lines:
                    fh.write(line + b"\n")

        _atomic_write(self.directory / f"{shard}.jsonl", write)

    def _write_parquet(self, shard: str, values: list[dict[str, list[Any]]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from nlp.tables import arrow_schema

        for table in TABLES:
            schema = arrow_schema(table)
            rows = [row for value in values for row in value[table]]
            columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(len(schema))]
            arrays = [pa.array(list(columns[i]), type=schema.field(i).type) for i in range(len(schema))]
            target = self.directory / table / f"{shard}.parquet"
            _atomic_write(
                target, functools.partial(pq.write_table, pa.Table.from_arrays(arrays, schema=schema))
            )

    def _write_embeddings(self, shard: str, rows: list[dict[str, Any]]) -> None:
        import pyarrow.parquet as pq

        from index.scale import shard_table

        columns = {key: [row[key] for row in rows] for key in rows[0]}
        _atomic_write(
            self.directory / f"{shard}.parquet", functools.partial(pq.write_table, shard_table(columns))
        )


def _datasink(sink: ShardSink) -> Any:
    """A Ray Data ``Datasink`` forwarding to ``sink`` (Ray's base class is only importable with Ray)."""
    from ray.data.datasource import Datasink

    class _Sink(Datasink):  # type: ignore[type-arg]
        def __init__(self) -> None:
            self.inner = sink

        def write(self, blocks: Iterable[Any], ctx: Any) -> ShardResult:
            return self.inner.write(blocks, ctx)

        def on_write_complete(self, write_result: Any) -> None:
            self.inner.on_write_complete(write_result)

        @property
        def min_rows_per_write(self) -> int:
            return self.inner.shard_studies

        def get_name(self) -> str:
            return "TrialsiftShards"

    return _Sink()


# -- the run ----------------------------------------------------------------------------------------------


def in_input_order(
    errors: Sequence[RecordError], entries: Sequence[Source | RecordError]
) -> list[RecordError]:
    """Errors sorted by input position (the order ``entries`` lists the inputs in), one per
    (source, line, reason), as the local sinks write them: a JSON array on one line whose items all fail
    the same way is one error."""
    order = {e.name if isinstance(e, Source) else e.source: i for i, e in enumerate(entries)}
    ranked = sorted(errors, key=lambda e: (order.get(e.source, len(order)), e.line or 0, e.id or ""))
    return list({(e.source, e.line, e.reason): e for e in reversed(ranked)}.values())[::-1]


def run_pipeline(
    sources: Sequence[Source],
    actor: type,
    actor_kwargs: dict[str, Any],
    sink: ShardSink,
    *,
    address: str | None,
    workers: int | None,
    progress: bool,
    batch_size: int = BATCH_RECORDS,
    block_bytes: int = BLOCK_BYTES,
) -> int:
    """Read ``sources``, run ``actor`` over the records on an actor pool, write with ``sink``; returns the
    cluster's CPUs. ``workers`` actors (default: one per CPU), each holding one CPU; ``block_bytes`` of
    input records make one actor's unit of work."""
    ray = import_ray()
    connect(address, workers)
    cpus = cluster_cpus()
    # An actor holds a whole CPU: more actors than CPUs would wait for ever for a slot.
    actors = min(workers or cpus, cpus)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.print_on_execution_start = False
    context.target_max_block_size = block_bytes
    dataset = (
        ray.data.from_items(source_rows(sources), override_num_blocks=len(sources))
        # Reading is I/O and line splitting: it takes no CPU slot from the actors.
        .flat_map(read_source, num_cpus=0)
        .map_batches(
            actor,
            fn_constructor_kwargs=actor_kwargs,
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            batch_format="pyarrow",
        )
    )
    dataset.write_datasink(_datasink(sink), ray_remote_args={"num_cpus": 0})
    return cpus


@dataclass(slots=True)
class RayRun:
    """What a Ray annotation run wrote: shards, studies, errors (in input order) and counts."""

    output: Path
    shards: list[dict[str, Any]] = field(default_factory=list)
    studies: int = 0
    errors: list[RecordError] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpus: int = 0


def annotate_on_ray(
    specs: Sequence[str],
    output: Path,
    *,
    fmt: str = "jsonl",
    address: str | None = None,
    workers: int | None = None,
    shard_studies: int = SHARD_STUDIES,
    progress: bool = False,
) -> RayRun:
    """Annotate the inputs on Ray and write sharded output to the directory ``output``.

    Args:
        specs: input specs, as for the local backend (files, directories, globs, URIs).
        output: a directory that must not exist yet; it appears whole at the end (written in
            ``output.partial/`` meanwhile).
        fmt: ``jsonl`` (``part-NNNNN.jsonl``) or ``parquet`` (``TABLE/part-NNNNN.parquet`` per table).
        address: the cluster to join; ``None`` starts Ray on this machine.
        workers: annotating actors (default: one per CPU of the cluster).
        shard_studies: studies per shard (the last shards of a run hold fewer).
        progress: show Ray Data's progress bars.
    """
    if fmt not in RAY_FORMATS:
        raise TrialsiftError(f"the Ray backend writes {' or '.join(RAY_FORMATS)}, not {fmt}")
    started = time.perf_counter()
    entries = expand(specs)
    sources = [e for e in entries if isinstance(e, Source)]
    run = RayRun(output, errors=[e for e in entries if isinstance(e, RecordError)])
    work = output.with_name(output.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if fmt == "parquet":
        for table in TABLES:
            (work / table).mkdir()
    sink = ShardSink(work, fmt, shard_studies)
    if sources:
        run.cpus = run_pipeline(
            sources, Annotator, {"fmt": fmt}, sink, address=address, workers=workers, progress=progress
        )
    for result in sink.results:
        run.studies += result.studies
        run.stats.update(result.stats)
        run.errors.extend(RecordError.from_json(e) for e in result.errors)
        if result.shard:
            run.shards.append({"name": result.shard, "studies": result.studies})
    run.errors = in_input_order(run.errors, entries)
    run.shards.sort(key=lambda s: str(s["name"]))
    with open(work / "errors.jsonl", "w", encoding="utf-8") as fh:
        for err in run.errors:
            fh.write(json.dumps(err.to_json(), ensure_ascii=False) + "\n")
    run.seconds = time.perf_counter() - started
    manifest = {
        "format": fmt,
        "studies": run.studies,
        "errors": len(run.errors),
        "shards": run.shards,
        "tables": list(TABLES) if fmt == "parquet" else None,
        "inputs": [e.name if isinstance(e, Source) else e.source for e in entries],
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(work, output)
    return run
