"""Tests of nlp.anchors: anchor phrases and the time frame > measure > description order."""

# ruff: noqa: E501  (real time frames are pasted verbatim, long lines included)
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp.anchors import _compile_kinds, find_anchor, resolve_anchor
from nlp.errors import ResourceError


@pytest.mark.parametrize(
    ("text", "kind", "evidence"),
    [
        (
            "From randomization until death due to any cause (median follow-up of 4.5 years)",
            "randomization",
            "From randomization",
        ),
        ("Up to 2 years post-transplant", "surgery", "post-transplant"),
        (
            "Up to 30 days after discontinuation of treatment",
            "treatment_end",
            "after discontinuation of treatment",
        ),
        ("From enrollment to visit 5 at 24 months.", "baseline", "From enrollment"),
        ("2 and 5 years after first response", "other", "after first response"),
        ("Within 28 days from the CAR-TA T cell infusion", "treatment", "from the CAR-TA T cell infusion"),
        ("third day after surgery", "surgery", "after surgery"),
        ("Baseline, week 12", "baseline", "Baseline"),
        ("Measured throughout the study", None, None),
        ("Study completion", None, None),
        ("Up to 5 years", None, None),
    ],
)
def test_anchors_find_in_time_frame(text: str, kind: str | None, evidence: str | None) -> None:
    anchor = find_anchor(text, "time_frame")
    if kind is None:
        assert anchor is None
        return
    assert anchor is not None
    assert (anchor.kind, anchor.text, anchor.field) == (kind, evidence, "time_frame")
    assert text[anchor.start : anchor.end] == evidence


@pytest.mark.parametrize(
    ("time_frame", "measure", "description", "kind", "field", "evidence"),
    [
        # The spec's examples.
        ("12 months", "Change from baseline in HbA1c", "", "baseline", "measure", "Change from baseline"),
        (
            "5 years",
            "Overall survival",
            "measured from registration to death",
            "baseline",
            "description",
            "from registration",
        ),
        (
            "Up to 2 years",
            "AEs",
            "Events occurring post-treatment",
            "treatment_end",
            "description",
            "post-treatment",
        ),
        (
            "6 months",
            "Toxicity",
            "assessed after completion of therapy",
            "treatment_end",
            "description",
            "after completion of therapy",
        ),
        (
            "30 days",
            "SAEs",
            "within 30 days after the last dose",
            "treatment_end",
            "description",
            "after the last dose",
        ),
        # The time frame wins over the measure and the description.
        (
            "Up to 2 years post-transplant",
            "Change from baseline",
            "from the first dose",
            "surgery",
            "time_frame",
            "post-transplant",
        ),
        # Real dev-gold outcomes.
        (
            "Up to approximately 2 years",
            "Overall survival (OS)",
            "Is measured as the time from the first dose of CC-96191 to death due to any cause.",
            "treatment",
            "description",
            "from the first dose",
        ),
        ("0 weeks", "Fasting Plasma Glucose at Baseline", "", "baseline", "measure", "at Baseline"),
        (
            "2 years",
            "Number of Subjects Who Are Able to Tolerate 2 Grams of Unheated Milk Protein After 2 Years of Treatment",
            "",
            "treatment",
            "measure",
            "After 2 Years of Treatment",
        ),
        ("Up to 5 years", "time to progression", "", None, None, None),
        (
            "Up to ~28 months",
            "Percentage of participants who experience an adverse event (AE)",
            "An AE is any untoward medical occurrence in a clinical study participant, temporally associated with the "
            "use of study intervention, whether or not considered related to the study intervention.",
            None,
            None,
            None,
        ),
    ],
)
def test_anchors_resolve_order(
    time_frame: str, measure: str, description: str, kind: str | None, field: str | None, evidence: str | None
) -> None:
    anchor = resolve_anchor(time_frame, measure, description)
    if kind is None:
        assert anchor is None
        return
    assert anchor is not None
    assert (anchor.kind, anchor.field, anchor.text) == (kind, field, evidence)
    source = {"time_frame": time_frame, "measure": measure, "description": description}[anchor.field]
    assert source[anchor.start : anchor.end] == evidence


def test_anchors_resource_errors_name_the_fix() -> None:
    with pytest.raises(ResourceError, match=r"unknown anchor kind\. Use one of: treatment, randomization"):
        _compile_kinds({"birthday": ["birth"]}, "time_frame")
    with pytest.raises(ResourceError, match=r"time_frame.other\[0\]: has an upper-case letter"):
        _compile_kinds({"other": ["Birth"]}, "time_frame")
    with pytest.raises(ResourceError, match="bad regex"):
        _compile_kinds({"other": ["(birth"]}, "time_frame")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=80))
def test_anchors_never_raise_and_spans_inside(time_frame: str, measure: str, description: str) -> None:
    anchor = resolve_anchor(time_frame, measure, description)
    if anchor is not None:
        source = {"time_frame": time_frame, "measure": measure, "description": description}[anchor.field]
        assert 0 <= anchor.start < anchor.end <= len(source)
        assert source[anchor.start : anchor.end] == anchor.text
