"""The seed layout: the CSV export's columns, one per line, without a header."""

from __future__ import annotations

import re
from typing import Final

from nlp.csvsplit import split_outcome_cell
from nlp.ingest._common import INTERVENTION_CELL, parse_interventions_cell, split_list_cell
from nlp.study import Outcome, Study

FORMAT: Final = "seed"
_LINES: Final = re.compile(r"\r\n|\r|\n")


def looks_like_seed(text: str) -> bool:
    """Whether ``text`` is in the seed layout.

    Line 4 is the export's interventions cell (``DRUG: …``) and line 5 a non-empty outcome cell; a
    protocol synopsis essentially never has that shape.
    """
    lines = _LINES.split(text.lstrip("\ufeff"), maxsplit=6)
    if len(lines) < 6 or not lines[0].strip() or not lines[4].strip():
        return False
    return bool(INTERVENTION_CELL.match(lines[3].strip())) and ", " in lines[4]


def study_from_seed(text: str, study_id: str) -> Study:
    """Read a record in the seed layout.

    Args:
        text: line 1 title, 2 brief summary, 3 conditions, 4 interventions, 5 primary outcomes,
            6 secondary outcomes, 7 to the end the detailed description.
        study_id: the record's id (the file's stem).

    Returns:
        The Study (``origin`` left for the caller).
    """
    lines = _LINES.split(text.lstrip("\ufeff"), maxsplit=6)
    lines += [""] * (7 - len(lines))
    study = Study(
        id=study_id,
        source_format=FORMAT,
        title=lines[0].strip(),
        brief_summary=lines[1].strip(),
        conditions=split_list_cell(lines[2]),
        interventions=parse_interventions_cell(lines[3]),
        detailed_description=lines[6].strip(),
    )
    for role, cell in (("primary", lines[4]), ("secondary", lines[5])):
        study.outcomes.extend(Outcome(role, m, d, t) for m, d, t in split_outcome_cell(cell))
    return study
