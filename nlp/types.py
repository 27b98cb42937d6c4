"""Result types shared by the pure extraction functions.

Every value carries ``start``/``end``: character offsets into the text the function was given
(half-open, ``text[start:end]`` is the evidence). Functions that look at several outcome fields
also say which one (``field`` is ``"measure"``, ``"description"`` or ``"time_frame"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Day counts per time unit, as the extraction spec fixes them.
DAYS_PER_UNIT: Final[dict[str, float]] = {
    "minute": 1 / 1440,
    "hour": 1 / 24,
    "day": 1.0,
    "week": 7.0,
    "month": 30.4375,
    "year": 365.25,
}

#: Anchor kinds (what the times of an outcome count from).
ANCHORS: Final[tuple[str, ...]] = (
    "treatment",
    "randomization",
    "baseline",
    "surgery",
    "treatment_end",
    "other",
)

#: Outcome categories.
CATEGORIES: Final[tuple[str, ...]] = (
    "efficacy",
    "safety",
    "pharmacokinetics",
    "biomarker",
    "patient_reported",
    "other",
)

#: The three texts of an outcome measure, in the order they are joined for the spaCy Doc.
OUTCOME_FIELDS: Final[tuple[str, ...]] = ("measure", "description", "time_frame")


def to_days(value: float, unit: str) -> float:
    """Convert ``value`` ``unit`` (one of :data:`DAYS_PER_UNIT`) to days."""
    return value * DAYS_PER_UNIT[unit]


@dataclass(frozen=True, slots=True)
class TimePoint:
    """A number with a time unit, as written ("3 months" stays 3 month)."""

    value: float
    unit: str
    start: int
    end: int

    @property
    def days(self) -> float:
        return to_days(self.value, self.unit)


@dataclass(frozen=True, slots=True)
class CycleRef:
    """A cycle-based time ("Cycle 2 Day 1" -> cycle 2, day 1); either part may be unknown."""

    cycle: int | None
    day: int | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Interval:
    """The repeat interval of "every 6 weeks"."""

    value: float
    unit: str
    start: int
    end: int

    @property
    def days(self) -> float:
        return to_days(self.value, self.unit)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What the times count from: ``kind`` is one of :data:`ANCHORS`; ``text`` names it."""

    kind: str
    text: str
    start: int
    end: int
    field: str = "time_frame"


@dataclass(frozen=True, slots=True)
class Timing:
    """Everything :func:`nlp.timeframes.parse_time_frame` reads from one time frame."""

    points: tuple[TimePoint, ...] = ()
    cycles: tuple[CycleRef, ...] = ()
    horizon_days: float | None = None
    #: Offsets of the expression that gave the horizon (a point or a "up to ..." phrase).
    horizon_span: tuple[int, int] | None = None
    interval: Interval | None = None
    anchor: Anchor | None = None


@dataclass(frozen=True, slots=True)
class EndpointHit:
    """An endpoint id from the vocabulary, found in one outcome field."""

    id: str
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class CriterionHit:
    """An assessment standard in the spec's spelling ("RECIST 1.1", "CTCAE 5.0")."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Abbreviation:
    """A short form defined in the text: ``long_form (SHORT)`` or ``SHORT (long form)``."""

    short: str
    long: str
    short_start: int
    short_end: int
    long_start: int
    long_end: int


@dataclass(frozen=True, slots=True)
class EndpointResult:
    """What an outcome measures: endpoint ids (in order of first mention) and the category."""

    hits: tuple[EndpointHit, ...] = ()
    category: str = "other"
    #: Offsets and field of the words that decided the category when no endpoint did.
    category_evidence: EndpointHit | None = field(default=None)

    @property
    def ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for hit in self.hits:
            seen.setdefault(hit.id, None)
        return list(seen)
