"""Where ``trialsift annotate`` writes: JSON Lines, or CSV or Parquet tables, safely and resumably.

A run writes into a work directory beside its output (``.OUT.partial/`` for a file, ``DIR/.partial/`` for
tables) and moves the finished files into place only at the end, so a reader never sees a half-written
output. After each chunk of studies it commits: the data files are flushed and ``state.json`` (replaced
atomically) records their lengths. A killed run therefore leaves whole, committed chunks plus perhaps a torn
tail after the last commit; ``--resume`` cuts each file back to its committed length, reads which studies are
already there, and carries on. Parquet cannot be appended to, so it is written as complete part files (each
one commit), merged into one file per table at the end in fixed-size row groups: the bytes depend only on
the rows, never on where a run was interrupted.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

from nlp.bulk import Annotated, Chunk
from nlp.errors import RecordError, TrialsiftError
from nlp.tables import COLUMNS, TABLES, Row, arrow_schema, csv_cell

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: Final[tuple[Format, ...]] = ("jsonl", "csv", "parquet")
STATE_VERSION: Final = 1
#: Studies per Parquet part file (one commit); a killed run redoes at most this many.
PART_STUDIES: Final = 2000
#: Rows per row group of the merged Parquet files.
ROW_GROUP_ROWS: Final = 65536

_ID_PREFIX: Final = re.compile(r'^\{"id": ("(?:[^"\\]|\\.)*")')


def error_key(error: RecordError) -> tuple[str, int | None, str]:
    """What makes an error the same one when a resumed run meets it again."""
    return (error.source, error.line, error.reason)


def error_lines(errors: list[RecordError]) -> str:
    """Errors as lines of an errors file."""
    return "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in errors)


class OutputError(TrialsiftError):
    """The output cannot be written or resumed; the message says which file and what to do."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a run's files go: the final paths and the work directory they are written in first."""

    format: Format
    final: dict[str, Path]  # role ("data" or a table name, and "errors") -> final path
    work: Path

    def working(self, role: str) -> Path:
        """The file a role is written to during the run."""
        return self.work / role


def layout(output: str, fmt: Format, errors: str | None) -> Layout:
    """The files a run writes, from ``-o`` and ``--format``.

    JSON Lines go to the file ``output`` (errors beside it, ``OUT.errors.jsonl``); tables go into the
    directory ``output`` as ``studies``, ``outcomes`` and ``dose_groups`` files plus ``errors.jsonl``.
    """
    out = Path(output)
    if fmt == "jsonl":
        error_path = Path(errors) if errors else out.with_name(out.name + ".errors.jsonl")
        return Layout(fmt, {"data": out, "errors": error_path}, out.with_name(f".{out.name}.partial"))
    final = {table: out / f"{table}.{fmt}" for table in TABLES}
    final["errors"] = Path(errors) if errors else out / "errors.jsonl"
    return Layout(fmt, final, out / ".partial")


