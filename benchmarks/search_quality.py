"""Search quality on the dev sets: outcome search (nDCG@10, recall@10) and similar trials (nDCG@10).

Run: ``.venv/bin/python benchmarks/search_quality.py [--only outcomes|similar] [--index DIR] [--cache DIR]
[--json PATH] [-v]``. Reads ``../shared`` (or ``/work/shared``); exits with a message when it is absent.

**Outcome search.** The 240 outcomes of ``gold/outcomes.dev.jsonl`` are indexed with the real encoder, one
:class:`StudyEntry` per study holding only that study's gold outcomes (the dev set has one outcome per study,
so this is also one entry per outcome). Only the outcome text (measure + description) is indexed: no title,
conditions or summary. ``OutcomeEntry.endpoints`` and ``category`` are what our extractor
(:func:`nlp.endpoints.match_endpoints`) finds, never the gold labels; the text search does not read them.
For every endpoint id with at least 3 gold outcomes, two queries: its *label* (the id with ``_`` read as a
space, e.g. ``objective response rate``) and its *definition* (the ``definition`` column of
``data/endpoints.tsv``). Relevant = the gold outcomes labelled with that id. Binary-gain nDCG@10 (ideal =
``min(relevant, 10)`` hits) and recall@10 (hits / relevant, so an id with more than 10 relevant outcomes
cannot reach 1; the ``ceiling`` row shows the best possible), macro-averaged over endpoint ids, for the
dense, lexical and hybrid modes of :meth:`TrialIndex.search_outcomes`.

**Similar trials.** The 200 queries of ``data/similar.dev.jsonl`` against an index of the whole corpus
(``--index``, default ``/work/cache/corpus-index``; when that is absent or incomplete, one is built, or
resumed, in ``--cache``: about 20 minutes). Top-10 rankings, query excluded, scored by
``eval/score_similar.py`` (run as a subprocess on rankings written to a temporary directory):

* ``dense``: the query's stored ``tci`` vector (title + conditions + interventions) searched in the ``tci``
  store: plain dense search with the same model, the baseline of the goal;
* ``lexical`` / ``hybrid``: :meth:`TrialIndex.search` with the query's ``tci`` text;
* ``similar``: :meth:`TrialIndex.similar`, the field-aware ranking. Goal: its nDCG@10 >= 1.08x dense's.

Relevance comes from the NLM's MeSH terms in each record's ``derivedSection``; the index does not store that
section, so no ranking here can read it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from index.trial_index import TrialIndex

K = 10
MIN_GOLD = 3
MODES = ("dense", "lexical", "hybrid")
QUERY_TYPES = ("label", "definition")
OUTCOME_GOAL = 0.85  # hybrid nDCG@10 on definition queries
SIMILAR_GOAL = 1.08  # similar nDCG@10 / dense nDCG@10
SIMILAR_RANKINGS = ("dense", "lexical", "hybrid", "similar")
DEFAULT_INDEX = Path("/work/cache/corpus-index")
DEFAULT_CACHE = ROOT / "out" / "search-quality-index"


def _shared() -> Path | None:
    for candidate in (ROOT.parent / "shared", Path("/work/shared")):
        if (candidate / "data" / "gold" / "outcomes.dev.jsonl").exists():
            return candidate
    return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# -- metrics ------------------------------------------------------------------------------------------


def ndcg_binary(ranked: Sequence[bool], n_relevant: int, k: int = K) -> float:
    """nDCG@k with gain 1 per relevant hit; the ideal ranking puts ``min(n_relevant, k)`` hits first.

    >>> round(ndcg_binary([False, True], 1), 4)
    0.6309
    """
    dcg = sum(1.0 / math.log2(i + 2) for i, rel in enumerate(ranked[:k]) if rel)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(n_relevant, k)))
    return dcg / idcg if idcg else 0.0


def recall(ranked: Sequence[bool], n_relevant: int, k: int = K) -> float:
    """Relevant hits in the top ``k`` over all relevant items."""
    return sum(ranked[:k]) / n_relevant if n_relevant else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# -- part 1: outcome search ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointQueries:
    """The queries for one endpoint id and the gold outcomes that answer them."""

    endpoint: str
    label: str
    definition: str
    relevant: frozenset[tuple[str, int]]  # (study id, outcome slot in its entry)


def read_endpoint_definitions(path: Path) -> dict[str, str]:
    """``id -> definition`` from the shared ``endpoints.tsv`` (id, category, abbreviation, definition)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["id"]: row["definition"] for row in csv.DictReader(fh, delimiter="\t")}


