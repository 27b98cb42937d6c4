"""Score the time-frame fields (points, cycles, horizon, interval, anchor) on the dev gold.

Computes what ``shared/eval/score_extraction.py`` computes for these fields, straight from
:func:`nlp.timeframes.parse_time_frame` and :func:`nlp.anchors.resolve_anchor`, on
``gold/outcomes.dev.jsonl`` plus the seed outcomes (time frames split from the seeds' CSV cells).
Also times the parser over every time frame of the corpus, without the cache.

usage: python benchmarks/dev_timing.py [--errors] [--no-speed]
Skips with a message when ../shared (or /work/shared) is absent.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from nlp.anchors import resolve_anchor
from nlp.timeframes import parse_time_frame, parse_time_frame_uncached
from nlp.types import DAYS_PER_UNIT


def _shared() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "shared", Path("/work/shared")):
        if (candidate / "data" / "gold" / "outcomes.dev.jsonl").exists():
            return candidate
    return None


def _days(pair: list[Any] | None) -> float | None:
    return None if not pair else float(pair[0]) * DAYS_PER_UNIT[pair[1]]


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(0.5, 0.01 * abs(b))


class _F1:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, pred: list[Any], gold: list[Any], same: Any = lambda a, b: a == b) -> None:
        gold = list(gold)
        hit = 0
        for p in pred:
            for i, g in enumerate(gold):
                if same(p, g):
                    hit += 1
                    gold.pop(i)
                    break
        self.tp += hit
        self.fp += len(pred) - hit
        self.fn += len(gold)

    def f1(self) -> float:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return 2 * p * r / (p + r) if p + r else 0.0


def _split_cell(cell: str) -> list[str]:
    """measure, description, time frame of a seed's CSV cell (dev only: the real split is the CSV reader's).

    The time frame starts at the last ", " before a capital or a digit that does not continue a list
    of times ("At 28 days, 3 months, ...").
    """
    parts = cell.split(", ")
    cut = len(parts) - 1
    for i in range(len(parts) - 1, 1, -1):
        head = parts[i][:1]
        if (head.isupper() or head.isdigit()) and not re.search(
            r"(?:days?|weeks?|months?|years?)$", parts[i - 1]
        ):
            cut = i
            break
    return [parts[0], ", ".join(parts[1:cut]), ", ".join(parts[cut:])]


def _seed_items(shared: Path) -> list[dict[str, Any]]:
    texts: dict[tuple[str, str], list[list[str]]] = {}
    for path in sorted((shared / "data" / "seeds").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for role, line in (("primary", lines[4]), ("secondary", lines[5])):
            texts[(path.stem, role)] = [_split_cell(cell) for cell in line.split("|")]
    items = []
    for line in (shared / "data" / "gold" / "seeds.gold.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if "endpoints" not in item["gold"]:
            continue
        measure, description, time_frame = texts[(item["nct_id"], item["role"])][item["index"]]
        items.append({**item, "measure": measure, "description": description, "time_frame": time_frame})
    return items


def score(items: list[dict[str, Any]], show_errors: bool) -> dict[str, float]:
    points, cycles = _F1(), _F1()
    right = {"horizon": 0, "anchor": 0, "interval": 0}
    for item in items:
        gold = item["gold"]
        t = parse_time_frame(item["time_frame"])
        anchor = resolve_anchor(item["time_frame"], item["measure"], item.get("description", ""))
        pp = [(p.value, p.unit) for p in t.points]
        gp = [(float(v), u) for v, u in gold.get("points") or []]
        points.add(pp, gp, lambda p, q: p[1] == q[1] and abs(p[0] - q[0]) < 1e-6)
        pc = [(c.cycle, c.day) for c in t.cycles]
        gc = [tuple(c) for c in gold.get("cycles") or []]
        cycles.add(pc, gc)
        ok = {
            "horizon": _close(t.horizon_days, _days(gold.get("horizon"))),
            "anchor": (anchor.kind if anchor else None) == gold.get("anchor"),
            "interval": _close(t.interval.days if t.interval else None, _days(gold.get("interval"))),
        }
        for key, good in ok.items():
            right[key] += good
        bad = [k for k, good in ok.items() if not good]
        if sorted(pp) != sorted(set(gp)):
            bad.append("points")
        if sorted(pc, key=str) != sorted(gc, key=str):
            bad.append("cycles")
        if show_errors and bad:
            print(f"-- {item.get('item')} {bad}\n   TF: {item['time_frame']}")
            print(f"   M: {item['measure'][:120]}\n   D: {item.get('description', '')[:200]!r}")
            print(f"   pred: pts={pp} cyc={pc} hz={t.horizon_days} iv={t.interval and t.interval.days}")
            print(f"         anchor={anchor and (anchor.kind, anchor.text, anchor.field)}")
            print(f"   gold: pts={gp} cyc={gc} hz={_days(gold.get('horizon'))} iv={gold.get('interval')}")
            print(f"         anchor={gold.get('anchor')}  note={item.get('note', '')[:200]}")
    n = len(items)
    out = {k: right[k] / n for k in right}
    out["points_f1"] = points.f1()
    out["cycles_f1"] = cycles.f1()
    out["n"] = n
    return out


def _speed(shared: Path) -> None:
    frames: list[str] = []
    with gzip.open(shared / "data" / "ctgov-studies.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            om = json.loads(line).get("protocolSection", {}).get("outcomesModule") or {}
            for key in ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes"):
                frames.extend(o["timeFrame"] for o in om.get(key) or [] if o.get("timeFrame"))
    parse_time_frame_uncached(frames[0])
    start = time.perf_counter()
    for text in frames:
        parse_time_frame_uncached(text)
    elapsed = time.perf_counter() - start
    print(
        f"speed: {len(frames)} corpus time frames, {elapsed / len(frames) * 1e6:.1f} µs per call (no cache)"
    )


def main(argv: list[str]) -> int:
    shared = _shared()
    if shared is None:
        print("dev_timing: skipped, ../shared (dev gold) is absent")
        return 0
    gold_path = shared / "data" / "gold" / "outcomes.dev.jsonl"
    items = [json.loads(line) for line in gold_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items += _seed_items(shared)
    result = score(items, "--errors" in argv)
    print(f"dev timing ({result['n']} outcomes): horizon {result['horizon']:.4f}", end="")
    print(f"  points F1 {result['points_f1']:.4f}  cycles F1 {result['cycles_f1']:.4f}", end="")
    print(f"  anchor {result['anchor']:.4f}  interval {result['interval']:.4f}")
    if "--no-speed" not in argv:
        _speed(shared)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
