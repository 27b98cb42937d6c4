"""The search facade: studies and outcomes in FAISS and BM25, searched dense, lexical or hybrid.

One :class:`TrialIndex` holds five vector stores, one per represented field (``tci``, ``conditions``,
``interventions``, ``summary`` windows, ``outcomes``), and two BM25 indexes (trials, outcomes). Row ids pack
the study's number and the row's slot (window or outcome index) into one int64, so everything about a row is
known from its id and studies can be added, replaced and removed without renumbering.

>>> idx = TrialIndex(HashingEncoder())                       # doctest: +SKIP
>>> idx.add([entry]); idx.save("out/index")                  # doctest: +SKIP
>>> TrialIndex.load("out/index", encoder).search("objective response", k=5)   # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from index import files
from index.concepts import CONCEPT_THRESHOLD, ConceptMatch, EndpointConcepts
from index.documents import StudyEntry
from index.encoder import Encoder, Vectors, encode, encode_chunks, normalise
from index.files import IndexFileError
from index.filters import SearchFilters
from index.fusion import RRF_K, reciprocal_rank_fusion
from index.lexical import LexicalIndex, Tokens, top_k, top_positive
from index.similar import SimilarHit, similar_trials
from index.store import AUTO_IVF_THRESHOLD, MIN_IVF_VECTORS, IndexKind, IvfParams, StoreError, VectorStore

#: Vector stores of an index, in the order rows are encoded.
STORES: Final[tuple[str, ...]] = ("tci", "conditions", "interventions", "summary", "outcomes")
#: Fields a free-text trial search matches on (a study's score is its best row among them).
TRIAL_SEARCH_STORES: Final[tuple[str, ...]] = ("tci", "summary", "outcomes")
K = TypeVar("K")
SLOT_BITS: Final = 16
MAX_SLOTS: Final = 1 << SLOT_BITS
#: How many filters' results a TrialIndex keeps (cleared whenever studies are added or removed).
FILTER_CACHE_SIZE: Final = 64
#: How many rows each ranking contributes before hybrid fusion.
FUSION_DEPTH: Final = 100


class SearchMode(StrEnum):
    DENSE = "dense"
    LEXICAL = "lexical"
    HYBRID = "hybrid"


def row_id(study_no: int, slot: int) -> int:
    """The int64 id of a study's row: study number in the high bits, slot (window/outcome) in the low."""
    if not 0 <= slot < MAX_SLOTS:
        raise StoreError(f"slot {slot} out of range: a study can have at most {MAX_SLOTS} rows per field")
    return (study_no << SLOT_BITS) | slot


def split_row_id(rid: int) -> tuple[int, int]:
    return rid >> SLOT_BITS, rid & (MAX_SLOTS - 1)


@dataclass(slots=True)
class TrialHit:
    """A study found by :meth:`TrialIndex.search`."""

    id: str
    score: float
    title: str
    phases: list[str]
    conditions: list[str]
    reasons: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class OutcomeHit:
    """An outcome found by :meth:`TrialIndex.search_outcomes`."""

    id: str
    outcome: int
    score: float
    role: str
    measure: str
    endpoints: list[str]
    category: str
    horizon_days: float | None
    reasons: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EncodedStudy:
    """A study and its vectors per store, in slot order (what :meth:`TrialIndex.add_encoded` takes)."""

    entry: StudyEntry
    vectors: dict[str, Vectors]

    def check(self, dimension: int) -> None:
        """Refuse vectors that do not fit the study: a missing store, a wrong shape or row count."""
        expected = {name: len(texts) for name, texts in item_texts(self.entry).items()}
        for name in STORES:
            vecs = self.vectors.get(name)
            if vecs is None:
                raise StoreError(f"study {self.entry.id}: no vectors for {name!r}")
            if vecs.ndim != 2 or vecs.shape[1] != dimension:
                raise StoreError(
                    f"study {self.entry.id}: {name} vectors have shape {vecs.shape}, "
                    f"expected (n, {dimension})"
                )
            if name in expected and len(vecs) != expected[name]:
                raise StoreError(
                    f"study {self.entry.id}: {len(vecs)} {name} vectors for {expected[name]} texts"
                )
        if bool(self.entry.summary) != bool(len(self.vectors["summary"])):
            raise StoreError(f"study {self.entry.id}: summary vectors do not match its summary")


