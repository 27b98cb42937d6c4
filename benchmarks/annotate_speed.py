"""Bulk annotation at registry scale: ``trialsift annotate`` throughput and peak memory.

Runs the real command (a subprocess, as an analyst would) over the 11.6k-study corpus
(``../shared/data/ctgov-studies.jsonl.gz``; the bundled 3,000-study sample when ``../shared`` is absent)
with 1 and 2 workers, then over the corpus concatenated 10 times (~116k studies) to show that memory stays
flat. The memory of the whole process tree (reader plus workers; PSS, so pages the forked workers share
are counted once) is sampled from ``/proc`` every 0.2 s.

The baseline, measured in the same run, is the library's bare extraction loop in one process (``Extractor``
over pre-read studies, JSON serialised, nothing written): each run prints its rate as a ratio to it, so the
figures compare across noisy machines. Goal (issue 6): >= 150 studies/s.

    .venv/bin/python benchmarks/annotate_speed.py [--parts base,w1,w2,tables,x10] [--x10-workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "ctgov-studies.jsonl.gz"
SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"
TRIALSIFT = Path(sys.executable).with_name("trialsift")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process in MB. Forked workers share the reader's pages until they write them: RSS
    counts a shared page in every process, PSS splits it between them, so PSS sums to the tree's real use."""
    rss = pss = 0.0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return rss, pss


@dataclass
class Sampler:
    """Samples a process tree's memory: peak of the PSS sum, peak RSS of any one process, and a timeline."""

    pid: int
    peak_total: float = 0.0
    peak_each: float = 0.0
    timeline: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            sizes = [_memory_mb(p) for p in _tree(self.pid)]
            total = sum(pss for _, pss in sizes)
            self.peak_total = max(self.peak_total, total)
            self.peak_each = max([self.peak_each, *(rss for rss, _ in sizes)])
            self.timeline.append((time.monotonic() - started, total))
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()


def annotate(inputs: Path, out: Path, workers: int, fmt: str = "jsonl") -> tuple[float, Sampler]:
    """Run ``trialsift annotate``; return the wall time and the memory samples."""
    argv = [
        str(TRIALSIFT),
        "annotate",
        str(inputs),
        "-o",
        str(out),
        "--format",
        fmt,
        "--workers",
        str(workers),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen([*argv, "-q"])
    sampler = Sampler(proc.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    status = proc.wait()
    seconds = time.perf_counter() - started
    sampler.stop()
    thread.join()
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {status}")
    return seconds, sampler


def baseline(source: Path, limit: int) -> float:
    """Studies/s of the bare library loop on one core: extract + serialise pre-read studies."""
    from nlp.ingest import read_path
    from nlp.pipeline import Extractor

    items = list(itertools.islice(read_path(source), limit))
    extractor = Extractor()
    list(extractor.extract_items(items[:20]))  # warm-up: lazy matchers
    started = time.perf_counter()
    for out in extractor.extract_items(items):
        json.dumps(out, ensure_ascii=False)
    return len(items) / (time.perf_counter() - started)


def count_lines(path: Path) -> int:
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
        return sum(1 for _ in handle)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="base,w1,w2,tables,x10", help="comma-separated parts to run")
    parser.add_argument("--x10-workers", default="2", help="worker counts for the x10 run, comma-separated")
    parser.add_argument("--baseline-studies", type=int, default=2000)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    source = CORPUS if CORPUS.exists() else SAMPLE
    if source is SAMPLE:
        print(f"{CORPUS} is absent: measuring the bundled sample instead")
    tmp = Path(tempfile.mkdtemp(prefix="annotate-bench-"))
    n = count_lines(source)
    print(f"{n:,} studies in {source}; {os.cpu_count()} cores; output in {tmp}")
    base = baseline(source, args.baseline_studies) if "base" in parts else None
    if base:
        print(f"baseline: bare extraction loop, 1 process, {args.baseline_studies:,} studies: {base:,.0f}/s")
    rows: list[tuple[str, int, float, Sampler]] = []

    def record(label: str, studies: int, seconds: float, sampler: Sampler) -> None:
        rate = studies / seconds
        ratio = f"{rate / base:5.2f}x" if base else "   - "
        rows.append((label, studies, seconds, sampler))
        print(
            f"{label:34} {studies:>8,} studies {seconds:7.1f} s {rate:7,.0f}/s {ratio} baseline   "
            f"peak {sampler.peak_total:6,.0f} MB PSS (largest process {sampler.peak_each:5,.0f} MB RSS)",
            flush=True,
        )

    for workers in (1, 2):
        if f"w{workers}" in parts:
            seconds, sampler = annotate(source, tmp / f"w{workers}.jsonl", workers)
            record(f"jsonl, {workers} worker(s)", n, seconds, sampler)
    if "tables" in parts:
        for fmt in ("csv", "parquet"):
            seconds, sampler = annotate(source, tmp / fmt, 2, fmt)
            record(f"{fmt}, 2 workers", n, seconds, sampler)
    if "x10" in parts:
        big = tmp / "x10.jsonl.gz"
        data = source.read_bytes()
        with open(big, "wb") as handle:
            for _ in range(10):  # gzip members concatenated: one valid gzip stream
                handle.write(data if source.suffix == ".gz" else gzip.compress(data))
        for workers in map(int, args.x10_workers.split(",")):
            out = tmp / f"x10-w{workers}.jsonl"
            seconds, sampler = annotate(big, out, workers)
            record(f"jsonl x10 corpus, {workers} worker(s)", n * 10, seconds, sampler)
            line = sampler.timeline
            marks = [line[int(len(line) * f) - 1] for f in (0.1, 0.25, 0.5, 0.75, 1.0)]
            print("  tree PSS over the run: " + ", ".join(f"{t:5.0f} s {mb:5,.0f} MB" for t, mb in marks))
            out.unlink()
        big.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
