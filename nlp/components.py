"""spaCy components: thin wrappers that run the pure extraction functions on an outcome Doc.

An outcome Doc holds the three texts of one outcome measure joined by blank lines (see
:func:`nlp.pipeline.make_outcome_doc`). Its state is one plain dict in ``doc.user_data[STATE_KEY]``::

    {"texts": {field: text}, "bounds": {field: [start, end]}, "evidence": [[field, start, end, label], ...],
     "timing": {...}, "endpoints": [...], "category": "...", "criteria": [...], "abbreviations": {...}}

``bounds`` locates each field in the Doc; ``evidence`` gathers every extracted value with its exact
character offsets into its field's own text (offsets need not fall on token boundaries: the "90" of
"D90"). The results are read as Doc extensions (``doc._.timing``, ``doc._.endpoints``, ``doc._.category``,
``doc._.criteria``, ``doc._.abbreviations``, ``doc._.outcome``); as ``user_data`` they go through
``to_bytes``/``DocBin``. Each component also writes token-aligned :class:`~spacy.tokens.Span` objects to
``doc.spans[<key>]`` (overlap allowed).

Why ``user_data`` rather than settable extensions: every ``doc._`` access builds a Python object (2-3 µs),
which at registry scale costs more than the extraction itself; a dict in ``user_data`` costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from nlp.abbreviations import find_abbreviations
from nlp.anchors import resolve_anchor
from nlp.criteria import find_criteria, merge_criteria
from nlp.design import extract_design
from nlp.dose_groups import find_dose_groups
from nlp.endpoints import match_endpoints
from nlp.study import ArmGroup, Intervention, Outcome
from nlp.timeframes import parse_time_frame
from nlp.types import OUTCOME_FIELDS, Anchor, Timing

#: Where an outcome Doc keeps its state in ``doc.user_data``.
STATE_KEY = "trialsift.outcome"

#: The ``doc.spans`` key the components write by default (each component's ``spans_key`` setting). One
#: group for all: span labels say the kind ("endpoint", "point", "criterion", ...), displaCy shows them
#: in one view, and one SpanGroup per Doc costs a third of four.
SPANS_KEY = "trialsift"


def outcome_state(doc: Doc) -> dict[str, Any] | None:
    """An outcome Doc's state dict (None for a Doc not made by ``make_outcome_doc``)."""
    state: dict[str, Any] | None = doc.user_data.get(STATE_KEY)
    return state


def _result_getter(name: str) -> Callable[[Doc], Any]:
    def get(doc: Doc) -> Any:
        state = doc.user_data.get(STATE_KEY)
        return None if state is None else state.get(name)

    return get


if not Doc.has_extension("outcome"):
    Doc.set_extension("outcome", getter=outcome_state)
for _name in ("timing", "endpoints", "category", "criteria", "abbreviations"):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, getter=_result_getter(_name))


class _Evidence:
    """Collects one component's values, then records them on the Doc in one go."""

    def __init__(self, doc: Doc, component: str, key: str) -> None:
        state = doc.user_data.get(STATE_KEY)
        if state is None:
            raise ValueError(
                f"[{component}] the Doc has no outcome fields: build it with "
                "nlp.pipeline.make_outcome_doc(nlp, measure, description, time_frame), not nlp(text)"
            )
        self.doc, self.key, self.state = doc, key, state
        self.texts: dict[str, str] = state["texts"]
        self.rows: list[list[Any]] = []
        self.spans: list[tuple[str, int, int, str, str]] = []

    def add(self, field: str, start: int, end: int, kind: str, value: str, *, kb: bool = False) -> None:
        """One value: evidence label ``kind:value``; the Span gets label ``kind`` and, for values from a
        closed vocabulary (``kb=True``: endpoint ids, criteria, anchor kinds), ``kb_id`` ``value``.

        Open-ended values (time points, abbreviations) stay out of Span labels on purpose: every label
        is interned in the shared ``vocab.strings``, which must not grow with every study of a registry.
        """
        self.rows.append([field, start, end, f"{kind}:{value}"])
        self.spans.append((field, start, end, kind, value if kb else ""))

    def commit(self, **results: Any) -> None:
        """Results to the state; exact rows to its evidence; token-aligned spans to ``doc.spans[key]``."""
        self.state.update(results)
        if not self.rows:
            return
        doc, bounds = self.doc, self.state["bounds"]
        spans = []
        for field, start, end, kind, kb_id in self.spans:
            offset = bounds[field][0]
            span = doc.char_span(
                offset + start, offset + end, label=kind, kb_id=kb_id, alignment_mode="expand"
            )
            if span is not None:
                spans.append(span)
        self.state["evidence"].extend(self.rows)
        if self.key in doc.spans:
            doc.spans[self.key].extend(spans)
        else:
            doc.spans[self.key] = spans


