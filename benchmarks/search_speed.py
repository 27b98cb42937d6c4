"""Search speed: latency at corpus scale, build rate against the raw encoder, and IVF at a million rows.

Three parts, one run (``--parts`` picks some):

* ``latency``: the whole corpus (``../shared/data/ctgov-studies.jsonl.gz``, 11.6k studies, real embeddings)
  in one :class:`~index.trial_index.TrialIndex`; p50/p99/mean per query of trial search (hybrid, dense,
  lexical), outcome search (the same three) and similar trials (by indexed NCT id), each unfiltered and under
  two filters, plus the encoder's own query-embedding latency as a reference. Queries are distinct realistic
  texts sampled from the corpus with a fixed seed (conditions, interventions, "intervention condition" pairs
  and outcome measures; outcome measures for outcome search; indexed ids for similar). The lines take turns
  query by query, so a machine that speeds up or slows down during the run affects them all alike.
* ``build``: studies/s of ``index.build.build_index`` from raw records (read + extract + embed + add + save)
  next to the raw encoder's rate on the same texts, measured in the same run, contestants interleaved; the
  ratio's goal is >= 0.8. ``encode`` skips repeated texts (as the build does), so the encoder is also timed
  on every window with no de-duplication, and both ratios are printed.
* ``scale``: a million outcome vectors synthesised around the corpus's real ones (Gaussian noise, then
  renormalised; fixed seed) in ``VectorStore.build(kind=IVF)``; recall@10 against exact search (a FAISS
  ``IndexFlatIP`` over the same rows) and per-query p50/p99 on 1,000 held-out queries (other real vectors
  plus noise, never in the index). Goal: recall@10 >= 0.95 with p99 <= 20 ms. An nprobe sweep shows what
  other settings would give.

FAISS and torch run on ``--threads`` threads (default 1: per-query latency on one core). Absolute times
depend on the machine (2 shared cores here); ratios from the same run are what to compare.
The index of the whole corpus is reused from ``--index DIR`` (default ``/work/cache/corpus-index`` when
complete), else built once into ``--cache-dir``.

    .venv/bin/python benchmarks/search_speed.py [--index DIR] [--json PATH]
    .venv/bin/python benchmarks/search_speed.py --studies 500 --queries 100 --build-studies 100 \\
        --scale-rows 100000 --scale-queries 200          # a quick run
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from index.documents import StudyEntry
    from index.encoder import SentenceTransformerEncoder
    from index.trial_index import TrialIndex

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "ctgov-studies.jsonl.gz"
DEFAULT_INDEX = Path("/work/cache/corpus-index")
PARTS = ("latency", "build", "scale")
#: Filters the latency lines run under: one study-level (broad), one outcome-level (narrow).
FILTERS: dict[str, dict[str, Any]] = {
    "phase 1": {"phases": ["1"]},
    "OS, horizon 1-5 y": {"endpoints": ["overall_survival"], "horizon": "365..1825"},
}
K = 10

Floats = npt.NDArray[np.float32]


# -- small helpers --------------------------------------------------------------------------------------


def set_threads(n: int) -> str:
    """FAISS, torch and numpy's BLAS on ``n`` threads; returns which thread pools were limited."""
    import faiss
    import torch

    faiss.omp_set_num_threads(n)
    torch.set_num_threads(n)
    try:
        # numpy's BLAS (brute-force filtered search, similar-trials scoring) has its own pool.
        from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return "FAISS and torch (threadpoolctl missing: numpy's BLAS uses its default threads)"
    threadpool_limits(n)
    return "FAISS, torch and BLAS (" + ", ".join(sorted({p["internal_api"] for p in threadpool_info()})) + ")"


def summary_ms(times_ns: Sequence[int]) -> dict[str, float]:
    """p50, p99 and mean of per-query times, in milliseconds."""
    arr = np.asarray(times_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "mean_ms": round(float(arr.mean()), 3),
        "n": len(arr),
    }


def rss_mb() -> tuple[float, float]:
    """Current and peak resident memory of this process, in MB."""
    current = 0.0
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return current, peak


