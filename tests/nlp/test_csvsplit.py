"""nlp.csvsplit: CSV-export outcome cells split back into (measure, description, time frame)."""
# ruff: noqa: E501  (real registry strings pasted whole, so the expected values can be read against the source)

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp import csvsplit
from nlp.csvsplit import split_outcome, split_outcome_cell

# Real cells from the registry's CSV export, with the split the registry's API gives.
CELLS = [
    (
        "functional activity, The modified Parkinson activity scale (mPAS) consist of 14 items arranged on to "
        "three domains: chair transfer (2 items), gait akinesia (6 items) and bed mobility (6 items), 8 weeks",
        [
            (
                "functional activity",
                "The modified Parkinson activity scale (mPAS) consist of 14 items arranged on to three domains: "
                "chair transfer (2 items), gait akinesia (6 items) and bed mobility (6 items)",
                "8 weeks",
            )
        ],
    ),
    (
        "Disease control rate, Overall response rate + stable disease, From the date of registration until "
        "disease progression or death, up to 3 years.|Safety profile, The toxicity profiles graded by CTCAE, "
        "From the date of registration until 1 month after disease progression or death, up to 3 years.",
        [
            (
                "Disease control rate",
                "Overall response rate + stable disease",
                "From the date of registration until disease progression or death, up to 3 years.",
            ),
            (
                "Safety profile",
                "The toxicity profiles graded by CTCAE",
                "From the date of registration until 1 month after disease progression or death, up to 3 years.",
            ),
        ],
    ),
    (
        'ODS "Treatment Success" at Day 8 and Day 15, The percentage of subjects with ODS "treatment success" '
        'at Day 8 and Day 15. "Treatment success" is defined as an ODS of 0 or 1. ODS is measured on a 5-point '
        "scale: 0 = clear; 1 = almost clear; 2 = mild; 3 = moderate; 4 = severe/very severe., baseline, Day 8, "
        "and Day 15",
        [
            (
                'ODS "Treatment Success" at Day 8 and Day 15',
                'The percentage of subjects with ODS "treatment success" at Day 8 and Day 15. "Treatment success" '
                "is defined as an ODS of 0 or 1. ODS is measured on a 5-point scale: 0 = clear; 1 = almost clear; "
                "2 = mild; 3 = moderate; 4 = severe/very severe.",
                "baseline, Day 8, and Day 15",
            )
        ],
    ),
    (
        "Ph1b: Progression-Free Survival (PFS), PFS is defined as the time from randomization to the first "
        "documented disease progression per RECIST 1.1 by investigator or death, whichever occurs first., "
        "Study duration of approximately 36 months",
        [
            (
                "Ph1b: Progression-Free Survival (PFS)",
                "PFS is defined as the time from randomization to the first documented disease progression per "
                "RECIST 1.1 by investigator or death, whichever occurs first.",
                "Study duration of approximately 36 months",
            )
        ],
    ),
    # The seed IM96's primary outcome: a description with five commas.
    (
        "Incidence of Treatment Related adverse events (AEs), Incidence of adverse events associated with IM96 "
        "CAR-T cell infusion within 28 days of IM96 CAR-T cell infusion, type, frequency, and severity of "
        "abnormal clinically significant vital signs, electrocardiograms, and laboratory tests examined, "
        "including dose-limiting toxicity, Up to 28 days after CAR-T cell infusion",
        [
            (
                "Incidence of Treatment Related adverse events (AEs)",
                "Incidence of adverse events associated with IM96 CAR-T cell infusion within 28 days of IM96 "
                "CAR-T cell infusion, type, frequency, and severity of abnormal clinically significant vital "
                "signs, electrocardiograms, and laboratory tests examined, including dose-limiting toxicity",
                "Up to 28 days after CAR-T cell infusion",
            )
        ],
    ),
    # Empty descriptions: the export writes "measure, time frame".
    (
        "The remission rate of diabetes, at 9 months, 1 year and 2 years of follow-up|Glycated hemoglobin, "
        "Reduced levels of glycated hemoglobin, Baseline and every 12 weeks until 96 weeks",
        [
            ("The remission rate of diabetes", "", "at 9 months, 1 year and 2 years of follow-up"),
            (
                "Glycated hemoglobin",
                "Reduced levels of glycated hemoglobin",
                "Baseline and every 12 weeks until 96 weeks",
            ),
        ],
    ),
    (
        "Major Adverse Cardiovascular and Cerebrovascular Events (MACCE), Up to 1 year post-Impella implant",
        [
            (
                "Major Adverse Cardiovascular and Cerebrovascular Events (MACCE)",
                "",
                "Up to 1 year post-Impella implant",
            )
        ],
    ),
]


@pytest.mark.parametrize(("cell", "expected"), CELLS)
def test_csvsplit_real_cells_split_exactly(cell: str, expected: list[tuple[str, str, str]]) -> None:
    assert split_outcome_cell(cell) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Overall survival", ("Overall survival", "", "")),
        ("  Overall survival  ", ("Overall survival", "", "")),
        ("", ("", "", "")),
    ],
)
def test_csvsplit_outcome_without_commas_is_a_measure(text: str, expected: tuple[str, str, str]) -> None:
    assert split_outcome(text) == expected


def test_csvsplit_cell_skips_empty_outcomes() -> None:
    assert split_outcome_cell("|Overall survival, 2 years||") == [("Overall survival", "", "2 years")]


def test_csvsplit_weights_cover_every_feature() -> None:
    assert len(csvsplit.load_weights()) == len(csvsplit.FEATURES)


def _squash(s: str) -> str:
    # Whitespace aside, only the separators around empty pieces (", , ") may differ.
    return re.sub(r",+", ",", re.sub(r"\s+", "", s)).strip(",")


_PIECE = st.text(alphabet=st.sampled_from(list("ab ,.()[]:|0123456789Day weeks\n-")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECE, max_size=6).map(", ".join) | st.text(max_size=120))
def test_csvsplit_never_raises_and_parts_rejoin_to_cell(cell: str) -> None:
    outcomes = split_outcome_cell(cell)
    expected = [part for part in cell.split("|") if part.strip()]
    assert len(outcomes) == len(expected)
    for (measure, description, time_frame), text in zip(outcomes, expected, strict=True):
        joined = ", ".join(x for x in (measure, description, time_frame) if x)
        assert _squash(joined) == _squash(text)


@pytest.mark.parametrize("cell", [cell for cell, _ in CELLS])
def test_csvsplit_fast_scorer_matches_feature_vectors(cell: str) -> None:
    weights = csvsplit.load_weights()
    for text in cell.split("|"):
        parts = text.strip().split(", ")
        if len(parts) == 1:
            continue
        scores = {
            (a, b): sum(w * x for w, x in zip(weights, csvsplit.candidate_features(parts, a, b), strict=True))
            for a, b in csvsplit.candidates(len(parts))
        }
        a, b = max(scores, key=scores.__getitem__)
        expected = (", ".join(parts[:a]), ", ".join(parts[a:b]), ", ".join(parts[b:]))
        assert split_outcome(text) == tuple(x.strip() for x in expected)
