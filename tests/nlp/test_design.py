"""Tests of nlp.design: study-design facts read from real protocol sentences (pasted from the corpus)."""

# Corpus sentences are pasted verbatim, so their lines are long.
# ruff: noqa: E501

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp.design import Design, extract_design, parse_vocab
from nlp.errors import ResourceError
from nlp.study import Outcome

# (id, field, text, registry phases, attribute, expected value, expected evidence (start, end, label))
CASES: list[tuple[str, str, str, list[str], str, object, list[tuple[int, int, str]]]] = [
    (
        "phase_letter_l",
        "official_title",
        "This is a Phase l, Open-Label, Dose-escalation Study to Evaluate the Safety, Tolerabilityand Antitumor Activity of TH027 CAR-T Cell lnjection (TH-CART-027) in Subjects With Relapsed or Refractory Solid Tumors.",
        [],
        "phases",
        ["PHASE1"],
        [(10, 17, "phase:PHASE1")],
    ),
    (
        "phase_roman_pair",
        "official_title",
        "Phase I/II Clinical Study to Evaluate the Safety, Tolerability, Pharmacokinetics and Effectiveness of MRX2843 Tablets in Patients With Relapsed/Refractory Acute Myeloid Leukemia",
        ["NA"],
        "phases",
        ["PHASE1", "PHASE2"],
        [(0, 10, "phase:PHASE1"), (0, 10, "phase:PHASE2")],
    ),
    (
        "phase_self_in_summary",
        "brief_summary",
        "This is a phase I/II study that will test the safety and efficacy of hematopoietic cell transplantation (HCT) ",
        [],
        "phases",
        ["PHASE1", "PHASE2"],
        [(10, 20, "phase:PHASE1"), (10, 20, "phase:PHASE2")],
    ),
    (
        "phase_other_trials_ignored",
        "detailed_description",
        "The evidence from new studies, interim results from phase III vaccine trials, and previous data from phase I and phase II trials support the notion that memory T cell responses persist.",
        ["NA"],
        "phases",
        ["NA"],
        [],
    ),
    (
        "phase_rp2d_ignored",
        "detailed_description",
        "The data from the dose escalation will be used to determine a recommended phase 2 dose (RP2D).",
        [],
        "phases",
        [],
        [],
    ),
    (
        "esc_modified",
        "detailed_description",
        'This study is planned to enroll 6-12 patients with advanced colorectal cancer, using a modified "3+3" design for dose escalation.',
        [],
        "escalation",
        "modified 3+3",
        [(87, 100, "escalation:modified 3+3")],
    ),
    (
        "esc_standard",
        "brief_summary",
        "The study will evaluate the safety and maximum tolerated dose (MTD) of B7-H3-CAR T cells, using a standard 3+3 study design and a 6-week evaluation period.",
        [],
        "escalation",
        "3+3",
        [(107, 110, "escalation:3+3")],
    ),
    (
        "esc_spaced",
        "detailed_description",
        "11-30 subjects with advanced or metastatic solid tumors will be enrolled. The accelerated titration and traditional 3 + 3 dose escalation design will be implemented.",
        [],
        "escalation",
        "accelerated titration",
        [(78, 99, "escalation:accelerated titration")],
    ),
    (
        "esc_atd_first_level_only",
        "detailed_description",
        'Phase 1 adopts an accelerated titration at first dose level followed with classic "3+3" design to identify the MTD (maximum tolerated dose) and/or RP2D(Recommended Phase 2 Dose).',
        [],
        "escalation",
        "3+3",
        [(83, 86, "escalation:3+3")],
    ),
    (
        "esc_atd_first_cohort_only",
        "detailed_description",
        'Dose Escalation: Accelerated titration + 3+3 design: First dose cohort: Accelerated titration strategy. Subsequent cohorts: Standard "3+3" dose-escalation.',
        [],
        "escalation",
        "3+3",
        [(41, 44, "escalation:3+3")],
    ),
    (
        "esc_boin",
        "arm_groups[0].description",
        "Phase 1a uses the Bayesian optimal interval (BOIN) design, to investigate the safety and determine the MTD of HLX301.",
        [],
        "escalation",
        "BOIN",
        [(18, 43, "escalation:BOIN")],
    ),
    (
        "esc_crm",
        "detailed_description",
        "This study use the Bayesian one-stage time-to-event continual reassessment method (TITE-CRM) design for dose finding phase I clinical trials.",
        [],
        "escalation",
        "CRM",
        [(52, 81, "escalation:CRM")],
    ),
    (
        "esc_i33",
        "detailed_description",
        "The dose escalation will include an initial accelerated titration design followed by i3+3 design.",
        [],
        "escalation",
        "i3+3",
        [(85, 89, "escalation:i3+3")],
    ),
    (
        "esc_by_rule",
        "detailed_description",
        "OUTLINE: This is a dose escalation study. Cohorts of 3-6 patients receive escalating doses of cisplatin until the maximum tolerated dose (MTD) is determined. The MTD is defined as the dose preceding that at which at least 2 of 3 or 2 of 6 patients experience dose limiting toxicity.",
        [],
        "escalation",
        "3+3",
        [(42, 56, "escalation:3+3")],
    ),
    (
        "esc_none_target_rate",
        "detailed_description",
        "Cohorts of 3 patients receive escalating doses. The MTD is defined as the dose at which the rate of severe toxicity is closest to 20%.",
        [],
        "escalation",
        None,
        [],
    ),
    (
        "win_observation_period",
        "detailed_description",
        "Observation period of DLT will last for 21 days after the first administration of HLX53.",
        [],
        "dlt_window_days",
        21.0,
        [(40, 47, "dlt_window:21 days")],
    ),
    (
        "win_within",
        "detailed_description",
        "If the incidence of horizontal dose-limiting toxicity (DLT) in a dose group is ≤1/6 within 28 days after transfusion, transfusion of cells from the next dose group can be initiated.",
        [],
        "dlt_window_days",
        28.0,
        [(91, 98, "dlt_window:28 days")],
    ),
    (
        "win_day_range",
        "detailed_description",
        "DLTs are defined as specific adverse events (AEs) or clinically laboratory abnormalities that occur during the DLT observation period (Day 1 to Day 28 of Cycle 1; cycle = 28 days), that the Cohort Review Committee (CRC) assess as related to FPA144.",
        [],
        "dlt_window_days",
        28.0,
        [(135, 150, "dlt_window:28 days")],
    ),
    (
        "win_observed_before",
        "detailed_description",
        "At least 3 patients are treated at each dose level, and all patients in a cohort are observed for at least 2 weeks before escalating to a higher dose in absence of dose limiting toxicity.",
        [],
        "dlt_window_days",
        14.0,
        [(85, 132, "dlt_window:14 days")],
    ),
    (
        "win_evaluation_period",
        "brief_summary",
        "The study will evaluate the safety and maximum tolerated dose (MTD) of B7-H3-CAR T cells, using a standard 3+3 study design and a 6-week evaluation period.",
        [],
        "dlt_window_days",
        42.0,
        [(130, 154, "dlt_window:42 days")],
    ),
    (
        "win_monitoring_period",
        "detailed_description",
        "All infused patients will be followed with weekly visits during the 28-day dose-limiting toxicity monitoring period where they will be clinically assessed.",
        [],
        "dlt_window_days",
        28.0,
        [(68, 74, "dlt_window:28 days")],
    ),
    (
        "win_first_course",
        "detailed_description",
        "Courses repeat every 56 days in the absence of disease progression or unacceptable toxicity. The maximum tolerated dose is defined as the dose at which no more than 1 of 6 patients experiences dose limiting toxicity (DLT) during course 1, with at least 2 patients experiencing DLT at the next higher level.",
        [],
        "dlt_window_days",
        56.0,
        [(0, 28, "dlt_window:56 days")],
    ),
    (
        "rule_slash",
        "detailed_description",
        "3-6 subjects are planned to be enrolled in each dose group to assess their safety, and if the incidence of horizontal dose-limiting toxicity (DLT) is ≤1/6 within 28 days after transfusion in one dose group, the next dose group can be started.",
        [],
        "dlt_rule",
        (1, 6),
        [(150, 154, "dlt_rule:1/6")],
    ),
    (
        "rule_preceding",
        "detailed_description",
        "The MTD is defined as the dose preceding that at which 2 of 6 patients experience dose limiting toxicity.",
        [],
        "dlt_rule",
        (1, 6),
        [(55, 61, "dlt_rule:1/6")],
    ),
    (
        "rule_prefer_six",
        "detailed_description",
        "The MTD is defined as the dose preceding that at which 2 of 3 or 2 of 6 patients experience dose-limiting toxicity.",
        [],
        "dlt_rule",
        (1, 6),
        [(65, 71, "dlt_rule:1/6")],
    ),
    (
        "rule_three_or_six",
        "detailed_description",
        "The MTD is defined as the dose preceding that at which 2 of 3 or 6 patients experience dose-limiting toxicity.",
        [],
        "dlt_rule",
        (1, 6),
        [(55, 66, "dlt_rule:1/6")],
    ),
    (
        "rule_no_more_than",
        "detailed_description",
        "Maximum tolerated dose (MTD) definition: The highest dose level at which no more than 1 of 6 DLT-evaluable subjects developed DLT.",
        [],
        "dlt_rule",
        (1, 6),
        [(73, 92, "dlt_rule:1/6")],
    ),
    (
        "rule_or_more",
        "detailed_description",
        "The MTD is defined as the dose preceding that at which 6 or more of 12 patients experience dose limiting toxicity.",
        [],
        "dlt_rule",
        (5, 12),
        [(55, 70, "dlt_rule:5/12")],
    ),
    (
        "rule_denominator_range",
        "detailed_description",
        "If dose limiting toxicity (DLT) occurs in 2 or more of 3-6 patients, the maximum tolerated dose (MTD) has been exceeded and the preceding dose is declared the MTD.",
        [],
        "dlt_rule",
        (1, 6),
        [(42, 58, "dlt_rule:1/6")],
    ),
    (
        "rule_words",
        "detailed_description",
        "If two of four patients in a given cohort experience unacceptable toxicity at the initial dose, two additional patients are entered.",
        [],
        "dlt_rule",
        (1, 4),
        [(3, 14, "dlt_rule:1/4")],
    ),
    (
        "rule_rate_only",
        "detailed_description",
        "BOIN design with the target toxicity rate pre-defined as 30% in this study.",
        [],
        "dlt_rule",
        None,
        [],
    ),
    (
        "rule_mechanics_only",
        "detailed_description",
        "If 1 of 3 patients experiences a DLT, 3 more patients will be treated at that dose.",
        [],
        "dlt_rule",
        None,
        [],
    ),
    (
        "enr_range",
        "detailed_description",
        "This study is planned to enroll 6-12 patients with advanced colorectal cancer.",
        [],
        "enrollment",
        (6, 12),
        [(32, 45, "enrollment:6-12")],
    ),
    (
        "enr_up_to",
        "detailed_description",
        "Up to 30 patients are planned to be enrolled. Four dose levels (150mg, 450 mg, 900 mg, and 1200 mg) of PM1021 will be tested.",
        [],
        "enrollment",
        (30, 30),
        [(0, 17, "enrollment:30-30")],
    ),
    (
        "enr_maximum",
        "detailed_description",
        "PROJECTED ACCRUAL: A maximum of 18 patients will be accrued for this study within 1.5 years. RATIONALE: Radiation therapy uses high-energy x-rays to damage tumor cells.",
        [],
        "enrollment",
        (18, 18),
        [(19, 43, "enrollment:18-18")],
    ),
    (
        "enr_at_least_open",
        "detailed_description",
        "PROJECTED ACCRUAL: At least 6 patients will be accrued into this study at a rate of 12 patients per year. RATIONALE: Drugs used in chemotherapy use different ways to stop tumor cells from dividing.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "enr_min_max",
        "detailed_description",
        "PROJECTED ACCRUAL: A minimum of 12-15 and a maximum of 30 patients will be accrued for this study. RATIONALE: Interleukin-2 may stimulate a person's white blood cells to kill cancer cells.",
        [],
        "enrollment",
        (12, 30),
        [(21, 57, "enrollment:12-30")],
    ),
    (
        "enr_stage_sum",
        "detailed_description",
        "PROJECTED ACCRUAL: A total of 32 patients will be accrued over 12-24 months in the first stage of this study, and 9-12 patients will be accrued for the second stage.. RATIONALE: Drugs used in chemotherapy use different ways to stop tumor cells from dividing.",
        [],
        "enrollment",
        (41, 44),
        [(19, 127, "enrollment:41-44")],
    ),
    (
        "enr_phase_sum",
        "detailed_description",
        "PROJECTED ACCRUAL: A total of 36 patients will be accrued for phase I of the study and a total of 37 patients will be accrued for phase II of the study within 2 years. RATIONALE: Monoclonal antibodies can locate cancer cells.",
        [],
        "enrollment",
        (73, 73),
        [(19, 109, "enrollment:73-73")],
    ),
    (
        "enr_escalation_expansion_sum",
        "detailed_description",
        "The dose escalation stage will be following the accelerated titration design and the classic 3+3 design, with a planned enrollment of 10 to 24 patients with advanced tumors.  The dose expansion stage will be used safe and tolerable doses, with a planned enrollment of 30 patients with advanced tumors.",
        [],
        "enrollment",
        (40, 54),
        [(134, 279, "enrollment:40-54")],
    ),
    (
        "enr_total_beats_parts",
        "detailed_description",
        "Up to 150 patients will be included in this study. Up to 30 DLT evaluable patients will be enrolled in phase 1a (dose escalation), 40 per-protocol treated patients in phase 1b (dose expansion), and 80 patients in phase 2.",
        [],
        "enrollment",
        (150, 150),
        [(0, 18, "enrollment:150-150")],
    ),
    (
        "enr_cohort_not_total",
        "detailed_description",
        "The first 3 patients will be enrolled at a low dose and monitored for dose limiting toxicities. If no dose limiting toxicities are seen, the next 3 patients will be enrolled at the medium dose.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "enr_percent_not_count",
        "detailed_description",
        "Approximately 10 percent of patients with glioblastoma develop metastatic disease after radiation or brain surgery.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "coh_each_group",
        "detailed_description",
        "3-6 subjects are planned to be enrolled in each dose group to assess their safety.",
        [],
        "cohort_size",
        (3, 6),
        [(0, 58, "cohort_size:3-6")],
    ),
    (
        "coh_cohorts_of",
        "detailed_description",
        "Cohorts of 6-12 patients receive escalating doses of RSR13 until the maximum tolerated dose (MTD) is determined.",
        [],
        "cohort_size",
        (6, 12),
        [(0, 15, "cohort_size:6-12")],
    ),
    (
        "coh_expand",
        "detailed_description",
        "Phase Ia：Cohorts of 3 patients receive MRX2843 until dose limiting toxicity is noted (DLT). At that point cohorts will expand to 6 patients until MTD is determined.",
        [],
        "cohort_size",
        (3, 6),
        [(9, 21, "cohort_size:3-6")],
    ),
    (
        "coh_per_group",
        "detailed_description",
        "According to the principle of dose escalation, 3 patients were assigned to each dose group.",
        [],
        "cohort_size",
        (3, 3),
        [(47, 90, "cohort_size:3-3")],
    ),
    (
        "coh_dose_not_cohort",
        "detailed_description",
        "with two dose groups of 12×10\\^8 CAR-T cells and 20×10\\^8 CAR-T cells.",
        [],
        "cohort_size",
        None,
        [],
    ),
    (
        "coh_open_bound",
        "detailed_description",
        "1 to 2 dose cohorts were studied, with no less than 6 patients in each dose cohorts, and PK study was conducted for all patients.",
        [],
        "cohort_size",
        None,
        [],
    ),
    (
        "enr_rate_cue_belongs_to_next_count",
        "detailed_description",
        "PROJECTED ACCRUAL: Approximately 27 patients will be accrued for this study at a rate of 15 patients per year.",
        [],
        "enrollment",
        (27, 27),
        [(19, 44, "enrollment:27-27")],
    ),
    (
        "enr_per_cohort_cue_after_total",
        "brief_summary",
        "The study includes three sequential cohorts with a total of 24 subjects (8 subjects per cohort; 6 assigned to KINE-101 and 2 to placebo).",
        [],
        "enrollment",
        (24, 24),
        [(49, 71, "enrollment:24-24")],
    ),
    (
        "enr_fraction_not_a_count",
        "arm_groups[0].description",
        "Hence,MTD will be achieved if at least 2 out of the first 8 patients have a DLT,or if a further 8 patents are recruited, >=2 out of 16 patients have a DLT.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "enr_at_each_of_levels",
        "detailed_description",
        "Ten patients are treated at each of three targeted concentration ranges of U-87201E.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "enr_at_the_named_dose",
        "detailed_description",
        "10 volunteers are enrolled at the 100 microgram dose given intramuscularly (IM) by needle and syringe.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "enr_each_dosing_cohort",
        "interventions[0].description",
        "Ten subjects are planned for each dosing cohort, with dose escalation dependent on safety and available PK data from prior cohorts.",
        [],
        "enrollment",
        None,
        [],
    ),
    (
        "win_followed_words_before_next",
        "detailed_description",
        "Patients are followed for 4 weeks after each drug administration before subsequent patients can be entered at the next higher dose level.",
        [],
        "dlt_window_days",
        28.0,
        [(13, 82, "dlt_window:28 days")],
    ),
    (
        "win_followed_each_before_next",
        "detailed_description",
        "Patients in each cohort are followed for a minimum of 4 weeks each before the next cohort begins.",
        [],
        "dlt_window_days",
        28.0,
        [(28, 82, "dlt_window:28 days")],
    ),
    (
        "coh_three_with_rule_over_six",
        "detailed_description",
        "Cohorts of 3 patients receive escalating doses of endostatin until the maximum tolerated dose (MTD) is determined. The MTD is defined as the dose preceding that at which 2 of 6 patients experience dose limiting toxicities.",
        [],
        "cohort_size",
        (3, 6),
        [(0, 12, "cohort_size:3-6")],
    ),
    (
        "esc_three_with_rule_over_six",
        "detailed_description",
        "Cohorts of 3 patients receive escalating doses of endostatin until the maximum tolerated dose (MTD) is determined. The MTD is defined as the dose preceding that at which 2 of 6 patients experience dose limiting toxicities.",
        [],
        "escalation",
        "3+3",
        [(0, 12, "escalation:3+3")],
    ),
    (
        "coh_expanded_to_incorporate_six",
        "detailed_description",
        "Cohorts of 3 patients are evaluated at each dose level prior to dose escalation. If one of three patients within a cohort experiences dose limiting toxicity (DLT), that dose level is expanded to incorporate six patients.",
        [],
        "cohort_size",
        (3, 6),
        [(0, 12, "cohort_size:3-6")],
    ),
]


