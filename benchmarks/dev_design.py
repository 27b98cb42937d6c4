"""Score nlp.design.extract_design on the dev trial gold and the seed trials, as the shared scorer does.

Reads ``../shared/data/gold/trials.dev.jsonl`` (records from ``../shared/data/ctgov-studies.jsonl.gz``)
and the trial lines of ``seeds.gold.jsonl`` (records from ``data/seeds``); prints each field's accuracy
and, with ``-v``, every miss. Skips with a message when ``../shared`` is absent.

    .venv/bin/python benchmarks/dev_design.py [--shared ../shared] [-v]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.design import Design, extract_design  # noqa: E402
from nlp.ingest import read_path  # noqa: E402
from nlp.study import Study, study_texts  # noqa: E402

DAYS = {"minute": 1 / 1440, "hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}
TARGETS = {
    "phases": 0.95,
    "escalation": 0.90,
    "dlt_window": 0.95,
    "dlt_rule": 0.85,
    "enrollment": 0.85,
    "cohort_size": 0.85,
}


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(0.5, 0.01 * abs(b))


def _norm(s: str | None) -> str:
    return " ".join((s or "").split()).casefold()


def judge(d: Design, gold: dict[str, Any]) -> dict[str, bool]:
    """Each field right or wrong, exactly as ``score_extraction.py`` decides it."""
    gw = gold.get("dlt_window")
    gr = gold.get("dlt_rule")
    out = {
        "phases": sorted(d.phases) == sorted(gold.get("phases") or []),
        "escalation": _norm(d.escalation) == _norm(gold.get("escalation")),
        "dlt_window": _close(d.dlt_window_days, float(gw[0]) * DAYS[gw[1]] if gw else None),
        "dlt_rule": (d.dlt_rule == (gr["max_events"], gr["of_patients"])) if gr else d.dlt_rule is None,
    }
    for key in ("enrollment", "cohort_size"):
        gv, pv = gold.get(key), getattr(d, key)
        out[key] = (gv is None and not pv) or (gv is not None and pv is not None and list(pv) == gv)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("-v", action="store_true", help="print every miss")
    args = parser.parse_args()
    shared = Path(args.shared)
    gold_dir = shared / "data" / "gold"
    if not (gold_dir / "trials.dev.jsonl").exists():
        print(f"skipped: {gold_dir} not found (the dev gold lives in ../shared)")
        return 0
    items = [json.loads(x) for x in (gold_dir / "trials.dev.jsonl").read_text().splitlines() if x.strip()]
    seeds = [json.loads(x) for x in (gold_dir / "seeds.gold.jsonl").read_text().splitlines() if x.strip()]
    items += [s for s in seeds if "dose_groups" in s["gold"]]
    want = {g["nct_id"] for g in items}
    studies: dict[str, Study] = {}
    for path in [
        shared / "data" / "ctgov-studies.jsonl.gz",
        *sorted((ROOT / "data" / "seeds").glob("*.txt")),
    ]:
        for rec in read_path(path):
            if isinstance(rec, Study) and rec.id in want:
                studies[rec.id] = rec
    right: dict[str, list[bool]] = {k: [] for k in TARGETS}
    for g in items:
        s = studies.get(g["nct_id"])
        if s is None:
            print(f"missing record {g['nct_id']}")
            continue
        d = extract_design(study_texts(s), s.phases, s.outcomes)
        for key, ok in judge(d, g["gold"]).items():
            right[key].append(ok)
            if not ok and args.v:
                gv = g["gold"].get(key)
                pv = {"dlt_window": d.dlt_window_days}.get(key, getattr(d, key, None))
                ev = [
                    e
                    for e in d.evidence
                    if e[3].startswith(key.split("_")[0] if key != "cohort_size" else "cohort")
                ]
                print(f"MISS {key:12} {g['nct_id']:12} gold={gv} pred={pv} ev={ev}")
    ok_all = True
    for key, vals in right.items():
        acc = sum(vals) / len(vals) if vals else 0.0
        ok_all &= acc >= TARGETS[key]
        print(f"{key:12} {acc:.4f}  (target {TARGETS[key]:.2f}, n={len(vals)})")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
