"""Score dose groups and dose_group_count on the dev gold, as ``shared/eval/score_extraction.py`` does.

Runs :func:`nlp.dose_groups.find_dose_groups` over ``gold/studies.dev.jsonl`` (the studies of
``gold/trials.dev.jsonl``) and the two seed texts, and scores dose groups as micro-F1 over
(value within 1 %, unit) and dose_group_count as accuracy.

usage: python benchmarks/dev_doses.py [--errors]
Skips with a message when ../shared (or /work/shared) is absent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from nlp.dose_groups import DoseGroups, find_dose_groups
from nlp.ingest import read_path
from nlp.study import Study, study_texts


def _shared() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "shared", Path("/work/shared")):
        if (candidate / "data" / "gold" / "trials.dev.jsonl").exists():
            return candidate
    return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 0.01 * abs(b)


def _studies(shared: Path) -> dict[str, Study]:
    out: dict[str, Study] = {}
    seeds = Path(__file__).resolve().parent.parent / "data" / "seeds"
    paths = [shared / "data" / "gold" / "studies.dev.jsonl", *sorted(seeds.glob("*.txt"))]
    for path in paths:
        for s in read_path(path):
            if isinstance(s, Study):
                out[s.id] = s
    return out


def main(argv: list[str]) -> int:
    shared = _shared()
    if shared is None:
        print("dev_doses: ../shared not found, skipping")
        return 0
    gold: list[dict[str, Any]] = []
    for name in ("trials.dev.jsonl", "seeds.gold.jsonl"):
        with open(shared / "data" / "gold" / name, encoding="utf-8") as handle:
            for line in handle:
                item = json.loads(line)
                if "dose_groups" in item["gold"]:
                    gold.append(item)
    studies = _studies(shared)
    tp = fp = fn = right = 0
    for item in gold:
        g = item["gold"]
        study = studies.get(item["nct_id"])
        res = (
            find_dose_groups(study_texts(study), study.interventions, study.arm_groups)
            if study
            else DoseGroups((), None)
        )
        pred = [(grp.value, grp.unit) for grp in res.groups]
        want = [(float(v), u) for v, u, *_ in g["dose_groups"]]
        left = list(want)
        hit = 0
        for p in pred:
            for i, w in enumerate(left):
                if p[1] == w[1] and _close(p[0], w[0]):
                    hit += 1
                    left.pop(i)
                    break
        tp, fp, fn = tp + hit, fp + len(pred) - hit, fn + len(left)
        ok = res.count == g.get("dose_group_count")
        right += ok
        if "--errors" in argv and (hit != len(pred) or left or not ok):
            print(f"{item['nct_id']}: pred {pred} count {res.count}")
            print(f"{'':12} gold {want} count {g.get('dose_group_count')}  | {item.get('note', '')[:150]}")
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    print(f"dose_groups        P {prec:.4f} R {rec:.4f} F1 {f1:.4f}  (tp {tp} fp {fp} fn {fn})")
    print(f"dose_group_count   {right / len(gold):.4f}  ({right}/{len(gold)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
