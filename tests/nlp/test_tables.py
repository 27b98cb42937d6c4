"""nlp.tables: flat rows of an extraction, CSV cells and the Parquet schema."""

from __future__ import annotations

import copy
import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.ingest import read_path, read_record
from nlp.study import Study
from nlp.tables import (
    COLUMNS,
    TABLES,
    Kind,
    arrow_schema,
    csv_cell,
    dose_group_rows,
    outcome_rows,
    study_row,
    table_rows,
)
from tests.conftest import SEEDS

STUDY: dict[str, Any] = {
    "protocolSection": {
        "identificationModule": {"nctId": "NCT00000001", "briefTitle": "CAR-T in lymphoma"},
        "conditionsModule": {"conditions": ["Lymphoma", "Leukemia"]},
        "designModule": {"phases": ["PHASE1", "PHASE2"], "enrollmentInfo": {"count": 24}},
        "armsInterventionsModule": {
            "interventions": [
                {"type": "BIOLOGICAL", "name": "CD19 CAR-T"},
                {"type": "DRUG", "name": "Fludarabine"},
            ]
        },
        "outcomesModule": {
            "primaryOutcomes": [
                {
                    "measure": "Overall survival (OS)",
                    "description": "Time from randomization to death",
                    "timeFrame": "3 months and 1 year after randomization",
                }
            ],
            "secondaryOutcomes": [
                {"measure": "Cmax of drug X", "timeFrame": "Cycle 2 Day 1 and Cycle 3"},
                {"measure": "Tumor response per RECIST 1.1", "timeFrame": "Every 6 weeks up to 2 years"},
            ],
        },
    }
}

Extracted = tuple[Study, dict[str, Any]]


@pytest.fixture(scope="module")
def literal(extractor) -> Extracted:  # type: ignore[no-untyped-def]
    study = read_record(STUDY, source="<record 1>")
    [result] = extractor.extract_studies([study])
    return study, result


@pytest.fixture(scope="module")
def im96(extractor) -> Extracted:  # type: ignore[no-untyped-def]
    [study] = read_path(SEEDS / "IM96.txt")
    assert isinstance(study, Study)
    [result] = extractor.extract_studies([study])
    return study, result


def _cells(table: str, row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip((c.name for c in COLUMNS[table]), row, strict=True))


@pytest.mark.parametrize(
    ("which", "table"),
    [("literal", "studies"), ("literal", "outcomes"), *(("im96", table) for table in TABLES)],
)
def test_tables_row_length_equals_columns(request: pytest.FixtureRequest, which: str, table: str) -> None:
    study, result = request.getfixturevalue(which)
    rows = table_rows(study, result)[table]
    assert rows
    assert {len(row) for row in rows} == {len(COLUMNS[table])}


def test_tables_column_names_unique_and_context_first() -> None:
    for table in TABLES:
        names = [c.name for c in COLUMNS[table]]
        assert len(names) == len(set(names)), table
        assert names[:4] == ["study_id", "title", "phases", "conditions"]


def test_tables_study_row_literal(literal: Extracted) -> None:
    cells = _cells("studies", study_row(*literal))
    assert cells == {
        "study_id": "NCT00000001",
        "title": "CAR-T in lymphoma",
        "phases": ["PHASE1", "PHASE2"],
        "conditions": ["Lymphoma", "Leukemia"],
        "interventions": ["CD19 CAR-T", "Fludarabine"],
        "source_format": "apiv2",
        "escalation": None,
        "dlt_window_days": None,
        "dlt_max_events": None,
        "dlt_of_patients": None,
        "enrollment_min": None,
        "enrollment_max": None,
        "cohort_size_min": None,
        "cohort_size_max": None,
        "dose_group_count": None,
        "criteria": ["RECIST 1.1"],
        "registry_enrollment": 24,
        "outcome_count": 3,
        "errors": [],
    }


