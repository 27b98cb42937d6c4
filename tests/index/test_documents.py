"""index.documents: what the index keeps of a study, from the registry record and the extraction output."""

from __future__ import annotations

from typing import Any

import pytest

from index.documents import TRIAL_FIELDS, OutcomeEntry, StudyEntry, make_entry
from nlp.study import Intervention, Outcome, Study
from tests.conftest import SEEDS
from tests.index.conftest import ENTRIES, outcome


def _study() -> Study:
    return Study(
        id="NCT06834399",
        source_format="apiv2",
        title="KN046 Combined With TATE for Colorectal Cancer With Hepatic Metastases",
        official_title="A Phase II Study of KN046 Combined With TATE",
        brief_summary="  Patients receive KN046.\n",
        conditions=["Colorectal Cancer with Hepatic Metastases", " ", "Liver Metastases"],
        keywords=["KN046", ""],
        interventions=[
            Intervention("KN046", "DRUG", other_names=["PD-L1/CTLA4 BsAb", "kn046"]),
            Intervention("Tirapazamine", "DRUG"),
            Intervention("TATE", "PROCEDURE"),
        ],
        phases=["PHASE2"],
        study_type="INTERVENTIONAL",
        enrollment=None,
        outcomes=[
            Outcome(
                "primary", "Objective response rate (ORR)", "Complete or partial response", "Up to 2 years"
            ),
            Outcome("secondary", "Overall survival", "", "Up to 3 years"),
        ],
    )


EXTRACTION: dict[str, Any] = {
    "id": "NCT06834399",
    "design": {
        "phases": ["PHASE2"],
        "escalation": None,
        "dlt_window_days": None,
        "enrollment": {"min": 20, "max": 40},
        "criteria": ["RECIST 1.1", "CTCAE 5.0"],
    },
    "outcomes": [
        {
            "role": "primary",
            "measure": "Objective response rate (ORR)",
            "description": "Complete or partial response",
            "time_frame": "Up to 2 years",
            "endpoints": ["objective_response_rate"],
            "category": "efficacy",
            "timing": {
                "points": [
                    {"value": 2.0, "unit": "year", "days": 730.0},
                    {"value": 1, "unit": "cycle", "days": None},
                ],
                "horizon_days": 730.0,
                "anchor": "enrollment",
            },
            "criteria": ["RECIST 1.1", "iRECIST"],
        },
        {
            "role": "secondary",
            "measure": "Overall survival",
            "description": "",
            "time_frame": "Up to 3 years",
            "endpoints": [],
            "category": None,
            "timing": {"points": [], "horizon_days": None, "anchor": None},
            "criteria": [],
        },
    ],
}


def test_make_entry_registry_fields_only() -> None:
    entry = make_entry(_study())
    assert entry == StudyEntry(
        id="NCT06834399",
        title="KN046 Combined With TATE for Colorectal Cancer With Hepatic Metastases",
        official_title="A Phase II Study of KN046 Combined With TATE",
        conditions=["Colorectal Cancer with Hepatic Metastases", "Liver Metastases"],
        keywords=["KN046"],
        # Other names that only differ in case from the name are left out.
        interventions=["KN046 / PD-L1/CTLA4 BsAb", "Tirapazamine", "TATE"],
        intervention_types=["DRUG", "PROCEDURE"],
        summary="Patients receive KN046.",
        phases=["PHASE2"],
        study_type="INTERVENTIONAL",
        outcomes=[
            OutcomeEntry(
                "primary", "Objective response rate (ORR)", "Complete or partial response", "Up to 2 years"
            ),
            OutcomeEntry("secondary", "Overall survival", "", "Up to 3 years"),
        ],
    )
    assert [o.category for o in entry.outcomes] == ["other", "other"]
    assert entry.endpoints == [] and entry.escalation is None


def test_make_entry_takes_extracted_facts() -> None:
    entry = make_entry(_study(), EXTRACTION)
    assert entry.enrollment == 40  # the registry has none: the extracted maximum
    assert entry.criteria == ["RECIST 1.1", "CTCAE 5.0", "iRECIST"]  # design's, then outcomes', no repeats
    assert entry.outcomes == [
        OutcomeEntry(
            role="primary",
            measure="Objective response rate (ORR)",
            description="Complete or partial response",
            time_frame="Up to 2 years",
            endpoints=["objective_response_rate"],
            category="efficacy",
            horizon_days=730.0,
            points_days=[730.0],  # the cycle without days is left out
            anchor="enrollment",
            criteria=["RECIST 1.1", "iRECIST"],
        ),
        OutcomeEntry("secondary", "Overall survival", "", "Up to 3 years", category="other"),
    ]
    assert entry.endpoints == ["objective_response_rate"]


