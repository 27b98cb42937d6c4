"""Scaling past one machine: the Ray backend against the local one, and a shard-built index at 1M vectors.

Parts (``--parts``, all by default):

``annotate``
    ``trialsift annotate`` over the 11.6k-study corpus (``../shared/data/ctgov-studies.jsonl.gz``; the
    bundled 3,000-study sample when ``../shared`` is absent), as subprocesses: the local backend (the
    baseline, 2 workers) and ``--backend ray`` (Ray started on this machine's cores, its start-up included).
    Prints studies/s and the overhead ratio Ray/local (goal, issue 7: >= 0.8).
``index``
    ``trialsift index build`` on the first 1,500 sample studies: the local backend (one process, the encoder
    on every core; the baseline) against ``--backend ray`` (2 actors, one encoder thread each).
``rates``
    Per-core rates for docs/scaling.md: extraction (one process, no output) and embedding (the packaged
    MiniLM on one thread) of the sample's studies, in studies/s and texts/s.
``vectors``
    An index of 1M synthetic outcome vectors built the shard way (``index.scale.build_from_shards``): IVF-PQ
    and IVF-HNSW, each trained on a sample, 10 shards added and merged on disk; prints build time per step,
    vectors/s, recall@10 against exact search (and the nprobe reaching it), bytes per vector, and query
    latency. The baseline, measured in the same run, is an exact ``IndexFlatIP`` over the same vectors
    (build time, query latency, size): every figure is printed with its ratio to it.

    The synthetic vectors are real outcome embeddings (the sample's 18,522 outcome texts) blended in pairs
    and jittered: ``normalise(λ·a + (1-λ)·b + σ·g)``, λ ~ U(0.5, 1), σ = 0.03 per dimension, so they keep the
    real data's clusters and near-duplicates rather than being uniform noise (on which IVF recall is
    meaningless).

    .venv/bin/python benchmarks/ray_scale.py [--parts annotate,index,rates,vectors] [--vectors 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "data" / "ctgov-studies.jsonl.gz"
SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"
TRIALSIFT = Path(sys.executable).with_name("trialsift")


def _count(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stderr


def part_annotate(work: Path) -> None:
    corpus = CORPUS if CORPUS.is_file() else SAMPLE
    n = _count(corpus)
    print(f"\n## annotate: {n:,} studies from {corpus.name}, this machine ({os.cpu_count()} cores)")
    local_s, _ = _timed([str(TRIALSIFT), "annotate", str(corpus), "-o", str(work / "local.jsonl"), "-q"])
    ray_s, stderr = _timed(
        [str(TRIALSIFT), "annotate", str(corpus), "-o", str(work / "ray"), "--backend", "ray"]
    )
    shards = json.loads((work / "ray" / "manifest.json").read_text())["shards"]
    local_lines = (work / "local.jsonl").read_text(encoding="utf-8").splitlines()
    ray_lines = [
        line
        for s in shards
        for line in (work / "ray" / f"{s['name']}.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    same = sorted(local_lines) == sorted(ray_lines)
    print("| backend | s | studies/s | ratio to local |")
    print("|---|---|---|---|")
    print(f"| local, 2 workers (baseline) | {local_s:.1f} | {n / local_s:.0f} | 1.00 |")
    print(f"| ray, 2 actors (start-up included) | {ray_s:.1f} | {n / ray_s:.0f} | {local_s / ray_s:.2f} |")
    match = re.search(r"time\s+([\d.]+) s", stderr)
    if match:
        inner = float(match.group(1))
        print(
            f"| ray, pipeline only (after ray.init) | {inner:.1f} | {n / inner:.0f} | {local_s / inner:.2f} |"
        )
    print(f"records identical (order aside): {same}; {len(shards)} shards")


def part_index(work: Path, n: int) -> None:
    """``trialsift index build`` on the first ``n`` sample studies: local (baseline) against Ray."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        lines = list(itertools.islice(handle, n))
    source = work / "index-input.jsonl"
    source.write_text("".join(lines), encoding="utf-8")
    print(f"\n## index build: {len(lines):,} sample studies, this machine ({os.cpu_count()} cores)")
    local_s, _ = _timed(
        [str(TRIALSIFT), "index", "build", str(source), "--out", str(work / "local-idx"), "-q"]
    )
    ray_s, stderr = _timed(
        [str(TRIALSIFT), "index", "build", str(source), "--out", str(work / "ray-idx"), "--backend", "ray"]
    )
    print("| backend | s | studies/s | ratio to local |")
    print("|---|---|---|---|")
    print(f"| local, one process, all cores (baseline) | {local_s:.1f} | {len(lines) / local_s:.1f} | 1.00 |")
    print(
        f"| ray, 2 actors (start-up included) | {ray_s:.1f} | {len(lines) / ray_s:.1f} | "
        f"{local_s / ray_s:.2f} |"
    )
    match = re.search(r"embedded in ([\d.]+) s on \d+ Ray CPUs, indexed in ([\d.]+) s", stderr)
    if match:
        print(f"ray: embedding stage {match.group(1)} s, index from shards {match.group(2)} s")


