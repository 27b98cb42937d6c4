"""spaCy components: thin wrappers that run the pure extraction functions on an outcome Doc.

An outcome Doc holds the three texts of one outcome measure joined by blank lines
(see :func:`nlp.pipeline.make_outcome_doc`); ``doc._.outcome_fields`` maps each field to its
``[start, end)`` character range in the Doc. Each component reads the fields it needs, calls its pure
function, and writes

- token-aligned :class:`~spacy.tokens.Span` objects to ``doc.spans[<key>]`` (overlap allowed), and
- plain JSON-able values to ``Doc`` extensions, so a Doc keeps them through ``to_bytes``/``DocBin``.

Exact character offsets (which need not fall on token boundaries, e.g. the "90" of "D90") are kept in
``doc._.evidence`` as ``[field, start, end, label]`` rows, offsets relative to the field's own text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from nlp.abbreviations import find_abbreviations
from nlp.anchors import resolve_anchor
from nlp.criteria import find_criteria
from nlp.endpoints import match_endpoints
from nlp.timeframes import parse_time_frame
from nlp.types import OUTCOME_FIELDS, Anchor, Timing

#: Keys of ``doc.spans`` the components write.
SPANS_TIMING = "timing"
SPANS_ENDPOINTS = "endpoints"
SPANS_CRITERIA = "criteria"
SPANS_ABBREVIATIONS = "abbreviations"

_EXTENSIONS: dict[str, Any] = {
    "outcome_fields": None,
    "evidence": None,
    "timing": None,
    "endpoints": None,
    "category": None,
    "criteria": None,
    "abbreviations": None,
}
for _name, _default in _EXTENSIONS.items():
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=_default)


def field_text(doc: Doc, name: str) -> str:
    """The text of outcome field ``name`` in an outcome Doc ("" when the Doc has no such field)."""
    bounds = (doc._.outcome_fields or {}).get(name)
    if bounds is None:
        return ""
    return str(doc.text[bounds[0] : bounds[1]])


def _add_evidence(doc: Doc, key: str, field: str, start: int, end: int, label: str) -> None:
    """Record one extracted value: exactly in ``doc._.evidence``, token-aligned in ``doc.spans[key]``."""
    if doc._.evidence is None:
        doc._.evidence = []
    doc._.evidence.append([field, start, end, label])
    offset = doc._.outcome_fields[field][0]
    span = doc.char_span(offset + start, offset + end, label=label, alignment_mode="expand")
    if span is not None:
        if key in doc.spans:
            doc.spans[key].append(span)
        else:
            doc.spans[key] = [span]


def _require_fields(doc: Doc, component: str) -> None:
    if doc._.outcome_fields is None:
        raise ValueError(
            f"[{component}] the Doc has no outcome fields: build it with "
            "nlp.pipeline.make_outcome_doc(nlp, measure, description, time_frame), not nlp(text)"
        )


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
        _require_fields(doc, self.name)
        time_frame = field_text(doc, "time_frame")
        timing = parse_time_frame(time_frame)
        anchor = resolve_anchor(time_frame, field_text(doc, "measure"), field_text(doc, "description"))
        doc._.timing = timing_to_json(timing, anchor)
        key = self.spans_key
        for p in timing.points:
            _add_evidence(doc, key, "time_frame", p.start, p.end, f"point:{_fmt_number(p.value)} {p.unit}")
        for c in timing.cycles:
            _add_evidence(doc, key, "time_frame", c.start, c.end, f"cycle:{c.cycle}/{c.day}")
        if timing.interval is not None:
            i = timing.interval
            _add_evidence(doc, key, "time_frame", i.start, i.end, f"interval:{_fmt_number(i.value)} {i.unit}")
        if timing.horizon_days is not None and timing.horizon_span is not None:
            h0, h1 = timing.horizon_span
            _add_evidence(doc, key, "time_frame", h0, h1, f"horizon:{_fmt_number(timing.horizon_days)} days")
        if anchor is not None:
            _add_evidence(doc, key, anchor.field, anchor.start, anchor.end, f"anchor:{anchor.kind}")
        return doc


class EndpointComponent:
    """Endpoint ids and the outcome's category, from the measure (the description when it is silent)."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        _require_fields(doc, self.name)
        result = match_endpoints(field_text(doc, "measure"), field_text(doc, "description"))
        doc._.endpoints = result.ids
        doc._.category = result.category
        for hit in result.hits:
            _add_evidence(doc, self.spans_key, hit.field, hit.start, hit.end, f"endpoint:{hit.id}")
        ev = result.category_evidence
        if ev is not None:
            _add_evidence(doc, self.spans_key, ev.field, ev.start, ev.end, f"category:{result.category}")
        return doc


class CriteriaComponent:
    """Assessment standards (RECIST 1.1, CTCAE 5.0, ...) named in any of the outcome's texts."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        _require_fields(doc, self.name)
        names: dict[str, None] = {}
        for field in OUTCOME_FIELDS:
            for hit in find_criteria(field_text(doc, field)):
                names.setdefault(hit.name, None)
                _add_evidence(doc, self.spans_key, field, hit.start, hit.end, f"criterion:{hit.name}")
        doc._.criteria = list(names)
        return doc


class AbbreviationComponent:
    """Abbreviations defined in the outcome's texts ("Objective response rate (ORR)")."""

    def __init__(self, name: str, spans_key: str) -> None:
        self.name = name
        self.spans_key = spans_key

    def __call__(self, doc: Doc) -> Doc:
        _require_fields(doc, self.name)
        found: dict[str, str] = {}
        for field in OUTCOME_FIELDS:
            for abbr in find_abbreviations(field_text(doc, field)):
                if abbr.short in found:
                    continue
                found[abbr.short] = abbr.long
                _add_evidence(
                    doc, self.spans_key, field, abbr.short_start, abbr.short_end, f"abbreviation:{abbr.short}"
                )
                _add_evidence(
                    doc, self.spans_key, field, abbr.long_start, abbr.long_end, f"long_form:{abbr.short}"
                )
        doc._.abbreviations = found
        return doc


def _factory(cls: type[Any]) -> Callable[[Language, str, str], Any]:
    def make(nlp: Language, name: str, spans_key: str) -> Any:
        return cls(name, spans_key)

    return make


Language.factory(
    "trialsift_timing",
    default_config={"spans_key": SPANS_TIMING},
    assigns=["doc._.timing", "doc._.evidence", "doc.spans"],
    func=_factory(TimingComponent),
)
Language.factory(
    "trialsift_endpoints",
    default_config={"spans_key": SPANS_ENDPOINTS},
    assigns=["doc._.endpoints", "doc._.category", "doc._.evidence", "doc.spans"],
    func=_factory(EndpointComponent),
)
Language.factory(
    "trialsift_criteria",
    default_config={"spans_key": SPANS_CRITERIA},
    assigns=["doc._.criteria", "doc._.evidence", "doc.spans"],
    func=_factory(CriteriaComponent),
)
Language.factory(
    "trialsift_abbreviations",
    default_config={"spans_key": SPANS_ABBREVIATIONS},
    assigns=["doc._.abbreviations", "doc._.evidence", "doc.spans"],
    func=_factory(AbbreviationComponent),
)
