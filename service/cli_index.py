"""``trialsift index build``, ``trialsift search`` and ``trialsift similar``: argument handling and output.

The work is done by :mod:`index`; this module turns arguments into calls and hits into tables or JSON Lines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from nlp.errors import RecordError, TrialsiftError
from service.cli import read_inputs

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ALL_FAILED = 2


class UsageError(TrialsiftError):
    """Bad options (exit status 64)."""


def filters_from_args(args: argparse.Namespace) -> Any:
    from index.filters import FilterError, SearchFilters

    try:
        return SearchFilters.from_options(args)
    except FilterError as err:
        raise UsageError(str(err)) from None


def count_records(paths: Sequence[str]) -> int | None:
    """How many records the inputs hold, for the progress bar's ETA (None when it cannot be told cheaply)."""
    import gzip

    total = 0
    for name in paths:
        path = Path(name)
        if not path.is_file():
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as fh:
                head = fh.read(1)
                if head != b"{":
                    total += 1  # one record (a page, a CSV export or a text): the bar just shows progress
                    continue
                total += 1 + sum(1 for line in fh if line.strip().startswith(b"{"))
        except OSError:
            return None
    return total or None


def build(args: argparse.Namespace) -> int:
    from index.build import Progress, build_index, read_annotations
    from index.encoder import default_encoder
    from index.store import IndexKind

    if args.backend == "ray":
        return build_ray(args)
    if args.address is not None or args.workers is not None:
        raise UsageError("--address and --workers are for --backend ray")
    kind = args.kind or "auto"
    if kind in ("ivf-pq", "ivf-hnsw"):
        raise UsageError(f"--kind {kind} is built from shards: use it with --backend ray")
    out = Path(args.out)
    annotations: dict[str, dict[str, Any]] = {}
    for name in args.annotations:
        try:
            annotations.update(read_annotations(Path(name)))
        except OSError as err:
            raise UsageError(f"--annotations {name}: {err.strerror}") from None
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    total = count_records(args.inputs)
    if args.limit is not None:
        total = min(total, args.limit) if total else args.limit
    progress = None if args.quiet else Progress(total)

    def report(err: RecordError) -> None:
        print(f"trialsift: cannot read {err}", file=sys.stderr)

    index, result = build_index(
        read_inputs(args.inputs),
        out,
        default_encoder(),
        kind=IndexKind(kind),
        annotations=annotations,
        resume=not args.no_resume,
        limit=args.limit,
        progress=progress,
        on_error=report,
    )
    if progress:
        progress.close()
    if not args.quiet:
        counts = index.counts()
        print(
            f"index {out}: {counts['studies']:,} studies ({result.added:,} added, {result.skipped:,} already "
            f"there), {counts['outcomes_vectors']:,} outcomes, {len(result.errors):,} unreadable records; "
            f"{result.seconds:.1f} s",
            file=sys.stderr,
        )
    if result.errors and not (result.added or result.skipped):
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if result.errors else EXIT_OK


def build_ray(args: argparse.Namespace) -> int:
    """``trialsift index build --backend ray``: see :mod:`index.ray_build`."""
    from index.files import IndexFileError
    from index.ray_build import build_on_ray
    from index.store import IndexKind
    from nlp.ray_backend import RayUnavailable

    kind = args.kind or "ivf-hnsw"
    if kind not in ("ivf-pq", "ivf-hnsw"):
        raise UsageError(f"--backend ray builds ivf-pq or ivf-hnsw indexes, not {kind}")
    if args.annotations or args.limit is not None or args.no_resume:
        raise UsageError("--annotations, --limit and --no-resume are for the local backend")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if "-" in args.inputs:
        raise UsageError("--backend ray reads files (workers cannot read this process's standard input)")

    def say(line: str) -> None:
        if not args.quiet:
            print(f"trialsift index build: {line}", file=sys.stderr)

    try:
        report = build_on_ray(
            args.inputs,
            Path(args.out),
            kind=IndexKind(kind),
            address=args.address,
            workers=args.workers,
            progress=not args.quiet and sys.stderr.isatty(),
            log=say,
        )
    except RayUnavailable as err:
        raise UsageError(str(err)) from None
    except IndexFileError as err:
        print(f"trialsift index build: {err}", file=sys.stderr)
        return EXIT_ALL_FAILED
    for error in report.errors:
        print(f"trialsift: cannot read {error}", file=sys.stderr)
    counts = report.meta["counts"]
    say(
        f"index {args.out}: {counts['studies']:,} studies, {counts['outcomes_vectors']:,} outcomes, "
        f"{len(report.errors):,} unreadable records; embedded in {report.embed_seconds:.1f} s on "
        f"{report.cpus} Ray CPUs, indexed in {report.index_seconds:.1f} s"
    )
    return EXIT_SOME_FAILED if report.errors else EXIT_OK


def _load(directory: str) -> Any:
    from index.encoder import default_encoder
    from index.trial_index import TrialIndex

    return TrialIndex.load(directory, default_encoder())