def part_rates() -> None:
    from index.documents import make_entry
    from index.encoder import SentenceTransformerEncoder
    from index.trial_index import TrialIndex
    from nlp.ingest import read_path
    from nlp.pipeline import Extractor
    from nlp.study import Study

    studies = [s for s in itertools.islice(read_path(SAMPLE), 1000) if isinstance(s, Study)]
    extractor = Extractor()
    list(extractor.extract_studies(studies[:100]))  # warm the caches' common words
    t0 = time.perf_counter()
    results = list(extractor.extract_studies(studies))
    extract_s = time.perf_counter() - t0
    entries = [make_entry(s, r) for s, r in zip(studies, results, strict=True)]
    index = TrialIndex(SentenceTransformerEncoder(threads=1))
    index.encode_studies(entries[:20])
    texts = len(index.texts_to_encode(entries))
    t0 = time.perf_counter()
    index.encode_studies(entries)
    embed_s = time.perf_counter() - t0
    print(f"\n## per-core rates ({len(studies):,} sample studies, one process, one thread)")
    print(f"extraction: {len(studies) / extract_s:.0f} studies/s")
    print(
        f"embedding (MiniLM, {index.encoder.precision}, 1 thread): {len(studies) / embed_s:.1f} studies/s, "
        f"{texts / embed_s:.0f} texts/s ({texts / len(studies):.1f} texts per study)"
    )
    outcomes = sum(len(e.outcomes) for e in entries)
    print(f"outcomes per study: {outcomes / len(entries):.2f}")


def _real_outcome_vectors() -> np.ndarray:
    from index.encoder import SentenceTransformerEncoder, encode
    from nlp.ingest import read_path
    from nlp.study import Study

    texts = []
    for study in read_path(SAMPLE):
        if isinstance(study, Study):
            texts.extend(o.measure + (" " + o.description if o.description else "") for o in study.outcomes)
    return encode(SentenceTransformerEncoder(), texts)


