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


# Cells whose outcomes share a time frame (or a list-like measure): split together. Corpus outcomes joined
# as the export joins them, with the split the registry gives.
JOINT_CELLS = [
    (
        "Incidence, character, and severity of adverse events (AEs) as judged according to NCI-CTCAE v5.0, Up to 2 years|Dose-limiting toxicities (DLT), Incidence, character, and severity of dose-limiting toxicities., Up to 2 years|The Recommended Dose (RD) of ICP-B794 for expansion and Maximum Tolerated Dose (MTD), Up to 2 years|Objective response rate (ORR), Up to 2 years",
        [
            (
                "Incidence, character, and severity of adverse events (AEs) as judged according to NCI-CTCAE v5.0",
                "",
                "Up to 2 years",
            ),
            (
                "Dose-limiting toxicities (DLT)",
                "Incidence, character, and severity of dose-limiting toxicities.",
                "Up to 2 years",
            ),
            (
                "The Recommended Dose (RD) of ICP-B794 for expansion and Maximum Tolerated Dose (MTD)",
                "",
                "Up to 2 years",
            ),
            ("Objective response rate (ORR)", "", "Up to 2 years"),
        ],
    ),
    (
        "Determine whether fenretinide will cause significant modulation of intermediate endpoint markers and significant regression of oral dysplastic leukoplakia in this patient population., baseline to 6 months|Compare the ability of fenretinide and placebo to modulate surrogate endpoint biomarkers in this patient population., baseline to 6 months|Document the degree of recurrence of oral dysplastic leukoplakia after the administration of fenretinide, both at the same site and at new sites., baseline to 6 months",
        [
            (
                "Determine whether fenretinide will cause significant modulation of intermediate endpoint markers and significant regression of oral dysplastic leukoplakia in this patient population.",
                "",
                "baseline to 6 months",
            ),
            (
                "Compare the ability of fenretinide and placebo to modulate surrogate endpoint biomarkers in this patient population.",
                "",
                "baseline to 6 months",
            ),
            (
                "Document the degree of recurrence of oral dysplastic leukoplakia after the administration of fenretinide, both at the same site and at new sites.",
                "",
                "baseline to 6 months",
            ),
        ],
    ),
    (
        "Stroke severity as measured by NIHSS as a function of time since index event, Post-acute, 24 hours, 5 days/discharge, 30 days, 3 months, 6 months, 12 months|Clinical outcome measured using modified Rankin Scale and Barthel Index, 5 days/discharge, 30 days, 3 months, 6 months, 12 months|Gene expression profiles and biomarker levels obtained from blood samples, Post-acute, 24 hours, 5 days/discharge, 30 days, 3 months, 6 months, 12 months",
        [
            (
                "Stroke severity as measured by NIHSS as a function of time since index event",
                "",
                "Post-acute, 24 hours, 5 days/discharge, 30 days, 3 months, 6 months, 12 months",
            ),
            (
                "Clinical outcome measured using modified Rankin Scale and Barthel Index",
                "",
                "5 days/discharge, 30 days, 3 months, 6 months, 12 months",
            ),
            (
                "Gene expression profiles and biomarker levels obtained from blood samples",
                "",
                "Post-acute, 24 hours, 5 days/discharge, 30 days, 3 months, 6 months, 12 months",
            ),
        ],
    ),
    (
        "8-point SMBG profiles., 24, 48 and 76 weeks after Randomization|Mean change in HbA1c from baseline to the end., 24, 48 and 76 weeks after Randomization|Mean dosage of both preprandial and basal insulin., 24, 48 and 76 weeks after Randomization|Inhaler reliability., 24, 48 and 76 weeks after Randomization|Patient-reported outcomes questionnaires., 24, 48 and 76 weeks after Randomization",
        [
            ("8-point SMBG profiles.", "", "24, 48 and 76 weeks after Randomization"),
            ("Mean change in HbA1c from baseline to the end.", "", "24, 48 and 76 weeks after Randomization"),
            (
                "Mean dosage of both preprandial and basal insulin.",
                "",
                "24, 48 and 76 weeks after Randomization",
            ),
            ("Inhaler reliability.", "", "24, 48 and 76 weeks after Randomization"),
            ("Patient-reported outcomes questionnaires.", "", "24, 48 and 76 weeks after Randomization"),
        ],
    ),
    (
        "Family outcomes, including client engagement in service, Measured at baseline and Months 6, 12, 18, 24, and 30|Mental health functioning (symptom improvement, family support, more appropriate parenting practices) and outside service use (social service system contact or child placement/disruption), Measured at baseline and Months 6, 12, 18, 24, and 30|Child welfare status (recidivism or re-injury rates), Measured at baseline and Months 6, 12, 18, 24, and 30",
        [
            (
                "Family outcomes, including client engagement in service",
                "",
                "Measured at baseline and Months 6, 12, 18, 24, and 30",
            ),
            (
                "Mental health functioning (symptom improvement, family support, more appropriate parenting practices) and outside service use (social service system contact or child placement/disruption)",
                "",
                "Measured at baseline and Months 6, 12, 18, 24, and 30",
            ),
            (
                "Child welfare status (recidivism or re-injury rates)",
                "",
                "Measured at baseline and Months 6, 12, 18, 24, and 30",
            ),
        ],
    ),
    (
        "Practitioner knowledge about treatment, Measured at baseline and Months 6, 12, 18, 24, and 30|Practitioner competency and patient's satisfaction with treatment, Measured at baseline and Months 6, 12, 18, 24, and 30",
        [
            (
                "Practitioner knowledge about treatment",
                "",
                "Measured at baseline and Months 6, 12, 18, 24, and 30",
            ),
            (
                "Practitioner competency and patient's satisfaction with treatment",
                "",
                "Measured at baseline and Months 6, 12, 18, 24, and 30",
            ),
        ],
    ),
    (
        "Duration of persistence of infused NK cells, Days of persistence of donor NK cells, 21 days after the first infusion|Number of T, B, NK, activated T and NK cells after immunotherapy, Analysis of T, B, NK, activated T and NK cells numbers (cells/microL) after NK infusions., 30 days after the first infusion",
        [
            (
                "Duration of persistence of infused NK cells",
                "Days of persistence of donor NK cells",
                "21 days after the first infusion",
            ),
            (
                "Number of T, B, NK, activated T and NK cells after immunotherapy",
                "Analysis of T, B, NK, activated T and NK cells numbers (cells/microL) after NK infusions.",
                "30 days after the first infusion",
            ),
        ],
    ),
]


