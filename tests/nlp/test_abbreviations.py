"""Tests of nlp.abbreviations (Schwartz & Hearst 2003) on real outcome texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.abbreviations import abbreviation_map, find_abbreviations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Objective response rate (ORR)", [("ORR", "Objective response rate", 25, 28, 0, 23)]),
        (
            "Safety：Incidence of Dose Limiting Toxicity (DLT)",
            [("DLT", "Dose Limiting Toxicity", 44, 47, 20, 42)],
        ),
        (
            "Incidence of Treatment Related adverse events (AEs), type",
            [("AEs", "adverse events", 47, 50, 31, 45)],
        ),
        ("AUC (Area Under Curve) 0-D90", [("AUC", "Area Under Curve", 0, 3, 5, 21)]),
        (
            "Number of Participants With Treatment-emergent Adverse Events (TEAEs) and Serious Adverse "
            "Events (SAEs)",
            [
                ("TEAEs", "Treatment-emergent Adverse Events", 63, 68, 28, 61),
                ("SAEs", "Serious Adverse Events", 98, 102, 74, 96),
            ],
        ),
        (
            "Rhino-conjunctivitis Quality of Life Questionnaire （RQLQ）",
            [("RQLQ", "Rhino-conjunctivitis Quality of Life Questionnaire", 52, 56, 0, 50)],
        ),
        (
            "Response Evaluation Criteria in Solid Tumors (RECIST 1.1)",
            [("RECIST", "Response Evaluation Criteria in Solid Tumors", 46, 52, 0, 44)],
        ),
        ("pathologic complete response (pCR)", [("pCR", "pathologic complete response", 30, 33, 0, 28)]),
        # Not definitions: a parenthesis whose letters the preceding words do not spell.
        ("Tmax (Peak Time)", []),
        ("At Week 8 (Visit 3)", []),
    ],
)
def test_abbreviations_real_texts(text: str, expected: list[tuple[str, str, int, int, int, int]]) -> None:
    got = [
        (a.short, a.long, a.short_start, a.short_end, a.long_start, a.long_end)
        for a in find_abbreviations(text)
    ]
    assert got == expected
    for short, long, s0, s1, l0, l1 in got:
        assert text[s0:s1] == short and text[l0:l1] == long


def test_abbreviations_map() -> None:
    assert abbreviation_map("Objective response rate (ORR) and disease control rate (DCR)") == {
        "ORR": "Objective response rate",
        "DCR": "disease control rate",
    }


@given(st.text(max_size=300))
def test_abbreviations_never_raise_and_spans_inside(text: str) -> None:
    for a in find_abbreviations(text):
        assert text[a.short_start : a.short_end] == a.short
        assert text[a.long_start : a.long_end] == a.long