def test_tables_study_row_im96_design(im96: Extracted) -> None:
    cells = _cells("studies", study_row(*im96))
    assert (cells["study_id"], cells["escalation"]) == ("IM96", "modified 3+3")
    assert cells["dlt_window_days"] == 28.0 and isinstance(cells["dlt_window_days"], float)
    assert (cells["dlt_max_events"], cells["dlt_of_patients"]) == (1, 6)
    assert (cells["enrollment_min"], cells["enrollment_max"]) == (6, 12)
    assert (cells["cohort_size_min"], cells["cohort_size_max"]) == (3, 6)
    assert cells["dose_group_count"] == 2
    assert cells["interventions"] == ["IM96 CAR-T Cells"]
    assert cells["outcome_count"] == len(im96[0].outcomes) == 11


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (
            0,
            {
                "outcome_index": 0,
                "role": "primary",
                "measure": "Overall survival (OS)",
                "description": "Time from randomization to death",
                "time_frame": "3 months and 1 year after randomization",
                "endpoints": ["overall_survival"],
                "category": "efficacy",
                "points": ["3 month", "1 year"],
                "points_days": [91.3125, 365.25],
                "cycles": [],
                "horizon_days": 365.25,
                "interval_days": None,
                "anchor": "randomization",
                "anchor_text": "after randomization",
                "criteria": [],
            },
        ),
        (
            1,
            {
                "outcome_index": 1,
                "role": "secondary",
                "measure": "Cmax of drug X",
                "description": "",
                "time_frame": "Cycle 2 Day 1 and Cycle 3",
                "endpoints": ["cmax"],
                "category": "pharmacokinetics",
                "points": [],
                "points_days": [],
                "cycles": ["C2D1", "C3"],
                "horizon_days": None,
                "interval_days": None,
                "anchor": None,
                "anchor_text": None,
                "criteria": [],
            },
        ),
        (
            2,
            {
                "outcome_index": 2,
                "role": "secondary",
                "measure": "Tumor response per RECIST 1.1",
                "description": "",
                "time_frame": "Every 6 weeks up to 2 years",
                "endpoints": ["objective_response_rate"],
                "category": "efficacy",
                "points": ["2 year"],
                "points_days": [730.5],
                "cycles": [],
                "horizon_days": 730.5,
                "interval_days": 42.0,
                "anchor": None,
                "anchor_text": None,
                "criteria": ["RECIST 1.1"],
            },
        ),
    ],
)
def test_tables_outcome_rows_literal(literal: Extracted, index: int, expected: dict[str, Any]) -> None:
    rows = outcome_rows(*literal)
    assert len(rows) == 3
    cells = _cells("outcomes", rows[index])
    context = {
        "study_id": "NCT00000001",
        "title": "CAR-T in lymphoma",
        "phases": ["PHASE1", "PHASE2"],
        "conditions": ["Lymphoma", "Leukemia"],
    }
    assert cells == {**context, **expected}


def test_tables_outcome_rows_im96_points(im96: Extracted) -> None:
    cells = _cells("outcomes", outcome_rows(*im96)[1])
    assert cells["measure"] == "Objective remission rate (ORR)"
    assert cells["points"] == ["28 day", "3 month", "6 month", "12 month"]
    assert cells["points_days"] == [28.0, 91.3125, 182.625, 365.25]
    assert (cells["horizon_days"], cells["anchor"]) == (365.25, "treatment")


@pytest.mark.parametrize(
    ("points", "cycles", "interval", "want_points", "want_cycles"),
    [
        ([{"value": 1.5, "unit": "week", "days": 10.5}], [], None, ["1.5 week"], []),
        ([{"value": 12.0, "unit": "hour", "days": 0.5}], [], None, ["12 hour"], []),
        ([], [{"cycle": 1, "day": 15}, {"cycle": 4, "day": None}], None, [], ["C1D15", "C4"]),
        ([], [], {"value": 3.0, "unit": "month", "days": 91.3125}, [], []),
    ],
)
def test_tables_outcome_rows_format_points_and_cycles(
    literal: Extracted,
    points: list[dict[str, Any]],
    cycles: list[dict[str, Any]],
    interval: dict[str, Any] | None,
    want_points: list[str],
    want_cycles: list[str],
) -> None:
    study, result = literal
    edited = copy.deepcopy(result)
    edited["outcomes"][0]["timing"].update(points=points, cycles=cycles, interval=interval)
    cells = _cells("outcomes", outcome_rows(study, edited)[0])
    assert cells["points"] == want_points
    assert cells["points_days"] == [p["days"] for p in points]
    assert cells["cycles"] == want_cycles
    assert cells["interval_days"] == (None if interval is None else interval["days"])


def test_tables_dose_group_rows_im96_match_json_span(im96: Extracted) -> None:
    study, result = im96
    rows = dose_group_rows(study, result)
    assert len(rows) == 2
    first = _cells("dose_groups", rows[0])
    assert first == {
        "study_id": "IM96",
        "title": "Clinical Study of IM96 CAR-T Cell Therapy in Patients With Advanced Colorectal Cancer",
        "phases": [],
        "conditions": ["Colorectal Cancer (CRC)"],
        "group_index": 0,
        "label": None,
        "value": 1.2e9,
        "unit": "cells",
        "text": "12×10\\^8 CAR-T cells",
        "field": "detailed_description",
        "start": 154,
        "end": 174,
    }
    for row, group in zip(rows, result["dose_groups"], strict=True):
        cells = _cells("dose_groups", row)
        span = group["span"]
        assert (cells["field"], cells["start"], cells["end"]) == (span["field"], span["start"], span["end"])
        assert study.detailed_description[cells["start"] : cells["end"]] == cells["text"]
    assert _cells("dose_groups", rows[1])["value"] == 2.0e9