def _fmt_number(value: float) -> str:
    return f"{value:g}"


def timing_to_json(timing: Timing, anchor: Anchor | None) -> dict[str, Any]:
    """The spec's ``timing`` object for a parsed time frame and the resolved anchor."""
    return {
        "points": [{"value": p.value, "unit": p.unit, "days": p.days} for p in timing.points],
        "cycles": [{"cycle": c.cycle, "day": c.day} for c in timing.cycles],
        "horizon_days": timing.horizon_days,
        "interval": (
            {"value": timing.interval.value, "unit": timing.interval.unit, "days": timing.interval.days}
            if timing.interval is not None
            else None
        ),
        "anchor": anchor.kind if anchor is not None else None,
        "anchor_text": anchor.text if anchor is not None else None,
    }


class TimingComponent:
    """Time points, cycles, horizon, interval (from the time frame) and the anchor (time frame, measure,
    description, in that order)."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        ev = _Evidence(doc, self.name, self.spans_key)
        time_frame = ev.texts["time_frame"]
        timing, values = _time_frame_values(time_frame)
        anchor = resolve_anchor(time_frame, ev.texts["measure"], ev.texts["description"])
        for start, end, kind, value in values:
            ev.add("time_frame", start, end, kind, value)
        if anchor is not None:
            ev.add(anchor.field, anchor.start, anchor.end, "anchor", anchor.kind, kb=True)
        ev.commit(timing=timing_to_json(timing, anchor))
        return doc


@functools.lru_cache(maxsize=8192)
def _time_frame_values(time_frame: str) -> tuple[Timing, tuple[tuple[int, int, str, str], ...]]:
    """A time frame's Timing and its values as (start, end, kind, value) rows.

    Cached with the formatted values: time frames repeat across a registry far more than other texts
    ("Up to 2 years"), and formatting the numbers costs as much as the cached parse.
    """
    timing = parse_time_frame(time_frame)
    rows: list[tuple[int, int, str, str]] = [
        (p.start, p.end, "point", f"{_fmt_number(p.value)} {p.unit}") for p in timing.points
    ]
    rows.extend((c.start, c.end, "cycle", f"{c.cycle}/{c.day}") for c in timing.cycles)
    if timing.interval is not None:
        i = timing.interval
        rows.append((i.start, i.end, "interval", f"{_fmt_number(i.value)} {i.unit}"))
    if timing.horizon_days is not None and timing.horizon_span is not None:
        h0, h1 = timing.horizon_span
        rows.append((h0, h1, "horizon", f"{_fmt_number(timing.horizon_days)} days"))
    return timing, tuple(rows)


class EndpointComponent:
    """Endpoint ids and the outcome's category, from the measure (the description when it is silent)."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        ev = _Evidence(doc, self.name, self.spans_key)
        result = match_endpoints(ev.texts["measure"], ev.texts["description"])
        for hit in result.hits:
            ev.add(hit.field, hit.start, hit.end, "endpoint", hit.id, kb=True)
        cat = result.category_evidence
        if cat is not None:
            ev.add(cat.field, cat.start, cat.end, "category", result.category, kb=True)
        ev.commit(endpoints=result.ids, category=result.category)
        return doc


