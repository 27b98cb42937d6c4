#!/usr/bin/env python3
"""Score (and optionally refit) the CSV outcome-cell splitter.

usage: dev_csvsplit.py [--fit] [--shared DIR]

Scores ``nlp.csvsplit.split_outcome_cell`` on ``gold/csv_cells.dev.jsonl`` exactly as
``eval/score_extraction.py`` scores ``csv_split`` (micro F1 over whitespace-/case-normalised
(measure, description, time frame) triples per cell), and on cells joined from the corpus's API v2 and
legacy-XML outcomes, whose true split is known: held-out studies (every fifth NCT id by hash) are the test
set. ``--fit`` refits the weights on the other studies and writes ``nlp/resources/csvsplit_weights.json``.
Needs ``../shared``; skips with a message when it is absent.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp import csvsplit  # noqa: E402


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", (s or "").strip()).casefold()


def f1_dev(shared: Path) -> tuple[float, list[str]]:
    """csv_split F1 as the scorer computes it, and the cells that are not exactly right."""
    tp = fp = fn = 0
    wrong = []
    for line in (shared / "data/gold/csv_cells.dev.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        g = json.loads(line)
        pred = [tuple(norm(x) for x in t) for t in csvsplit.split_outcome_cell(g["cell"])]
        gold = [(norm(o["measure"]), norm(o["description"]), norm(o["time_frame"])) for o in g["gold"]]
        left = list(gold)
        hit = 0
        for triple in pred:
            if triple in left:
                left.remove(triple)
                hit += 1
        tp, fp, fn = tp + hit, fp + len(pred) - hit, fn + len(left)
        if left or len(pred) != hit:
            wrong.append(g["item"])
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return (2 * p * r / (p + r) if p + r else 0.0), wrong


Cell = tuple[bool, str, str, list[tuple[str, str, str]]]


def corpus_cells(shared: Path) -> list[Cell]:
    """(is_test, source format, NCT id, true splits) per corpus cell (one study's primary, secondary or other
    outcomes) whose split is known."""
    out: list[Cell] = []
    with gzip.open(shared / "data/ctgov-studies.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            fmt = d.get("_source", {}).get("format", "")
            if fmt == "ctgov-csv-export":
                continue  # their split was guessed
            ps = d["protocolSection"]
            nct = ps["identificationModule"].get("nctId", "")
            test = zlib.crc32(nct.encode()) % 5 == 0
            for outs in (ps.get("outcomesModule") or {}).values():
                golds = []
                for o in outs:
                    m, de, t = (o.get(k) or "" for k in ("measure", "description", "timeFrame"))
                    if m.strip():
                        golds.append((m.strip(), de.strip(), t.strip()))
                if golds:
                    out.append((test, fmt, nct, golds))
    return out


def joined(gold: tuple[str, str, str]) -> str:
    return ", ".join(x for x in gold if x)


def accuracy(cells: list[Cell], test: bool, fmt: str = "") -> tuple[float, float, int]:
    """Exact-split accuracy overall and on the ambiguous outcomes (two or more ", "), each cell's
    outcomes split together as in a CSV-export cell."""
    right = n = amb_right = amb_n = 0
    for is_test, f, _, golds in cells:
        if is_test != test or (fmt and f != fmt):
            continue
        texts = [joined(g) for g in golds]
        for text, gold, pred in zip(texts, golds, csvsplit.split_outcomes(texts), strict=True):
            ok = tuple(norm(x) for x in pred) == tuple(norm(x) for x in gold)
            right += ok
            n += 1
            if text.count(", ") >= 2:
                amb_right += ok
                amb_n += 1
    return right / max(n, 1), amb_right / max(amb_n, 1), n


def mine_time_frames(cells: list[Cell], min_studies: int = 2) -> list[tuple[str, int]]:
    """Shapes of the fit-set time frames that at least ``min_studies`` studies use, most used first."""
    studies: dict[str, set[str]] = {}
    for is_test, _, nct, golds in cells:
        if is_test:
            continue
        for _, _, t in golds:
            if t:
                studies.setdefault(csvsplit.time_frame_shape(t), set()).add(nct)
    seen = {shape: len(ncts) for shape, ncts in studies.items()}
    kept = [(s, c) for s, c in seen.items() if c >= min_studies and "\t" not in s and "\n" not in s]
    return sorted(kept, key=lambda sc: (-sc[1], sc[0]))


def fit(cells: list[Cell]) -> dict[str, float]:
    """Fit the weights: softmax over each training outcome's candidate cuts, L2-regularised, Adam."""
    import numpy as np

    rows: list[list[float]] = []
    groups: list[int] = []
    golds: list[int] = []
    for is_test, _, _, cell in cells:
        if is_test:
            continue
        texts = [joined(g) for g in cell]
        multi = [i for i, t in enumerate(texts) if ", " in t]
        pres = [csvsplit._Parts(texts[i].split(", ")) for i in multi]
        shared = csvsplit._share(pres) if len(pres) > 1 else [None] * len(pres)
        for i, pre, sh in zip(multi, pres, shared, strict=True):
            parts = pre.parts
            gold = cell[i]
            cands = csvsplit.candidates(len(parts))
            target = None
            for k, (a, b) in enumerate(cands):
                if (", ".join(parts[:a]), ", ".join(parts[a:b]), ", ".join(parts[b:])) == gold:
                    target = k
                    break
            if target is None:
                continue
            golds.append(len(rows) + target)
            groups.append(len(rows))
            rows.extend(csvsplit.candidate_features(parts, a, b, pre, sh) for a, b in cands)
    x = np.asarray(rows, dtype=np.float64)
    starts = np.asarray(groups)
    gold_ix = np.asarray(golds)
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(x))))
    w = np.zeros(x.shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    lam, lr = LAMBDA, 0.05
    for step in range(1, STEPS + 1):
        s = x @ w
        gmax = np.maximum.reduceat(s, starts)
        e = np.exp(s - gmax[group_of])
        z = np.add.reduceat(e, starts)
        p = e / z[group_of]
        loss = -(s[gold_ix] - gmax - np.log(z)).mean() + lam * (w @ w)
        grad = (x.T @ p - x[gold_ix].sum(axis=0)) / len(starts) + 2 * lam * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        if step % 500 == 0:
            print(f"  step {step}: loss {loss:.4f}", file=sys.stderr)
    return {name: round(float(val), 4) for name, val in zip(csvsplit.FEATURES, w, strict=True)}


LAMBDA = 1e-3
STEPS = 1500


def main(argv: list[str]) -> int:
    shared = ROOT.parent / "shared"
    if "--shared" in argv:
        shared = Path(argv[argv.index("--shared") + 1])
    if not (shared / "data/gold/csv_cells.dev.jsonl").exists():
        print(f"skipped: {shared} (the shared data) is absent")
        return 0
    cells = corpus_cells(shared)
    if "--fit" in argv:
        shapes = mine_time_frames(cells)
        tf_path = ROOT / "nlp/resources" / csvsplit.TIME_FRAMES_FILE
        tf_path.write_text("shape\tstudies\n" + "".join(f"{s}\t{c}\n" for s, c in shapes), encoding="utf-8")
        csvsplit.clear_caches()
        weights = fit(cells)
        path = ROOT / "nlp/resources" / csvsplit.WEIGHTS_FILE
        path.write_text(
            json.dumps(
                {
                    "about": "Weights of nlp/csvsplit.py's candidate scorer; refit with "
                    "benchmarks/dev_csvsplit.py --fit.",
                    "weights": weights,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        csvsplit.clear_caches()
    f1, wrong = f1_dev(shared)
    print(f"csv_cells.dev  csv_split F1 {f1:.4f}  cells not exactly right: {', '.join(wrong) or 'none'}")
    for test in (False, True):
        acc, amb, n = accuracy(cells, test)
        name = "held-out" if test else "fit set "
        print(f"corpus {name} outcomes {n:6d}  exact split {acc:.4f}  with >=2 commas {amb:.4f}")
    for fmt in ("api-v2-json", "legacy-xml"):
        acc, amb, n = accuracy(cells, True, fmt)
        print(f"  held-out {fmt:12s} {n:6d}  exact split {acc:.4f}  with >=2 commas {amb:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
