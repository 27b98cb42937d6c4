"""The registry website's CSV export: a header row, then one study per row (cells may span lines)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Final

from nlp.csvsplit import split_outcome_cell
from nlp.errors import RecordError
from nlp.ingest._common import (
    find_nct,
    finish,
    parse_enrollment,
    parse_interventions_cell,
    parse_phases,
    split_list_cell,
)
from nlp.study import Outcome, Study

FORMAT: Final = "csv"
_OUTCOME_COLUMNS: Final = (
    ("primary", "Primary Outcome Measures"),
    ("secondary", "Secondary Outcome Measures"),
    ("other", "Other Outcome Measures"),
)


def _quote_problem(message: str) -> str:
    if message == "unexpected end of data":
        return "broken quoting: a quoted field opened in this record is never closed (unexpected end of data)"
    return f"broken quoting: {message} (a quote inside a quoted field must be doubled)"


def _cell(row: dict[str, str], *names: str) -> str:
    for name in names:
        value = row.get(name)
        if value:
            return value
    return ""


def study_from_row(row: dict[str, str]) -> Study:
    """Read one export row (column name -> cell) into a Study; ``origin`` and fallback id are the caller's."""
    errors: list[str] = []
    study = Study(
        id=find_nct(_cell(row, "NCT Number")) or "",
        source_format=FORMAT,
        title=_cell(row, "Study Title", "Title").strip(),
        brief_summary=_cell(row, "Brief Summary").strip(),
        conditions=split_list_cell(_cell(row, "Conditions")),
        interventions=parse_interventions_cell(_cell(row, "Interventions")),
        study_type=_cell(row, "Study Type").strip().upper().replace(" ", "_"),
        errors=errors,
    )
    study.phases = parse_phases(_cell(row, "Phases", "Phase"), errors)
    study.enrollment = parse_enrollment(_cell(row, "Enrollment").strip(), errors)
    for role, column in _OUTCOME_COLUMNS:
        study.outcomes.extend(Outcome(role, m, d, t) for m, d, t in split_outcome_cell(_cell(row, column)))
    return study


def read_csv_export(text: str, source: str) -> Iterator[Study | RecordError]:
    """Read a CSV export file.

    Args:
        text: the whole file, decoded.
        source: the file, for messages.

    Yields:
        A Study per row, or a RecordError for a row that cannot be read (the next row is still read).
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as err:
        yield RecordError(source, 1, f"unreadable CSV header row: {err}")
        return
    header = [h.strip() for h in header]
    rows: list[tuple[int, list[str]] | RecordError] = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            rows.append(RecordError(source, start, _quote_problem(str(err))))
            start = reader.line_num + 1
            continue
        if any(c.strip() for c in cells):
            rows.append((start, cells))
        start = reader.line_num + 1
    several = len(rows) > 1
    for item in rows:
        if isinstance(item, RecordError):
            yield item
            continue
        line, cells = item
        if len(cells) != len(header):
            yield RecordError(
                source,
                line,
                f"row has {len(cells)} fields, the header has {len(header)} "
                "(a cell holding a comma, quote or line break must be quoted)",
            )
            continue
        yield finish(study_from_row(dict(zip(header, cells, strict=True))), source, line, several)