class CriteriaComponent:
    """Assessment standards (RECIST 1.1, CTCAE 5.0, ...) named in any of the outcome's texts.

    A standard named with and without a version ("RECIST" in the measure, "RECIST 1.1" in the
    description) is reported once, with its version.
    """

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        ev = _Evidence(doc, self.name, self.spans_key)
        per_field = [(field, find_criteria(ev.texts[field])) for field in OUTCOME_FIELDS]
        names = [hit.name for hit in merge_criteria(hits for _, hits in per_field)]
        kept = set(names)
        for field, hits in per_field:
            for hit in hits:
                if hit.name in kept:
                    ev.add(field, hit.start, hit.end, "criterion", hit.name, kb=True)
        ev.commit(criteria=names)
        return doc


class AbbreviationComponent:
    """Abbreviations defined in the outcome's texts ("Objective response rate (ORR)")."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        ev = _Evidence(doc, self.name, self.spans_key)
        found: dict[str, str] = {}
        for field in OUTCOME_FIELDS:
            for abbr in find_abbreviations(ev.texts[field]):
                if abbr.short in found:
                    continue
                found[abbr.short] = abbr.long
                ev.add(field, abbr.short_start, abbr.short_end, "abbreviation", abbr.short)
                ev.add(field, abbr.long_start, abbr.long_end, "long_form", abbr.short)
        ev.commit(abbreviations=found)
        return doc


@Language.factory(
    "trialsift_timing",
    default_config={"spans_key": SPANS_KEY},
    assigns=["doc._.timing", "doc.spans"],
)
def make_timing(nlp: Language, name: str, spans_key: str) -> TimingComponent:
    return TimingComponent(name, spans_key)


@Language.factory(
    "trialsift_endpoints",
    default_config={"spans_key": SPANS_KEY},
    assigns=["doc._.endpoints", "doc._.category", "doc.spans"],
)
def make_endpoints(nlp: Language, name: str, spans_key: str) -> EndpointComponent:
    return EndpointComponent(name, spans_key)


@Language.factory(
    "trialsift_criteria",
    default_config={"spans_key": SPANS_KEY},
    assigns=["doc._.criteria", "doc.spans"],
)
def make_criteria(nlp: Language, name: str, spans_key: str) -> CriteriaComponent:
    return CriteriaComponent(name, spans_key)


@Language.factory(
    "trialsift_abbreviations",
    default_config={"spans_key": SPANS_KEY},
    assigns=["doc._.abbreviations", "doc.spans"],
)
def make_abbreviations(nlp: Language, name: str, spans_key: str) -> AbbreviationComponent:
    return AbbreviationComponent(name, spans_key)


# --- Study-level components -------------------------------------------------------------------------

#: Where a study Doc keeps its state in ``doc.user_data`` (plain JSON-able data, like the outcome state).
STUDY_STATE_KEY = "trialsift.study"


def study_state(doc: Doc) -> dict[str, Any] | None:
    """A study Doc's state dict (None for a Doc not made by ``make_study_doc``)."""
    state: dict[str, Any] | None = doc.user_data.get(STUDY_STATE_KEY)
    return state


if not Doc.has_extension("study"):
    Doc.set_extension("study", getter=study_state)


class _StudyEvidence:
    """Like :class:`_Evidence`, for a study Doc whose fields are the study's prose fields."""

    def __init__(self, doc: Doc, component: str, key: str) -> None:
        state = doc.user_data.get(STUDY_STATE_KEY)
        if state is None:
            raise ValueError(
                f"[{component}] the Doc has no study fields: build it with "
                "nlp.pipeline.make_study_doc(nlp, study), not nlp(text)"
            )
        self.doc, self.key, self.state = doc, key, state
        self.texts: dict[str, str] = state["texts"]
        self.spans: list[Any] = []

    def add(self, field: str, start: int, end: int, label: str) -> None:
        """Exact evidence row; a token-aligned Span when the field is part of the Doc's text.

        Values read from an outcome's time frame (``outcomes[i].time_frame``) are not in the study Doc's
        text, so they keep their evidence row only.
        """
        self.state["evidence"].append([field, start, end, label])
        bounds = self.state["bounds"].get(field)
        if bounds is not None:
            kind, _, value = label.partition(":")
            kb = value if kind in ("escalation", "phase", "criterion") else ""
            span = self.doc.char_span(
                bounds[0] + start, bounds[0] + end, label=kind, kb_id=kb, alignment_mode="expand"
            )
            if span is not None:
                self.spans.append(span)

    def commit(self, **results: Any) -> None:
        self.state.update(results)
        if not self.spans:
            return
        if self.key in self.doc.spans:
            self.doc.spans[self.key].extend(self.spans)
        else:
            self.doc.spans[self.key] = self.spans


