"""Dev-gold scores and corpus speed of endpoints, category and criteria (the scorer's definitions).

Run: ``.venv/bin/python benchmarks/dev_endpoints.py [-v]``. Reads ``../shared`` (or ``/work/shared``); exits
with a message when it is absent. Criteria of an outcome: union over measure, description and time frame,
first mention kept, unversioned names dropped when a versioned one is present (:func:`merge_criteria`).
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.criteria import find_criteria, merge_criteria  # noqa: E402
from nlp.endpoints import match_endpoints  # noqa: E402


def _shared() -> Path | None:
    for candidate in (ROOT.parent / "shared", Path("/work/shared")):
        if (candidate / "data" / "gold" / "outcomes.dev.jsonl").exists():
            return candidate
    return None


def _f1(tp: int, fp: int, fn: int) -> float:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return 2 * p * r / (p + r) if p + r else 0.0


def score(rows: list[dict[str, object]], verbose: bool) -> None:
    e_tp = e_fp = e_fn = exact = cat = c_tp = c_fp = c_fn = 0
    for row in rows:
        gold = row["gold"]
        assert isinstance(gold, dict)
        measure, description, tf = (str(row.get(k) or "") for k in ("measure", "description", "time_frame"))
        result = match_endpoints(measure, description)
        pred, want = set(result.ids), set(gold["endpoints"])
        e_tp, e_fp, e_fn = e_tp + len(pred & want), e_fp + len(pred - want), e_fn + len(want - pred)
        exact += pred == want
        cat += result.category == gold["category"]
        crit = {
            h.name.casefold() for h in merge_criteria(find_criteria(t) for t in (measure, description, tf))
        }
        gcrit = {c.casefold() for c in gold["criteria"]}
        c_tp, c_fp, c_fn = c_tp + len(crit & gcrit), c_fp + len(crit - gcrit), c_fn + len(gcrit - crit)
        if verbose and (pred != want or result.category != gold["category"] or crit != gcrit):
            print(row.get("item"), measure[:80], "| pred", sorted(pred), result.category, sorted(crit))
            print("    gold", sorted(want), gold["category"], sorted(gcrit))
    n = len(rows)
    print(
        f"n={n} endpoints F1 {_f1(e_tp, e_fp, e_fn):.4f}  exact {exact / n:.4f}  category {cat / n:.4f}  "
        f"criteria F1 {_f1(c_tp, c_fp, c_fn):.4f}"
    )


def speed(corpus: Path) -> None:
    outcomes: list[tuple[str, str, str]] = []
    with gzip.open(corpus, "rt", encoding="utf-8") as fh:
        for line in fh:
            module = json.loads(line).get("protocolSection", {}).get("outcomesModule", {})
            for role in ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes"):
                for o in module.get(role) or []:
                    outcomes.append((o.get("measure", ""), o.get("description", ""), o.get("timeFrame", "")))
    match = match_endpoints.__wrapped__  # uncached: the honest rate
    find = find_criteria.__wrapped__
    match("warm up")
    find("warm up")
    start = time.perf_counter()
    for m, d, t in outcomes:
        match(m, d)
        find(m), find(d), find(t)
    elapsed = time.perf_counter() - start
    print(f"{len(outcomes)} corpus outcomes: {1e6 * elapsed / len(outcomes):.1f} µs per outcome (uncached)")


def main() -> int:
    shared = _shared()
    if shared is None:
        print("skipped: ../shared (dev gold) not found")
        return 0
    verbose = "-v" in sys.argv
    gold = shared / "data" / "gold"
    print("outcomes.dev:", end=" ")
    with open(gold / "outcomes.dev.jsonl", encoding="utf-8") as fh:
        score([json.loads(line) for line in fh], verbose)
    speed(shared / "data" / "ctgov-studies.jsonl.gz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
