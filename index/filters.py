"""Filters on extracted fields, applied before top-k.

Study-level filters (phase, condition, intervention, escalation scheme, criteria) test the study;
outcome-level filters (endpoint, category, role, time point range, horizon range) test one outcome, and all
of them must hold for the *same* outcome: "ORR with a horizon of 60-120 days" does not match a study that
measures ORR at 2 years and something else at 3 months. A trial matches when its study-level filters hold and,
if any outcome-level filter is set, at least one of its outcomes matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

from index.documents import OutcomeEntry, StudyEntry
from nlp.errors import TrialsiftError
from nlp.study import ROLES
from nlp.types import CATEGORIES

PHASES = ("EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}


#: The filters' user-facing names (command-line options, API fields) -> ``SearchFilters.make`` parameters.
OPTION_NAMES: dict[str, str] = {
    "phase": "phases",
    "condition": "condition",
    "intervention": "intervention",
    "escalation": "escalation",
    "criteria": "criteria",
    "endpoint": "endpoints",
    "category": "categories",
    "role": "roles",
    "time_point": "time_point",
    "horizon": "horizon",
}


class FilterError(TrialsiftError, ValueError):
    """A filter value that cannot be understood; the message says which and what is accepted."""


def normalise_phase(value: str) -> str:
    """``"1"``, ``"phase 1"``, ``"Phase I"``, ``"PHASE1"`` → ``"PHASE1"``; ``"early1"`` → ``"EARLY_PHASE1"``.

    >>> normalise_phase("phase II")
    'PHASE2'
    """
    text = re.sub(r"[\s_-]+", "", value.strip().lower())
    early = text.startswith("early")
    text = text.removeprefix("early").removeprefix("phase")
    text = _ROMAN.get(text, text)
    if text == "na":
        return "NA"
    if text in {"1", "2", "3", "4"}:
        if early and text != "1":
            raise FilterError(f"phase {value!r}: only phase 1 has an early form")
        return ("EARLY_PHASE" if early else "PHASE") + text
    raise FilterError(
        f"phase {value!r} is not one of 1, 2, 3, 4, early1, NA (or PHASE1 … as the registry spells)"
    )


@dataclass(frozen=True, slots=True)
class DayRange:
    """A closed range of days; either end may be open (``None``)."""

    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise FilterError(
                f"day range {self.low:g}..{self.high:g} is empty: the low end is above the high"
            )

    def __contains__(self, days: object) -> bool:
        if not isinstance(days, int | float):
            return False
        return (self.low is None or days >= self.low) and (self.high is None or days <= self.high)

    @classmethod
    def parse(cls, text: str) -> DayRange:
        """``"90"`` (exactly), ``"60..120"``, ``"..28"``, ``"365.."`` (days)."""
        value = text.strip()
        low: float | None
        high: float | None
        try:
            if ".." not in value:
                low = high = float(value)
            else:
                left, right = value.split("..", 1)
                low = float(left) if left.strip() else None
                high = float(right) if right.strip() else None
        except ValueError:
            raise FilterError(
                f"day range {text!r}: expected DAYS, LOW..HIGH, ..HIGH or LOW.. (numbers of days)"
            ) from None
        # Built outside the try: FilterError is a ValueError, and its own message ("empty") must get out.
        return cls(low, high)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Every field is optional; set fields must all hold. Tuples mean "any of"."""

    phases: tuple[str, ...] = ()
    condition: str | None = None
    intervention: str | None = None
    escalation: tuple[str, ...] = ()
    criteria: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    time_point: DayRange | None = None
    horizon: DayRange | None = None

    @classmethod
    def make(
        cls,
        *,
        phases: Iterable[str] = (),
        condition: str | None = None,
        intervention: str | None = None,
        escalation: Iterable[str] = (),
        criteria: Iterable[str] = (),
        endpoints: Iterable[str] = (),
        categories: Iterable[str] = (),
        roles: Iterable[str] = (),
        time_point: DayRange | str | None = None,
        horizon: DayRange | str | None = None,
    ) -> SearchFilters:
        """Normalised filters from user-facing values (phase spellings, ``"60..120"`` day ranges)."""
        return cls(
            phases=tuple(normalise_phase(p) for p in phases),
            condition=condition.strip() or None if condition else None,
            intervention=intervention.strip() or None if intervention else None,
            escalation=tuple(escalation),
            criteria=tuple(criteria),
            endpoints=tuple(endpoints),
            categories=tuple(categories),
            roles=tuple(roles),
            time_point=DayRange.parse(time_point) if isinstance(time_point, str) else time_point,
            horizon=DayRange.parse(horizon) if isinstance(horizon, str) else horizon,
        )

    @classmethod
    def from_options(cls, options: object) -> SearchFilters:
        """Filters from an object carrying the user-facing names as attributes: the command line's options
        or the HTTP API's ``filters`` (see ``OPTION_NAMES``).

        Unlike :meth:`make`, this refuses values that can match nothing extracted (a category, role or
        endpoint id outside trialsift's vocabularies): from a user, that is a typo to point out, not a
        filter that silently returns no hits.
        """
        values = {param: getattr(options, name) for name, param in OPTION_NAMES.items()}
        for name, param, allowed in (("category", "categories", CATEGORIES), ("role", "roles", ROLES)):
            for value in values[param] or ():
                if value not in allowed:
                    raise FilterError(f"{name} {value!r} is not one of {', '.join(allowed)}")
        if values["endpoints"]:
            from nlp.endpoints import vocabulary

            known = vocabulary()
            for value in values["endpoints"]:
                if value not in known:
                    raise FilterError(
                        f"endpoint {value!r} is not an endpoint id of the vocabulary (e.g. overall_survival)"
                    )
        return cls.make(**values)

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def outcome_level(self) -> bool:
        """Whether a filter on outcomes is set."""
        return bool(self.endpoints or self.categories or self.roles or self.time_point or self.horizon)

    def describe(self) -> dict[str, object]:
        """The set filters as plain values (for JSON output)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, DayRange):
                out[f.name] = {"low": value.low, "high": value.high}
            elif value:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def study_matches(self, study: StudyEntry) -> bool:
        """The study-level filters hold for ``study`` (outcome-level ones are not looked at)."""
        if self.phases and not set(self.phases) & set(study.phases):
            return False
        if self.condition and not _contains_any(self.condition, [*study.conditions, *study.keywords]):
            return False
        if self.intervention and not _contains_any(self.intervention, study.interventions):
            return False
        if self.escalation and not _equal_any(study.escalation, self.escalation):
            return False
        return not self.criteria or any(_equal_any(c, self.criteria) for c in study.criteria)

    def outcome_matches(self, outcome: OutcomeEntry) -> bool:
        """The outcome-level filters hold for ``outcome``."""
        if self.endpoints and not set(self.endpoints) & set(outcome.endpoints):
            return False
        if self.categories and outcome.category not in self.categories:
            return False
        if self.roles and outcome.role not in self.roles:
            return False
        if self.time_point and not any(p in self.time_point for p in outcome.points_days):
            return False
        return not self.horizon or outcome.horizon_days in self.horizon

    def trial_matches(self, study: StudyEntry) -> bool:
        """A trial search hit: study-level filters hold, and some outcome matches the outcome-level ones."""
        if not self.study_matches(study):
            return False
        return not self.outcome_level or any(self.outcome_matches(o) for o in study.outcomes)


def _contains_any(needle: str, haystack: Iterable[str]) -> bool:
    low = needle.casefold()
    return any(low in text.casefold() for text in haystack)


def _equal_any(value: str | None, options: Iterable[str]) -> bool:
    if value is None:
        return False
    low = value.casefold()
    return any(low == o.casefold() for o in options)