@pytest.mark.parametrize(
    ("field", "text", "registry", "attr", "value", "spans"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_design_reads_real_sentences(
    field: str,
    text: str,
    registry: list[str],
    attr: str,
    value: object,
    spans: list[tuple[int, int, str]],
) -> None:
    d = extract_design([(field, text)], registry, [])
    assert getattr(d, attr) == value
    prefix = {"phases": "phase:", "dlt_window_days": "dlt_window:"}.get(attr, attr + ":")
    got = [(s, e, label) for f, s, e, label in d.evidence if label.startswith(prefix)]
    assert got == spans
    assert all(f == field for f, *_ in d.evidence)


IM96 = (
    "This study is planned to enroll 6-12 patients with advanced colorectal cancer, using a modified "
    '"3+3" design for dose escalation, with two dose groups of 12×10\\^8 CAR-T cells and 20×10\\^8 CAR-T '
    "cells. 3-6 subjects are planned to be enrolled in each dose group to assess their safety, and if the "
    "incidence of horizontal dose-limiting toxicity (DLT) is ≤1/6 within 28 days after transfusion in one "
    "dose group, the next dose group can be started."
)


def test_design_im96_seed_paragraph() -> None:
    d = extract_design([("detailed_description", IM96)], [], [])
    assert d == Design(
        phases=[],
        escalation="modified 3+3",
        dlt_window_days=28.0,
        dlt_rule=(1, 6),
        enrollment=(6, 12),
        cohort_size=(3, 6),
        evidence=[
            ("detailed_description", 87, 100, "escalation:modified 3+3"),
            ("detailed_description", 363, 370, "dlt_window:28 days"),
            ("detailed_description", 351, 355, "dlt_rule:1/6"),
            ("detailed_description", 32, 45, "enrollment:6-12"),
            ("detailed_description", 201, 259, "cohort_size:3-6"),
        ],
    )


TH_TITLE = (
    "This is a Phase l, Open-Label, Dose-escalation Study to Evaluate the Safety, Tolerabilityand Antitumor "
    "Activity of TH027 CAR-T Cell lnjection (TH-CART-027) in Subjects With Relapsed or Refractory Solid Tumors."
)
TH_DLT = Outcome(
    role="primary",
    measure="Safety：Incidence of Dose Limiting Toxicity (DLT)",
    description="Limiting toxicity type, incidence, and severity of dose limiting toxicities (DLTs) within 28 days "
    "after the first TH-CART-027 infusion",
    time_frame="28 days after the first TH-CART-027 infusion.",
)


def test_design_th_cart_027_seed_window_from_outcome() -> None:
    d = extract_design([("official_title", TH_TITLE)], [], [TH_DLT])
    assert (d.phases, d.escalation, d.dlt_window_days) == (["PHASE1"], None, 28.0)
    assert (d.dlt_rule, d.enrollment, d.cohort_size) == (None, None, None)
    assert ("outcomes[0].time_frame", 0, 7, "dlt_window:28 days") in d.evidence


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        # A DLT outcome whose time frame is only the cycle or the study follow-up gives no window.
        pytest.param(
            Outcome(
                "primary",
                "Dose Limited Toxicity（DLT）",
                "Occurrence of DLT after receiving PM1009 injection",
                "up to 21 days",
            ),
            None,
            id="no_stated_window",
        ),
        pytest.param(
            Outcome(
                "primary",
                "Incidence of Treatment Related adverse events (AEs)",
                "Incidence of adverse events within 28 days of IM96 CAR-T cell infusion",
                "Up to 28 days after CAR-T cell infusion",
            ),
            None,
            id="not_a_dlt_outcome",
        ),
        pytest.param(TH_DLT, 28.0, id="stated_window"),
    ],
)
def test_design_window_from_outcome_only_when_stated(outcome: Outcome, expected: float | None) -> None:
    assert extract_design([], [], [outcome]).dlt_window_days == expected