def _min_max(pair: tuple[int | None, int | None] | None) -> dict[str, int | None] | None:
    return None if pair is None else {"min": pair[0], "max": pair[1]}


class DesignComponent:
    """Design facts: phases, escalation scheme, DLT window and rule, planned enrollment, cohort size, and
    the assessment criteria named anywhere in the study."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        ev = _StudyEvidence(doc, self.name, self.spans_key)
        state = ev.state
        outcomes = [Outcome(*row) for row in state["outcomes"]]
        texts = list(ev.texts.items())
        design = extract_design(texts, state["registry_phases"], outcomes)
        for field, start, end, label in design.evidence:
            ev.add(field, start, end, label)
        per_text = [(field, find_criteria(text)) for field, text in texts]
        per_text += [
            (f"outcomes[{i}].{name}", find_criteria(getattr(o, name)))
            for i, o in enumerate(outcomes)
            for name in OUTCOME_FIELDS
        ]
        criteria = [hit.name for hit in merge_criteria(hits for _, hits in per_text)]
        kept = set(criteria)
        for field, hits in per_text:
            for hit in hits:
                if hit.name in kept:
                    ev.add(field, hit.start, hit.end, f"criterion:{hit.name}")
        ev.commit(
            design={
                "phases": list(design.phases),
                "escalation": design.escalation,
                "dlt_window_days": design.dlt_window_days,
                "dlt_rule": (
                    None
                    if design.dlt_rule is None
                    else {"max_events": design.dlt_rule[0], "of_patients": design.dlt_rule[1]}
                ),
                "enrollment": _min_max(design.enrollment),
                "cohort_size": _min_max(design.cohort_size),
                "criteria": criteria,
            }
        )
        return doc


class DoseGroupComponent:
    """Dose groups of the study intervention (not conditioning or background doses) and their count."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        ev = _StudyEvidence(doc, self.name, self.spans_key)
        state = ev.state
        result = find_dose_groups(
            list(ev.texts.items()),
            [Intervention(**iv) for iv in state["interventions"]],
            [ArmGroup(**arm) for arm in state["arm_groups"]],
        )
        groups = []
        for g in result.groups:
            ev.add(g.field, g.start, g.end, f"dose_group:{g.value:g} {g.unit}")
            groups.append(
                {
                    "label": g.label,
                    "value": g.value,
                    "unit": g.unit,
                    "text": g.text,
                    "span": {"field": g.field, "start": g.start, "end": g.end},
                }
            )
        if result.count_span is not None:
            field, start, end = result.count_span
            ev.add(field, start, end, f"dose_group_count:{result.count}")
        ev.commit(dose_groups=groups, dose_group_count=result.count)
        return doc


@Language.factory(
    "trialsift_design",
    default_config={"spans_key": SPANS_KEY},
    assigns=["doc._.study", "doc.spans"],
)
def make_design(nlp: Language, name: str, spans_key: str) -> DesignComponent:
    return DesignComponent(name, spans_key)


@Language.factory(
    "trialsift_dose_groups",
    default_config={"spans_key": SPANS_KEY},
    assigns=["doc._.study", "doc.spans"],
)
def make_dose_groups(nlp: Language, name: str, spans_key: str) -> DoseGroupComponent:
    return DoseGroupComponent(name, spans_key)
