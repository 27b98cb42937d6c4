"""The extraction pipeline: a blank English spaCy pipeline plus trialsift's components, and the
functions that turn a :class:`~nlp.study.Study` into the spec's JSON.

>>> from nlp.pipeline import Extractor
>>> extractor = Extractor()          # builds the spaCy pipeline once
>>> [result] = extractor.extract_studies([study])   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

import nlp.tokenizer  # noqa: F401  (registers the tokenizer)
from nlp.components import STATE_KEY, STUDY_STATE_KEY  # importing registers the factories
from nlp.errors import RecordError, TrialsiftError
from nlp.ingest import read_path, read_record, read_text
from nlp.study import Outcome, Study, study_texts
from nlp.types import OUTCOME_FIELDS

#: The components of the default pipeline, in order.
COMPONENTS: tuple[str, ...] = (
    "trialsift_abbreviations",
    "trialsift_endpoints",
    "trialsift_criteria",
    "trialsift_timing",
)

_FIELD_ORDER = {name: i for i, name in enumerate(OUTCOME_FIELDS)}

#: What separates the outcome fields in an outcome Doc: a paragraph break, so no token spans two fields.
FIELD_SEPARATOR = "\n\n"


#: The components of the study-level pipeline (one Doc per study: its prose fields).
STUDY_COMPONENTS: tuple[str, ...] = ("trialsift_design", "trialsift_dose_groups")

#: ``spacy.blank("en")`` with trialsift's registry tokenizer (see :mod:`nlp.tokenizer`).
BLANK_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "trialsift.registry_tokenizer.v1"}}}


def build_pipeline() -> Language:
    """A blank English pipeline (registry tokenizer) with trialsift's outcome components."""
    nlp = spacy.blank("en", config=BLANK_CONFIG)
    for name in COMPONENTS:
        nlp.add_pipe(name)
    return nlp


def build_study_pipeline(vocab: Vocab | None = None) -> Language:
    """A blank English pipeline (registry tokenizer) with the study-level components.

    Args:
        vocab: share the outcome pipeline's vocabulary (``Extractor`` does), else a new one.
    """
    nlp = spacy.blank("en", config=BLANK_CONFIG, vocab=vocab if vocab is not None else True)
    for name in STUDY_COMPONENTS:
        nlp.add_pipe(name)
    return nlp


def make_study_doc(nlp: Language, study: Study) -> Doc:
    """Tokenise a study's prose fields into one Doc; ``_.study`` holds the fields and what the study-level
    components read (registry phases, outcomes, interventions, arm groups) as plain data."""
    texts: dict[str, str] = {}
    bounds: dict[str, list[int]] = {}
    parts: list[str] = []
    pos = 0
    for name, text in study_texts(study):
        if parts:
            parts.append(FIELD_SEPARATOR)
            pos += len(FIELD_SEPARATOR)
        texts[name] = text
        bounds[name] = [pos, pos + len(text)]
        parts.append(text)
        pos += len(text)
    doc = nlp.make_doc("".join(parts))
    doc.user_data[STUDY_STATE_KEY] = {
        "texts": texts,
        "bounds": bounds,
        "registry_phases": list(study.phases),
        "outcomes": [[o.role, o.measure, o.description, o.time_frame] for o in study.outcomes],
        "interventions": [
            {"name": i.name, "type": i.type, "description": i.description, "other_names": list(i.other_names)}
            for i in study.interventions
        ],
        "arm_groups": [
            {
                "label": a.label,
                "type": a.type,
                "description": a.description,
                "intervention_names": list(a.intervention_names),
            }
            for a in study.arm_groups
        ],
        "evidence": [],
    }
    return doc