def search(args: argparse.Namespace) -> int:
    from index.trial_index import SearchMode

    if args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    filters = filters_from_args(args)
    index = _load(args.index)
    mode = SearchMode(args.mode)
    for query in args.queries:
        if args.outcomes:
            hits = index.search_outcomes(query, k=args.k, mode=mode, filters=filters)
        else:
            hits = index.search(query, k=args.k, mode=mode, filters=filters)
        record = {
            "query": query,
            "mode": str(mode),
            "target": "outcomes" if args.outcomes else "trials",
            "filters": filters.describe(),
            "hits": [asdict(h) for h in hits],
        }
        if args.json:
            _emit_json(record)
        elif args.outcomes:
            _print_outcome_table(record)
        else:
            _print_trial_table(record)
    return EXIT_OK


def similar(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    ids = list(args.ids)
    if args.ids_file:
        try:
            with open(args.ids_file, encoding="utf-8") as fh:
                ids += [line.split("#", 1)[0].strip() for line in fh if line.split("#", 1)[0].strip()]
        except OSError as err:
            raise UsageError(f"--ids-file {args.ids_file}: {err.strerror}") from None
    if not ids and not args.record:
        raise UsageError("give study ids, --ids-file or --record")
    filters = filters_from_args(args)
    index = _load(args.index)
    queries: list[tuple[str, Any]] = [(i, i) for i in ids]
    failed = unreadable = 0
    if args.record:
        # spaCy and the extraction pipeline are only needed to read new records.
        from index.documents import make_entry
        from nlp.pipeline import Extractor
        from nlp.study import Study

        extractor = Extractor()
        for item in read_inputs(args.record):
            if isinstance(item, Study):
                [extraction] = list(extractor.extract_studies([item]))
                queries.append((item.id, make_entry(item, extraction)))
            else:
                print(f"trialsift: cannot read {item}", file=sys.stderr)
                unreadable += 1
    failed = unreadable
    for label, query in queries:
        if isinstance(query, str) and query not in index:
            print(f"trialsift: {query}: not in the index {args.index}", file=sys.stderr)
            failed += 1
            continue
        hits = index.similar(query, k=args.k, filters=filters)
        record = {"query": label, "filters": filters.describe(), "hits": [asdict(h) for h in hits]}
        if args.json:
            _emit_json(record)
        else:
            _print_similar_table(record)
    total = len(queries) + unreadable
    if failed and failed >= total:
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _emit_json(record: dict[str, Any], out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    stream.flush()


def _width() -> int:
    return max(80, min(160, shutil.get_terminal_size((120, 20)).columns))


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _phases(phases: Sequence[str]) -> str:
    return "/".join(p.replace("EARLY_PHASE", "E").replace("PHASE", "") for p in phases) or "-"


def _print_trial_table(record: dict[str, Any]) -> None:
    width = _width()
    print(f"query: {record['query']}  ({record['mode']}, {len(record['hits'])} hits)")
    title_w = max(20, width - 52)
    print(f"{'#':>3}  {'score':>8}  {'id':<12} {'phase':<6} {'title':<{title_w}}  matched")
    for rank, hit in enumerate(record["hits"], start=1):
        reasons = hit["reasons"]
        print(
            f"{rank:>3}  {hit['score']:>8.4f}  {hit['id']:<12} {_phases(hit['phases']):<6} "
            f"{_cut(hit['title'], title_w):<{title_w}}  {reasons.get('matched_field', 'words')}"
        )
    print()


def _print_outcome_table(record: dict[str, Any]) -> None:
    width = _width()
    print(f"query: {record['query']}  ({record['mode']}, outcomes, {len(record['hits'])} hits)")
    measure_w = max(20, width - 70)
    print(f"{'#':>3}  {'score':>8}  {'id':<12} {'role':<9} {'horizon':>7}  {'endpoints':<22} measure")
    for rank, hit in enumerate(record["hits"], start=1):
        horizon = "-" if hit["horizon_days"] is None else f"{hit['horizon_days']:g}d"
        print(
            f"{rank:>3}  {hit['score']:>8.4f}  {hit['id']:<12} {hit['role']:<9} {horizon:>7}  "
            f"{_cut(','.join(hit['endpoints']) or '-', 22):<22} {_cut(hit['measure'], measure_w)}"
        )
    print()


def _print_similar_table(record: dict[str, Any]) -> None:
    width = _width()
    print(f"similar to: {record['query']}  ({len(record['hits'])} hits)")
    title_w = max(20, width - 80)
    print(f"{'#':>3}  {'score':>7}  {'id':<12} {'title':<{title_w}}  why")
    for rank, hit in enumerate(record["hits"], start=1):
        r = hit["reasons"]
        scores = r["field_scores"]
        why = []
        # Conditions and interventions first (they weigh most); the best pair's similarity when no name
        # is shared word for word.
        for name in ("conditions", "interventions"):
            if r[f"shared_{name}"]:
                why.append(f"{name}: " + ", ".join(r[f"shared_{name}"][:2]))
            elif scores.get(f"{name}_best") is not None:
                why.append(f"{name} ~{scores[f'{name}_best']:.2f}")
        if r["shared_phases"]:
            why.append("phase " + _phases(r["shared_phases"]))
        if r["shared_endpoints"]:
            why.append("endpoints: " + ", ".join(r["shared_endpoints"][:3]))
        print(
            f"{rank:>3}  {hit['score']:>7.4f}  {hit['id']:<12} {_cut(hit['title'], title_w):<{title_w}}  "
            f"{_cut('; '.join(why), 60)}"
        )
    print()