def item_texts(entry: StudyEntry) -> dict[str, list[str]]:
    """The texts of a study's one-vector rows, per store (the summary, split into windows, is apart)."""
    tci = entry.field_text("tci")
    return {
        "tci": [tci] if tci else [],
        "conditions": entry.conditions,
        "interventions": entry.interventions,
        "outcomes": [o.text for o in entry.outcomes],
    }


def _row_counts(entry: StudyEntry, summary_windows: int) -> dict[str, int]:
    """How many rows a study has in each store: its slots there are ``0 .. n-1``."""
    counts = {name: len(texts) for name, texts in item_texts(entry).items()}
    counts["summary"] = summary_windows
    return counts


class TrialIndex:
    """Studies and outcomes, searchable by meaning and by words, with filters on extracted fields.

    Args:
        encoder: embeds texts and queries; an index refuses to load with a different model.
        kind: the FAISS index kind for new stores (``auto``: exact below 200k rows per store, IVF above).
    """

    def __init__(self, encoder: Encoder, kind: IndexKind = IndexKind.AUTO) -> None:
        self.encoder = encoder
        self.kind = kind
        self.stores: dict[str, VectorStore] = {name: VectorStore(encoder.dimension) for name in STORES}
        self.entries: dict[int, StudyEntry] = {}
        self.rows: dict[int, dict[str, int]] = {}
        self.numbers: dict[str, int] = {}
        self.next_no = 0
        self._lexical_trials: LexicalIndex | None = None
        self._lexical_outcomes: LexicalIndex | None = None
        # Token ids survive changes: a rebuild after an add or remove tokenizes only the new texts.
        self._trial_tokens = Tokens()
        self._outcome_tokens = Tokens()
        self._concepts: EndpointConcepts | None = None
        self._by_endpoint: dict[str, npt.NDArray[np.int64]] | None = None
        self._studies_by_endpoint: dict[str, set[int]] | None = None
        self._filter_cache: dict[tuple[str, SearchFilters], Any] = {}
        #: Loaded from a shard build: searched, never changed (its lists are memory-mapped files).
        self.read_only = False

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(
                "this index is memory-mapped from a shard build and read-only; build a new one to change it"
            )

    # -- contents -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, study_id: object) -> bool:
        return study_id in self.numbers

    def get(self, study_id: str) -> StudyEntry:
        """The indexed entry of a study; ``KeyError`` naming the id when it is not indexed."""
        try:
            return self.entries[self.numbers[study_id]]
        except KeyError:
            raise KeyError(f"study {study_id!r} is not in the index") from None

    def ids(self) -> list[str]:
        """Indexed study ids, in the order they were added."""
        return [self.entries[no].id for no in sorted(self.entries)]

    def counts(self) -> dict[str, int]:
        out = {"studies": len(self.entries)}
        out.update({f"{name}_vectors": store.ntotal for name, store in self.stores.items()})
        return out

    def add(self, entries: Sequence[StudyEntry]) -> None:
        """Embed and add studies; a study already indexed under the same id is replaced."""
        self.add_encoded(self.encode_studies(entries))

    def encode_studies(self, entries: Sequence[StudyEntry]) -> list[EncodedStudy]:
        """Embed studies without adding them: the vectors :meth:`add_encoded` takes (and a store keeps)."""
        rows: list[tuple[int, str, str]] = []  # (entry position, store, text) of single-vector rows
        for pos, entry in enumerate(entries):
            for name, texts in item_texts(entry).items():
                if len(texts) > MAX_SLOTS:
                    raise StoreError(
                        f"study {entry.id}: {len(texts)} {name}, at most {MAX_SLOTS} are indexed"
                    )
                rows.extend((pos, name, text) for text in texts)
        # One encoder call for all of them: the model batches by length across fields.
        vecs = encode(self.encoder, [text for _, _, text in rows])
        picks: list[dict[str, list[int]]] = [{name: [] for name in STORES} for _ in entries]
        for i, (pos, name, _) in enumerate(rows):
            picks[pos][name].append(i)
        summaries = [(pos, e.summary) for pos, e in enumerate(entries) if e.summary]
        window_vecs, owner = encode_chunks(self.encoder, [t for _, t in summaries])
        windows: list[list[int]] = [[] for _ in entries]
        for w, owner_index in enumerate(owner):
            windows[summaries[owner_index][0]].append(w)
        out = []
        for pos, entry in enumerate(entries):
            if len(windows[pos]) > MAX_SLOTS:
                raise StoreError(f"study {entry.id}: the summary has more than {MAX_SLOTS} windows")
            vectors = {name: vecs[picks[pos][name]] for name in STORES if name != "summary"}
            vectors["summary"] = window_vecs[windows[pos]]
            out.append(EncodedStudy(entry, {name: vectors[name] for name in STORES}))
        return out

    def add_encoded(self, studies: Sequence[EncodedStudy]) -> None:
        """Add studies embedded earlier (:meth:`encode_studies`, or vectors kept by a store); a study
        already indexed under the same id is replaced, and of repeated ids the last copy wins."""
        self._writable()
        last = {s.entry.id: i for i, s in enumerate(studies)}
        batch = [s for i, s in enumerate(studies) if last[s.entry.id] == i]
        for study in batch:
            study.check(self.encoder.dimension)
        replaced = [s.entry.id for s in batch if s.entry.id in self.numbers]
        if replaced:
            self.remove(replaced)
        parts: dict[str, tuple[list[npt.NDArray[np.int64]], list[Vectors]]] = {n: ([], []) for n in STORES}
        for study in batch:
            no = self.next_no
            self.next_no += 1
            for name in STORES:
                vecs = study.vectors[name]
                parts[name][0].append(np.array([row_id(no, s) for s in range(len(vecs))], dtype=np.int64))
                parts[name][1].append(vecs)
            self.entries[no] = study.entry
            self.numbers[study.entry.id] = no
            self.rows[no] = _row_counts(study.entry, len(study.vectors["summary"]))
        for name, (id_parts, vec_parts) in parts.items():
            if id_parts:
                self.stores[name].add(np.concatenate(id_parts), np.concatenate(vec_parts))
        self._changed()

    def _changed(self) -> None:
        """Drop everything derived from the set of studies (BM25, endpoint rows, filter results)."""
        self._lexical_trials = self._lexical_outcomes = None
        self._by_endpoint = None
        self._studies_by_endpoint = None
        self._filter_cache.clear()

    def optimise(self, kind: IndexKind | None = None) -> None:
        """Rebuild each field's store as ``kind`` (default: the index's): IVF stores are trained on what
        is there and their nprobe tuned to recall@10 >= 0.95 (recorded in ``meta.json``).

        ``auto`` picks IVF for stores of 200k vectors or more. A store too small to train an IVF index on
        (under 1,000 vectors) stays exact, and ``meta.json`` says so per store.
        """
        if kind is not None:
            self.kind = kind
        for name, store in self.stores.items():
            target = self.kind
            if target is IndexKind.AUTO:
                target = IndexKind.IVF if store.ntotal >= AUTO_IVF_THRESHOLD else IndexKind.EXACT
            if target is IndexKind.IVF and store.ntotal < MIN_IVF_VECTORS:
                target = IndexKind.EXACT
            if target == store.kind:
                continue
            ids = store.ids()
            self.stores[name] = VectorStore.build(self.encoder.dimension, ids, store.reconstruct(ids), target)

    def remove(self, study_ids: Iterable[str]) -> int:
        """Remove studies by id; returns how many were indexed (unknown ids are ignored)."""
        self._writable()
        removed = 0
        for study_id in study_ids:
            no = self.numbers.pop(study_id, None)
            if no is None:
                continue
            for name in STORES:
                self.stores[name].remove(self._rows_of(name, [no]))
            del self.rows[no]
            del self.entries[no]
            removed += 1
        if removed:
            self._changed()
        return removed

    def texts_to_encode(self, entries: Sequence[StudyEntry]) -> list[str]:
        """Every text :meth:`add` embeds for ``entries`` (benchmarks time the bare encoder on these)."""
        out: list[str] = []
        for entry in entries:
            for texts in item_texts(entry).values():
                out.extend(texts)
            out.extend([entry.summary] if entry.summary else [])
        return out

    # -- search ---------------------------------------------------------------------------------------

    def embed_query(self, query: str) -> Vectors:
        return encode(self.encoder, [query])

    def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        filters: SearchFilters | None = None,
    ) -> list[TrialHit]:
        """Studies best matching free text; ``filters`` restrict the studies before ranking.

        In hybrid mode, a query that names an endpoint of the vocabulary (see :mod:`index.concepts`) ranks
        the studies measuring it first; their score is their fused score plus 1.
        """
        _check_k(k)
        allowed = self._allowed_studies(filters)
        if allowed is not None and not allowed:
            return []
        qvec = None if mode is SearchMode.LEXICAL else self.embed_query(query)
        scores = _QueryScores(self, query, qvec)
        ranked, dense_info, lexical_info = self._rank_studies(scores, k, mode, allowed)
        concept = self._concept(qvec) if mode is SearchMode.HYBRID else None
        carriers: set[int] = set()
        if concept is not None:
            carriers = self._endpoint_studies().get(concept.id, set())
            if allowed is not None:
                carriers = carriers & allowed
            if carriers:
                first, d2, l2 = self._rank_studies(scores, k, mode, carriers)
                dense_info, lexical_info = {**dense_info, **d2}, {**lexical_info, **l2}
                ranked = _concept_first(first, ranked, k)
        hits = []
        for no, score in ranked[:k]:
            entry = self.entries[no]
            reasons: dict[str, Any] = {}
            if no in carriers and concept is not None:
                reasons["endpoint"] = {"id": concept.id, "query_similarity": concept.score}
            if no in dense_info:
                reasons["dense"] = round(dense_info[no][0], 6)
                reasons["matched_field"] = dense_info[no][1]
                reasons["matched_text"] = self._row_text(no, dense_info[no][1])
            if no in lexical_info:
                reasons["lexical"] = round(lexical_info[no], 6)
            hits.append(
                TrialHit(
                    entry.id, round(float(score), 6), entry.title, entry.phases, entry.conditions, reasons
                )
            )
        return hits

    def _rank_studies(
        self, scores: _QueryScores, k: int, mode: SearchMode, allowed: set[int] | None
    ) -> tuple[list[tuple[int, float]], dict[int, tuple[float, str]], dict[int, float]]:
        depth = k if mode is not SearchMode.HYBRID else max(k, FUSION_DEPTH)
        mask = None if allowed is None else self._study_mask(allowed)
        dense: list[tuple[int, float, str]] = []
        if scores.qvec is not None:
            fast = scores.dense_studies(depth, mask)
            dense = fast if fast is not None else self._dense_studies(scores.qvec, depth, allowed)
        lexical = [] if mode is SearchMode.DENSE else scores.lexical_studies(depth, mask)
        if mode is SearchMode.DENSE:
            ranked = [(no, score) for no, score, _ in dense]
        elif mode is SearchMode.LEXICAL:
            ranked = lexical
        else:
            ranked = reciprocal_rank_fusion([[no for no, _, _ in dense], [no for no, _ in lexical]])
        return ranked, {no: (score, where) for no, score, where in dense}, dict(lexical)

    def search_outcomes(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        filters: SearchFilters | None = None,
    ) -> list[OutcomeHit]:
        """Outcome measures best matching free text; ``filters`` restrict outcomes (and their studies).

        In hybrid mode, a query that names an endpoint of the vocabulary ranks the outcomes measuring it
        first (see :meth:`search`).
        """
        _check_k(k)
        allowed = self._allowed_outcome_rows(filters)
        if allowed is not None and len(allowed) == 0:
            return []
        qvec = None if mode is SearchMode.LEXICAL else self.embed_query(query)
        ranked, dense_info, lexical_info = self._rank_outcomes(query, qvec, k, mode, allowed)
        concept = self._concept(qvec) if mode is SearchMode.HYBRID else None
        carriers: set[int] = set()
        if concept is not None:
            rows = self._endpoint_rows().get(concept.id, np.zeros(0, dtype=np.int64))
            if allowed is not None:
                rows = np.intersect1d(rows, allowed)
            if len(rows):
                carriers = set(rows.tolist())
                first, d2, l2 = self._rank_outcomes(query, qvec, k, mode, rows)
                dense_info, lexical_info = {**dense_info, **d2}, {**lexical_info, **l2}
                ranked = _concept_first(first, ranked, k)
        hits = []
        for rid, score in ranked[:k]:
            no, slot = split_row_id(rid)
            entry = self.entries[no]
            outcome = entry.outcomes[slot]
            reasons: dict[str, Any] = {}
            if rid in carriers and concept is not None:
                reasons["endpoint"] = {"id": concept.id, "query_similarity": concept.score}
            if rid in dense_info:
                reasons["dense"] = round(dense_info[rid], 6)
            if rid in lexical_info:
                reasons["lexical"] = round(lexical_info[rid], 6)
            hits.append(
                OutcomeHit(
                    entry.id,
                    slot,
                    round(float(score), 6),
                    outcome.role,
                    outcome.measure,
                    outcome.endpoints,
                    outcome.category,
                    outcome.horizon_days,
                    reasons,
                )
            )
        return hits

    def _rank_outcomes(
        self,
        query: str,
        qvec: Vectors | None,
        k: int,
        mode: SearchMode,
        allowed: npt.NDArray[np.int64] | None,
    ) -> tuple[list[tuple[int, float]], dict[int, float], dict[int, float]]:
        depth = k if mode is not SearchMode.HYBRID else max(k, FUSION_DEPTH)
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if qvec is not None:
            scores, ids = self.stores["outcomes"].search(qvec, depth, allowed)
            dense = [(rid, float(s)) for rid, s in zip(ids[0], scores[0], strict=False)]
        if mode is not SearchMode.DENSE:
            allowed_set = None if allowed is None else set(allowed.tolist())
            lexical = self._outcome_lexical().search_keys(query, depth, allowed_set)
        if mode is SearchMode.DENSE:
            ranked = dense
        elif mode is SearchMode.LEXICAL:
            ranked = lexical
        else:
            ranked = reciprocal_rank_fusion([[r for r, _ in dense], [r for r, _ in lexical]])
        return ranked, dict(dense), dict(lexical)

    def _concept(self, qvec: Vectors | None) -> ConceptMatch | None:
        if qvec is None:
            return None
        if self._concepts is None:
            self._concepts = EndpointConcepts(self.encoder)
        return self._concepts.match(qvec)

    def _endpoint_rows(self) -> dict[str, npt.NDArray[np.int64]]:
        """Outcome row ids by the endpoint ids extracted from them (built on first use after a change)."""
        if self._by_endpoint is None:
            rows: dict[str, list[int]] = {}
            for no in sorted(self.entries):
                for i, outcome in enumerate(self.entries[no].outcomes):
                    for endpoint in outcome.endpoints:
                        rows.setdefault(endpoint, []).append(row_id(no, i))
            self._by_endpoint = {e: np.array(r, dtype=np.int64) for e, r in rows.items()}
        return self._by_endpoint

    def _endpoint_studies(self) -> dict[str, set[int]]:
        """Study numbers by the endpoint ids extracted from their outcomes (built on first use after a
        change: scanning every study per query cost 40 ms at 11k studies)."""
        if self._studies_by_endpoint is None:
            studies: dict[str, set[int]] = {}
            for no, entry in self.entries.items():
                for endpoint in entry.endpoints:
                    studies.setdefault(endpoint, set()).add(no)
            self._studies_by_endpoint = studies
        return self._studies_by_endpoint

    def similar(
        self, query: str | StudyEntry, k: int = 10, filters: SearchFilters | None = None
    ) -> list[SimilarHit]:
        """Studies similar to an indexed one (its id) or a new one (a :class:`StudyEntry`), with reasons."""
        return similar_trials(self, query, k=k, filters=filters)

    def _allowed_studies(self, filters: SearchFilters | None) -> set[int] | None:
        if filters is None or not filters.active:
            return None
        key = ("studies", filters)
        if key not in self._filter_cache:
            allowed = {no for no, entry in self.entries.items() if filters.trial_matches(entry)}
            self._remember(key, allowed)
        cached: set[int] = self._filter_cache[key]
        return cached

    def _allowed_outcome_rows(self, filters: SearchFilters | None) -> npt.NDArray[np.int64] | None:
        if filters is None or not filters.active:
            return None
        key = ("outcomes", filters)
        if key not in self._filter_cache:
            rows = [
                row_id(no, i)
                for no, entry in self.entries.items()
                if filters.study_matches(entry)
                for i, o in enumerate(entry.outcomes)
                if filters.outcome_matches(o)
            ]
            self._remember(key, np.array(rows, dtype=np.int64))
        cached: npt.NDArray[np.int64] = self._filter_cache[key]
        return cached

    def _remember(self, key: tuple[str, SearchFilters], value: Any) -> None:
        # Filters repeat (a UI's facets, paging through results): evaluating one over every study costs
        # more than the search itself, so the last FILTER_CACHE_SIZE results are kept until the index changes.
        if len(self._filter_cache) >= FILTER_CACHE_SIZE:
            del self._filter_cache[next(iter(self._filter_cache))]
        self._filter_cache[key] = value

    def _rows_of(self, store: str, studies: Iterable[int]) -> npt.NDArray[np.int64]:
        rows: list[int] = []
        for no in studies:
            rows.extend(row_id(no, slot) for slot in range(self.rows[no][store]))
        return np.array(rows, dtype=np.int64)

    def study_rows(self, study_id: str, store: str) -> Vectors:
        """All vectors of an indexed study in one store (one per condition, window, outcome…)."""
        return self.stores[store].reconstruct(self._rows_of(store, [self.numbers[study_id]]))

    def _dense_studies(
        self, q: Vectors, k: int, allowed: set[int] | None, stores: Sequence[str] = TRIAL_SEARCH_STORES
    ) -> list[tuple[int, float, str]]:
        """Top-``k`` studies by their best row over ``stores``: ``(study_no, score, "field[slot]")``."""
        best: dict[int, tuple[float, str]] = {}
        for name in stores:
            store = self.stores[name]
            allowed_rows = None if allowed is None else self._rows_of(name, allowed)
            available = store.ntotal if allowed_rows is None else len(allowed_rows)
            fetch = min(available, max(4 * k, 32))
            distinct: dict[int, tuple[float, str]] = {}
            while fetch > 0:
                scores, ids = store.search(q, fetch, allowed_rows)
                distinct = {}
                for rid, score in zip(ids[0], scores[0], strict=False):
                    no, slot = split_row_id(rid)
                    if no not in distinct:
                        distinct[no] = (
                            float(score),
                            name if name == "tci" else f"{name}[{slot}]",
                        )
                if len(distinct) >= k or fetch >= available:
                    break
                fetch = min(available, fetch * 4)
            for no, (score, where) in distinct.items():
                if no not in best or score > best[no][0]:
                    best[no] = (score, where)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        return [(no, score, where) for no, (score, where) in ranked]

    def _study_mask(self, studies: Iterable[int]) -> npt.NDArray[np.bool_]:
        """A boolean array over study numbers, true for ``studies``."""
        mask = np.zeros(self.next_no, dtype=bool)
        mask[np.fromiter(studies, dtype=np.int64)] = True
        return mask

    def _trial_lexical(self) -> LexicalIndex:
        if self._lexical_trials is None:
            nos = sorted(self.entries)
            texts = [self.entries[no].lexical_text() for no in nos]
            self._lexical_trials = LexicalIndex(nos, texts, self._trial_tokens)
        return self._lexical_trials

    def _outcome_lexical(self) -> LexicalIndex:
        if self._lexical_outcomes is None:
            keys: list[int] = []
            texts: list[str] = []
            for no in sorted(self.entries):
                for i, o in enumerate(self.entries[no].outcomes):
                    keys.append(row_id(no, i))
                    texts.append(o.text)
            self._lexical_outcomes = LexicalIndex(keys, texts, self._outcome_tokens)
        return self._lexical_outcomes

    def _row_text(self, no: int, where: str) -> str:
        entry = self.entries[no]
        if where.startswith("outcomes["):
            return entry.outcomes[int(where[9:-1])].text
        if where.startswith("summary["):
            return entry.summary
        if where.startswith("conditions["):
            return entry.conditions[int(where[11:-1])]
        if where.startswith("interventions["):
            return entry.interventions[int(where[14:-1])]
        return entry.field_text(where)

    def study_vectors(self, study_id: str) -> dict[str, Vectors]:
        """One vector per store for an indexed study: the normalised mean of its rows there."""
        no = self.numbers[study_id]
        out: dict[str, Vectors] = {}
        for name in STORES:
            rows = self._rows_of(name, [no])
            if len(rows):
                vecs = self.stores[name].reconstruct(rows)
                out[name] = normalise(vecs.mean(axis=0, keepdims=True))[0] if len(vecs) > 1 else vecs[0]
        return out

    # -- persistence ----------------------------------------------------------------------------------

    def save(self, directory: str | Path, extra_meta: dict[str, Any] | None = None) -> int:
        """Write the index to ``directory`` atomically (see :mod:`index.files`); returns the generation."""
        self._writable()
        path = Path(directory)
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            for no in sorted(self.entries):
                row = {
                    "no": no,
                    "summary_windows": self.rows[no]["summary"],
                    "entry": self.entries[no].to_json(),
                }
                gz.write((json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode())
        payload: dict[str, tuple[str, str, bytes]] = {"studies": ("studies", "jsonl.gz", buf.getvalue())}
        for name, store in self.stores.items():
            payload[f"store.{name}"] = (f"vectors.{name}", "faiss", store.to_bytes())
        meta: dict[str, Any] = {
            "model": {
                "id": self.encoder.model_id,
                "fingerprint": self.encoder.fingerprint,
                "dimension": self.encoder.dimension,
            },
            "metric": "inner_product",
            "normalized": True,
            "counts": self.counts(),
            "ids": {"next_study_no": self.next_no, "slot_bits": SLOT_BITS},
            "build": {
                "kind": str(self.kind),
                "stores": {name: store.params() for name, store in self.stores.items()},
                "fusion": {
                    "method": "rrf",
                    "k": RRF_K,
                    "depth": FUSION_DEPTH,
                    "endpoint_first": {
                        "vocabulary": "nlp/resources/endpoints.tsv",
                        "threshold": CONCEPT_THRESHOLD,
                    },
                },
                "lexical": {"library": "bm25s", "stemmer": "snowball-english", "stopwords": "en"},
            },
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra_meta or {}),
        }
        return files.save_generation(path, payload, meta)

    @classmethod
    def load(cls, directory: str | Path, encoder: Encoder) -> TrialIndex:
        """Load an index saved by :meth:`save`, refusing one built with another model or dimension."""
        path = Path(directory)
        for attempt in range(3):
            try:
                return cls._load_once(path, encoder)
            except IndexFileError:
                # A writer may have switched generations between reading meta.json and its files.
                if attempt == 2:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_once(cls, path: Path, encoder: Encoder) -> TrialIndex:
        meta = files.read_meta(path)
        check_model(meta, encoder, path)
        index = cls(encoder, IndexKind(meta["build"]["kind"]))
        for name in STORES:
            params = meta["build"]["stores"][name]
            ivf = None
            if params["kind"] != IndexKind.EXACT:
                ivf = IvfParams(params["nlist"], params["nprobe"], params.get("recall_at_10"))
            if params.get("ondisk"):
                assert ivf is not None
                # The index file is small (centroids, codebooks) and checked whole; the lists are mapped.
                files.file_path(path, meta, f"store.{name}.ivfdata", checksum=False)
                index.stores[name] = VectorStore.open_ondisk(
                    files.file_path(path, meta, f"store.{name}"),
                    encoder.dimension,
                    IndexKind(params["kind"]),
                    ivf,
                )
            elif params["kind"] == IndexKind.EXACT and meta.get("read_only"):
                index.stores[name] = VectorStore.from_bytes(
                    files.read_file(path, meta, f"store.{name}"), encoder.dimension, None
                )
            else:
                index.stores[name] = VectorStore.from_bytes(
                    files.read_file(path, meta, f"store.{name}"), encoder.dimension, ivf
                )
        raw = gzip.decompress(files.read_file(path, meta, "studies"))
        for line in raw.decode("utf-8").splitlines():
            row = json.loads(line)
            no = int(row["no"])
            entry = StudyEntry.from_json(row["entry"])
            index.entries[no] = entry
            index.numbers[entry.id] = no
            index.rows[no] = _row_counts(entry, int(row["summary_windows"]))
        index.next_no = int(meta["ids"]["next_study_no"])
        index.read_only = bool(meta.get("read_only"))
        counts = index.counts()
        if counts != meta.get("counts"):
            raise IndexFileError(
                f"{path}: contents ({counts}) disagree with meta.json ({meta.get('counts')}); rebuild"
            )
        return index


