"""Flat tables of an extraction, for analysis in pandas, DuckDB or a spreadsheet.

Three tables, joined on ``study_id``:

- ``studies``: one row per study: its context (title, phases, conditions, interventions) and design facts;
- ``outcomes``: one row per outcome measure: the study context an analyst filters on, then the outcome's
  endpoint ids, category, time points, horizon, anchor and criteria;
- ``dose_groups``: one row per dose group, with where in the record it was read.

Rows are plain tuples in :data:`COLUMNS` order, built by pure functions from a ``Study`` and its extraction
(the spec's JSON), so they are cheap to send between processes. List-valued columns are lists here and in
Parquet, and ``|``-joined text in CSV (see :func:`csv_cell`). Offsets and spans stay in the JSON Lines output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from nlp.study import Study

Kind = Literal["str", "int", "float", "list_str", "list_float"]
Row = tuple[Any, ...]
TABLES: Final = ("studies", "outcomes", "dose_groups")
#: How list cells are joined in CSV. Ids, phases, criteria and points never contain it; conditions and
#: intervention names are free text and could (none of the 11.6k corpus studies has one): Parquet keeps
#: lists as lists.
LIST_SEPARATOR: Final = "|"


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its name, its kind (which fixes its Parquet type) and what it holds."""

    name: str
    kind: Kind
    doc: str


_CONTEXT: Final = (
    Column("study_id", "str", "the NCT id (else the file's stem, plus :LINE when a file holds several)"),
    Column("title", "str", "the brief title"),
    Column("phases", "list_str", "design.phases: PHASE1 … PHASE4, EARLY_PHASE1, NA"),
    Column("conditions", "list_str", "the registry's conditions"),
)

COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    "studies": (
        *_CONTEXT,
        Column("interventions", "list_str", "intervention names"),
        Column("source_format", "str", "the input format the record was read from"),
        Column("escalation", "str", "design.escalation: 3+3, BOIN, CRM …; empty when none is stated"),
        Column("dlt_window_days", "float", "design.dlt_window_days"),
        Column("dlt_max_events", "int", "design.dlt_rule.max_events (the 1 of 'DLT ≤1/6')"),
        Column("dlt_of_patients", "int", "design.dlt_rule.of_patients (the 6 of 'DLT ≤1/6')"),
        Column("enrollment_min", "int", "design.enrollment.min: planned enrollment the prose states"),
        Column("enrollment_max", "int", "design.enrollment.max"),
        Column("cohort_size_min", "int", "design.cohort_size.min: patients per dose group"),
        Column("cohort_size_max", "int", "design.cohort_size.max"),
        Column("dose_group_count", "int", "design.dose_group_count"),
        Column("criteria", "list_str", "design.criteria: assessment standards named anywhere"),
        Column("registry_enrollment", "int", "the registry's enrollment count"),
        Column("outcome_count", "int", "how many outcome measures the study has"),
        Column("errors", "list_str", "parts of the record that could not be read"),
    ),
    "outcomes": (
        *_CONTEXT,
        Column("outcome_index", "int", "the outcome's position in the study's outcomes (0-based)"),
        Column("role", "str", "primary, secondary or other"),
        Column("measure", "str", "the measure's text"),
        Column("description", "str", "the description's text"),
        Column("time_frame", "str", "the time frame's text"),
        Column("endpoints", "list_str", "endpoint ids from the vocabulary"),
        Column("category", "str", "efficacy, safety, pharmacokinetics, biomarker, patient_reported, other"),
        Column("points", "list_str", "timing.points as written: '3 month', '28 day'"),
        Column("points_days", "list_float", "timing.points in days"),
        Column("cycles", "list_str", "timing.cycles: 'C2D1', or 'C3' when no day is stated"),
        Column("horizon_days", "float", "timing.horizon_days: the latest assessment after the anchor"),
        Column("interval_days", "float", "timing.interval in days ('every 6 weeks' → 42)"),
        Column("anchor", "str", "timing.anchor: treatment, randomization, baseline, surgery …"),
        Column("anchor_text", "str", "the words naming the anchor"),
        Column("criteria", "list_str", "assessment criteria: RECIST 1.1, CTCAE 5.0 …"),
    ),
    "dose_groups": (
        *_CONTEXT,
        Column("group_index", "int", "the group's position in the study's dose groups (0-based)"),
        Column("label", "str", "the group's label, when the record names one"),
        Column("value", "float", "the dose, in unit (12×10^8 CAR-T cells → 1.2e9)"),
        Column("unit", "str", "cells, cells/kg, mg, mg/kg, mg/m2, ug, Gy, …"),
        Column("text", "str", "the dose as written"),
        Column("field", "str", "the record field it was read from"),
        Column("start", "int", "character offset of the text in that field"),
        Column("end", "int", "end offset (exclusive)"),
    ),
}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _number(value: float) -> str:
    """A number as written in a point or cycle: 3.0 → '3', 1.5 → '1.5'."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _context(study: Study, result: dict[str, Any]) -> Row:
    return (result["id"], study.title, list(result["design"]["phases"]), list(study.conditions))


def study_row(study: Study, result: dict[str, Any]) -> Row:
    """The study's row of the ``studies`` table.

    Args:
        study: the study as read.
        result: its extraction (``Extractor`` output, the spec's JSON).

    Returns:
        A tuple in ``COLUMNS["studies"]`` order.
    """
    design = result["design"]
    rule = design["dlt_rule"] or {}
    enrollment = design["enrollment"] or {}
    cohort = design["cohort_size"] or {}
    return (
        *_context(study, result),
        [iv.name for iv in study.interventions],
        result["source_format"],
        design["escalation"],
        _float(design["dlt_window_days"]),
        rule.get("max_events"),
        rule.get("of_patients"),
        enrollment.get("min"),
        enrollment.get("max"),
        cohort.get("min"),
        cohort.get("max"),
        design["dose_group_count"],
        list(design["criteria"]),
        result["registry_enrollment"],
        len(result["outcomes"]),
        list(result["errors"]),
    )


def outcome_rows(study: Study, result: dict[str, Any]) -> list[Row]:
    """The study's rows of the ``outcomes`` table, in the study's outcome order.

    Args:
        study: the study as read.
        result: its extraction.

    Returns:
        One tuple per outcome, in ``COLUMNS["outcomes"]`` order.
    """
    context = _context(study, result)
    rows: list[Row] = []
    for i, o in enumerate(result["outcomes"]):
        timing = o["timing"]
        interval = timing["interval"]
        rows.append(
            (
                *context,
                i,
                o["role"],
                o["measure"],
                o["description"],
                o["time_frame"],
                list(o["endpoints"]),
                o["category"],
                [f"{_number(p['value'])} {p['unit']}" for p in timing["points"]],
                [float(p["days"]) for p in timing["points"]],
                [
                    f"C{c['cycle']}" + (f"D{c['day']}" if c["day"] is not None else "")
                    for c in timing["cycles"]
                ],
                _float(timing["horizon_days"]),
                None if interval is None else float(interval["days"]),
                timing["anchor"],
                timing["anchor_text"],
                list(o["criteria"]),
            )
        )
    return rows


def dose_group_rows(study: Study, result: dict[str, Any]) -> list[Row]:
    """The study's rows of the ``dose_groups`` table, in the order the groups were found.

    Args:
        study: the study as read.
        result: its extraction.

    Returns:
        One tuple per dose group, in ``COLUMNS["dose_groups"]`` order.
    """
    context = _context(study, result)
    return [
        (
            *context,
            i,
            g["label"],
            float(g["value"]),
            g["unit"],
            g["text"],
            g["span"]["field"],
            g["span"]["start"],
            g["span"]["end"],
        )
        for i, g in enumerate(result["dose_groups"])
    ]


def table_rows(study: Study, result: dict[str, Any]) -> dict[str, list[Row]]:
    """All three tables' rows for one study, keyed by table name."""
    return {
        "studies": [study_row(study, result)],
        "outcomes": outcome_rows(study, result),
        "dose_groups": dose_group_rows(study, result),
    }


def csv_cell(value: Any, kind: Kind) -> str:
    """A cell as CSV text: empty for null, lists joined by ``|``, floats in their shortest exact form.

    The shortest round-trip form (``repr``) keeps re-runs byte-identical and loses no precision.
    """
    if value is None:
        return ""
    if kind == "list_str":
        return LIST_SEPARATOR.join(value)
    if kind == "list_float":
        return LIST_SEPARATOR.join(repr(float(v)) for v in value)
    if kind == "float":
        return repr(float(value))
    return str(value)


def arrow_schema(table: str) -> Any:
    """The pyarrow schema of a table (pyarrow is imported here, when Parquet is asked for)."""
    import pyarrow as pa

    types = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "list_str": pa.list_(pa.string()),
        "list_float": pa.list_(pa.float64()),
    }
    return pa.schema(
        [pa.field(c.name, types[c.kind], metadata={"doc": c.doc}) for c in COLUMNS[table]],
        metadata={"table": table, "producer": "trialsift"},
    )
