"""Whole-study throughput: read, extract outcomes, design facts and dose groups, serialise.

Runs the library's ``Extractor`` over every study of ``../shared/data/ctgov-studies.jsonl.gz`` (11.6k
studies; the bundled sample when ``../shared`` is absent), one core, and prints studies/s next to the
reading-only rate measured in the same run (a ratio, so it can be compared across noisy machines).
Goal (issue 3): >= 150 studies/s on this 2-core machine.

    .venv/bin/python benchmarks/study_speed.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "ctgov-studies.jsonl.gz"
SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N studies")
    args = parser.parse_args()
    from nlp.ingest import read_path
    from nlp.pipeline import Extractor

    source = CORPUS if CORPUS.exists() else SAMPLE
    t0 = time.perf_counter()
    items = list(read_path(source))[: args.limit]
    read_s = time.perf_counter() - t0
    n = len(items)
    extractor = Extractor()
    t0 = time.perf_counter()
    for out in extractor.extract_items(items):
        json.dumps(out if isinstance(out, dict) else str(out), ensure_ascii=False)
    extract_s = time.perf_counter() - t0
    print(f"{n:,} studies from {source}")
    print(f"{'read (ingest only)':28} {n / read_s:10,.0f} studies/s")
    print(f"{'extract + serialise':28} {n / extract_s:10,.0f} studies/s")
    print(f"{'read + extract':28} {n / (read_s + extract_s):10,.0f} studies/s   (goal >= 150)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