def outcome_entries(rows: Sequence[dict[str, Any]]) -> tuple[list[Any], dict[str, list[tuple[str, int]]]]:
    """Study entries holding the gold outcomes (extractor endpoints, no gold labels), and gold id -> rows."""
    from index.documents import OutcomeEntry, StudyEntry
    from nlp.endpoints import match_endpoints

    entries: dict[str, StudyEntry] = {}
    by_endpoint: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in rows:
        measure, description = str(row.get("measure") or ""), str(row.get("description") or "")
        found = match_endpoints(measure, description)
        entry = entries.setdefault(row["nct_id"], StudyEntry(id=row["nct_id"]))
        entry.outcomes.append(
            OutcomeEntry(
                role=str(row.get("role") or ""),
                measure=measure,
                description=description,
                time_frame=str(row.get("time_frame") or ""),
                endpoints=list(found.ids),
                category=found.category,
            )
        )
        for endpoint in row["gold"]["endpoints"]:
            by_endpoint[endpoint].append((entry.id, len(entry.outcomes) - 1))
    return list(entries.values()), by_endpoint


def endpoint_queries(
    by_endpoint: dict[str, list[tuple[str, int]]], definitions: dict[str, str]
) -> list[EndpointQueries]:
    out = []
    for endpoint, rows in sorted(by_endpoint.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(rows) < MIN_GOLD:
            continue
        if endpoint not in definitions:
            raise SystemExit(f"gold endpoint {endpoint!r} has no definition in endpoints.tsv")
        out.append(
            EndpointQueries(endpoint, endpoint.replace("_", " "), definitions[endpoint], frozenset(rows))
        )
    return out


def run_outcomes(shared: Path, verbose: bool) -> dict[str, Any]:
    from index.encoder import default_encoder
    from index.trial_index import SearchMode, TrialIndex

    rows = _read_jsonl(shared / "data" / "gold" / "outcomes.dev.jsonl")
    definitions = read_endpoint_definitions(shared / "data" / "endpoints.tsv")
    entries, by_endpoint = outcome_entries(rows)
    queries = endpoint_queries(by_endpoint, definitions)
    t0 = time.perf_counter()
    index = TrialIndex(default_encoder())
    index.add(entries)
    build_s = time.perf_counter() - t0

    # per_endpoint[endpoint][mode][query type] = (nDCG@10, recall@10)
    per_endpoint: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    t0 = time.perf_counter()
    for q in queries:
        per_endpoint[q.endpoint] = {}
        for mode in MODES:
            per_endpoint[q.endpoint][mode] = {}
            for qtype in QUERY_TYPES:
                text = q.label if qtype == "label" else q.definition
                hits = index.search_outcomes(text, k=K, mode=SearchMode(mode))
                ranked = [(h.id, h.outcome) in q.relevant for h in hits]
                n = len(q.relevant)
                per_endpoint[q.endpoint][mode][qtype] = (ndcg_binary(ranked, n), recall(ranked, n))
    search_s = time.perf_counter() - t0

    summary = {
        mode: {
            qtype: {
                "ndcg@10": _mean([per_endpoint[q.endpoint][mode][qtype][0] for q in queries]),
                "recall@10": _mean([per_endpoint[q.endpoint][mode][qtype][1] for q in queries]),
            }
            for qtype in QUERY_TYPES
        }
        for mode in MODES
    }
    ceiling = _mean([min(len(q.relevant), K) / len(q.relevant) for q in queries])
    goal_value = summary["hybrid"]["definition"]["ndcg@10"]

    print(
        f"\n== Outcome search: {len(rows)} dev gold outcomes ({len(entries)} entries, outcome text only), "
        f"{len(queries)} endpoint ids with >= {MIN_GOLD} gold outcomes, {len(queries)} queries per type"
    )
    searches = len(queries) * len(MODES) * len(QUERY_TYPES)
    print(f"   indexed in {build_s:.1f} s; {searches} searches in {search_s:.1f} s")
    print(f"{'mode':<9}{'label nDCG@10':>15}{'label R@10':>12}{'defn nDCG@10':>15}{'defn R@10':>12}")
    for mode in MODES:
        lab, dfn = summary[mode]["label"], summary[mode]["definition"]
        print(
            f"{mode:<9}{lab['ndcg@10']:>15.4f}{lab['recall@10']:>12.4f}"
            f"{dfn['ndcg@10']:>15.4f}{dfn['recall@10']:>12.4f}"
        )
    print(f"{'ceiling':<9}{1.0:>15.4f}{ceiling:>12.4f}{1.0:>15.4f}{ceiling:>12.4f}")
    status = "met" if goal_value >= OUTCOME_GOAL else "NOT met"
    print(f"goal: hybrid nDCG@10 on definition queries >= {OUTCOME_GOAL}: {goal_value:.4f} ({status})")

    if verbose:
        columns = [f"{m[:3]}-{t[:3]}" for m in MODES for t in QUERY_TYPES]
        print("\nper endpoint, nDCG@10 (lab = label query, def = definition query)")
        print(f"{'endpoint':<27}{'gold':>5}" + "".join(f"{c:>9}" for c in columns))
        for q in queries:
            cells = "".join(f"{per_endpoint[q.endpoint][m][t][0]:>9.3f}" for m in MODES for t in QUERY_TYPES)
            print(f"{q.endpoint:<27}{len(q.relevant):>5}{cells}")

    return {
        "outcomes_indexed": len(rows),
        "entries": len(entries),
        "endpoint_ids": len(queries),
        "queries_per_type": len(queries),
        "modes": summary,
        "recall_ceiling": ceiling,
        "goal": {"metric": "hybrid definition ndcg@10", "target": OUTCOME_GOAL, "value": goal_value},
        "per_endpoint": {
            q.endpoint: {
                "gold": len(q.relevant),
                "label": q.label,
                "definition": q.definition,
                **{
                    mode: {
                        qtype: {"ndcg@10": vals[0], "recall@10": vals[1]}
                        for qtype, vals in per_endpoint[q.endpoint][mode].items()
                    }
                    for mode in MODES
                },
            }
            for q in queries
        },
    }


# -- part 2: similar trials ---------------------------------------------------------------------------


def count_records(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip().startswith(b"{"))


def _index_studies(directory: Path) -> int | None:
    meta = directory / "meta.json"
    if not meta.exists():
        return None
    try:
        return int(json.loads(meta.read_text(encoding="utf-8"))["counts"]["studies"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def corpus_index(corpus: Path, index_dir: Path, cache_dir: Path) -> TrialIndex:
    """The corpus index at ``index_dir`` when complete, else one built (or resumed) in ``cache_dir``."""
    from index.encoder import default_encoder
    from index.trial_index import TrialIndex

    expected = count_records(corpus)
    for directory in (index_dir, cache_dir):
        have = _index_studies(directory)
        if have is not None and have >= expected:
            print(f"   index: {directory} ({have:,} studies)")
            return TrialIndex.load(directory, default_encoder())
        if have is not None and directory == index_dir:
            print(f"   {directory} holds {have:,} of {expected:,} studies (a build may still be running)")
    from index.build import Progress, build_index
    from nlp.ingest import read_path

    print(f"   building the corpus index in {cache_dir} (resumable; about 20 minutes)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(expected)
    index, report = build_index(read_path(corpus), cache_dir, default_encoder(), progress=progress)
    progress.close()
    print(
        f"   built: {report.added:,} added, {report.skipped:,} already there, {len(report.errors)} unreadable"
    )
    return index


def _dense_tci(index: TrialIndex, study_id: str) -> list[str]:
    from index.trial_index import split_row_id

    vec = index.study_vectors(study_id).get("tci")
    if vec is None:
        return []
    _, ids = index.stores["tci"].search(vec[None, :], K + 1)
    return [index.entries[split_row_id(int(rid))[0]].id for rid in ids[0]]


def _text_ranking(mode: str) -> Callable[[TrialIndex, str], list[str]]:
    from index.trial_index import SearchMode

    def rank(index: TrialIndex, study_id: str) -> list[str]:
        text = index.get(study_id).field_text("tci")
        return [h.id for h in index.search(text, k=K + 1, mode=SearchMode(mode))] if text else []

    return rank


def _similar(index: TrialIndex, study_id: str) -> list[str]:
    return [h.id for h in index.similar(study_id, k=K)]


def score_rankings(scorer: Path, relevance: Path, rankings: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(scorer), str(relevance), str(rankings), "--k", str(K), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def run_similar(shared: Path, index_dir: Path, cache_dir: Path) -> dict[str, Any]:
    relevance = shared / "data" / "similar.dev.jsonl"
    scorer = shared / "eval" / "score_similar.py"
    queries = [row["query"] for row in _read_jsonl(relevance)]
    print(f"\n== Similar trials: {len(queries)} dev queries, top {K}, query excluded")
    t0 = time.perf_counter()
    index = corpus_index(shared / "data" / "ctgov-studies.jsonl.gz", index_dir, cache_dir)
    print(f"   index ready in {time.perf_counter() - t0:.1f} s")
    missing = [q for q in queries if q not in index]
    if missing:
        print(f"   {len(missing)} queries not in the index (scored 0): {', '.join(missing[:5])}")
    rankers: dict[str, Callable[[TrialIndex, str], list[str]]] = {
        "dense": _dense_tci,
        "lexical": _text_ranking("lexical"),
        "hybrid": _text_ranking("hybrid"),
        "similar": _similar,
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="search-quality-") as tmp:
        for name, rank in rankers.items():
            path = Path(tmp) / f"{name}.jsonl"
            t0 = time.perf_counter()
            with open(path, "w", encoding="utf-8") as fh:
                for query in queries:
                    ranking = [] if query in missing else [x for x in rank(index, query) if x != query][:K]
                    fh.write(json.dumps({"query": query, "ranking": ranking}) + "\n")
            elapsed = time.perf_counter() - t0
            results[name] = score_rankings(scorer, relevance, path)
            results[name]["ms_per_query"] = 1000 * elapsed / len(queries)
    ratio = (
        results["similar"]["ndcg@10"] / results["dense"]["ndcg@10"] if results["dense"]["ndcg@10"] else 0.0
    )
    print(f"{'ranking':<9}{'nDCG@10':>10}{'p2@10':>10}{'MRR':>10}{'ms/query':>10}")
    for name in SIMILAR_RANKINGS:
        r = results[name]
        print(
            f"{name:<9}{r['ndcg@10']:>10.4f}{r['p2@10']:>10.4f}{r['mrr2']:>10.4f}{r['ms_per_query']:>10.1f}"
        )
    status = "met" if ratio >= SIMILAR_GOAL else "NOT met"
    print(f"goal: similar / dense nDCG@10 >= {SIMILAR_GOAL}: {ratio:.4f} ({status})")
    return {
        "queries": len(queries),
        "missing": missing,
        "index_studies": len(index),
        "rankings": results,
        "goal": {"metric": "similar/dense ndcg@10", "target": SIMILAR_GOAL, "value": ratio},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", choices=("outcomes", "similar"), help="run one part")
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="a complete corpus index to reuse")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where to build one otherwise")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all numbers here")
    parser.add_argument("-v", "--verbose", action="store_true", help="per-endpoint outcome breakdown")
    args = parser.parse_args(argv)
    shared = _shared()
    if shared is None:
        print("skipped: ../shared (dev gold) not found")
        return 0
    report: dict[str, Any] = {"k": K}
    if args.only in (None, "outcomes"):
        report["outcomes"] = run_outcomes(shared, args.verbose)
    if args.only in (None, "similar"):
        report["similar"] = run_similar(shared, args.index, args.cache)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
