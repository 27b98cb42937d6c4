"""Tests of nlp.dose_groups on texts pasted from real registry records (and the IM96 seed)."""

from __future__ import annotations

import pytest

from nlp import dose_groups
from nlp.dose_groups import find_dose_groups
from nlp.errors import ResourceError
from nlp.study import ArmGroup, Intervention

IM96 = (
    "This study plans to enroll 6-12 patients with relapsed/refractory solid tumors, using a modified "
    '"3+3" design, with two dose groups of 12×10\\^8 CAR-T cells and 20×10\\^8 CAR-T cells. 3-6 subjects '
    "will be enrolled in each dose group."
)
# NCT07172958 detailed description (excerpt)
NCT07172958 = (
    "Fludarabine will be administered intravenously once daily over 30 minutes, days -5 through -2 (4 doses "
    "in total). The dose of fludarabine will be 30 mg/m2 /day. Cyclophosphamide will be administered "
    "intravenously once daily over 30 minutes, days -5 and -4 (2 doses in total). The dose of "
    "cyclophosphamide will be 500 mg/m2 /day.\n\nThe first 3 patients enrolled on study will be ≥ 12 years "
    "of age at enrollment and treated at dose level 1 (1 x 10e6/kg). If no DLTs are observed in this cohort, "
    "enrollment at dose levels 2 (3 x 10e6/kg) and 3 (10 x 10e6/kg) will expand to include patients aged ≥ 1 "
    "year and \\< 24 years."
)
# NCT06305299 detailed description + interventions
NCT06305299 = (
    "The safety of iC9-CAR.B7-H3 T cells administered intraperitoneally via a port/catheter will be "
    "investigated using a modified 3+3 design with a starting dose of 1 ×106. The data from the dose "
    "escalation will be used to determine a recommended phase 2 dose (RP2D)."
)


def _values(res: dose_groups.DoseGroups) -> list[tuple[float, str]]:
    return [(g.value, g.unit) for g in res.groups]


def test_dose_groups_im96_seed() -> None:
    res = find_dose_groups([("detailed_description", IM96)], [], [])
    assert _values(res) == [(1.2e9, "cells"), (2.0e9, "cells")]
    assert [g.text for g in res.groups] == ["12×10\\^8 CAR-T cells", "20×10\\^8 CAR-T cells"]
    assert res.count == 2
    g = res.groups[0]
    assert IM96[g.start : g.end] == g.text and g.field == "detailed_description"


def test_dose_groups_conditioning_excluded_and_labelled() -> None:
    res = find_dose_groups([("detailed_description", NCT07172958)], [], [])
    assert _values(res) == [(1e6, "cells/kg"), (3e6, "cells/kg"), (1e7, "cells/kg")]
    assert res.groups[0].label == "dose level 1"
    assert res.count == 3


def test_dose_groups_starting_dose_only() -> None:
    ivs = [Intervention("Cyclophosphamide", description="cyclophosphamide 300 mg/m2 IV will be given.")]
    texts = [("detailed_description", NCT06305299), ("interventions[0].description", ivs[0].description)]
    res = find_dose_groups(texts, ivs, [])
    assert _values(res) == [(1e6, "cells")]
    assert res.count is None


def test_dose_groups_arms_one_dose_each() -> None:
    # NCT05607563 arm groups
    arms = [
        ArmGroup("PM1009 120 mg", description="PM1009 120 mg, intravenous infusion, once every 3 weeks"),
        ArmGroup("PM1009 300 mg", description="PM1009 300 mg, intravenous infusion, once every 3 weeks"),
        ArmGroup("PM1009 600 mg", description="PM1009 600 mg, intravenous infusion, once every 3 weeks"),
    ]
    texts = []
    for i, a in enumerate(arms):
        texts += [(f"arm_groups[{i}].label", a.label), (f"arm_groups[{i}].description", a.description)]
    res = find_dose_groups(texts, [], arms)
    assert _values(res) == [(120.0, "mg"), (300.0, "mg"), (600.0, "mg")]
    assert [g.label for g in res.groups] == ["PM1009 120 mg", "PM1009 300 mg", "PM1009 600 mg"]
    assert res.count == 3


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Patients are randomized to one of two dose levels. All patients receive oral bexarotene", 2),
        ("Patients are entered at 7 escalating dose levels of TNP-470.", 7),
        ("Up to 8 dose escalation cohorts may be evaluated until a maximum", 8),
        (
            "The first 3 patients will be enrolled at a low dose and monitored. ... "
            "the next 3 patients will be enrolled at the medium dose.",
            3,
        ),
        ("Dose escalation is carried out in cohorts of 3 patients per dose level.", None),
        ("Cohorts of 6-12 patients receive escalating doses", None),
    ],
)
def test_dose_groups_count_without_values(text: str, count: int | None) -> None:
    res = find_dose_groups([("detailed_description", text)], [], [])
    assert res.groups == ()
    assert res.count == count


