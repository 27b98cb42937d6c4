"""``trialsift annotate``: bulk annotation of registry dumps, streaming, parallel and resumable."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

from nlp.errors import TrialsiftError
from service.cli import (
    EXIT_INTERRUPTED,
    EXIT_NONE_READABLE,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SOME_UNREADABLE,
    EXIT_USAGE,
    EXIT_WORKER_DIED,
)

#: Errors shown on stderr as they happen; the rest are counted there and all are in the errors file.
SHOWN_ERRORS: Final = 10

EPILOG = """\
inputs: files, directories (every non-hidden file below, in path order), glob patterns ('shards/*.jsonl.gz',
'**' for any depth; quote them) or '-' for standard input. Formats are detected from content: API v2 JSON
(one study, a list, a page {"studies": [...]}, or JSON Lines), the registry's CSV export, the legacy XML
(<clinical_study>), the seed layout, or plain protocol text; any of them gzipped.

output (-o): with --format jsonl (default) one JSON object per study, in input order (stdout when -o is
omitted); with csv or parquet a directory of three tables joined on study_id: studies, outcomes (one row per
outcome measure) and dose_groups (one row per dose group). Unreadable records go to an errors file, one JSON
object per line ({"source", "line", "id", "reason"}): OUT.errors.jsonl, or DIR/errors.jsonl.

safety: the output is written in a work directory beside it (.OUT.partial/ or DIR/.partial/) and moved into
place at the end; an interrupted or killed run leaves only whole, committed chunks there, and --resume
continues it (or extends a finished output with studies it does not have yet). The same input gives
byte-identical output whatever --workers is.

exit status:
  0    every record was read and annotated
  1    some records could not be read (each in the errors file; the others were written)
  2    no record could be read
  64   usage error (bad options)
  74   the output could not be written or resumed
  75   a worker process died (killed, out of memory): what was committed stays; --resume continues
  130  interrupted (SIGINT or SIGTERM): what was committed stays; --resume continues
"""


def add_command(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``annotate`` to the ``trialsift`` subcommands."""
    from service.sinks import FORMATS

    ann = sub.add_parser(
        "annotate",
        help="extract outcomes, endpoints, time frames, criteria and design facts from study records",
        description="Annotate study records in bulk: JSON Lines (the extraction spec's shape) or tables.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ann.add_argument("inputs", nargs="+", metavar="INPUT", help="files, directories, glob patterns, or -")
    ann.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="OUT",
        help="output file (jsonl; default: stdout) or directory (csv, parquet)",
    )
    ann.add_argument("--format", choices=FORMATS, default="jsonl", help="output format (default: jsonl)")
    ann.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: one per core, the fastest setting measured)",
    )
    ann.add_argument("--resume", action="store_true", help="skip studies already in the output, and go on")
    ann.add_argument("--errors", metavar="FILE", help="errors file (default: beside the output)")
    ann.add_argument(
        "--commit-every",
        type=int,
        metavar="N",
        help="studies between commits, the most a kill can lose (default: 64; parquet: 2000, one part file)",
    )
    ann.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "none"],
        default="auto",
        help="a progress bar on a terminal, a line every 10 s otherwise (auto), or none",
    )
    ann.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary on stderr")
    ann.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local worker processes (default), or a Ray cluster writing sharded output into -o DIR "
        "(needs pip install 'trialsift[ray]')",
    )
    ann.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the cluster to join (auto, HOST:PORT or ray://HOST:PORT); "
        "default: start Ray on this machine's cores",
    )


class UsageError(TrialsiftError):
    """Options that do not fit together."""


def _check(args: argparse.Namespace) -> None:
    from pathlib import Path

    out = Path(args.output)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.backend == "ray":
        _check_ray(args)
        return
    if args.address is not None:
        raise UsageError("--address joins a Ray cluster: use it with --backend ray")
    if args.format != "jsonl" and args.output == "-":
        raise UsageError(f"--format {args.format} writes three tables: give a directory with -o DIR")
    if args.resume and args.output == "-":
        raise UsageError("--resume needs an output file (-o OUT): standard output cannot be resumed")
    if args.format == "jsonl" and out.is_dir():
        raise UsageError(f"-o {args.output} is a directory; jsonl output is one file")
    if args.format != "jsonl" and out.exists() and not out.is_dir():
        raise UsageError(f"-o {args.output} is a file; --format {args.format} writes into a directory")
    if args.commit_every is not None and args.commit_every < 1:
        raise UsageError(f"--commit-every must be at least 1, got {args.commit_every}")
    if args.inputs.count("-") > 1:
        raise UsageError("standard input (-) can be read only once")