def make_outcome_doc(nlp: Language, measure: str, description: str = "", time_frame: str = "") -> Doc:
    """Tokenise one outcome's three texts into a Doc whose ``_.outcome`` locates each of them."""
    texts = {"measure": measure or "", "description": description or "", "time_frame": time_frame or ""}
    bounds: dict[str, list[int]] = {}
    parts: list[str] = []
    pos = 0
    for name in OUTCOME_FIELDS:
        if parts:
            parts.append(FIELD_SEPARATOR)
            pos += len(FIELD_SEPARATOR)
        text = texts[name]
        bounds[name] = [pos, pos + len(text)]
        parts.append(text)
        pos += len(text)
    doc = nlp.make_doc("".join(parts))
    doc.user_data[STATE_KEY] = {"texts": texts, "bounds": bounds, "evidence": []}
    return doc


def outcome_to_json(role: str, doc: Doc) -> dict[str, Any]:
    """The spec's per-outcome object, read off a processed outcome Doc."""
    state = doc.user_data[STATE_KEY]
    texts = state["texts"]
    evidence = sorted(state["evidence"], key=lambda row: (_FIELD_ORDER[row[0]], row[1], row[2], row[3]))
    return {
        "role": role,
        "measure": texts["measure"],
        "description": texts["description"],
        "time_frame": texts["time_frame"],
        "endpoints": list(state.get("endpoints") or []),
        "category": state.get("category") or "other",
        "abbreviations": dict(state.get("abbreviations") or {}),
        "timing": state.get("timing"),
        "criteria": list(state.get("criteria") or []),
        "spans": [{"field": f, "start": s, "end": e, "label": label} for f, s, e, label in evidence],
    }


def study_to_json(study: Study, outcomes: list[dict[str, Any]], study_doc: Doc) -> dict[str, Any]:
    """The spec's per-study object, from the processed outcome Docs' JSON and the study Doc."""
    state = study_doc.user_data[STUDY_STATE_KEY]
    design = dict(state["design"])
    design["dose_group_count"] = state["dose_group_count"]
    design["spans"] = [
        {"field": f, "start": s, "end": e, "label": label} for f, s, e, label in state["evidence"]
    ]
    return {
        "id": study.id,
        "source_format": study.source_format,
        "outcomes": outcomes,
        "design": design,
        "dose_groups": state["dose_groups"],
        "registry_enrollment": study.enrollment,
        "errors": list(study.errors),
    }


_WARM_UP = Study(
    id="warm-up",
    source_format="text",
    title="Phase 1 dose escalation (3+3) of 1×10^6 CAR-T cells/kg",
    outcomes=[Outcome("primary", "Objective response rate (ORR) per RECIST 1.1", "", "Up to 12 weeks")],
)


class Extractor:
    """Runs the pipeline over studies. Build one per process: the spaCy pipeline is built once here."""

    def __init__(
        self, nlp: Language | None = None, study_nlp: Language | None = None, batch_size: int = 512
    ) -> None:
        self.nlp = nlp if nlp is not None else build_pipeline()
        self.study_nlp = study_nlp if study_nlp is not None else build_study_pipeline(self.nlp.vocab)
        self.batch_size = batch_size
        self._warm = False

    @contextlib.contextmanager
    def memory_zone(self) -> Iterator[None]:
        """A block whose strings and lexemes spaCy frees at its end (``Language.memory_zone``).

        Without it the shared vocabulary keeps every new word it has seen: a bulk run over a registry grows
        by hundreds of megabytes. Results must be read (as the JSON this class returns) inside the block.
        The components build their matchers lazily, so the first call warms them up outside any zone:
        patterns created inside one would be freed with it.
        """
        if not self._warm:
            list(self.extract_items([_WARM_UP]))
            self._warm = True
        if self.study_nlp.vocab is not self.nlp.vocab:  # pragma: no cover - Extractor shares one vocab
            raise TrialsiftError("memory_zone needs the outcome and study pipelines to share one vocab")
        with self.nlp.memory_zone():
            yield

    def extract_studies(self, studies: Iterable[Study]) -> Iterator[dict[str, Any]]:
        """The spec's JSON for each study, in input order."""
        for out in self.extract_items(studies):
            if isinstance(out, RecordError):  # pragma: no cover - studies hold no errors
                raise out
            yield out

    def extract_items(self, items: Iterable[Study | RecordError]) -> Iterator[dict[str, Any] | RecordError]:
        """Like :meth:`extract_studies`, passing unreadable records through untouched, in order.

        Outcomes of many studies go through ``nlp.pipe`` together (chunks of ``batch_size`` outcomes),
        which is what keeps per-study overhead low on registry-sized inputs.
        """
        chunk: list[Study | RecordError] = []
        n_outcomes = 0
        for item in items:
            chunk.append(item)
            if isinstance(item, Study):
                n_outcomes += len(item.outcomes)
            if n_outcomes >= self.batch_size:
                yield from self._extract_chunk(chunk)
                chunk, n_outcomes = [], 0
        if chunk:
            yield from self._extract_chunk(chunk)

    def _extract_chunk(self, chunk: list[Study | RecordError]) -> Iterator[dict[str, Any] | RecordError]:
        outcomes = [o for item in chunk if isinstance(item, Study) for o in item.outcomes]
        docs = iter(
            self.nlp.pipe(
                (make_outcome_doc(self.nlp, o.measure, o.description, o.time_frame) for o in outcomes),
                batch_size=self.batch_size,
            )
        )
        studies = [item for item in chunk if isinstance(item, Study)]
        study_docs = iter(self.study_nlp.pipe(make_study_doc(self.study_nlp, s) for s in studies))
        for item in chunk:
            if isinstance(item, RecordError):
                yield item
                continue
            outcome_json = [outcome_to_json(o.role, next(docs)) for o in item.outcomes]
            yield study_to_json(item, outcome_json, next(study_docs))