@pytest.mark.parametrize(("cell", "expected"), JOINT_CELLS)
def test_csvsplit_cell_outcomes_split_together(cell: str, expected: list[tuple[str, str, str]]) -> None:
    assert split_outcome_cell(cell) == expected


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
    expected = [part for part in re.split(r"(?<!\s)\||\|(?!\s)", cell) if part.strip()]
    assert len(outcomes) == len(expected)
    for (measure, description, time_frame), text in zip(outcomes, expected, strict=True):
        joined = ", ".join(x for x in (measure, description, time_frame) if x)
        assert _squash(joined) == _squash(text)


@pytest.mark.parametrize("cell", [cell for cell, _ in CELLS + JOINT_CELLS])
def test_csvsplit_fast_scorer_matches_feature_vectors(cell: str) -> None:
    weights = csvsplit.load_weights()
    texts = csvsplit.split_cell_texts(cell)
    multi = [t for t in texts if ", " in t]
    pres = [csvsplit._Parts(t.split(", ")) for t in multi]
    shared = csvsplit._share(pres)
    expected_by_text = {}
    for text, pre, sh in zip(multi, pres, shared, strict=True):
        parts = pre.parts
        scores = {
            (a, b): sum(
                w * x for w, x in zip(weights, csvsplit.candidate_features(parts, a, b, pre, sh), strict=True)
            )
            for a, b in csvsplit.candidates(len(parts))
        }
        a, b = max(scores, key=scores.__getitem__)
        expected_by_text[text] = tuple(
            x.strip() for x in (", ".join(parts[:a]), ", ".join(parts[a:b]), ", ".join(parts[b:]))
        )
    for text, got in zip(texts, split_outcome_cell(cell), strict=True):
        if text in expected_by_text:
            assert got == expected_by_text[text]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("a, 1 day|b, 2 days", ["a, 1 day", "b, 2 days"]),
        (
            "Score | Grade table | x, 3 months|Pain, 1 week",
            ["Score | Grade table | x, 3 months", "Pain, 1 week"],
        ),
        ("||a, 1 day| |", ["a, 1 day"]),
        ("a, 1 day |b, 2 days", ["a, 1 day", "b, 2 days"]),
    ],
)
def test_csvsplit_cell_texts_cut_only_at_separating_bars(cell: str, expected: list[str]) -> None:
    assert csvsplit.split_cell_texts(cell) == expected


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("Up to 12 weeks.", "up to # weeks"),
        ("Baseline,  Day 8, and Day 15", "baseline, day #, and day #"),
        ("1.5 hours", "# hours"),
    ],
)
def test_csvsplit_time_frame_shape(text: str, shape: str) -> None:
    assert csvsplit.time_frame_shape(text) == shape


def test_csvsplit_time_frame_list_is_loaded() -> None:
    shapes = csvsplit.load_time_frames()
    assert "up to # weeks" in shapes
    assert "# months" in shapes


def test_csvsplit_split_outcomes_matches_cell() -> None:
    cell = CELLS[1][0]
    assert csvsplit.split_outcomes(cell.split("|")) == split_outcome_cell(cell)
