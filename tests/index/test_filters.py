"""index.filters: phase spellings, day ranges, and which studies and outcomes a filter lets through."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.documents import StudyEntry
from index.filters import DayRange, FilterError, SearchFilters, normalise_phase
from tests.index.conftest import outcome


@pytest.mark.parametrize(
    ("value", "phase"),
    [
        ("1", "PHASE1"),
        ("phase 1", "PHASE1"),
        ("Phase I", "PHASE1"),
        ("PHASE1", "PHASE1"),
        (" phase ii ", "PHASE2"),
        ("Phase-III", "PHASE3"),
        ("phase_4", "PHASE4"),
        ("iv", "PHASE4"),
        ("early1", "EARLY_PHASE1"),
        ("Early Phase 1", "EARLY_PHASE1"),
        ("EARLY_PHASE1", "EARLY_PHASE1"),
        ("early phase I", "EARLY_PHASE1"),
        ("NA", "NA"),
        ("n a", "NA"),
    ],
)
def test_normalise_phase_spellings(value: str, phase: str) -> None:
    assert normalise_phase(value) == phase


ALLOWED = "is not one of 1, 2, 3, 4, early1, NA (or PHASE1 … as the registry spells)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", f"phase '5' {ALLOWED}"),
        ("phase 1/2", f"phase 'phase 1/2' {ALLOWED}"),
        ("", f"phase '' {ALLOWED}"),
        ("phase v", f"phase 'phase v' {ALLOWED}"),
        ("early2", "phase 'early2': only phase 1 has an early form"),
        ("Early Phase III", "phase 'Early Phase III': only phase 1 has an early form"),
    ],
)
def test_normalise_phase_errors(value: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        normalise_phase(value)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("90", 90.0, 90.0),
        ("60..120", 60.0, 120.0),
        ("..28", None, 28.0),
        ("365..", 365.0, None),
        (" 60 .. 120 ", 60.0, 120.0),
        ("0.5..1.5", 0.5, 1.5),
        ("7..7", 7.0, 7.0),
        ("..", None, None),
    ],
)
def test_day_range_parse(text: str, low: float | None, high: float | None) -> None:
    assert DayRange.parse(text) == DayRange(low, high)


FORMS = "expected DAYS, LOW..HIGH, ..HIGH or LOW.. (numbers of days)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", f"day range 'abc': {FORMS}"),
        ("60-120", f"day range '60-120': {FORMS}"),
        ("60...120", "day range 60..0.12 is empty: the low end is above the high"),  # ".120" is a number
        ("3 months", f"day range '3 months': {FORMS}"),
        ("", f"day range '': {FORMS}"),
        ("120..60", "day range 120..60 is empty: the low end is above the high"),
        ("1.5..0.5", "day range 1.5..0.5 is empty: the low end is above the high"),
    ],
)
def test_day_range_parse_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        DayRange.parse(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("days", "inside"),
    [(60, True), (120, True), (90.5, True), (59.99, False), (120.01, False), (None, False), ("90", False)],
)
def test_day_range_contains_closed_ends(days: object, inside: bool) -> None:
    assert (days in DayRange(60, 120)) is inside


def test_day_range_open_ends() -> None:
    assert -5 in DayRange(None, 28) and 28 in DayRange(None, 28) and 29 not in DayRange(None, 28)
    assert 1e9 in DayRange(365, None) and 364 not in DayRange(365, None)
    assert 0 in DayRange() and None not in DayRange()


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(a=finite, b=finite, x=finite)
def test_day_range_contains_matches_comparison(a: float, b: float, x: float) -> None:
    low, high = min(a, b), max(a, b)
    assert (x in DayRange(low, high)) == (low <= x <= high)
    assert (x in DayRange(low, None)) == (low <= x)
    assert (x in DayRange(None, high)) == (x <= high)
    assert DayRange.parse(f"{low!r}..{high!r}") == DayRange(low, high)


@given(text=st.text(max_size=20))
def test_day_range_parse_never_raises_anything_but_filter_error(text: str) -> None:
    try:
        r = DayRange.parse(text)
    except FilterError:
        return
    for end in (r.low, r.high):
        assert end is None or isinstance(end, float)
    if r.low is not None and r.high is not None and not (math.isnan(r.low) or math.isnan(r.high)):
        assert r.low <= r.high


def test_search_filters_make_normalises() -> None:
    f = SearchFilters.make(
        phases=["1", "Phase II"],
        condition="  leukemia ",
        intervention=" ",
        roles=["primary"],
        time_point="60..120",
        horizon=DayRange(None, 28),
    )
    assert f == SearchFilters(
        phases=("PHASE1", "PHASE2"),
        condition="leukemia",
        intervention=None,
        roles=("primary",),
        time_point=DayRange(60, 120),
        horizon=DayRange(None, 28),
    )
    assert f.active and f.outcome_level
    assert f.describe() == {
        "phases": ["PHASE1", "PHASE2"],
        "condition": "leukemia",
        "roles": ["primary"],
        "time_point": {"low": 60.0, "high": 120.0},
        "horizon": {"low": None, "high": 28},
    }


def test_search_filters_empty_is_inactive() -> None:
    f = SearchFilters.make()
    assert not f.active and not f.outcome_level and f.describe() == {}
    assert SearchFilters.make(phases=["3"]).active and not SearchFilters.make(phases=["3"]).outcome_level
    assert SearchFilters.make(time_point="..").outcome_level  # an open range is still a filter


def test_search_filters_make_reports_bad_values() -> None:
    with pytest.raises(FilterError, match="phase '7' is not one of"):
        SearchFilters.make(phases=["1", "7"])
    with pytest.raises(FilterError, match="day range 'abc'"):
        SearchFilters.make(horizon="abc")


STUDY = StudyEntry(
    id="NCT06834399",
    conditions=["Colorectal Cancer with Hepatic Metastases"],
    keywords=["liver metastases"],
    interventions=["KN046 / PD-L1/CTLA4 BsAb", "Tirapazamine"],
    phases=["PHASE1", "PHASE2"],
    escalation="Modified 3+3",
    criteria=["RECIST 1.1", "CTCAE 5.0"],
    outcomes=[
        # ORR at 2 years, adverse events at 3 months: no single outcome is "ORR around 3 months".
        outcome(
            "Objective response rate",
            endpoints=["objective_response_rate"],
            category="efficacy",
            horizon=730,
            points=[365, 730],
        ),
        outcome(
            "Incidence of adverse events",
            role="secondary",
            endpoints=["adverse_events"],
            category="safety",
            horizon=90,
            points=[90],
        ),
    ],
)


@pytest.mark.parametrize(
    ("kwargs", "matches"),
    [
        ({}, True),
        ({"phases": ["2"]}, True),
        ({"phases": ["3", "1"]}, True),  # any of
        ({"phases": ["3"]}, False),
        ({"condition": "COLORECTAL"}, True),  # case-insensitive substring
        ({"condition": "liver"}, True),  # keywords count as conditions
        ({"condition": "lung"}, False),
        ({"intervention": "pd-l1"}, True),
        ({"intervention": "placebo"}, False),
        ({"escalation": ["modified 3+3"]}, True),
        ({"escalation": ["3+3"]}, False),  # schemes are equal, not contained
        ({"criteria": ["recist 1.1"]}, True),
        ({"criteria": ["iRECIST", "CTCAE 5.0"]}, True),
        ({"criteria": ["RECIST"]}, False),
        ({"phases": ["1"], "condition": "colorectal", "intervention": "tirapazamine"}, True),
        ({"phases": ["1"], "condition": "breast"}, False),  # all set filters must hold
    ],
)
def test_search_filters_study_matches(kwargs: dict[str, object], matches: bool) -> None:
    assert SearchFilters.make(**kwargs).study_matches(STUDY) is matches  # type: ignore[arg-type]


def test_search_filters_escalation_never_matches_a_study_without_one() -> None:
    study = StudyEntry(id="X", phases=["PHASE1"])
    assert not SearchFilters.make(escalation=["3+3"]).study_matches(study)


@pytest.mark.parametrize(
    ("kwargs", "which"),
    [
        ({"endpoints": ["objective_response_rate"]}, [True, False]),
        ({"endpoints": ["overall_survival", "adverse_events"]}, [False, True]),
        ({"categories": ["safety"]}, [False, True]),
        ({"roles": ["primary"]}, [True, False]),
        ({"time_point": "90"}, [False, True]),
        ({"time_point": "300..400"}, [True, False]),  # any of an outcome's points
        ({"time_point": "..30"}, [False, False]),
        ({"horizon": "60..120"}, [False, True]),
        ({"horizon": "700.."}, [True, False]),
        ({"endpoints": ["objective_response_rate"], "horizon": "60..120"}, [False, False]),
        ({"categories": ["safety"], "roles": ["secondary"], "time_point": "90"}, [False, True]),
    ],
)
def test_search_filters_outcome_matches(kwargs: dict[str, object], which: list[bool]) -> None:
    f = SearchFilters.make(**kwargs)  # type: ignore[arg-type]
    assert [f.outcome_matches(o) for o in STUDY.outcomes] == which
    # A trial matches when one and the same outcome passes every outcome filter.
    assert f.trial_matches(STUDY) is any(which)


def test_search_filters_horizon_never_matches_an_outcome_without_one() -> None:
    assert not SearchFilters.make(horizon="..").outcome_matches(outcome("Overall survival"))
    assert not SearchFilters.make(time_point="..").outcome_matches(outcome("Overall survival"))


def test_search_filters_trial_matches_needs_study_and_outcome_level() -> None:
    f = SearchFilters.make(phases=["3"], endpoints=["adverse_events"])
    assert not f.trial_matches(STUDY)  # the outcome matches, the phase does not
    assert SearchFilters.make(phases=["2"]).trial_matches(
        StudyEntry(id="X", phases=["PHASE2"])
    )  # no outcomes
    assert not SearchFilters.make(categories=["safety"]).trial_matches(StudyEntry(id="X"))