@pytest.mark.parametrize(
    ("registry", "prose", "expected"),
    [
        (["PHASE1", "PHASE2"], "A Phase III study", ["PHASE1", "PHASE2"]),
        (["PHASE2", "PHASE1"], "", ["PHASE1", "PHASE2"]),
        (["NA"], "", ["NA"]),
        ([], "", []),
        (["NA"], "A Phase 1b/2 Study of XYZ in Solid Tumors", ["PHASE1", "PHASE2"]),
        ([], "An Early Phase 1 Study of CAR-T Cells", ["EARLY_PHASE1"]),
    ],
)
def test_design_phases_registry_first(registry: list[str], prose: str, expected: list[str]) -> None:
    texts = [("title", prose)] if prose else []
    assert extract_design(texts, registry, []).phases == expected


def test_design_vocab_rejects_unknown_key_and_scheme() -> None:
    with pytest.raises(ResourceError, match="Allowed keys"):
        parse_vocab({"schemes": {}, "bogus": 1})
    with pytest.raises(ResourceError, match="Allowed schemes"):
        parse_vocab({"schemes": {"4+4": ["4\\+4"]}})


FIELDS = st.sampled_from(["title", "official_title", "brief_summary", "detailed_description"])
PIECES = st.sampled_from(
    [
        "3+3",
        "modified 3 + 3",
        "BOIN",
        "accelerated titration",
        "first",
        "Phase l",
        "phase I/II",
        "Ib",
        "2 of 6",
        "≤1/6",
        "no more than",
        "cohorts of 3-6",
        "patients",
        "DLT",
        "within 28 days",
        "Day 1 to Day 28",
        "up to 56",
        "PROJECTED ACCRUAL:",
        "A minimum of",
        "enrolled",
        "each dose level",
        "escalation",
        "12×10^8",
        ".",
        ";",
        "\n",
        " ",
        "six",
        "of",
        "-",
    ]
)
TEXT = st.one_of(st.text(max_size=200), st.lists(PIECES, max_size=30).map(" ".join))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(FIELDS, TEXT), max_size=4, unique_by=lambda p: p[0]),
    st.lists(st.sampled_from(["PHASE1", "NA", "x", ""])),
    st.lists(st.builds(Outcome, st.just("primary"), TEXT, TEXT, TEXT), max_size=2),
)
def test_design_never_raises_and_evidence_inside_text(
    texts: list[tuple[str, str]], registry: list[str], outcomes: list[Outcome]
) -> None:
    d = extract_design(texts, registry, outcomes)
    by_field = dict(texts)
    by_field.update({f"outcomes[{i}].time_frame": o.time_frame for i, o in enumerate(outcomes)})
    for field, start, end, _label in d.evidence:
        assert field in by_field
        assert 0 <= start < end <= len(by_field[field])
    if d.enrollment is not None:
        lo, hi = d.enrollment
        assert lo is not None and hi is not None and lo <= hi
    if d.dlt_rule is not None:
        assert 0 <= d.dlt_rule[0] < d.dlt_rule[1]
