"""Tests of nlp.criteria: assessment standards in the spec's spellings, on real outcome texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.criteria import find_criteria, merge_criteria, parse_criteria
from nlp.errors import ResourceError
from nlp.types import CriterionHit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Duration of Response (DOR) per RECIST v1.1", [("RECIST 1.1", 31, 42)]),
        # A version run on with "v" (corpus: RECISTv1.1 x14, CTCAEv5/CTCAEv2 ...); "very" is no version.
        ("Best overall response per RECISTv1.1.", [("RECIST 1.1", 26, 36)]),
        (
            "based on NCI common toxicity criteria (CTCAEv2).",
            [("NCI CTC", 9, 37), ("CTCAE 2.0", 39, 46)],
        ),
        ("graded by CTCAEv4", [("CTCAE 4.0", 10, 17)]),
        ("RECISTvery", []),
        (
            "according to Response Evaluation Criteria in Solid Tumors (RECIST 1.1) and Prostate Cancer "
            "Working Group 3 (PCWG3)",
            [("RECIST 1.1", 59, 69), ("PCWG3", 75, 106)],
        ),
        (
            "graded according to National Cancer Institute-Common Terminology Criteria for Adverse Events "
            "(NCI-CTCAE) v5.0, where",
            [("CTCAE 5.0", 94, 109)],
        ),
        ("assessed using CTCAE v5.0.", [("CTCAE 5.0", 15, 25)]),
        ("Common Toxicity Criteria for adverse events version 3.0 (CTCAE v3.0).", [("CTCAE 3.0", 57, 67)]),
        (
            "National Cancer Institute Common Toxicity Criteria (NCI CTC version 2.0)",
            [("NCI CTC 2.0", 52, 71)],
        ),
        ("Common Terminology Criteria of Adverse Events (NCI-CTCAE) version 5", [("CTCAE 5.0", 47, 67)]),
        ("CTCAE criteria version 4.03", [("CTCAE 4.03", 0, 27)]),
        ("grade 3 CTCAE toxicity", [("CTCAE", 8, 13)]),
        (
            "response evaluation criteria in solid tumors (RECIST1.1) and immune response evaluation "
            "criteria in solid tumors ( irRECIST) or death",
            [("RECIST 1.1", 46, 55), ("irRECIST", 115, 123)],
        ),
        ("Non-CNS response rate (according to RECIST 1.0) limited", [("RECIST 1.0", 36, 46)]),
        ("the tumor was assessed using RECIST criteria. RECIST: CR", [("RECIST", 29, 44)]),
        ("as per iRECIST or RANO criteria", [("iRECIST", 7, 14), ("RANO", 18, 22)]),
        ("ORR per iwCLL 2018 criteria", [("iwCLL", 8, 13)]),
        ("Lugano 2014 classification", [("Lugano", 0, 11)]),
        ('specified in the "Blade criteria", Br J Haematol', [("Blade", 18, 32)]),
        ("by IMWG criteria", [("IMWG", 3, 7)]),
        ("CRS graded by ASTCT consensus grading", [("ASTCT", 14, 19)]),
        ("Response Assessment in Pediatric Neuro-Oncology (RAPNO) response guidelines", [("RAPNO", 0, 47)]),
        # Circulating tumour cells are not the Common Toxicity Criteria.
        ("CTC count", []),
        ("according to standard solid tumor response criteria", []),
    ],
)
def test_criteria_real_texts(text: str, expected: list[tuple[str, int, int]]) -> None:
    assert [(h.name, h.start, h.end) for h in find_criteria(text)] == expected


def test_criteria_merge_keeps_first_and_drops_unversioned() -> None:
    measure = find_criteria("ORR per RECIST")
    description = find_criteria("assessed by RECIST v1.1 and iRECIST")
    merged = merge_criteria([measure, description])
    assert [h.name for h in merged] == ["RECIST 1.1", "iRECIST"]
    assert merged[0] == CriterionHit("RECIST 1.1", 12, 23)


@given(st.text(max_size=400))
def test_criteria_never_raise_and_spans_inside(text: str) -> None:
    for hit in find_criteria(text):
        assert 0 <= hit.start < hit.end <= len(text)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"criterion": []},
            "criteria.json, key 'criterion': unknown key. Allowed keys: ['_doc', 'criteria']",
        ),
        (
            {"criteria": [{"i": ["RECIST"]}]},
            "criteria.json, criteria[0]: no 'name'. Give the standard's spelling, e.g. \"RECIST\"",
        ),
        (
            {"criteria": [{"name": "RECIST", "version": True}]},
            "criteria.json, criteria[0]: unknown key 'version'. "
            "Allowed keys: ['name', 'i', 'cs', 'versioned', 'long']",
        ),
        (
            {"criteria": [{"name": "RECIST", "cs": ["[R]ECIST"]}]},
            "criteria.json, criteria[0] (RECIST), key 'cs': "
            "fragment '[R]ECIST' does not start with a letter or digit. "
            "Start each fragment with a plain letter or "
            "digit; spell alternatives out as separate fragments",
        ),
    ],
)
def test_criteria_file_errors(data: object, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        parse_criteria(data)
    assert str(err.value) == message
