"""Building an index from study records: read, extract, embed, add, checkpoint.

The build is resumable: it saves the index every ``checkpoint_every`` studies (each save atomic), and a
build pointed at an existing index directory skips the studies already in it. Annotation output from
``trialsift annotate`` can be given alongside the records, so a build does not extract again.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from index.documents import StudyEntry, make_entry
from index.encoder import Encoder
from index.files import META, IndexFileError
from index.store import IndexKind
from index.trial_index import TrialIndex
from nlp.errors import RecordError
from nlp.study import Study


@dataclass(slots=True)
class BuildReport:
    """What a build did."""

    added: int = 0
    skipped: int = 0  # already in the index (resume)
    errors: list[RecordError] = field(default_factory=list)
    seconds: float = 0.0
    encode_seconds: float = 0.0
    texts: int = 0


def read_annotations(path: Path) -> dict[str, dict[str, Any]]:
    """``trialsift annotate`` output by study id; a line that is not an annotation is an error naming it."""
    out: dict[str, dict[str, Any]] = {}
    opener = _open_text(path)
    with opener as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(str(path), lineno, f"not JSON ({err.msg})") from None
            if not isinstance(obj, dict) or "id" not in obj or "outcomes" not in obj or "design" not in obj:
                raise RecordError(
                    str(path), lineno, "not a `trialsift annotate` record (needs id, outcomes, design)"
                )
            out[str(obj["id"])] = obj
    return out


def _open_text(path: Path) -> IO[str]:
    import gzip

    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


class Progress:
    """Studies/s and ETA on stderr: a live line on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, total: int | None, stream: IO[str] | None = None, every: float = 5.0) -> None:
        self.total, self.stream, self.every = total, stream or sys.stderr, every
        self.done = 0
        self.started = time.perf_counter()
        self._last = 0.0
        self._tty = self.stream.isatty()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= (0.2 if self._tty else self.every):
            self._last = now
            self._print(final=False)

    def close(self) -> None:
        self._print(final=True)

    def _print(self, final: bool) -> None:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"indexed {self.done:,}"
        if self.total:
            text += f"/{self.total:,} studies ({100 * self.done / self.total:.0f}%)"
            if rate and not final:
                text += f", ETA {max(0.0, (self.total - self.done) / rate):.0f} s"
        else:
            text += " studies"
        text += f", {rate:,.1f} studies/s"
        if self._tty:
            self.stream.write("\r" + text.ljust(78) + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def build_index(
    items: Iterable[Study | RecordError],
    out: Path,
    encoder: Encoder,
    *,
    kind: IndexKind = IndexKind.AUTO,
    annotations: dict[str, dict[str, Any]] | None = None,
    resume: bool = True,
    batch_size: int = 256,
    checkpoint_every: int = 2_000,
    limit: int | None = None,
    progress: Progress | None = None,
    on_error: Callable[[RecordError], None] | None = None,
) -> tuple[TrialIndex, BuildReport]:
    """Index every readable study of ``items`` into ``out`` and save it; unreadable records are reported.

    Args:
        items: studies (and unreadable-record errors) as the ingest readers yield them.
        out: index directory; an existing index there is extended (``resume``) or refused.
        encoder: the embedding model.
        kind: FAISS index kind for a new index.
        annotations: extraction output by study id; studies without one are extracted here.
        resume: keep and extend an index already in ``out``, skipping studies it holds.
        batch_size: studies embedded together.
        checkpoint_every: save after about this many new studies (a killed build resumes from there).
        limit: read at most this many studies from ``items`` (indexed or already there).
        progress: reports studies/s and ETA.
        on_error: called with each unreadable record as it is met.
    """
    report = BuildReport()
    started = time.perf_counter()
    if (out / META).exists():
        if not resume:
            raise IndexFileError(
                f"{out}: an index is already there; remove it, or extend it (leave out --no-resume)"
            )
        index = TrialIndex.load(out, encoder)
    else:
        index = TrialIndex(encoder, kind)
    fresh = len(index) == 0
    extractor: Any = None
    since_save = 0
    for batch in _batches(_limited(items, limit), batch_size):
        studies: list[Study] = []
        skipped = 0
        for item in batch:
            if isinstance(item, RecordError):
                report.errors.append(item)
                if on_error:
                    on_error(item)
            elif item.id in index:
                skipped += 1
            else:
                studies.append(item)
        report.skipped += skipped
        if progress and skipped:
            progress.update(skipped)
        if not studies:
            continue
        if extractor is None and any(s.id not in (annotations or {}) for s in studies):
            from nlp.pipeline import Extractor

            extractor = Extractor()
        entries = list(_entries(studies, annotations or {}, extractor))
        t0 = time.perf_counter()
        index.add(entries)
        report.encode_seconds += time.perf_counter() - t0
        report.added += len(entries)
        since_save += len(entries)
        if progress:
            progress.update(len(entries))
        if since_save >= checkpoint_every:
            index.save(out)
            since_save = 0
    if since_save or fresh:
        index.optimise()
        index.save(out)
    report.seconds = time.perf_counter() - started
    return index, report


def _entries(
    studies: Sequence[Study], annotations: dict[str, dict[str, Any]], extractor: Any
) -> Iterator[StudyEntry]:
    need = [s for s in studies if s.id not in annotations]
    extracted = {s.id: e for s, e in zip(need, extractor.extract_studies(need), strict=True)}
    for study in studies:
        yield make_entry(study, annotations.get(study.id) or extracted[study.id])


def _limited(items: Iterable[Study | RecordError], limit: int | None) -> Iterator[Study | RecordError]:
    studies = 0
    for item in items:
        if isinstance(item, Study):
            if limit is not None and studies >= limit:
                return
            studies += 1
        yield item


def _batches(items: Iterable[Study | RecordError], size: int) -> Iterator[list[Study | RecordError]]:
    batch: list[Study | RecordError] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