def synthetic(anchors: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, anchors.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        a = anchors[rng.integers(0, len(anchors), m)]
        b = anchors[rng.integers(0, len(anchors), m)]
        lam = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        x = lam * a + (1 - lam) * b + 0.03 * rng.standard_normal((m, anchors.shape[1]), dtype=np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _write_shards(vectors: np.ndarray, directory: Path, shards: int, per_study: int = 10) -> list[Path]:
    import pyarrow.parquet as pq

    from index.scale import shard_table, vector_column
    from index.trial_index import STORES

    directory.mkdir(parents=True)
    studies = len(vectors) // per_study
    bounds = np.linspace(0, studies, shards + 1).astype(int)
    paths = []
    for s, (a, b) in enumerate(itertools.pairwise(bounds)):
        columns: dict[str, list[Any]] = {
            "id": [f"SYN{i:08d}" for i in range(a, b)],
            "source_no": [0] * (b - a),
            "seq": list(range(a, b)),
            "sub": [0] * (b - a),
            "entry": [json.dumps({"id": f"SYN{i:08d}"}) for i in range(a, b)],
            "summary_windows": [0] * (b - a),
        }
        for name in STORES:
            columns[vector_column(name)] = [b""] * (b - a)
        columns[vector_column("outcomes")] = [
            vectors[i * per_study : (i + 1) * per_study].tobytes() for i in range(a, b)
        ]
        path = directory / f"part-{s:05d}.parquet"
        pq.write_table(shard_table(columns), path)
        paths.append(path)
    return paths


def _query_ms(index: Any, queries: np.ndarray, params: Any = None) -> float:
    import faiss

    faiss.omp_set_num_threads(1)
    index.search(queries[:5], 10, params=params)
    t0 = time.perf_counter()
    for q in queries:
        index.search(q[None, :], 10, params=params)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return 1000 * (time.perf_counter() - t0) / len(queries)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def part_vectors(work: Path, n: int, shards: int, anchors_file: Path | None) -> None:
    import faiss

    from index.scale import build_from_shards, midpoint_queries
    from index.store import IndexKind

    t0 = time.perf_counter()
    if anchors_file is not None and anchors_file.is_file():
        anchors = np.load(anchors_file)
    else:
        anchors = _real_outcome_vectors()
        if anchors_file is not None:
            np.save(anchors_file, anchors)
    print(
        f"\n## index of {n:,} synthetic outcome vectors ({len(anchors):,} real anchors embedded in "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    vectors = synthetic(anchors, n)
    paths = _write_shards(vectors, work / "shards", shards)
    d = vectors.shape[1]
    queries = midpoint_queries(vectors, 200, 7)
    # Baseline: exact search over the same vectors.
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(vectors)
    flat_build = time.perf_counter() - t0
    flat_ms = _query_ms(flat, queries)
    _, truth = flat.search(queries, 10)
    flat_bytes = n * d * 4
    del flat
    print(
        "| index | build s | vectors/s | train / add / merge / measure s | recall@10 (nprobe) | "
        "held-out recall@10 | bytes/vector | query ms (1 thread) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| exact IndexFlatIP (baseline) | {flat_build:.1f} | {n / flat_build:,.0f} | - | 1.000 | 1.000 | "
        f"{flat_bytes / n:.0f} (1.00) | {flat_ms:.2f} (1.00) |"
    )
    model = {"id": "synthetic", "fingerprint": "synthetic", "dimension": d}
    for kind in (IndexKind.IVF_PQ, IndexKind.IVF_HNSW):
        out = work / f"index-{kind}"
        t0 = time.perf_counter()
        meta = build_from_shards(
            paths, out, model, kind=kind, log=lambda line: print(f"  {line}", flush=True)
        )
        build_s = time.perf_counter() - t0
        params = meta["build"]["stores"]["outcomes"]
        secs = params["seconds"]
        files = meta["files"]
        size = files["store.outcomes"]["bytes"] + files["store.outcomes.ivfdata"]["bytes"]
        rss0 = _rss_mb()
        index = faiss.read_index(str(out / files["store.outcomes"]["name"]), faiss.IO_FLAG_ONDISK_SAME_DIR)
        rss_load = _rss_mb() - rss0
        search_params = faiss.SearchParametersIVF(nprobe=params["nprobe"])
        ms = _query_ms(index, queries, search_params)
        # Held-out queries (not the build's own recall sample): exact truth from the flat baseline.
        _, found = index.search(queries, 10, params=search_params)
        ids = np.arange(n)  # shard studies hold 10 vectors each, slots 0..9
        row = (ids // 10 << 16) | (ids % 10)
        truth_ids = [set(row[t].tolist()) for t in truth]
        held_out = float(
            np.mean([len(t & set(f.tolist())) / 10 for t, f in zip(truth_ids, found, strict=True)])
        )
        print(
            f"| {kind} {params['factory']} | {build_s:.1f} ({build_s / flat_build:.1f}x) | "
            f"{n / build_s:,.0f} | "
            f"{secs['train']} / {secs['add']} / {secs['merge']} / {secs['measure']} | "
            f"{params['recall_at_10']:.3f} ({params['nprobe']}) | {held_out:.3f} | "
            f"{size / n:.0f} ({size / flat_bytes:.2f}) | {ms:.2f} ({ms / flat_ms:.2f}) |"
        )
        print(f"  load: +{rss_load:.0f} MB RSS (lists memory-mapped); {size / 1e6:.0f} MB on disk")
        del index
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="annotate,index,rates,vectors")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--index-studies", type=int, default=1500, help="studies for the index part")
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument(
        "--anchors", type=Path, help="keep the embedded outcome anchors in this .npy file (and reuse them)"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="trialsift-ray-bench-") as tmp:
        work = Path(tmp)
        if "annotate" in parts:
            part_annotate(work)
        if "index" in parts:
            part_index(work, args.index_studies)
        if "rates" in parts:
            part_rates()
        if "vectors" in parts:
            part_vectors(work, args.vectors, args.shards, args.anchors)


if __name__ == "__main__":
    main()
