"""What the index keeps of a study: the texts it embeds and the extracted facts it filters on.

Pure functions from a :class:`~nlp.study.Study` and its extraction output (the spec's JSON) to a
:class:`StudyEntry`. A trial is represented per field, never as one truncated blob:

* ``tci``: title, conditions and interventions together (what a reader skims first);
* ``conditions`` and ``interventions`` on their own (the similar-trials ranking compares them field by field);
* ``summary``: the brief summary, split into model-sized windows by the encoder;
* each outcome (measure + description) is its own entry, carrying its study's id, its role, endpoint ids,
  category, time points and horizon.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from nlp.study import Study

#: The trial fields embedded for every study, in row-slot order (``summary`` takes the slots after them).
TRIAL_FIELDS: Final[tuple[str, ...]] = ("tci", "conditions", "interventions", "summary")


@dataclass(slots=True)
class OutcomeEntry:
    """One outcome measure as the index sees it."""

    role: str
    measure: str
    description: str = ""
    time_frame: str = ""
    endpoints: list[str] = field(default_factory=list)
    category: str = "other"
    horizon_days: float | None = None
    points_days: list[float] = field(default_factory=list)
    anchor: str | None = None
    criteria: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """What is embedded and matched lexically: the measure and its description."""
        return f"{self.measure}. {self.description}".strip() if self.description else self.measure


@dataclass(slots=True)
class StudyEntry:
    """One study as the index sees it: display fields, filterable facts, texts to embed."""

    id: str
    title: str = ""
    official_title: str = ""
    conditions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    interventions: list[str] = field(default_factory=list)
    intervention_types: list[str] = field(default_factory=list)
    summary: str = ""
    phases: list[str] = field(default_factory=list)
    study_type: str = ""
    escalation: str | None = None
    dlt_window_days: float | None = None
    enrollment: int | None = None
    criteria: list[str] = field(default_factory=list)
    outcomes: list[OutcomeEntry] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        """Endpoint ids of all outcomes, first-seen order, no repeats."""
        return list(dict.fromkeys(e for o in self.outcomes for e in o.endpoints))

    def field_text(self, name: str) -> str:
        """The text embedded for one of :data:`TRIAL_FIELDS` ('' when the study has none)."""
        if name == "tci":
            parts = [self.title or self.official_title]
            if self.conditions:
                parts.append("Conditions: " + "; ".join(self.conditions))
            if self.interventions:
                parts.append("Interventions: " + "; ".join(self.interventions))
            return ". ".join(p for p in parts if p)
        if name == "conditions":
            return "; ".join(self.conditions)
        if name == "interventions":
            return "; ".join(self.interventions)
        if name == "summary":
            return self.summary
        raise KeyError(f"unknown trial field {name!r}; expected one of {', '.join(TRIAL_FIELDS)}")

    def lexical_text(self) -> str:
        """All BM25 matches a trial on: titles, conditions, keywords, interventions, summary, outcomes."""
        parts = [self.title, self.official_title, *self.conditions, *self.keywords, *self.interventions]
        parts.append(self.summary)
        parts.extend(o.measure for o in self.outcomes)
        return "\n".join(p for p in parts if p)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyEntry:
        outcomes = [OutcomeEntry(**o) for o in data.get("outcomes", [])]
        return cls(**{**data, "outcomes": outcomes})


def make_entry(study: Study, extraction: dict[str, Any] | None = None) -> StudyEntry:
    """The index's view of a study; ``extraction`` is its spec JSON (``None``: registry fields only).

    Outcomes are taken from the extraction when given (it carries endpoints, category and timing), else
    from the study itself with no extracted facts.
    """
    interventions: list[str] = []
    for iv in study.interventions:
        names = [iv.name, *[n for n in iv.other_names if n.lower() != iv.name.lower()]]
        interventions.append(" / ".join(n for n in names if n))
    entry = StudyEntry(
        id=study.id,
        title=study.title,
        official_title=study.official_title,
        conditions=[c for c in study.conditions if c.strip()],
        keywords=[k for k in study.keywords if k.strip()],
        interventions=[i for i in interventions if i],
        intervention_types=list(dict.fromkeys(iv.type for iv in study.interventions if iv.type)),
        summary=study.brief_summary.strip(),
        phases=list(study.phases),
        study_type=study.study_type,
        enrollment=study.enrollment,
    )
    if extraction is None:
        entry.outcomes = [
            OutcomeEntry(o.role, o.measure, o.description, o.time_frame) for o in study.outcomes
        ]
        return entry
    design = extraction.get("design") or {}
    entry.phases = list(design.get("phases") or study.phases)
    entry.escalation = design.get("escalation")
    entry.dlt_window_days = design.get("dlt_window_days")
    enrollment = design.get("enrollment") or {}
    entry.enrollment = study.enrollment if study.enrollment is not None else enrollment.get("max")
    criteria = list(design.get("criteria") or [])
    for out in extraction.get("outcomes", []):
        timing = out.get("timing") or {}
        entry.outcomes.append(
            OutcomeEntry(
                role=out.get("role", ""),
                measure=out.get("measure", ""),
                description=out.get("description", ""),
                time_frame=out.get("time_frame", ""),
                endpoints=list(out.get("endpoints") or []),
                category=out.get("category") or "other",
                horizon_days=timing.get("horizon_days"),
                points_days=[p["days"] for p in timing.get("points") or [] if p.get("days") is not None],
                anchor=timing.get("anchor"),
                criteria=list(out.get("criteria") or []),
            )
        )
        criteria.extend(out.get("criteria") or [])
    entry.criteria = list(dict.fromkeys(criteria))
    return entry
