"""Similar trials: per-field similarities combined, with the reasons for every hit.

A candidate set is gathered from nearest neighbours in each field's vector store (the query's
title + conditions + interventions, each of its conditions, each of its interventions, its summary) and from
BM25 over its conditions and title; each candidate is then scored exactly, field by field:

* ``tci``: cosine of the title + conditions + interventions vectors;
* ``conditions`` / ``interventions``: cosine of the mean of the item vectors (each condition and each
  intervention is its own vector in the index);
* ``conditions_best`` / ``interventions_best``: the best pair, one item from each side, so two trials that
  share one condition among several still score high on it;
* ``conditions_cover`` / ``interventions_cover``: for each of the query's items, its best match in the
  candidate, averaged: how much of the query the candidate covers;
* ``summary``: cosine of the mean summary-window vectors;
* ``endpoints``: overlap of the extracted endpoint ids (Jaccard); ``design``: shared phases (Jaccard).

The score is the weighted sum over the fields both studies have (a field missing on either side adds
nothing). The weights (:data:`DEFAULT_WEIGHTS`) were fitted on the development relevance set by coordinate
ascent and checked on held-out halves (``benchmarks/search_quality.py`` reports the ranking against plain
dense search). Nothing here reads the registry's ``derivedSection`` (the NLM's MeSH indexing), which is what
relevance is judged by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from index.documents import StudyEntry
from index.encoder import Vectors, encode, encode_chunks, normalise

if TYPE_CHECKING:
    from index.filters import SearchFilters
    from index.trial_index import TrialIndex

#: Field weights of the similar-trials score.
DEFAULT_WEIGHTS: Final[Mapping[str, float]] = {
    "tci": 1.4,
    "conditions": 1.5,
    "conditions_best": 1.0,
    "conditions_cover": 0.4,
    "interventions": 0.0,
    "interventions_best": 1.0,
    "interventions_cover": 0.45,
    # Reported with every hit, but on the development set neither the summary nor endpoint overlap added
    # to the ranking (summary 0.1: -0.002 nDCG@10); endpoints keep a token weight to break ties.
    "summary": 0.0,
    "endpoints": 0.05,
    "design": 0.05,
}
#: Stores whose rows are items of a list (one vector per condition / intervention).
ITEM_FIELDS: Final[tuple[str, ...]] = ("conditions", "interventions")
#: Nearest neighbours taken as candidates per query vector, by store.
CANDIDATES: Final[Mapping[str, int]] = {"tci": 200, "conditions": 100, "interventions": 50, "summary": 100}
#: At most this many of the query's conditions (interventions) each fetch their own neighbours.
MAX_ITEM_QUERIES: Final = 8


@dataclass(slots=True)
class SimilarHit:
    """A study similar to the query, with why."""

    id: str
    score: float
    title: str
    reasons: dict[str, Any] = field(default_factory=dict)


def jaccard(a: Sequence[str], b: Sequence[str]) -> float | None:
    """``|a ∩ b| / |a ∪ b|``; ``None`` when either side is empty (nothing to compare).

    >>> jaccard(["os", "pfs"], ["pfs"])
    0.5
    """
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return None
    return len(sa & sb) / len(sa | sb)


_NORM = re.compile(r"[^a-z0-9]+")


def _norm(text: str) -> str:
    return _NORM.sub(" ", text.casefold()).strip()


def shared(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """Items of ``a`` that ``b`` also has, compared case- and punctuation-insensitively, in ``a``'s order."""
    keys = {_norm(x) for x in b}
    return [x for x in a if _norm(x) in keys]


def combine(field_scores: Mapping[str, float | None], weights: Mapping[str, float]) -> float:
    """The weighted sum of the field scores that are present."""
    return float(sum(weights.get(name, 0.0) * s for name, s in field_scores.items() if s is not None))


def query_vectors(index: TrialIndex, entry: StudyEntry) -> dict[str, Vectors]:
    """The rows a study not in the index would have, per store: ``tci`` (1), ``conditions`` and
    ``interventions`` (one per item), ``summary`` (one per window)."""
    out: dict[str, Vectors] = {}
    tci = entry.field_text("tci")
    texts = [tci] if tci else []
    texts += entry.conditions + entry.interventions
    vecs = encode(index.encoder, texts)
    pos = 0
    if tci:
        out["tci"], pos = vecs[:1], 1
    for name, items in (("conditions", entry.conditions), ("interventions", entry.interventions)):
        if items:
            out[name] = vecs[pos : pos + len(items)]
            pos += len(items)
    if entry.summary:
        out["summary"], _ = encode_chunks(index.encoder, [entry.summary])
    return out


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def _mean(vecs: Vectors) -> Vectors:
    return np.asarray(normalise(vecs.mean(axis=0, keepdims=True))[0], dtype=np.float32)


