"""``trialsift load`` and ``trialsift serve``: fill the service's store, and run the HTTP API."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from nlp.errors import RecordError, TrialsiftError

EXIT_OK, EXIT_SOME_FAILED, EXIT_ALL_FAILED = 0, 1, 2


def add_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    load = sub.add_parser(
        "load",
        help="load study records into the service's store (extract, embed, index)",
        description="Load study records into the service's store: extract, embed and index them. Studies "
        "already stored are skipped, so an interrupted load resumes.",
    )
    _add_load_options(load, required=True)
    serve = sub.add_parser(
        "serve",
        help="run the HTTP API",
        description="Run the HTTP API (OpenAPI docs at /docs). Settings come from TRIALSIFT_* environment "
        "variables; the options here override them.",
    )
    _add_load_options(serve, required=False)
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--index",
        metavar="DIR",
        help="serve this prebuilt index read-only (TRIALSIFT_INDEX), e.g. from `index build --backend ray`: "
        "memory-mapped lists, writes refused",
    )


def _add_load_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "inputs",
        nargs="+" if required else "*",
        metavar="INPUT",
        help="record files (any format `trialsift annotate` reads)" + ("" if required else ", loaded first"),
    )
    p.add_argument("--data-dir", metavar="DIR", help="store and index directory (TRIALSIFT_DATA_DIR)")
    p.add_argument("--limit", type=int, metavar="N", help="read at most N studies from the inputs")
    p.add_argument(
        "--vectors-from",
        metavar="INDEX",
        help="an index built by `trialsift index build`: studies it holds unchanged keep their vectors",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")


def _settings(args: argparse.Namespace) -> Any:
    from service.settings import Settings

    if args.data_dir:
        # Through the environment, so uvicorn's worker processes read the same settings.
        os.environ["TRIALSIFT_DATA_DIR"] = args.data_dir
    return Settings()


def load(args: argparse.Namespace) -> int:
    """Load the inputs into the store; exit status 0, 1 (some records unreadable) or 2 (none loaded)."""
    from index.build import Progress
    from service.cli import read_inputs
    from service.cli_index import UsageError, count_records
    from service.engine import Engine

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    settings = _settings(args)
    engine = Engine.open(settings, warm=False)
    try:
        vectors_from = None
        if args.vectors_from:
            from index.trial_index import TrialIndex

            vectors_from = TrialIndex.load(args.vectors_from, engine.encoder)
        total = count_records(args.inputs)
        if args.limit is not None:
            total = min(total, args.limit) if total else args.limit
        progress = None if args.quiet else Progress(total)
        errors: list[RecordError] = []

        def items() -> Any:
            n = 0
            for item in read_inputs(args.inputs):
                if isinstance(item, RecordError):
                    print(f"trialsift: cannot read {item}", file=sys.stderr)
                    errors.append(item)
                    continue
                if args.limit is not None and n >= args.limit:
                    return
                n += 1
                yield item

        report = engine.load(items(), progress=progress, vectors_from=vectors_from)
        if not args.quiet:
            print(
                f"store {settings.data_dir}: {engine.store.count():,} studies ({report.added:,} added, "
                f"{report.skipped:,} already there), {len(errors):,} unreadable records",
                file=sys.stderr,
            )
    finally:
        engine.close(save=False)
    if errors and not (report.added or report.skipped):
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if errors else EXIT_OK


def serve(args: argparse.Namespace) -> int:
    """Load the inputs (if any), then serve until stopped."""
    from service.cli_index import UsageError

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    if getattr(args, "index", None):
        if args.inputs:
            raise UsageError("--index serves a prebuilt index read-only: it loads no inputs")
        # Through the environment, so uvicorn's worker processes read the same settings.
        os.environ["TRIALSIFT_INDEX"] = str(Path(args.index).resolve())
    if args.inputs:
        status = load(args)
        if status == EXIT_ALL_FAILED:
            return status
    from service.engine import make_encoder

    # Export the query encoder's ONNX graph here, once, if it is not cached yet: not in each worker.
    prepare = getattr(make_encoder(_settings(args)), "prepare", None)
    if prepare is not None:
        prepare()
    from service import workers

    if args.workers > 1 and workers.available():
        try:
            return workers.run(args.host, args.port, args.workers, LOG_CONFIG)
        except OSError as err:
            raise TrialsiftError(f"cannot listen on {args.host}:{args.port}: {err.strerror}") from None
    import signal

    import uvicorn

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, workers.exit_cleanly)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # the app logs each request as one JSON line (trialsift.access)
        log_config=LOG_CONFIG,
    )
    return EXIT_OK


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"format": "%(message)s"},
    },
    "handlers": {
        "plain": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["plain"], "level": "INFO", "propagate": False},
        "trialsift": {"handlers": ["plain"], "level": "INFO", "propagate": False},
        "trialsift.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}