@pytest.mark.parametrize(
    ("names", "expected", "count"),
    [
        # NCT06962904: one dose per registered intervention, no group words
        (
            [
                "3.75 µg Dose of CDC-9 Inactivated Rotavirus Vaccine (IRV)",
                "7.5 µg Dose of CDC-9 Inactivated Rotavirus Vaccine (IRV)",
                "Placebo",
            ],
            [(3.75, "ug"), (7.5, "ug")],
            2,
        ),
        # NCT05266950: both levels listed in the intervention's name
        (
            ["CI-135 CAR-T cells (0.5 x 10^6 CAR-T+ cells/kg，1.0 x 10^6 CAR-T+ cells/kg)"],
            [(500000.0, "cells/kg"), (1000000.0, "cells/kg")],
            2,
        ),
        # NCT05641558
        (
            ["611 150mg", "611 300mg", "611 600mg", "Placebo"],
            [(150.0, "mg"), (300.0, "mg"), (600.0, "mg")],
            3,
        ),
    ],
)
def test_dose_groups_doses_in_intervention_names(
    names: list[str], expected: list[tuple[float, str]], count: int
) -> None:
    ivs = [Intervention(n) for n in names]
    res = find_dose_groups([(f"interventions[{i}].name", n) for i, n in enumerate(names)], ivs, [])
    assert _values(res) == expected
    assert res.count == count


def test_dose_groups_lowest_and_highest_dose() -> None:
    # NCT04835519 brief summary (excerpt): the two stated ends of the tested doses
    text = (
        "The lowest dose is 1×10\\^5 CAR T cells/kg (±20%), and the highest dose is 1×10\\^6 CAR T cells/kg "
        "(±20%). If the dose is out of"
    )
    res = find_dose_groups([("brief_summary", text)], [], [])
    assert _values(res) == [(1e5, "cells/kg"), (1e6, "cells/kg")]


@pytest.mark.parametrize(
    ("iv", "other_names", "text", "expected"),
    [
        # NCT05515185: a CAR-T product listing its conditioning drugs as other names is still the study drug
        (
            "KT095 CAR-T injection",
            ["Fludarabine", "Cyclophosphamide"],
            "KT095 will be given at a starting dose of 1 × 10^6 CAR-T cells/kg.",
            [(1e6, "cells/kg")],
        ),
        # "tracer" inside "intracerebroventricular" is no imaging tracer (NCT07386002)
        (
            "Intracerebroventricular injection of MT027 UCAR-T Cell targeting B7H3",
            [],
            "MT027 will be injected intracerebroventricularly at a starting dose of 3×10\\^7 cells on Day 1",
            [(3e7, "cells")],
        ),
        # every active intervention is a "background" drug: it is the drug under study
        (
            "Etoposide",
            [],
            "Etoposide starting dose 50 mg/m2 daily, escalated in cohorts of 3 patients",
            [(50.0, "mg/m2")],
        ),
    ],
)
def test_dose_groups_study_drug_is_not_background(
    iv: str, other_names: list[str], text: str, expected: list[tuple[float, str]]
) -> None:
    ivs = [Intervention(iv, other_names=other_names), Intervention("Placebo")]
    res = find_dose_groups([("interventions[0].description", text)], ivs, [])
    assert _values(res) == expected


def test_dose_groups_background_drug_beside_a_study_product() -> None:
    # NCT02381314-like: the partner drug named in a combined intervention name keeps it a study product,
    # while a separate pure conditioning intervention stays background
    ivs = [
        Intervention("enoblituzumab plus ipilimumab"),
        Intervention("Cyclophosphamide", other_names=["Cytoxan"]),
    ]
    texts = [("interventions[1].description", "cyclophosphamide 300 mg/m2 at a starting dose")]
    res = find_dose_groups(texts, ivs, [])
    assert res.groups == () and res.count is None


def test_dose_groups_fixed_background_dose_is_not_a_group() -> None:
    # NCT04353830: sintilimab fixed combination dose
    ivs = [Intervention("IBI939"), Intervention("Sintilimab", description="sintilimab 200 mg Q3W")]
    res = find_dose_groups([("interventions[1].description", "sintilimab 200 mg Q3W")], ivs, [])
    assert res.groups == () and res.count is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [],
            "nlp/resources/dose_groups.json, top level: not a JSON object. Use an object with keys "
            "['_comment', 'background', 'group_cues', 'single_cues', 'label', 'number_words', 'count_nouns', "
            "'count_fillers', 'graded']",
        ),
        (
            {"cues": 1},
            "nlp/resources/dose_groups.json, key 'cues': unknown key. Allowed keys: "
            "['_comment', 'background', 'group_cues', 'single_cues', 'label', 'number_words', 'count_nouns', "
            "'count_fillers', 'graded']",
        ),
        (
            {"number_words": {"two": "2"}},
            "nlp/resources/dose_groups.json, key 'number_words': not an object of positive integers. "
            'Use e.g. {"three": 3}',
        ),
    ],
)
def test_dose_groups_resource_errors(data: object, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        dose_groups._build(data)
    assert str(err.value) == message