class ExtractionErrors(TrialsiftError):
    """Some records could not be read. ``results`` holds what was extracted from the others."""

    def __init__(self, errors: list[RecordError], results: list[dict[str, Any]]) -> None:
        self.errors, self.results = errors, results
        lines = "; ".join(str(e) for e in errors[:5]) + (" …" if len(errors) > 5 else "")
        super().__init__(f"{len(errors)} record(s) could not be read: {lines}")


_DEFAULT_EXTRACTOR: Extractor | None = None


def default_extractor() -> Extractor:
    """The process-wide Extractor, built on first use (once per process, in bulk-annotation workers too)."""
    global _DEFAULT_EXTRACTOR
    if _DEFAULT_EXTRACTOR is None:
        _DEFAULT_EXTRACTOR = Extractor()
    return _DEFAULT_EXTRACTOR


def _looks_like_path(value: str) -> bool:
    return "\n" not in value and len(value) < 4096 and Path(value).is_file()


def extract(
    source: str | os.PathLike[str] | Mapping[str, Any] | list[Any], *, extractor: Extractor | None = None
) -> list[dict[str, Any]]:
    """Extract from a path, a registry record or text; one spec object per study.

    Args:
        source: a file path (``Path``, or a ``str`` naming an existing file) in any supported format; a
            parsed registry record (an API v2 study ``dict``, a page ``{"studies": [...]}`` or a list of
            studies); or text (seed layout or a protocol synopsis).
        extractor: the :class:`Extractor` to use; a process-wide default is built on first use.

    Returns:
        The spec's JSON, one object per study, in input order.

    Raises:
        ExtractionErrors: some records could not be read; ``.results`` has the others, ``.errors`` says
            which records failed and why.
    """
    ex = extractor if extractor is not None else default_extractor()
    items: Iterable[Study | RecordError]
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        items = read_path(source)
    elif isinstance(source, str):
        items = [read_text(source, "<text>")]
    elif isinstance(source, Mapping) and isinstance(source.get("studies"), list):
        items = _records(source["studies"])
    elif isinstance(source, list):
        items = _records(source)
    else:
        items = _records([source])
    results: list[dict[str, Any]] = []
    errors: list[RecordError] = []
    for out in ex.extract_items(items):
        if isinstance(out, RecordError):
            errors.append(out)
        else:
            results.append(out)
    if errors:
        raise ExtractionErrors(errors, results)
    return results


def _records(records: list[Any]) -> Iterator[Study | RecordError]:
    for i, record in enumerate(records, start=1):
        try:
            yield read_record(record, source=f"<record {i}>")
        except RecordError as err:
            yield err
