"""The ``trialsift`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from nlp.errors import RecordError, TrialsiftError
from nlp.study import Study

#: Exit statuses of the commands (``trialsift annotate --help`` lists them).
EXIT_OK = 0
EXIT_SOME_UNREADABLE = 1
EXIT_NONE_READABLE = 2
EXIT_USAGE = 64
EXIT_OUTPUT = 74  # sysexits' EX_IOERR: the output could not be written
EXIT_WORKER_DIED = 75  # sysexits' EX_TEMPFAIL: try again (--resume)
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(
        self, message: str
    ) -> Any:  # argparse's own exit code (2) would collide with EXIT_NONE_READABLE
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trialsift", description="Structured data from clinical-trial records.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from service.cli_annotate import add_command

    add_command(sub, _Parser)
    _add_index_commands(sub)
    from service.cli_serve import add_commands

    add_commands(sub, _Parser)
    return parser


INDEX_EPILOG = """\
The index is a directory: one FAISS file per represented field (title+conditions+interventions, conditions,
interventions, summary windows, outcomes), the studies' entries, and meta.json (model, dimension, metric,
counts, build parameters). Each save is atomic; an interrupted build resumes where its last checkpoint was.

exit status: 0 every record indexed; 1 some records could not be read (each reported); 2 none; 64 usage.
"""

FILTER_HELP = """\
filters (all optional, all must hold; outcome filters must hold for one and the same outcome):
  --phase 1 --phase 2          phase (1, 2, 3, 4, early1, NA; PHASE1 etc. also accepted)
  --condition TEXT             condition or keyword containing TEXT
  --intervention TEXT          intervention name containing TEXT
  --endpoint ID                endpoint id from the vocabulary (overall_survival, objective_response_rate …)
  --category NAME              outcome category (efficacy, safety, pk, …)
  --role primary|secondary     outcome role
  --time-point RANGE           an outcome time point in days: 90, 60..120, ..28, 365..
  --horizon RANGE              an outcome's horizon in days, same forms
  --escalation SCHEME          dose-escalation scheme (3+3, BOIN, …)
  --criteria NAME              assessment criteria (RECIST 1.1, CTCAE 5.0, …)
"""


def _add_filter_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    g.add_argument("--phase", action="append", default=[], metavar="PHASE")
    g.add_argument("--condition", metavar="TEXT")
    g.add_argument("--intervention", metavar="TEXT")
    g.add_argument("--endpoint", action="append", default=[], metavar="ID")
    g.add_argument("--category", action="append", default=[], metavar="NAME")
    g.add_argument("--role", action="append", default=[], choices=["primary", "secondary", "other"])
    g.add_argument("--time-point", metavar="RANGE")
    g.add_argument("--horizon", metavar="RANGE")
    g.add_argument("--escalation", action="append", default=[], metavar="SCHEME")
    g.add_argument("--criteria", action="append", default=[], metavar="NAME")


def _add_index_commands(sub: Any) -> None:
    idx = sub.add_parser("index", help="build a search index", description="Build a search index.")
    idx_sub = idx.add_subparsers(dest="index_command", required=True, parser_class=_Parser)
    build = idx_sub.add_parser(
        "build",
        help="index study records (resumable)",
        description="Extract and embed study records into a search index directory.",
        epilog=INDEX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("inputs", nargs="+", metavar="INPUT", help="record files (any format trialsift reads)")
    build.add_argument("--out", required=True, metavar="DIR", help="index directory")
    build.add_argument(
        "--annotations",
        action="append",
        default=[],
        metavar="FILE",
        help="`trialsift annotate` output for these records (skips extracting them again)",
    )
    build.add_argument(
        "--kind",
        choices=["auto", "exact", "ivf", "ivf-pq", "ivf-hnsw"],
        default=None,
        help="FAISS index kind (default: auto; with --backend ray: ivf-hnsw, 392 bytes a vector; ivf-pq: "
        "56 bytes, lower recall; the recall@10 reached is in meta.json)",
    )
    build.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="this process (default), or a Ray cluster: extraction and embedding on an actor pool, then an "
        "IVF index trained on a sample and merged from the shards, memory-mapped when loaded",
    )
    build.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the cluster to join (auto, HOST:PORT, ray://HOST:PORT); default: start "
        "Ray on this machine",
    )
    build.add_argument(
        "--workers", type=int, metavar="N", help="with --backend ray: actors (default: one per CPU)"
    )
    build.add_argument("--limit", type=int, metavar="N", help="read at most N studies from the inputs")
    build.add_argument(
        "--no-resume",
        action="store_true",
        help="refuse to extend an index already in DIR (default: resume it)",
    )
    build.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")

    search = sub.add_parser(
        "search",
        help="free-text search over indexed trials or outcomes",
        description="Search indexed trials (or, with --outcomes, outcome measures) by free text.",
        epilog=FILTER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("queries", nargs="+", metavar="QUERY", help="query text (several queries allowed)")
    search.add_argument("--index", required=True, metavar="DIR")
    search.add_argument("--mode", choices=["dense", "lexical", "hybrid"], default="hybrid")
    search.add_argument("-k", "--k", type=int, default=10, help="hits per query (default 10)")
    search.add_argument("--outcomes", action="store_true", help="search outcome measures instead of trials")
    search.add_argument("--json", action="store_true", help="JSON Lines: one object per query")
    _add_filter_options(search)

    similar = sub.add_parser(
        "similar",
        help="trials similar to indexed trials or to a new record",
        description="Trials similar to indexed trials (by id) or to a new record, with the reasons.",
        epilog=FILTER_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    similar.add_argument("ids", nargs="*", metavar="ID", help="indexed study ids (NCT…)")
    similar.add_argument("--ids-file", metavar="FILE", help="more ids, one per line ('#' starts a comment)")
    similar.add_argument(
        "--record", action="append", default=[], metavar="FILE", help="a new record (any format)"
    )
    similar.add_argument("--index", required=True, metavar="DIR")
    similar.add_argument("-k", "--k", type=int, default=10, help="hits per query (default 10)")
    similar.add_argument("--json", action="store_true", help="JSON Lines: one object per query")
    _add_filter_options(similar)


def read_inputs(paths: Sequence[str]) -> Iterator[Study | RecordError]:
    """The records of input specs (files, directories, glob patterns, ``-``), in order."""
    from nlp.ingest.sources import Inputs

    return Inputs(paths).studies()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "annotate":
        from service.cli_annotate import run

        return run(args)
    from service import cli_index

    try:
        if args.command == "index":
            return cli_index.build(args)
        if args.command == "search":
            return cli_index.search(args)
        if args.command == "similar":
            return cli_index.similar(args)
        if args.command in ("load", "serve"):
            from service import cli_serve

            return cli_serve.load(args) if args.command == "load" else cli_serve.serve(args)
    except cli_index.UsageError as err:
        parser.exit(EXIT_USAGE, f"trialsift: error: {err}\n")
    except TrialsiftError as err:
        print(f"trialsift: {err}", file=sys.stderr)
        return EXIT_NONE_READABLE
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