class Sink:
    """Writes a run's chunks and commits them; base of the three formats.

    Args:
        where: the run's files.
        resume: continue the run found there (interrupted, or finished) instead of starting afresh.
        commit_every: studies between commits; 1 commits after every chunk.
    """

    def __init__(self, where: Layout, *, resume: bool, commit_every: int = 1) -> None:
        self.where = where
        self.commit_every = commit_every
        self._uncommitted = 0
        self._writing = False
        self.done: Counter[str] = Counter()  # ids already written, with their counts
        self.seen_errors: set[tuple[str, int | None, str]] = set()
        self.discarded_partial = False
        self._files: dict[str, IO[str]] = {}
        self._prepare(resume)

    @property
    def errors_path(self) -> Path:
        """Where the errors file ends up."""
        return self.where.final["errors"]

    # -- setting up -------------------------------------------------------------------------------
    def _prepare(self, resume: bool) -> None:
        work = self.where.work
        state_path = work / "state.json"
        if not resume and work.exists():
            shutil.rmtree(work)
            self.discarded_partial = True
        if resume and state_path.exists():
            self._restore(self._read_state(state_path))
        elif resume and all(p.exists() for r, p in self.where.final.items() if r != "errors"):
            self.where.final["errors"].parent.mkdir(parents=True, exist_ok=True)
            self.where.final["errors"].touch()
            self._adopt_finished()
        elif resume and any(p.exists() for r, p in self.where.final.items() if r != "errors"):
            missing = [str(p) for r, p in self.where.final.items() if r != "errors" and not p.exists()]
            raise OutputError(
                f"cannot resume: {', '.join(missing)} missing beside the other output files; "
                "run without --resume to start over"
            )
        else:
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            self._start()
        self._load_done()
        for error in self._read_errors():
            self.seen_errors.add(error)
        self._open_for_append()

    def _read_state(self, path: Path) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise OutputError(f"cannot resume: {path} is unreadable ({err}); run without --resume") from err
        if state.get("version") != STATE_VERSION or state.get("format") != self.where.format:
            raise OutputError(
                f"cannot resume: {path} was written by a {state.get('format')} run (state version "
                f"{state.get('version')}); give the same --format, or run without --resume"
            )
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        """Cut every file back to its last committed length."""
        for role, length in state["files"].items():
            path = self.where.working(role)
            if not path.exists() or path.stat().st_size < length:
                raise OutputError(
                    f"cannot resume: {path} is shorter than its last commit; run without --resume"
                )
            with open(path, "r+b") as handle:
                handle.truncate(length)

    def _adopt_finished(self) -> None:
        """Move a finished run's files back into a work directory, to extend them."""
        self.where.work.mkdir(parents=True, exist_ok=True)
        for role, path in self.where.final.items():
            os.replace(path, self.where.working(role))
        self._commit()

    def _start(self) -> None:
        """Create the empty working files (with headers, for CSV) and the first commit."""
        self.where.working("errors").touch()
        self._commit()

    def _read_errors(self) -> Iterator[tuple[str, int | None, str]]:
        with open(self.where.working("errors"), encoding="utf-8") as handle:
            for line in handle:
                e = json.loads(line)
                yield error_key(RecordError(e["source"], e["line"], e["reason"]))

    def _load_done(self) -> None:
        raise NotImplementedError

    def _open_for_append(self) -> None:
        self._files["errors"] = open(self.where.working("errors"), "a", encoding="utf-8")  # noqa: SIM115

    # -- writing ----------------------------------------------------------------------------------
    def write(self, chunk: Chunk) -> list[RecordError]:
        """Write a chunk's studies and new errors, then commit. Returns the errors not seen before."""
        self._writing = True
        new_errors = []
        studies: list[Annotated] = []
        for item in chunk.items:
            if isinstance(item, RecordError):
                if error_key(item) not in self.seen_errors:
                    self.seen_errors.add(error_key(item))
                    new_errors.append(item)
            else:
                studies.append(item)
        self._write_studies(studies)
        self._files["errors"].write(error_lines(new_errors))
        self._uncommitted += len(studies)
        if self._uncommitted >= self.commit_every:
            self._flush_commit()
        self._writing = False
        return new_errors

    def _write_studies(self, studies: list[Annotated]) -> None:
        raise NotImplementedError

    def _flush_commit(self) -> None:
        for handle in self._files.values():
            handle.flush()
        self._commit()
        self._uncommitted = 0

    def _state(self) -> dict[str, Any]:
        files = {}
        for role in self.where.final:
            path = self.where.working(role)
            if path.exists():
                files[role] = path.stat().st_size
        return {"version": STATE_VERSION, "format": self.where.format, "files": files}

    def _commit(self) -> None:
        state = self.where.work / "state.json"
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state(), sort_keys=True), encoding="utf-8")
        os.replace(tmp, state)

    def close(self) -> None:
        """Flush and commit the chunks written (an interrupted run: the work directory stays, to resume).

        A chunk interrupted halfway through its writing is not committed: ``--resume`` cuts it off.
        """
        if self._files and not self._writing:
            self._flush_commit()
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def finish(self) -> None:
        """Close, then move the finished files into place and remove the work directory."""
        self.close()
        self._finalize()
        for role, path in self.where.final.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.where.working(role), path)
        shutil.rmtree(self.where.work)

    def _finalize(self) -> None:
        """Last step before the files move into place (Parquet merges its parts here)."""