def _check_ray(args: argparse.Namespace) -> None:
    from nlp.ray_backend import RAY_FORMATS

    if args.format not in RAY_FORMATS:
        raise UsageError(f"--backend ray writes {' or '.join(RAY_FORMATS)} shards, not {args.format}")
    if args.output == "-":
        raise UsageError("--backend ray writes shards into a directory: give one with -o DIR")
    if "-" in args.inputs:
        raise UsageError("--backend ray reads files (workers cannot read this process's standard input)")
    if args.resume:
        raise UsageError("--backend ray does not resume: Ray retries what a lost worker was doing instead")
    if args.commit_every is not None:
        raise UsageError("--commit-every is for the local backend; the Ray backend writes whole shards")


class Progress:
    """Progress on stderr: a tqdm bar on a terminal, a plain line every ``interval`` seconds otherwise."""

    def __init__(
        self, mode: str, total_bytes: int | None, bytes_read: Callable[[], int], interval: float = 10.0
    ):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode, self.total, self.bytes_read, self.interval = mode, total_bytes, bytes_read, interval
        self.started = time.monotonic()
        self._last = self.started
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            # tqdm puts ", " before the postfix: " 47%|█████  | [00:12<00:14, 3,520 studies, 290/s]"
            fmt = (
                "{percentage:3.0f}%|{bar:30}| [{elapsed}<{remaining}{postfix}]"
                if total_bytes
                else "[{elapsed}{postfix}]"
            )
            self._bar = tqdm(total=total_bytes or None, bar_format=fmt, file=sys.stderr, dynamic_ncols=True)

    def update(self, studies: int, errors: int) -> None:
        """Report the counts so far (throttled: cheap to call after every chunk)."""
        now = time.monotonic()
        rate = studies / max(now - self.started, 1e-9)
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"{studies:,} studies, {rate:,.0f}/s, {errors:,} unreadable", refresh=False
            )
            if self.total:
                self._bar.update(self.bytes_read() - self._bar.n)
            else:
                self._bar.refresh()
        elif self.mode == "lines" and now - self._last >= self.interval:
            self._last = now
            line = f"trialsift annotate: {studies:,} studies ({rate:,.0f}/s), {errors:,} unreadable"
            done = self.bytes_read()
            if self.total and done:
                eta = (now - self.started) * (self.total - done) / done
                line += f", {done / self.total:.0%} of input read, about {_duration(eta)} left"
            print(line, file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        """Print a line on stderr without breaking the bar."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            if self.total:
                self._bar.update(self.total - self._bar.n)
            self._bar.close()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def summary(stats: Counter[str], seconds: float, skipped: int) -> str:
    """The end-of-run table on stderr."""
    rows = [
        ("studies annotated", f"{stats['studies']:,}"),
        ("records unreadable", f"{stats['errors']:,}"),
    ]
    if skipped:
        rows.append(("already in the output", f"{skipped:,}"))
    rows += [
        ("outcomes", f"{stats['outcomes']:,}"),
        ("  with an endpoint id", f"{stats['with_endpoint']:,}"),
        ("  with a time point", f"{stats['with_points']:,}"),
        ("  with a horizon", f"{stats['with_horizon']:,}"),
        ("  with criteria", f"{stats['with_criteria']:,}"),
        ("dose groups", f"{stats['dose_groups']:,}"),
        ("time", f"{seconds:.1f} s ({stats['studies'] / seconds if seconds else 0:,.0f} studies/s)"),
    ]
    ranked = sorted(((n, k) for k, n in stats.items() if k.startswith("category ")), reverse=True)
    rows += [(key, f"{n:,}") for n, key in ranked]
    ranked = sorted(((n, k) for k, n in stats.items() if k.startswith("endpoint ")), reverse=True)
    rows += [(key, f"{n:,}") for n, key in ranked[:8]]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:>10}" for k, v in rows)


class _Interrupted(Exception):
    pass


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


def run(args: argparse.Namespace) -> int:
    """Run ``trialsift annotate``; returns the exit status."""
    from nlp.bulk import WorkerDied, default_workers, run_chunks, skip_done
    from nlp.ingest.sources import Inputs
    from service.sinks import OutputError, Sink, open_sink

    try:
        _check(args)
    except UsageError as err:
        print(f"trialsift annotate: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.backend == "ray":
        return run_ray(args)
    try:
        sink = open_sink(
            args.output, args.format, errors=args.errors, resume=args.resume, commit_every=args.commit_every
        )
    except (OutputError, OSError) as err:
        print(f"trialsift annotate: {err}", file=sys.stderr)
        return EXIT_OUTPUT
    if isinstance(sink, Sink) and sink.discarded_partial and not args.quiet:
        print(
            f"trialsift annotate: started afresh over the interrupted run in {sink.where.work} "
            "(--resume continues one)",
            file=sys.stderr,
        )
    workers = args.workers or default_workers()
    inputs = Inputs(args.inputs, defer=workers > 1)
    skipped: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    progress = Progress(
        "none" if args.quiet else args.progress, inputs.total_bytes, lambda: inputs.bytes_read
    )
    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _on_term)
    status = EXIT_OK
    try:
        chunks = run_chunks(
            skip_done(inputs, sink.done, skipped), workers=workers, encode=_encoder(args.format)
        )
        for chunk in chunks:
            new_errors = sink.write(chunk)
            for k, error in enumerate(new_errors, start=stats["errors"]):
                # Without an errors file, stderr is the only report: every error goes there.
                if k < SHOWN_ERRORS or sink.errors_path is None:
                    progress.write(f"trialsift: cannot read {error}")
            chunk.stats["errors"] = len(new_errors)  # errors met again on --resume are not new
            stats.update(chunk.stats)
            progress.update(stats["studies"], stats["errors"])
        sink.finish()
    except (KeyboardInterrupt, _Interrupted):
        status = EXIT_INTERRUPTED
    except WorkerDied as err:
        print(f"trialsift annotate: {err}: killed? out of memory?", file=sys.stderr)
        status = EXIT_WORKER_DIED
    except (OutputError, OSError) as err:
        print(f"trialsift annotate: cannot write the output: {err}", file=sys.stderr)
        status = EXIT_OUTPUT
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
        if status != EXIT_OK:
            _close_quietly(sink)
    return _report(args, sink, stats, sum(skipped.values()), time.perf_counter() - started, status)


def run_ray(args: argparse.Namespace) -> int:
    """``trialsift annotate --backend ray``: the Ray Data pipeline of :mod:`nlp.ray_backend`."""
    from pathlib import Path

    from nlp.ray_backend import RayUnavailable, annotate_on_ray

    out = Path(args.output)
    if out.exists():
        print(
            f"trialsift annotate: -o {args.output} exists; the Ray backend writes a new directory "
            "(remove it, or choose another)",
            file=sys.stderr,
        )
        return EXIT_OUTPUT
    progress = not args.quiet and (
        args.progress == "bar" or (args.progress == "auto" and sys.stderr.isatty())
    )
    try:
        result = annotate_on_ray(
            args.inputs, out, fmt=args.format, address=args.address, workers=args.workers, progress=progress
        )
    except RayUnavailable as err:
        print(f"trialsift annotate: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "trialsift annotate: interrupted; the shards written so far were not moved into place",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except OSError as err:
        print(f"trialsift annotate: cannot write the output: {err}", file=sys.stderr)
        return EXIT_OUTPUT
    for k, error in enumerate(result.errors):
        if k < SHOWN_ERRORS:
            print(f"trialsift: cannot read {error}", file=sys.stderr)
    if len(result.errors) > SHOWN_ERRORS:
        print(
            f"trialsift: … {len(result.errors) - SHOWN_ERRORS:,} more unreadable records in "
            f"{out / 'errors.jsonl'}",
            file=sys.stderr,
        )
    if args.errors:
        Path(args.errors).write_bytes((out / "errors.jsonl").read_bytes())
    stats = Counter(result.stats)
    stats["errors"] = len(result.errors)
    if not args.quiet:
        print(summary(stats, result.seconds, 0), file=sys.stderr)
        print(
            f"trialsift annotate: {len(result.shards)} shards in {out} on {result.cpus} Ray CPUs",
            file=sys.stderr,
        )
    if result.errors and not result.studies:
        return EXIT_NONE_READABLE
    return EXIT_SOME_UNREADABLE if result.errors else EXIT_OK


def _close_quietly(sink: Any) -> None:
    """Commit what an interrupted run wrote; a failure here must not hide the first one."""
    try:
        sink.close()
    except OSError as err:
        print(f"trialsift annotate: cannot write the output: {err}", file=sys.stderr)


def _report(
    args: argparse.Namespace, sink: Any, stats: Counter[str], skipped: int, seconds: float, status: int
) -> int:
    """Print what the run did on stderr and return its exit status."""
    from service.sinks import Sink

    if stats["errors"] > SHOWN_ERRORS and sink.errors_path is not None:
        print(
            f"trialsift: … {stats['errors'] - SHOWN_ERRORS:,} more unreadable records in {sink.errors_path}",
            file=sys.stderr,
        )
    if not args.quiet:
        print(summary(stats, seconds, skipped), file=sys.stderr)
    if status in (EXIT_INTERRUPTED, EXIT_WORKER_DIED):
        if isinstance(sink, Sink):
            print(
                f"trialsift annotate: stopped; what was committed is in {sink.where.work}: "
                "run the same command with --resume to continue",
                file=sys.stderr,
            )
        return status
    if status != EXIT_OK:
        return status
    # The status describes the whole output, resumed parts included: their errors are in the errors file.
    errors = len(sink.seen_errors)
    if errors and not stats["studies"] and not skipped:
        return EXIT_NONE_READABLE
    return EXIT_SOME_UNREADABLE if errors else EXIT_OK


def _encoder(fmt: str) -> Any:
    from nlp.bulk import encode_json
    from nlp.tables import table_rows

    return encode_json if fmt == "jsonl" else table_rows