def test_make_entry_registry_enrollment_wins_and_design_phases_fill_in() -> None:
    study = _study()
    study.enrollment, study.phases = 35, []
    extraction = {
        **EXTRACTION,
        "design": {**EXTRACTION["design"], "escalation": "BOIN", "dlt_window_days": 21.0},
    }
    entry = make_entry(study, extraction)
    assert (entry.enrollment, entry.phases, entry.escalation, entry.dlt_window_days) == (
        35,
        ["PHASE2"],
        "BOIN",
        21.0,
    )


def test_make_entry_from_real_seed_and_extractor(extractor: Any) -> None:
    from nlp.ingest import read_path

    [study] = list(read_path(SEEDS / "IM96.txt"))
    [extraction] = list(extractor.extract_studies([study]))
    entry = make_entry(study, extraction)
    assert entry.id == "IM96" and entry.title == study.title
    assert [o.measure for o in entry.outcomes] == [o.measure for o in study.outcomes]
    assert [o.role for o in entry.outcomes] == [o.role for o in study.outcomes]
    assert [o.endpoints for o in entry.outcomes] == [o["endpoints"] for o in extraction["outcomes"]]
    assert [o.horizon_days for o in entry.outcomes] == [
        o["timing"]["horizon_days"] for o in extraction["outcomes"]
    ]
    assert entry.escalation == extraction["design"]["escalation"]
    assert entry.dlt_window_days == extraction["design"]["dlt_window_days"]
    assert StudyEntry.from_json(entry.to_json()) == entry


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "tci",
            "KN046 Combined With TATE for Colorectal Cancer With Hepatic Metastases. "
            "Conditions: Colorectal Cancer with Hepatic Metastases; Liver Metastases. "
            "Interventions: KN046 / PD-L1/CTLA4 BsAb; Tirapazamine; TATE",
        ),
        ("conditions", "Colorectal Cancer with Hepatic Metastases; Liver Metastases"),
        ("interventions", "KN046 / PD-L1/CTLA4 BsAb; Tirapazamine; TATE"),
        ("summary", "Patients receive KN046."),
    ],
)
def test_study_entry_field_text_exact(name: str, expected: str) -> None:
    assert name in TRIAL_FIELDS
    assert make_entry(_study()).field_text(name) == expected


def test_study_entry_field_text_falls_back_and_leaves_out_empty_parts() -> None:
    entry = StudyEntry(id="X", official_title="Official title only", interventions=["Drug A"])
    assert entry.field_text("tci") == "Official title only. Interventions: Drug A"
    assert entry.field_text("conditions") == "" and entry.field_text("summary") == ""
    assert StudyEntry(id="Y").field_text("tci") == ""


def test_study_entry_field_text_unknown_field() -> None:
    with pytest.raises(KeyError) as err:
        StudyEntry(id="X").field_text("outcomes")
    assert (
        err.value.args[0]
        == "unknown trial field 'outcomes'; expected one of tci, conditions, interventions, summary"
    )


def test_study_entry_lexical_text_exact() -> None:
    assert make_entry(_study()).lexical_text() == "\n".join(
        [
            "KN046 Combined With TATE for Colorectal Cancer With Hepatic Metastases",
            "A Phase II Study of KN046 Combined With TATE",
            "Colorectal Cancer with Hepatic Metastases",
            "Liver Metastases",
            "KN046",
            "KN046 / PD-L1/CTLA4 BsAb",
            "Tirapazamine",
            "TATE",
            "Patients receive KN046.",
            "Objective response rate (ORR)",
            "Overall survival",
        ]
    )


@pytest.mark.parametrize(
    ("measure", "description", "text"),
    [
        ("Overall survival", "", "Overall survival"),
        ("ORR", "Complete or partial response", "ORR. Complete or partial response"),
    ],
)
def test_outcome_entry_text(measure: str, description: str, text: str) -> None:
    assert OutcomeEntry("primary", measure, description).text == text


def test_study_entry_endpoints_first_seen_order_no_repeats() -> None:
    entry = StudyEntry(
        id="X",
        outcomes=[
            outcome("a", endpoints=["overall_survival", "pfs"]),
            outcome("b", endpoints=[]),
            outcome("c", endpoints=["adverse_events", "overall_survival"]),
        ],
    )
    assert entry.endpoints == ["overall_survival", "pfs", "adverse_events"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_study_entry_json_round_trip(entry: StudyEntry) -> None:
    data = entry.to_json()
    assert isinstance(data["outcomes"][0], dict)
    assert StudyEntry.from_json(data) == entry