class JsonlSink(Sink):
    """One JSON object per line, in input order: the spec's shape, as the HTTP API returns it."""

    def _start(self) -> None:
        self.where.working("data").touch()
        super()._start()

    def _load_done(self) -> None:
        with open(self.where.working("data"), encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                match = _ID_PREFIX.match(line)
                if match is None:
                    raise OutputError(
                        f"cannot resume: {self.where.working('data')}:{number} is not a trialsift record"
                    )
                self.done[json.loads(match.group(1))] += 1

    def _open_for_append(self) -> None:
        super()._open_for_append()
        self._files["data"] = open(self.where.working("data"), "a", encoding="utf-8")  # noqa: SIM115

    def _write_studies(self, studies: list[Annotated]) -> None:
        self._files["data"].write("".join(s.value + "\n" for s in studies))


class CsvSink(Sink):
    """Three CSV tables (RFC 4180, UTF-8, ``\\n`` line ends), header first; ``|`` joins list cells."""

    def _start(self) -> None:
        for table in TABLES:
            with open(self.where.working(table), "w", encoding="utf-8", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerow([c.name for c in COLUMNS[table]])
        super()._start()

    def _load_done(self) -> None:
        path = self.where.working("studies")
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != [c.name for c in COLUMNS["studies"]]:
                raise OutputError(f"cannot resume: {path} does not start with the studies header")
            for row in reader:
                self.done[row[0]] += 1

    def _open_for_append(self) -> None:
        super()._open_for_append()
        for table in TABLES:
            self._files[table] = open(self.where.working(table), "a", encoding="utf-8", newline="")  # noqa: SIM115

    def _write_studies(self, studies: list[Annotated]) -> None:
        # Studies are written last: a study's row is the sign that its outcome and dose rows are complete.
        for table in ("outcomes", "dose_groups", "studies"):
            kinds = [c.kind for c in COLUMNS[table]]
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for study in studies:
                for row in study.value[table]:
                    writer.writerow([csv_cell(v, k) for v, k in zip(row, kinds, strict=True)])
            self._files[table].write(buffer.getvalue())


class ParquetSink(Sink):
    """Three Parquet tables, typed (lists as Parquet lists), written as parts and merged at the end."""

    def __init__(self, where: Layout, *, resume: bool, commit_every: int = PART_STUDIES) -> None:
        self._buffer: dict[str, list[Row]] = {t: [] for t in TABLES}
        self._parts = 0
        super().__init__(where, resume=resume, commit_every=commit_every)

    def _part(self, table: str, number: int) -> Path:
        return self.where.work / f"{table}-{number:06d}.parquet"

    def _state(self) -> dict[str, Any]:
        state = super()._state()
        state["parts"] = self._parts
        for table in TABLES:
            state["files"].pop(table, None)
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self._parts = int(state["parts"])
        for path in self.where.work.glob("*-*.parquet"):
            if int(path.stem.rsplit("-", 1)[1]) >= self._parts:
                path.unlink()  # a part written after the last commit

    def _adopt_finished(self) -> None:
        self.where.work.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            os.replace(self.where.final[table], self._part(table, 0))
        os.replace(self.where.final["errors"], self.where.working("errors"))
        self._parts = 1
        self._commit()

    def _load_done(self) -> None:
        import pyarrow.parquet as pq

        for number in range(self._parts):
            path = self._part("studies", number)
            try:
                ids = pq.read_table(path, columns=["study_id"]).column(0).to_pylist()
            except (OSError, ValueError) as err:
                raise OutputError(
                    f"cannot resume: {path} is unreadable ({err}); run without --resume"
                ) from err
            self.done.update(ids)

    def _write_studies(self, studies: list[Annotated]) -> None:
        # Buffered until the commit: a commit is one part file. The errors written meanwhile stay
        # uncommitted with their chunks, so a resumed run redoes those chunks and writes them again.
        for study in studies:
            for table in TABLES:
                self._buffer[table].extend(study.value[table])

    def _flush_commit(self) -> None:
        if self._buffer["studies"]:  # every study has its row there
            self._write_part()
        super()._flush_commit()

    def _write_part(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for table in TABLES:
            schema = arrow_schema(table)
            columns = list(zip(*self._buffer[table], strict=True)) if self._buffer[table] else None
            arrays = [
                pa.array(list(columns[i]) if columns else [], type=schema.field(i).type)
                for i in range(len(schema))
            ]
            pq.write_table(pa.Table.from_arrays(arrays, schema=schema), self._part(table, self._parts))
            self._buffer[table] = []
        self._parts += 1

    def _finalize(self) -> None:
        for table in TABLES:
            merge_parts([self._part(table, n) for n in range(self._parts)], self.where.working(table), table)


def merge_parts(parts: list[Path], out: Path, table: str) -> None:
    """Concatenate Parquet parts into one file, in fixed-size row groups, streaming part by part.

    Row groups of exactly ``ROW_GROUP_ROWS`` rows (the last one shorter) make the file's bytes depend on
    its rows alone, not on how the rows were split into parts.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    pending: list[Any] = []
    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=ROW_GROUP_ROWS):
                pending.append(batch)
                rows += batch.num_rows
                while rows >= ROW_GROUP_ROWS:
                    whole = pa.Table.from_batches(pending, schema=schema)
                    writer.write_table(whole.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                    rest = whole.slice(ROW_GROUP_ROWS)
                    pending, rows = rest.to_batches(), rest.num_rows
        if rows or not parts:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=ROW_GROUP_ROWS)
    for part in parts:
        part.unlink()


class StdoutSink:
    """JSON Lines to standard output (nothing to resume); errors to ``errors`` if given, else only counted."""

    def __init__(self, errors: str | None) -> None:
        self.done: Counter[str] = Counter()
        self.seen_errors: set[tuple[str, int | None, str]] = set()
        self.errors_path: Path | None = Path(errors) if errors else None
        self._errors: IO[str] | None = None
        if self.errors_path is not None:
            self._errors = open(self.errors_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, chunk: Chunk) -> list[RecordError]:
        """Write a chunk's studies; returns its errors."""
        errors = [item for item in chunk.items if isinstance(item, RecordError)]
        sys.stdout.write("".join(item.value + "\n" for item in chunk.items if isinstance(item, Annotated)))
        sys.stdout.flush()
        if self._errors is not None:
            self._errors.write(error_lines(errors))
        self.seen_errors.update(map(error_key, errors))
        return errors

    def close(self) -> None:
        """Close the errors file."""
        if self._errors is not None:
            self._errors.close()
            self._errors = None

    finish = close


def open_sink(
    output: str, fmt: Format, *, errors: str | None, resume: bool, commit_every: int | None = None
) -> Sink | StdoutSink:
    """The sink for ``-o OUTPUT --format FMT``.

    Args:
        output: the output file (jsonl; ``-`` for standard output) or directory (tables).
        fmt: jsonl, csv or parquet.
        errors: the errors file, if not the default beside the output.
        resume: continue the run found at ``output``.
        commit_every: studies between commits (default: each chunk; Parquet: ``PART_STUDIES``).
    """
    if output == "-":
        return StdoutSink(errors)
    kind: type[Sink] = {"jsonl": JsonlSink, "csv": CsvSink, "parquet": ParquetSink}[fmt]
    every = commit_every or (PART_STUDIES if fmt == "parquet" else 1)
    return kind(layout(output, fmt, errors), resume=resume, commit_every=every)