def _pooled(
    sims: npt.NDArray[np.float32], owner: npt.NDArray[np.int64], n: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per candidate, from pairwise similarities ``sims[row, query_item]`` of its rows (``owner[row]``,
    non-decreasing): the best pair, and the mean over query items of each item's best match (NaN where the
    candidate has no rows)."""
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    best_per_item = np.maximum.reduceat(sims, starts, axis=0)  # (candidates with rows, query items)
    best = np.full(n, np.nan)
    cover = np.full(n, np.nan)
    best[owner[starts]] = best_per_item.max(axis=1)
    cover[owner[starts]] = best_per_item.mean(axis=1)
    return best, cover


def similar_trials(
    index: TrialIndex,
    query: str | StudyEntry,
    k: int = 10,
    filters: SearchFilters | None = None,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> list[SimilarHit]:
    """The ``k`` studies most similar to an indexed study (by id) or to a new one (a :class:`StudyEntry`)."""
    from index.trial_index import split_row_id

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if isinstance(query, str):
        entry = index.get(query)
        qrows = {name: index.study_rows(query, name) for name in CANDIDATES}
        qrows = {name: v for name, v in qrows.items() if len(v)}
    else:
        entry = query
        qrows = query_vectors(index, entry)
    allowed = index._allowed_studies(filters)
    # Candidates: each query vector's neighbours in its own store, plus BM25 on conditions and title.
    candidates: set[int] = set()
    for name, vecs in qrows.items():
        probes = vecs[:MAX_ITEM_QUERIES] if name in ITEM_FIELDS else _mean(vecs)[None, :]
        rows = None if allowed is None else index._rows_of(name, allowed)
        _, ids = index.stores[name].search(probes, CANDIDATES[name], rows)
        candidates.update(split_row_id(rid)[0] for hit_ids in ids for rid in hit_ids)
    lexical_query = " ".join([*entry.conditions, entry.title])
    if lexical_query.strip():
        lexical = index._trial_lexical().search_keys(lexical_query, CANDIDATES["tci"], allowed)
        candidates.update(no for no, _ in lexical)
    exclude = index.numbers.get(entry.id)
    if exclude is not None:
        candidates.discard(exclude)
    if not candidates:
        return []
    nos = sorted(candidates)
    position = {no: j for j, no in enumerate(nos)}
    scores: dict[str, npt.NDArray[np.float64]] = {}
    for name, qvecs in qrows.items():
        row_ids = index._rows_of(name, nos)
        if not len(row_ids):
            continue
        # Rows come grouped by candidate, in candidate order: owner is non-decreasing.
        owner = np.array([position[split_row_id(int(r))[0]] for r in row_ids], dtype=np.int64)
        cand_vecs = index.stores[name].reconstruct(row_ids)
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        means = normalise(np.add.reduceat(cand_vecs, starts, axis=0))  # mean vector per candidate
        scores[name] = np.full(len(nos), np.nan)
        scores[name][owner[starts]] = means @ _mean(qvecs)
        if name in ITEM_FIELDS:
            best, cover = _pooled(cand_vecs @ qvecs.T, owner, len(nos))
            scores[f"{name}_best"], scores[f"{name}_cover"] = best, cover
    query_endpoints, query_phases = entry.endpoints, entry.phases
    scores["endpoints"] = np.array(
        [_nan(jaccard(query_endpoints, index.entries[no].endpoints)) for no in nos], dtype=np.float64
    )
    scores["design"] = np.array(
        [_nan(jaccard(query_phases, index.entries[no].phases)) for no in nos], dtype=np.float64
    )
    # The weighted sum over present fields, for all candidates at once; per-field dicts only for the top k.
    total = np.zeros(len(nos))
    for name, values in scores.items():
        total += weights.get(name, 0.0) * np.nan_to_num(values, nan=0.0)
    order = sorted(range(len(nos)), key=lambda j: (-total[j], nos[j]))[:k]
    hits = []
    for j in order:
        per_field = {
            name: None if np.isnan(values[j]) else float(values[j]) for name, values in scores.items()
        }
        hits.append((combine(per_field, weights), nos[j], per_field))
    out = []
    for score, no, per_field in hits[:k]:
        cand = index.entries[no]
        reasons: dict[str, Any] = {
            "shared_conditions": shared(cand.conditions, entry.conditions),
            "shared_interventions": shared(cand.interventions, entry.interventions),
            "shared_endpoints": [e for e in cand.endpoints if e in set(entry.endpoints)],
            "shared_phases": [p for p in cand.phases if p in set(entry.phases)],
            "field_scores": {name: None if v is None else round(v, 4) for name, v in per_field.items()},
        }
        out.append(SimilarHit(cand.id, round(score, 6), cand.title, reasons))
    return out
