"""``trialsift index build --backend ray``: extraction and embedding on a Ray cluster, then a shard build.

The cluster reads the inputs as the annotation backend does (:mod:`nlp.ray_backend`); an actor pool, each
actor holding the spaCy pipeline and the encoder once, extracts and embeds the studies and writes embedding
shards (:func:`index.scale.shard_table`) into ``OUT/.shards/``. The index is then built from the shards by
:func:`index.scale.build_from_shards`, with one Ray task per shard adding its vectors to the trained index.
"""

from __future__ import annotations

import json
import pickle
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from index.store import IndexKind
from nlp.errors import RecordError, TrialsiftError
from nlp.ingest.sources import Source, expand
from nlp.ray_backend import ShardSink, import_ray, in_input_order, records_of_row, run_pipeline

#: Embedding costs 16x the extraction per study: blocks of about 40 records (not the annotation's 300) keep
#: every actor busy on inputs of a few hundred studies, and their scheduling overhead is still negligible.
EMBED_BLOCK_BYTES: Final = 1 << 20
EMBED_BATCH: Final = 32


def _entry(study: Any, result: dict[str, Any]) -> Any:
    from index.documents import make_entry

    return make_entry(study, result)


class Embedder:
    """A Ray Data actor: extracts and embeds batches of records into embedding-shard rows.

    Output rows as :class:`nlp.ray_backend.Annotator`'s: ``kind`` (``study`` or ``error``), ``id`` and
    ``payload`` (the pickled shard row, or the error's JSON).
    """

    def __init__(self) -> None:
        from index.encoder import SentenceTransformerEncoder
        from index.trial_index import TrialIndex
        from nlp.pipeline import default_extractor

        default_extractor()
        # One thread: the actor holds one CPU, and the pool has one actor per CPU.
        self.index = TrialIndex(SentenceTransformerEncoder(threads=1))

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        """Embed one batch (a ``pyarrow.Table`` of read-stage rows)."""
        from index.scale import shard_rows
        from nlp.bulk import Annotated, process_chunk

        records: list[Any] = []
        order: list[tuple[int, int, int]] = []
        for row in batch.to_pylist():
            for sub, record in enumerate(records_of_row(row)):
                records.append(record)
                order.append((int(row["source_no"]), int(row["seq"]), sub))
        chunk = process_chunk(records, _entry)  # one item per record, in order
        kinds: list[str] = []
        ids: list[str | None] = []
        payloads: list[bytes] = []
        studies = [
            (o, item.value) for o, item in zip(order, chunk.items, strict=True) if isinstance(item, Annotated)
        ]
        encoded = self.index.encode_studies([entry for _, entry in studies])
        columns = shard_rows([o for o, _ in studies], encoded)
        for i, (_, entry) in enumerate(studies):
            kinds.append("study")
            ids.append(entry.id)
            payloads.append(pickle.dumps({key: values[i] for key, values in columns.items()}))
        for item in chunk.items:
            if isinstance(item, RecordError):
                kinds.append("error")
                ids.append(item.id)
                payloads.append(json.dumps(item.to_json()).encode())
        return {"kind": kinds, "id": ids, "payload": payloads}


@dataclass(slots=True)
class RayBuild:
    """What a Ray index build did."""

    meta: dict[str, Any] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)
    shards: int = 0
    embed_seconds: float = 0.0
    index_seconds: float = 0.0
    cpus: int = 0


def _ray_map(fn: Callable[[int], int], shards: Sequence[int]) -> list[int]:
    """Run ``fn(shard)`` as one Ray task per shard (``fn`` shipped once through the object store)."""
    ray = import_ray()
    shared = ray.put(fn)

    @ray.remote(num_cpus=1)  # type: ignore[untyped-decorator]
    def run(f: Callable[[int], int], shard: int) -> int:
        return f(shard)

    result: list[int] = ray.get([run.remote(shared, s) for s in shards])
    return result


def build_on_ray(
    specs: Sequence[str],
    out: Path,
    *,
    kind: IndexKind = IndexKind.IVF_HNSW,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    keep_shards: bool = False,
    log: Callable[[str], None] | None = None,
) -> RayBuild:
    """Extract and embed the inputs on Ray, then build a memory-mapped IVF index in ``out``.

    Args:
        specs: input specs (files, directories, globs, URIs).
        out: a new index directory (on storage every node can write, for a real cluster).
        kind: ``ivf-pq`` or ``ivf-hnsw`` (stores under 1,000 vectors stay exact).
        address: the cluster to join; ``None`` starts Ray on this machine.
        workers: embedding actors (default: one per CPU).
        progress: Ray Data's progress bars.
        keep_shards: keep the embedding shards in ``out/.shards`` (to rebuild with another kind).
        log: called with a line per step.
    """
    from index.encoder import SentenceTransformerEncoder
    from index.files import META, IndexFileError
    from index.scale import build_from_shards

    if (out / META).exists():
        raise IndexFileError(
            f"{out}: an index is already there; the Ray backend builds a new index directory"
        )
    started = time.perf_counter()
    entries = expand(specs)
    sources = [e for e in entries if isinstance(e, Source)]
    report = RayBuild(errors=[e for e in entries if isinstance(e, RecordError)])
    shards_dir = out / ".shards"
    shutil.rmtree(shards_dir, ignore_errors=True)
    shards_dir.mkdir(parents=True)
    sink = ShardSink(shards_dir, "shards")
    if sources:
        report.cpus = run_pipeline(
            sources,
            Embedder,
            {},
            sink,
            address=address,
            workers=workers,
            progress=progress,
            batch_size=EMBED_BATCH,
            block_bytes=EMBED_BLOCK_BYTES,
        )
    for result in sink.results:
        report.errors.extend(RecordError.from_json(e) for e in result.errors)
    report.errors = in_input_order(report.errors, entries)
    shards = sorted(shards_dir.glob("part-*.parquet"))
    report.shards = len(shards)
    report.embed_seconds = time.perf_counter() - started
    if not shards:
        raise TrialsiftError("no study could be read from the inputs; nothing to index")
    encoder = SentenceTransformerEncoder()
    model = {"id": encoder.model_id, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension}
    report.meta = build_from_shards(
        shards,
        out,
        model,
        kind=kind,
        map_shards=_ray_map,
        extra_meta={"ray": {"cpus": report.cpus, "embed_seconds": round(report.embed_seconds, 2)}},
        log=log,
    )
    report.index_seconds = time.perf_counter() - started - report.embed_seconds
    if not keep_shards:
        shutil.rmtree(shards_dir)
    return report
