"""Tests of nlp.endpoints: endpoint ids, offsets and categories on real outcome texts (ClinicalTrials.gov)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp import endpoints
from nlp.endpoints import (
    Alternation,
    match_endpoints,
    parse_categories,
    parse_implied,
    parse_patterns,
    parse_vocabulary,
    parse_yields,
    vocabulary,
)
from nlp.errors import ResourceError
from nlp.types import CATEGORIES


@pytest.mark.parametrize(
    ("measure", "description", "hits", "category"),
    [
        # Seed TH-CART-027: the generic "Safety" gives nothing when the title names the DLT.
        (
            "Safety：Incidence of Dose Limiting Toxicity (DLT)",
            "Limiting toxicity type, incidence, and severity of dose limiting toxicities (DLTs) within 28 "
            "days",
            [("dose_limiting_toxicity", "measure", 20, 42), ("dose_limiting_toxicity", "measure", 44, 47)],
            "safety",
        ),
        # Seed IM96: the description's vital signs, ECGs and labs do not add ids to an AE title.
        (
            "Incidence of Treatment Related adverse events (AEs)",
            "Incidence of adverse events associated with IM96 CAR-T cell infusion within 28 days of IM96 "
            "CAR-T cell "
            "infusion, type, frequency, and severity of abnormal clinically significant vital signs, "
            "electrocardiograms, and laboratory tests examined, including dose-limiting toxicity",
            [("adverse_events", "measure", 13, 45), ("adverse_events", "measure", 47, 50)],
            "safety",
        ),
        (
            "Cmax, Tmax and AUC of drug X",
            "",
            [("cmax", "measure", 0, 4), ("tmax", "measure", 6, 10), ("auc", "measure", 15, 18)],
            "pharmacokinetics",
        ),
        (
            "Maximum Plasma Concentration (Cmax) of LBS-007 in plasma.",
            "",
            [("cmax", "measure", 0, 28), ("cmax", "measure", 30, 34)],
            "pharmacokinetics",
        ),
        (
            "Tumor markers CA19-9",
            "The changes of tumor markers CA19-9 before and after IM96 CAR-T cell infusion",
            [("tumor_marker", "measure", 0, 13), ("tumor_marker", "measure", 14, 20)],
            "biomarker",
        ),
        # A generic title: the description decides.
        (
            "Safety",
            "Safety: Incidence of dose limiting toxicity (DLT)and Adverse Event (AE)",
            [
                ("dose_limiting_toxicity", "description", 21, 43),
                ("dose_limiting_toxicity", "description", 45, 48),
                ("adverse_events", "description", 53, 66),
                ("adverse_events", "description", 68, 70),
            ],
            "safety",
        ),
        # The definition in the description ("until death") does not make OS a mortality outcome.
        (
            "Overall Survival (OS)",
            "Overall survival is defined as the time from randomization until death due to any cause.",
            [("overall_survival", "measure", 0, 16), ("overall_survival", "measure", 18, 20)],
            "efficacy",
        ),
        # "(PR or CR)" explains the response; it is not a complete-response endpoint.
        (
            "Objective response (PR or CR), recorded according to standard solid tumor response criteria",
            "",
            [("objective_response_rate", "measure", 0, 18)],
            "efficacy",
        ),
        # A definition inside the title adds nothing.
        (
            "Dose-limiting toxicity defined as any grade III or higher toxicity",
            "",
            [("dose_limiting_toxicity", "measure", 0, 22)],
            "safety",
        ),
        (
            "Pharmacokinetic (PK) Cmin (Phase II)",
            "PK parameters (Cmin) following single dose.",
            [("trough_concentration", "measure", 21, 25)],
            "pharmacokinetics",
        ),
        (
            "Number of Participants With Treatment-emergent Adverse Events (TEAEs) and Serious Adverse "
            "Events (SAEs)",
            "",
            [
                ("adverse_events", "measure", 28, 61),
                ("adverse_events", "measure", 63, 68),
                ("serious_adverse_events", "measure", 74, 96),
                ("serious_adverse_events", "measure", 98, 102),
            ],
            "safety",
        ),
        ("Time to Progression", "", [("time_to_progression", "measure", 0, 19)], "efficacy"),
        (
            "Minimum and Maximum DoR Per RECIST 1.1",
            "",
            [("duration_of_response", "measure", 20, 23)],
            "efficacy",
        ),
        ("OS", "Overall survival rate", [("overall_survival", "measure", 0, 2)], "efficacy"),
        # Lower-case "os" is not the abbreviation.
        ("Change in os calcis bone density", "", [], "efficacy"),
    ],
)
def test_endpoints_real_outcomes(
    measure: str, description: str, hits: list[tuple[str, str, int, int]], category: str
) -> None:
    result = match_endpoints(measure, description)
    assert [(h.id, h.field, h.start, h.end) for h in result.hits] == hits
    assert result.category == category


# Corpus outcomes outside the dev gold, one per recurring error type (ClinicalTrials.gov, 2024 crawl).
@pytest.mark.parametrize(
    ("measure", "hits", "category"),
    [
        # Non-native spelling of DLT.
        (
            "Dose limited toxicity (DLT)",
            [("dose_limiting_toxicity", 0, 21), ("dose_limiting_toxicity", 23, 26)],
            "safety",
        ),
        # "Time to Cmax" is Tmax, not Cmax.
        ("Time to Cmax (Tmax) of ABBV-787", [("tmax", 0, 12), ("tmax", 14, 18)], "pharmacokinetics"),
        # "Area under plasma concentration ... curve" (no "the") is AUC, not also a drug concentration.
        (
            "Area under plasma concentration versus time curve from zero to last sampling time (AUC0-t)",
            [("auc", 0, 49), ("auc", 83, 87)],
            "pharmacokinetics",
        ),
        # A named PK parameter makes the generic "Pharmacokinetic Parameter" redundant.
        (
            "Pharmacokinetic Parameter (Nanatinostat) - Time to Maximum Plasma Concentration [Tmax]",
            [("tmax", 43, 79), ("tmax", 81, 85)],
            "pharmacokinetics",
        ),
        # The parenthesis names the generic concentration precisely: it is kept.
        (
            "Maximum (peak) plasma drug concentration (Cmax) of encapsulated irinotecan",
            [("cmax", 0, 40), ("cmax", 42, 46)],
            "pharmacokinetics",
        ),
        (
            "Phase 1 (Dose Escalation): minimum blood concentration (Cmin) after a single dose",
            [("trough_concentration", 27, 54), ("trough_concentration", 56, 60)],
            "pharmacokinetics",
        ),
        ("AML: Ceoi of Isatuximab", [("drug_concentration", 5, 9)], "pharmacokinetics"),
        # "Serum levels of" an analyte is a biomarker, antibodies are immunogenicity.
        ("Change in the Serum levels of IL-13", [("biomarker", 30, 35)], "biomarker"),
        (
            "Blood serum levels of antibodies caused by Prevenar 13 vaccine",
            [("immunogenicity", 12, 32)],
            "biomarker",
        ),
        (
            "Anti-SARS-CoV-2 T cell specific response (Elispot)",
            [("immunogenicity", 16, 40), ("immunogenicity", 42, 49)],
            "biomarker",
        ),
        # "exposure to" a drug is not a PK exposure; the category keyword gives nothing here.
        ("Single cell RNA sequencing of tumor and blood after exposure to AB154", [], "efficacy"),
        # Laboratory analytes are biomarkers; engraftment and count recovery are not.
        ("Triglyceride", [("biomarker", 0, 12)], "biomarker"),
        ("Mean Corpuscular Hemoglobin Concentration", [("biomarker", 17, 27)], "biomarker"),
        ("Median time to neutrophil and platelet count recovery", [], "efficacy"),
        # A biomarker category keyword implies the biomarker id (every biomarker outcome of the gold has one).
        ("Change in Serum Urea Level (mg/dL)", [("biomarker", 10, 15)], "biomarker"),
        # Named toxicities are adverse events; the CTCAE's name is not.
        ("Frequency of neutropenia", [("adverse_events", 13, 24)], "safety"),
        (
            "Number of Participants With Serum Chemistry Abnormalities by Worst Grade Per National Cancer "
            "Institure Common Terminology Criteria Adverse Events (NCI CTCAE), Version 3.0",
            [("laboratory_abnormalities", 28, 57)],
            "safety",
        ),
        # Oncology QoL instruments.
        (
            "EPIC questionnaire hormonal function and bother scores",
            [("quality_of_life", 0, 4)],
            "patient_reported",
        ),
        ("SF-6D", [("quality_of_life", 0, 5)], "patient_reported"),
    ],
)
def test_endpoints_corpus_error_types(measure: str, hits: list[tuple[str, int, int]], category: str) -> None:
    result = match_endpoints(measure)
    assert [(h.id, h.start, h.end) for h in result.hits] == hits
    assert all(h.field == "measure" for h in result.hits)
    assert result.category == category


@pytest.mark.parametrize(
    ("measure", "description", "category", "evidence"),
    [
        ("Depression symptoms", "", "patient_reported", ("measure", 0, 10)),
        (
            "Expanded Access",
            "The primary objective of this stud is to make Iodin-131 Anti-B1 Antibody more broadly "
            "available to patients",
            "other",
            ("measure", 0, 15),
        ),
        (
            "Height",
            "Standing stature measured by a commercial stadiometer (Seca 217, Germany)",
            "efficacy",
            None,
        ),
    ],
)
def test_endpoints_category_from_keywords(
    measure: str, description: str, category: str, evidence: tuple[str, int, int] | None
) -> None:
    result = match_endpoints(measure, description)
    assert result.hits == ()
    assert result.category == category
    got = result.category_evidence
    assert (None if got is None else (got.field, got.start, got.end)) == evidence


def test_endpoints_vocabulary_ids_all_have_patterns() -> None:
    data = json.loads(
        (endpoints.resources.files("nlp") / "resources" / "endpoint_patterns.json").read_text("utf-8")
    )
    assert set(data["endpoints"]) == set(vocabulary())


@given(st.text(max_size=300), st.text(max_size=300))
def test_endpoints_never_raise_and_spans_inside(measure: str, description: str) -> None:
    result = match_endpoints(measure, description)
    assert result.category in CATEGORIES
    for hit in result.hits:
        text = measure if hit.field == "measure" else description
        assert 0 <= hit.start < hit.end <= len(text)
        assert hit.id in vocabulary()


def test_endpoints_alternation_checks_case_sensitive_fragments_on_original_text() -> None:
    alt = Alternation([("OS", True), ("DoR", True), ("DOR", True), ("overall survival", False)])
    assert list(alt.finditer("os OS DoR Overall-Survival")) == [(0, 3, 5), (1, 6, 9), (3, 10, 26)]


_VOCAB = "id\tcategory\tabbreviation\tdefinition\noverall_survival\tefficacy\tOS\tdeath\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "id\tcategory\n",
            "endpoints.tsv, line 1: header is ['id', 'category']. "
            "Use the columns ['id', 'category', 'abbreviation', 'definition']",
        ),
        (
            _VOCAB + "pfs\tgood\tPFS\tx\n",
            "endpoints.tsv, line 3: unknown category 'good'. Use one of "
            "['efficacy', 'safety', 'pharmacokinetics', 'biomarker', 'patient_reported', 'other']",
        ),
        (
            _VOCAB + "pfs\tefficacy\n",
            "endpoints.tsv, line 3: 2 columns. Give exactly 4 tab-separated columns",
        ),
    ],
)
def test_endpoints_vocabulary_errors(text: str, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        parse_vocabulary(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"endpoint": {}},
            "endpoint_patterns.json, key 'endpoint': unknown key. Allowed keys: "
            "['_doc', 'endpoints', 'ignore', 'generic_measure', 'description_stop', 'yields_to']",
        ),
        (
            {"endpoints": {"os": {"i": ["x"]}}},
            "endpoint_patterns.json, endpoint 'os': unknown endpoint id. "
            "Use an id from endpoints.tsv: ['overall_survival']",
        ),
        (
            {"endpoints": {"overall_survival": {"abbr": ["OS"]}}},
            "endpoint_patterns.json, endpoint 'overall_survival': "
            "unknown key 'abbr'. Allowed keys: ['i', 'cs', 'weak']",
        ),
        (
            {"endpoints": {"overall_survival": {"i": ["surviv(al"]}}},
            "endpoint_patterns.json, endpoint "
            "'overall_survival', key 'i': fragment 'surviv(al' is not a valid regex (missing ), "
            "unterminated subpattern "
            "at position 6). Fix the regex",
        ),
        (
            {"endpoints": {"overall_survival": {"i": ["(overall) survival"]}}},
            "endpoint_patterns.json, endpoint "
            "'overall_survival', key 'i': fragment '(overall) survival' does not start with a letter or "
            "digit. Start "
            "each fragment with a plain letter or digit; spell alternatives out as separate fragments",
        ),
        (
            {"endpoints": {"overall_survival": {"i": ["overall (survival)"]}}},
            "endpoint_patterns.json, endpoint "
            "'overall_survival', key 'i': fragment 'overall (survival)' has a capturing group. "
            "Use non-capturing "
            "groups (?:...)",
        ),
    ],
)
def test_endpoints_pattern_file_errors(data: object, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        parse_patterns(data, parse_vocabulary(_VOCAB))
    assert str(err.value) == message


def test_endpoints_category_file_errors() -> None:
    with pytest.raises(ResourceError) as err:
        parse_categories({"keywords": {"clinical": ["x"]}})
    assert str(err.value) == (
        "categories.json, keywords 'clinical': unknown category. Use one of "
        "['efficacy', 'safety', 'pharmacokinetics', 'biomarker', 'patient_reported', 'other']"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"yields_to": ["overall_survival"]},
            "endpoint_patterns.json, key 'yields_to': not an object. Map endpoint ids to lists of ids",
        ),
        (
            {"yields_to": {"overall_survival": ["os"]}},
            "endpoint_patterns.json, yields_to 'overall_survival': unknown endpoint id 'os'. "
            "Use an id from endpoints.tsv: ['overall_survival']",
        ),
    ],
)
def test_endpoints_yields_to_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ResourceError) as err:
        parse_yields(data, parse_vocabulary(_VOCAB))
    assert str(err.value) == message


def test_endpoints_implied_id_must_be_of_its_category() -> None:
    with pytest.raises(ResourceError) as err:
        parse_implied({"implied": {"biomarker": "overall_survival"}}, parse_vocabulary(_VOCAB))
    assert str(err.value) == (
        "categories.json, implied 'biomarker': 'overall_survival' is not an id of that category. "
        "Use one of []"
    )