def test_tables_no_dose_groups_gives_no_rows(literal: Extracted) -> None:
    assert dose_group_rows(*literal) == []
    assert table_rows(*literal) == {
        "studies": [study_row(*literal)],
        "outcomes": outcome_rows(*literal),
        "dose_groups": [],
    }


def _fits(value: Any, kind: Kind) -> bool:
    if value is None:
        return kind in ("str", "int", "float")
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, float)
    inner = str if kind == "list_str" else float
    return isinstance(value, list) and all(isinstance(v, inner) for v in value)


@pytest.mark.parametrize("which", ["literal", "im96"])
def test_tables_cells_have_their_column_kind(request: pytest.FixtureRequest, which: str) -> None:
    for table, rows in table_rows(*request.getfixturevalue(which)).items():
        for row in rows:
            for column, value in zip(COLUMNS[table], row, strict=True):
                assert _fits(value, column.kind), (table, column.name, value)


# -- CSV -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (None, "str", ""),
        (None, "int", ""),
        (None, "float", ""),
        (None, "list_str", ""),
        ("modified 3+3", "str", "modified 3+3"),
        ("", "str", ""),
        (3, "int", "3"),
        (0, "int", "0"),
        (28.0, "float", "28.0"),
        (28, "float", "28.0"),
        (1826.25, "float", "1826.25"),
        (1.2e9, "float", "1200000000.0"),
        (30.4375, "float", "30.4375"),
        (1e-07, "float", "1e-07"),
        (
            ["overall_survival", "progression_free_survival"],
            "list_str",
            "overall_survival|progression_free_survival",
        ),
        (["PHASE1"], "list_str", "PHASE1"),
        ([], "list_str", ""),
        ([28.0, 91.3125, 365.25], "list_float", "28.0|91.3125|365.25"),
        ([7], "list_float", "7.0"),
        ([], "list_float", ""),
    ],
)
def test_tables_csv_cell(value: Any, kind: Kind, expected: str) -> None:
    assert csv_cell(value, kind) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_tables_csv_cell_float_round_trips(x: float) -> None:
    back = float(csv_cell(x, "float"))
    assert back == x
    assert math.copysign(1.0, back) == math.copysign(1.0, x)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1))
def test_tables_csv_cell_float_list_round_trips(xs: list[float]) -> None:
    assert [float(v) for v in csv_cell(xs, "list_float").split("|")] == xs


@given(st.lists(st.text(min_size=1).filter(lambda s: "|" not in s), min_size=1))
def test_tables_csv_cell_str_list_round_trips(xs: list[str]) -> None:
    assert csv_cell(xs, "list_str").split("|") == xs


# -- Parquet schema ------------------------------------------------------------------------------------

ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "list_str": pa.list_(pa.string()),
    "list_float": pa.list_(pa.float64()),
}


@pytest.mark.parametrize("table", TABLES)
def test_tables_arrow_schema_types_per_kind(table: str) -> None:
    schema = arrow_schema(table)
    assert schema.names == [c.name for c in COLUMNS[table]]
    for column in COLUMNS[table]:
        field = schema.field(column.name)
        assert field.type == ARROW_TYPES[column.kind], column.name
        assert field.metadata == {b"doc": column.doc.encode()}
    assert schema.metadata == {b"table": table.encode(), b"producer": b"trialsift"}


@pytest.mark.parametrize(
    ("table", "column", "expected"),
    [
        ("studies", "dlt_window_days", pa.float64()),
        ("studies", "outcome_count", pa.int64()),
        ("outcomes", "points", pa.list_(pa.string())),
        ("outcomes", "points_days", pa.list_(pa.float64())),
        ("outcomes", "anchor", pa.string()),
        ("dose_groups", "value", pa.float64()),
        ("dose_groups", "start", pa.int64()),
    ],
)
def test_tables_arrow_schema_key_columns(table: str, column: str, expected: pa.DataType) -> None:
    assert arrow_schema(table).field(column).type == expected


@pytest.mark.parametrize("which", ["literal", "im96"])
def test_tables_rows_load_into_arrow_unchanged(request: pytest.FixtureRequest, which: str) -> None:
    for table, rows in table_rows(*request.getfixturevalue(which)).items():
        schema = arrow_schema(table)
        names = [c.name for c in COLUMNS[table]]
        arrow = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows], schema=schema)
        assert arrow.schema == schema
        assert [tuple(d.values()) for d in arrow.to_pylist()] == rows