def count_records(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def distinct(texts: Sequence[str]) -> list[str]:
    """Texts in first-seen order, repeats (ignoring case and spacing) dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        key = " ".join(text.casefold().split())
        if key and key not in seen:
            seen.add(key)
            out.append(text.strip())
    return out


# -- the index of the corpus ------------------------------------------------------------------------------


def studies_in(directory: Path) -> int | None:
    """How many studies the index in ``directory`` holds (None: no index there)."""
    meta = directory / "meta.json"
    if not meta.is_file():
        return None
    return int(json.loads(meta.read_text(encoding="utf-8"))["counts"]["studies"])


def corpus_index(
    args: argparse.Namespace, encoder: SentenceTransformerEncoder
) -> tuple[TrialIndex, Path, float]:
    """The index of the corpus (or its first ``--studies``): reused when complete, else built (resumably)."""
    from index.build import Progress, build_index
    from index.trial_index import TrialIndex
    from nlp.ingest import read_path

    want = args.studies or count_records(CORPUS)
    candidates = [args.index] if args.index else [DEFAULT_INDEX, args.cache_dir / f"corpus-index-{want}"]
    for directory in candidates:
        have = studies_in(directory)
        if have == want:
            t0 = time.perf_counter()
            index = TrialIndex.load(directory, encoder)
            return index, directory, time.perf_counter() - t0
        if args.index:
            raise SystemExit(f"{directory}: holds {have} studies, expected {want:,} (see --studies)")
    out = args.cache_dir / f"corpus-index-{want}"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"building an index of {want:,} studies in {out} (resumable; reused by later runs)", flush=True)
    index, report = build_index(
        islice(read_path(CORPUS), want), out, encoder, progress=Progress(want, every=30)
    )
    print(f"built in {report.seconds:.0f} s ({report.added:,} added, {report.skipped:,} already there)")
    return index, out, report.seconds


# -- part 1: latency ----------------------------------------------------------------------------------------


def trial_queries(entries: Sequence[StudyEntry], n: int, rng: random.Random) -> list[str]:
    """Distinct free-text trial queries: conditions, interventions, "intervention condition", measures."""
    conditions = distinct([c for e in entries for c in e.conditions])
    interventions = distinct([i.split(" / ")[0] for e in entries for i in e.interventions])
    pairs = distinct(
        [
            f"{rng.choice(e.interventions).split(' / ')[0]} {rng.choice(e.conditions)}"
            for e in entries
            if e.interventions and e.conditions
        ]
    )
    measures = distinct([o.measure for e in entries for o in e.outcomes if 3 <= len(o.measure) <= 150])
    pools = [conditions, interventions, pairs, measures]
    for pool in pools:
        rng.shuffle(pool)
    # Equal shares of each kind, taken in turn, repeats across kinds dropped.
    mixed = distinct([p[i] for i in range(max(map(len, pools))) for p in pools if i < len(p)])
    return mixed[:n]


def outcome_queries(entries: Sequence[StudyEntry], n: int, rng: random.Random) -> list[str]:
    """Distinct outcome measure texts, as a researcher would paste them."""
    measures = distinct([o.measure for e in entries for o in e.outcomes if 3 <= len(o.measure) <= 200])
    rng.shuffle(measures)
    return measures[:n]


@dataclass
class Line:
    """One latency line: a callable run on query ``i``, returning how many hits came back."""

    label: str
    run: Callable[[int], int]
    times: list[int] = field(default_factory=list)
    full: int = 0
    returns_hits: bool = True


def latency(args: argparse.Namespace, index: TrialIndex, results: dict[str, Any]) -> None:
    from index.encoder import encode
    from index.filters import SearchFilters
    from index.trial_index import SearchMode

    entries = [index.entries[no] for no in sorted(index.entries)]
    rng = random.Random(args.seed)
    tq = trial_queries(entries, args.queries, rng)
    oq = outcome_queries(entries, args.queries, rng)
    sq = rng.sample(index.ids(), min(args.queries, len(index)))
    n = min(len(tq), len(oq), len(sq))
    counts = index.counts()
    field_rows = sum(counts[f"{name}_vectors"] for name in ("tci", "conditions", "interventions"))
    print(
        f"\n== latency: {counts['studies']:,} studies, {counts['outcomes_vectors']:,} outcome rows, "
        f"{field_rows:,} trial-field rows, "
        f"{counts['summary_vectors']:,} summary windows; stores "
        f"{', '.join(sorted({p['kind'] for p in (s.params() for s in index.stores.values())}))}"
    )
    print(
        f"{n:,} distinct queries per line ({len(tq):,} trial texts, {len(oq):,} outcome measures, "
        f"{len(sq):,} indexed ids; seed {args.seed}), k={K}, {args.threads} thread(s)"
    )
    filters = {name: SearchFilters.make(**spec) for name, spec in FILTERS.items()}
    total_rows = counts["outcomes_vectors"]
    selectivity: dict[str, dict[str, Any]] = {}
    for name, f in filters.items():
        reps = 5
        start_ns = time.perf_counter_ns()
        for _ in range(reps):
            n_trials = sum(f.trial_matches(e) for e in entries)
        trial_ns = (time.perf_counter_ns() - start_ns) / reps
        start_ns = time.perf_counter_ns()
        for _ in range(reps):
            rows = sum(f.outcome_matches(o) for e in entries if f.study_matches(e) for o in e.outcomes)
        row_ns = (time.perf_counter_ns() - start_ns) / reps
        selectivity[name] = {
            "trials": n_trials,
            "outcome_rows": rows,
            "trial_filter_ms": round(trial_ns / 1e6, 2),
            "outcome_filter_ms": round(row_ns / 1e6, 2),
        }
        print(
            f"filter [{name}]: {n_trials:,}/{len(entries):,} studies, {rows:,}/{total_rows:,} outcome rows; "
            f"evaluating it over the index costs {trial_ns / 1e6:.1f} ms (studies) / {row_ns / 1e6:.1f} ms "
            "(outcomes) per query"
        )

    # The first lexical query builds the BM25 indexes (lazily, once per loaded index): timed on its own.
    t0 = time.perf_counter()
    index.search(tq[-1], K, mode=SearchMode.LEXICAL)
    bm25_trials = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search_outcomes(oq[-1], K, mode=SearchMode.LEXICAL)
    bm25_outcomes = time.perf_counter() - t0
    print(f"first lexical query (builds BM25): trials {bm25_trials:.2f} s, outcomes {bm25_outcomes:.2f} s")

    encoder = index.encoder

    def embed(i: int) -> int:
        return len(encode(encoder, [tq[i]]))

    def trials(mode: SearchMode, flt: SearchFilters | None) -> Callable[[int], int]:
        return lambda i: len(index.search(tq[i], K, mode=mode, filters=flt))

    def outcomes(mode: SearchMode, flt: SearchFilters | None) -> Callable[[int], int]:
        return lambda i: len(index.search_outcomes(oq[i], K, mode=mode, filters=flt))

    def similar(flt: SearchFilters | None) -> Callable[[int], int]:
        return lambda i: len(index.similar(sq[i], K, flt))

    variants: list[tuple[str, SearchFilters | None]] = [("", None)]
    variants += [(f" [{name}]", flt) for name, flt in filters.items()]
    lines = [Line("encoder: embed one query", embed, returns_hits=False)]
    lines += [Line(f"trial search {m}{label}", trials(m, flt)) for label, flt in variants for m in SearchMode]
    lines += [
        Line(f"outcome search {m}{label}", outcomes(m, flt)) for label, flt in variants for m in SearchMode
    ]
    lines += [Line(f"similar (indexed id){label}", similar(flt)) for label, flt in variants]
    for line in lines:  # warm-up: first calls allocate, page in, JIT nothing but fill caches
        for i in range(min(3, n)):
            line.run(n - 1 - i)
    started = time.perf_counter()
    for i in range(n):
        if i and i % max(1, n // 10) == 0:
            print(
                f"  ... {i:,}/{n:,} queries, {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        for line in lines:
            t0 = time.perf_counter_ns()
            hits = line.run(i)
            line.times.append(time.perf_counter_ns() - t0)
            line.full += hits >= K
    wall = time.perf_counter() - started
    print(f"{'':44} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'k hits':>7}")
    out: dict[str, Any] = {}
    for line in lines:
        s = summary_ms(line.times)
        full = f"{100 * line.full / n:6.0f}%" if line.returns_hits else f"{'-':>7}"
        if line.returns_hits:
            s["full_k_fraction"] = round(line.full / n, 4)
        out[line.label] = s
        print(f"{line.label:44} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {s['mean_ms']:8.2f} {full}")
    print(
        f"({len(lines)} lines x {n:,} queries, taking turns, in {wall:.0f} s; 'k hits' = queries that "
        f"returned {K} hits: lexical search returns only documents sharing a word with the query)"
    )
    results["latency"] = {
        "studies": counts["studies"],
        "counts": counts,
        "queries": n,
        "threads": args.threads,
        "filters": {name: {**FILTERS[name], **selectivity[name]} for name in FILTERS},
        "bm25_first_query_s": {"trials": round(bm25_trials, 3), "outcomes": round(bm25_outcomes, 3)},
        "lines": out,
    }


# -- part 2: build rate -------------------------------------------------------------------------------------


def sample_records(n: int, seed: int) -> bytes:
    """``n`` raw JSON-lines records of the corpus, chosen with a fixed seed, in file order."""
    with gzip.open(CORPUS, "rb") as fh:
        lines = [line for line in fh if line.strip()]
    picks = sorted(random.Random(seed).sample(range(len(lines)), min(n, len(lines))))
    return b"".join(lines[i] for i in picks)


def build_rate(
    args: argparse.Namespace, encoder: SentenceTransformerEncoder, results: dict[str, Any]
) -> None:
    from index.build import build_index
    from index.documents import make_entry
    from index.encoder import encode
    from index.trial_index import TrialIndex
    from nlp.ingest import read_bytes
    from nlp.pipeline import Extractor
    from nlp.study import Study

    data = sample_records(args.build_studies, args.seed)
    studies = [s for s in read_bytes(data, "sample.jsonl") if isinstance(s, Study)]
    n = len(studies)
    t0 = time.perf_counter()
    extractor = Extractor()
    extractor_load = time.perf_counter() - t0
    entries = [make_entry(s, x) for s, x in zip(studies, extractor.extract_studies(studies), strict=True)]
    texts = TrialIndex(encoder).texts_to_encode(entries)
    t0 = time.perf_counter()
    windows = encoder.split(texts).windows
    split_s = time.perf_counter() - t0
    print(
        f"\n== build rate: {n:,} studies sampled from the corpus (seed {args.seed}): {len(texts):,} texts "
        f"({len(set(texts)):,} distinct), {len(windows):,} windows ({len(set(windows)):,} distinct); "
        f"torch on {args.threads} thread(s), best of {args.build_rounds} interleaved rounds"
    )

    def run_build() -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="search-speed-build-") as tmp:
            t0 = time.perf_counter()
            index, report = build_index(
                read_bytes(data, "sample.jsonl"), Path(tmp) / "index", encoder, resume=False
            )
            total = time.perf_counter() - t0
            if report.added != n or report.errors:
                raise SystemExit(f"build added {report.added} of {n} studies, {len(report.errors)} errors")
            del index
        return {"seconds": total, "add_seconds": report.encode_seconds}

    def run_encode() -> dict[str, float]:
        t0 = time.perf_counter()
        encode(encoder, texts)
        return {"seconds": time.perf_counter() - t0}

    def run_windows() -> dict[str, float]:
        t0 = time.perf_counter()
        encoder.encode_windows(windows)
        return {"seconds": time.perf_counter() - t0}

    contestants: list[tuple[str, Callable[[], dict[str, float]]]] = [
        ("build_index", run_build),
        ("encode", run_encode),
        ("encode_windows", run_windows),
    ]
    best: dict[str, dict[str, float]] = {}
    all_runs: dict[str, list[float]] = {name: [] for name, _ in contestants}
    for r in range(args.build_rounds):
        # Alternate the order too, so neither contestant always runs right after the other.
        for name, run in contestants if r % 2 == 0 else contestants[::-1]:
            got = run()
            all_runs[name].append(round(got["seconds"], 3))
            if name not in best or got["seconds"] < best[name]["seconds"]:
                best[name] = got
    rate = {name: n / got["seconds"] for name, got in best.items()}
    b = best["build_index"]
    other = b["seconds"] - b["add_seconds"] - extractor_load
    print(f"{'raw encoder: encode(texts), repeats once':44} {rate['encode']:9,.1f} studies/s")
    print(f"{'raw encoder: encode_windows(every window)':44} {rate['encode_windows']:9,.1f} studies/s")
    print(
        f"{'build_index (read+extract+embed+add+save)':44} {rate['build_index']:9,.1f} studies/s   "
        f"[{b['seconds']:.1f} s = TrialIndex.add {b['add_seconds']:.1f} s + Extractor() "
        f"{extractor_load:.1f} s + read/extract/save {other:.1f} s]"
    )
    ratio = rate["build_index"] / rate["encode"]
    ratio_windows = rate["build_index"] / rate["encode_windows"]
    print(f"{'ratio build / encode(texts)':44} {ratio:9.2f}x   (goal >= 0.8)")
    print(f"{'ratio build / encode_windows(all windows)':44} {ratio_windows:9.2f}x")
    print(f"(splitting the texts into windows: {split_s:.2f} s, not in the raw rates; runs: {all_runs})")
    results["build"] = {
        "studies": n,
        "texts": len(texts),
        "distinct_texts": len(set(texts)),
        "windows": len(windows),
        "distinct_windows": len(set(windows)),
        "rounds": args.build_rounds,
        "runs_s": all_runs,
        "rate_studies_per_s": {k: round(v, 2) for k, v in rate.items()},
        "build_add_s": round(b["add_seconds"], 3),
        "extractor_load_s": round(extractor_load, 3),
        "split_s": round(split_s, 3),
        "ratio_build_to_encode": round(ratio, 3),
        "ratio_build_to_encode_windows": round(ratio_windows, 3),
    }


# -- part 3: a million outcome vectors ----------------------------------------------------------------------


def noisy(base: Floats, picks: npt.NDArray[np.int64], sigma: float, rng: np.random.Generator) -> Floats:
    from index.encoder import normalise

    noise = rng.standard_normal((len(picks), base.shape[1]), dtype=np.float32)
    noise *= np.float32(sigma)
    return normalise(base[picks] + noise)


def synthesise(
    real: Floats, rows: int, queries: int, sigma: float, query_sigma: float, seed: int
) -> tuple[Floats, Floats, dict[str, Any]]:
    """``rows`` vectors around part of ``real`` and ``queries`` held-out ones around the rest."""
    rng = np.random.default_rng(seed)
    unique = np.unique(real, axis=0)
    order = rng.permutation(len(unique))
    held, base = unique[order[:queries]], unique[order[queries:]]
    out = np.empty((rows, real.shape[1]), dtype=np.float32)
    first = min(rows, len(base))
    out[:first] = base[:first]  # the real vectors themselves, then noisy copies round-robin
    chunk = 100_000
    for start in range(first, rows, chunk):
        end = min(rows, start + chunk)
        picks = np.arange(start, end, dtype=np.int64) % len(base)
        out[start:end] = noisy(base, picks, sigma, rng)
    q = noisy(held, np.arange(len(held), dtype=np.int64), query_sigma, rng)
    # How far a noisy copy lands from its real vector (cosine), to say what the noise means.
    probe = np.arange(min(len(base), 10_000), dtype=np.int64)
    cos_rows = float(np.mean(np.sum(noisy(base, probe, sigma, rng) * base[probe], axis=1)))
    cos_q = float(np.mean(np.sum(q * held, axis=1)))
    info = {
        "real_vectors": len(real),
        "distinct_real": len(unique),
        "base_vectors": min(len(base), rows),
        "held_out": len(held),
        "sigma": sigma,
        "query_sigma": query_sigma,
        "mean_cos_row_to_base": round(cos_rows, 4),
        "mean_cos_query_to_base": round(cos_q, 4),
    }
    return out, q, info


def recall_at(found: Sequence[Sequence[int]], truth: npt.NDArray[np.int64], k: int) -> float:
    return float(
        np.mean([len(set(f[:k]) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)])
    )


def timed_queries(store: Any, q: Floats, k: int) -> tuple[list[list[int]], list[int]]:
    """Per-query search, one query per call as a service would do it: hits and times (ns)."""
    found: list[list[int]] = []
    times: list[int] = []
    for i in range(len(q)):
        t0 = time.perf_counter_ns()
        _, ids = store.search(q[i : i + 1], k)
        times.append(time.perf_counter_ns() - t0)
        found.append(ids[0])
    return found, times


def scale(args: argparse.Namespace, real: Floats, results: dict[str, Any]) -> None:
    import faiss

    from index.store import IndexKind, VectorStore

    t0 = time.perf_counter()
    vecs, q, info = synthesise(
        real, args.scale_rows, args.scale_queries, args.noise, args.query_noise, args.seed
    )
    synth_s = time.perf_counter() - t0
    dim = vecs.shape[1]
    print(
        f"\n== at scale: {len(vecs):,} outcome vectors around {info['base_vectors']:,} distinct real outcome "
        f"vectors (Gaussian noise sigma {args.noise}/dim, mean cosine to its real vector "
        f"{info['mean_cos_row_to_base']:.3f}; synthesised in {synth_s:.0f} s); {len(q):,} held-out queries "
        f"(other real vectors + sigma {args.query_noise}, cosine {info['mean_cos_query_to_base']:.3f})"
    )
    set_threads(args.build_threads)
    ids = np.arange(len(vecs), dtype=np.int64)
    rss0, _ = rss_mb()
    t0 = time.perf_counter()
    store = VectorStore.build(dim, ids, vecs, kind=IndexKind.IVF, seed=args.seed)
    build_s = time.perf_counter() - t0
    rss1, peak = rss_mb()
    assert store.ivf is not None
    ivf = store.ivf
    index_mb = (len(vecs) * (dim * 4 + 8) + ivf.nlist * dim * 4) / 2**20
    print(
        f"VectorStore.build(kind=ivf): {build_s:.0f} s on {args.build_threads} thread(s) (train + add + "
        f"nprobe tuning); nlist {ivf.nlist:,}, tuned nprobe {ivf.nprobe} (own recall@10 {ivf.recall_at_10}); "
        f"memory: RSS +{rss1 - rss0:,.0f} MB (now {rss1:,.0f} MB, peak {peak:,.0f} MB), "
        f"vectors + ids + centroids {index_mb:,.0f} MB"
    )
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(vecs)
    _, truth = flat.search(q, K)
    truth_s = time.perf_counter() - t0
    del flat
    set_threads(args.threads)
    tuned = ivf.nprobe
    timed_queries(store, q[: min(20, len(q))], K)  # warm-up
    found, times = timed_queries(store, q, K)
    recall = recall_at(found, truth, K)
    s = summary_ms(times)
    ok = recall >= 0.95 and s["p99_ms"] <= 20
    print(
        f"exact truth (IndexFlatIP, {args.build_threads} thread(s)): {truth_s:.1f} s for {len(q):,} queries"
    )
    print(
        f"IVF nprobe {tuned}: recall@10 {recall:.4f} (goal >= 0.95), per query on {args.threads} thread(s): "
        f"p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms (goal <= 20), mean {s['mean_ms']:.2f} ms -> "
        f"{'goals met' if ok else 'GOALS NOT MET'}"
    )
    sweep: list[dict[str, Any]] = []
    print(
        f"{'nprobe sweep (same index and queries):':41} {'nprobe':>6} {'recall@10':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8}"
    )
    probes = sorted({2**i for i in range(int(math.log2(ivf.nlist)) + 1) if 2**i <= args.max_nprobe} | {tuned})
    for nprobe in probes:
        ivf.nprobe = nprobe
        found_p, times_p = timed_queries(store, q, K)
        sp = summary_ms(times_p)
        row = {"nprobe": nprobe, "recall_at_10": round(recall_at(found_p, truth, K), 4), **sp}
        sweep.append(row)
        mark = "  <- tuned" if nprobe == tuned else ""
        print(f"{'':41} {nprobe:6} {row['recall_at_10']:9.4f} {sp['p50_ms']:8.2f} {sp['p99_ms']:8.2f}{mark}")
    ivf.nprobe = tuned
    meeting = [row for row in sweep if row["recall_at_10"] >= 0.95 and row["p99_ms"] <= 20]
    if meeting:
        row = meeting[0]
        print(
            f"smallest nprobe meeting both goals at nlist {ivf.nlist:,}: {row['nprobe']} (recall@10 "
            f"{row['recall_at_10']:.4f}, p99 {row['p99_ms']:.2f} ms)"
        )
    else:
        print(f"no nprobe up to {args.max_nprobe} meets both goals at nlist {ivf.nlist:,}")
    results["scale"] = {
        **info,
        "rows": len(vecs),
        "queries": len(q),
        "build_s": round(build_s, 1),
        "build_threads": args.build_threads,
        "threads": args.threads,
        "nlist": ivf.nlist,
        "nprobe": tuned,
        "tuned_recall_at_10": ivf.recall_at_10,
        "recall_at_10": round(recall, 4),
        "latency": s,
        "rss_delta_mb": round(rss1 - rss0),
        "rss_peak_mb": round(peak),
        "index_mb_estimate": round(index_mb),
        "truth_s": round(truth_s, 1),
        "goals_met": ok,
        "nprobe_sweep": sweep,
        "smallest_nprobe_meeting_goals": meeting[0]["nprobe"] if meeting else None,
    }


def outcome_vectors(index: TrialIndex) -> Floats:
    """Every outcome vector stored in the index (an outcome's slot is its position in the study)."""
    from index.trial_index import row_id

    rows = [row_id(no, i) for no, entry in sorted(index.entries.items()) for i in range(len(entry.outcomes))]
    return index.stores["outcomes"].reconstruct(np.array(rows, dtype=np.int64))


# -- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: latency,build,scale")
    parser.add_argument("--index", type=Path, default=None, help="a saved index of the corpus to reuse")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "trialsift-search-speed",
        help="where an index is built when none is given (kept for later runs)",
    )
    parser.add_argument("--studies", type=int, default=None, help="only the first N studies of the corpus")
    parser.add_argument("--queries", type=int, default=1_000, help="distinct queries per latency line")
    parser.add_argument("--build-studies", type=int, default=400, help="studies in the build-rate sample")
    parser.add_argument("--build-rounds", type=int, default=2, help="rounds per build-rate contestant")
    parser.add_argument("--scale-rows", type=int, default=1_000_000, help="vectors in the at-scale index")
    parser.add_argument("--scale-queries", type=int, default=1_000, help="held-out at-scale queries")
    parser.add_argument("--noise", type=float, default=0.025, help="per-dimension sigma of synthesised rows")
    parser.add_argument("--query-noise", type=float, default=0.025, help="per-dimension sigma of queries")
    parser.add_argument("--max-nprobe", type=int, default=256, help="largest nprobe in the sweep")
    parser.add_argument("--threads", type=int, default=1, help="FAISS/torch threads for timed queries")
    parser.add_argument("--build-threads", type=int, default=1, help="FAISS threads for the 1M build/truth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also save the numbers here")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; expected {', '.join(PARTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not CORPUS.exists():
        print(f"skipped: {CORPUS} is absent (this benchmark needs the ../shared corpus)")
        return 0
    try:
        from index.encoder import EncoderError, default_encoder
    except ImportError as err:
        print(f"skipped: the search dependencies are missing ({err})")
        return 0
    try:
        encoder = default_encoder()
    except EncoderError as err:
        print(f"skipped: {err}")
        return 0
    pools = set_threads(args.threads)
    print(f"threads: {pools} limited to {args.threads}")
    results: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "thread_pools": pools,
    }
    index: TrialIndex | None = None
    if "latency" in args.parts or "scale" in args.parts:
        index, where, seconds = corpus_index(args, encoder)
        print(f"index {where}: {len(index):,} studies (loaded/built in {seconds:.1f} s)")
        results["index"] = {"path": str(where), "load_s": round(seconds, 2)}
    if "latency" in args.parts:
        assert index is not None
        latency(args, index, results)
    real: Floats | None = None
    if "scale" in args.parts:
        assert index is not None
        real = outcome_vectors(index)
    index = None  # the scale part needs the memory more than the index
    if "build" in args.parts:
        build_rate(args, encoder, results)
    if real is not None:
        scale(args, real, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nnumbers saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
