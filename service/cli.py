"""The ``trialsift`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from nlp.errors import RecordError
from nlp.study import Study

#: Exit statuses of ``trialsift annotate``.
EXIT_OK = 0
EXIT_SOME_UNREADABLE = 1
EXIT_NONE_READABLE = 2
EXIT_USAGE = 64

ANNOTATE_EPILOG = """\
inputs: API v2 JSON (one study, a list, a page {"studies": [...]}, or JSON Lines), the registry's CSV
export, the legacy XML (<clinical_study>), the seed layout, or plain protocol text; any of them gzipped.
The format is detected from the content.

exit status:
  0   every record was read and annotated
  1   some records could not be read (each reported on stderr with file and line; the others were written)
  2   no record could be read
  64  usage error (bad options)
"""


class _Parser(argparse.ArgumentParser):
    def error(
        self, message: str
    ) -> Any:  # argparse's own exit code (2) would collide with EXIT_NONE_READABLE
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trialsift", description="Structured data from clinical-trial records.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ann = sub.add_parser(
        "annotate",
        help="extract outcomes, endpoints, time frames and criteria from study records",
        description="Annotate study records: one JSON object per study (the extraction spec's shape).",
        epilog=ANNOTATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ann.add_argument("inputs", nargs="+", metavar="INPUT", help="input files")
    ann.add_argument(
        "-o", "--output", default="-", metavar="OUT.jsonl", help="output JSON Lines (default: stdout)"
    )
    ann.add_argument("-q", "--quiet", action="store_true", help="no summary table on stderr")
    return parser


def _read_inputs(paths: Sequence[str]) -> Iterator[Study | RecordError]:
    from nlp.ingest import read_path

    for name in paths:
        path = Path(name)
        if not path.exists():
            yield RecordError(name, None, "no such file")
        elif path.is_dir():
            yield RecordError(name, None, "is a directory; give the files inside it")
        else:
            yield from read_path(path)


def _summary(stats: Counter[str], categories: Counter[str], endpoints: Counter[str], seconds: float) -> str:
    rows = [
        ("studies annotated", f"{stats['studies']:,}"),
        ("records unreadable", f"{stats['errors']:,}"),
        ("outcomes", f"{stats['outcomes']:,}"),
        ("  with an endpoint id", f"{stats['with_endpoint']:,}"),
        ("  with a time point", f"{stats['with_points']:,}"),
        ("  with a horizon", f"{stats['with_horizon']:,}"),
        ("  with criteria", f"{stats['with_criteria']:,}"),
        ("time", f"{seconds:.1f} s ({stats['studies'] / seconds if seconds else 0:,.0f} studies/s)"),
    ]
    rows += [(f"category {name}", f"{n:,}") for name, n in categories.most_common()]
    rows += [(f"endpoint {name}", f"{n:,}") for name, n in endpoints.most_common(8)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:>10}" for k, v in rows)


def annotate(args: argparse.Namespace) -> int:
    from nlp.pipeline import Extractor

    extractor = Extractor()
    stats: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    started = time.perf_counter()
    out: IO[str]
    if args.output == "-":
        out = sys.stdout
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        out = open(args.output, "w", encoding="utf-8")  # noqa: SIM115 - closed below, stdout is not
    try:
        for item in extractor.extract_items(_read_inputs(args.inputs)):
            if isinstance(item, RecordError):
                stats["errors"] += 1
                print(f"trialsift: cannot read {item}", file=sys.stderr)
                continue
            stats["studies"] += 1
            for o in item["outcomes"]:
                stats["outcomes"] += 1
                stats["with_endpoint"] += bool(o["endpoints"])
                stats["with_points"] += bool(o["timing"]["points"])
                stats["with_horizon"] += o["timing"]["horizon_days"] is not None
                stats["with_criteria"] += bool(o["criteria"])
                categories[o["category"]] += 1
                endpoints.update(o["endpoints"])
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if not args.quiet:
        print(_summary(stats, categories, endpoints, time.perf_counter() - started), file=sys.stderr)
    if stats["errors"] and not stats["studies"]:
        return EXIT_NONE_READABLE
    return EXIT_SOME_UNREADABLE if stats["errors"] else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "annotate":
        return annotate(args)
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