def check_model(meta: dict[str, Any], encoder: Encoder, path: Path) -> None:
    """Refuse an index built with another model, fingerprint or dimension than ``encoder``'s."""
    model = meta.get("model") or {}
    if model.get("dimension") != encoder.dimension:
        raise IndexFileError(
            f"{path}: built with {model.get('dimension')}-dimensional vectors, the encoder gives "
            f"{encoder.dimension}; rebuild the index with this encoder"
        )
    if model.get("id") != encoder.model_id or model.get("fingerprint") != encoder.fingerprint:
        raise IndexFileError(
            f"{path}: built with model {model.get('id')} ({model.get('fingerprint')}), but the encoder is "
            f"{encoder.model_id} ({encoder.fingerprint}); rebuild the index with this encoder"
        )


def _concept_first(
    first: list[tuple[K, float]], rest: list[tuple[K, float]], k: int
) -> list[tuple[K, float]]:
    """``first`` (scores + 1, so scores stay in rank order), then ``rest`` without repeats, cut at ``k``."""
    out = [(key, score + 1.0) for key, score in first[:k]]
    seen = {key for key, _ in out}
    out.extend((key, score) for key, score in rest if key not in seen)
    return out[:k]


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


class _QueryScores:
    """One trial query's scores against every study, computed once: each exact store's row scores and the
    BM25 scores. The unrestricted ranking and the endpoint-first ranking of one query both read them, so the
    second costs a top-k, not another scan of the index."""

    def __init__(self, index: TrialIndex, query: str, qvec: Vectors | None) -> None:
        self.index, self.query, self.qvec = index, query, qvec
        self._rows: dict[
            str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]] | None
        ] = {}
        self._bm25: npt.NDArray[np.float32] | None = None
        self._bm25_keys: npt.NDArray[np.int64] | None = None

    def _store_rows(
        self, name: str
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        """``(study numbers, slots, scores)`` of every row of a store (``None`` when it is not exact)."""
        if name not in self._rows:
            assert self.qvec is not None
            found = self.index.stores[name].row_scores(self.qvec)
            self._rows[name] = (
                None if found is None else (found[0] >> SLOT_BITS, found[0] & (MAX_SLOTS - 1), found[1])
            )
        return self._rows[name]

    def dense_studies(
        self, k: int, mask: npt.NDArray[np.bool_] | None, stores: Sequence[str] = TRIAL_SEARCH_STORES
    ) -> list[tuple[int, float, str]] | None:
        """Top-``k`` studies by their best row over ``stores`` (as ``TrialIndex._dense_studies``), or
        ``None`` when a store is approximate (IVF): then the caller searches it."""
        parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], int, npt.NDArray[np.int64]]] = []
        for store_no, name in enumerate(stores):
            rows = self._store_rows(name)
            if rows is None:
                return None
            nos, slots, scores = rows
            candidates = np.arange(len(nos)) if mask is None else np.flatnonzero(mask[nos])
            fetch = min(len(candidates), max(4 * k, 32))
            while fetch > 0:
                # The best row of each study among the top rows; widen until k studies are found.
                top = top_k(scores, candidates, fetch)
                _, first = np.unique(nos[top], return_index=True)
                if len(first) >= k or fetch >= len(candidates):
                    break
                fetch = min(len(candidates), fetch * 4)
            if fetch > 0:
                best = top[np.sort(first)]
                parts.append((nos[best], scores[best], store_no, slots[best]))
        if not parts:
            return []
        all_nos = np.concatenate([p[0] for p in parts])
        all_scores = np.concatenate([p[1] for p in parts])
        all_stores = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
        all_slots = np.concatenate([p[3] for p in parts])
        # Per study its best row; an equal score in an earlier store wins.
        order = np.lexsort((all_stores, -all_scores))
        _, first = np.unique(all_nos[order], return_index=True)
        pick = order[first]
        ranked = pick[np.lexsort((all_nos[pick], -all_scores[pick]))][:k]
        out = []
        for i in ranked:
            name = stores[int(all_stores[i])]
            where = name if name == "tci" else f"{name}[{int(all_slots[i])}]"
            out.append((int(all_nos[i]), float(all_scores[i]), where))
        return out

    def lexical_studies(self, k: int, mask: npt.NDArray[np.bool_] | None) -> list[tuple[int, float]]:
        """Top-``k`` studies by BM25 (positive scores only), where ``mask`` holds."""
        lexical = self.index._trial_lexical()
        if self._bm25 is None:
            self._bm25 = lexical.scores(self.query)
            self._bm25_keys = lexical.key_array
        assert self._bm25_keys is not None
        keys = self._bm25_keys
        hits = top_positive(self._bm25, k, None if mask is None else mask[keys])
        return [(int(keys[pos]), score) for pos, score in hits]
