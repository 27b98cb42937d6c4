"""Helpers every reader shares: phase spellings, enrollment counts, ids and origins."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Final

from nlp.study import Intervention, Study

#: Every spelling of a phase the formats use, folded (lower case, no spaces, dashes or underscores),
#: mapped to the registry's API v2 spelling.
_PHASES: Final[dict[str, str]] = {
    "earlyphase1": "EARLY_PHASE1",
    "earlyphasei": "EARLY_PHASE1",
    "phase0": "EARLY_PHASE1",
    "phase1": "PHASE1",
    "phasei": "PHASE1",
    "phase2": "PHASE2",
    "phaseii": "PHASE2",
    "phase3": "PHASE3",
    "phaseiii": "PHASE3",
    "phase4": "PHASE4",
    "phaseiv": "PHASE4",
    "na": "NA",
    "n/a": "NA",
    "notapplicable": "NA",
}
_PHASE_FOLD: Final = re.compile(r"[\s_\-]+")
# "Phase 1/Phase 2", "PHASE1|PHASE2", "Phase 2, Phase 3" all list several phases.
_PHASE_SEP: Final = re.compile(r"\s*(?:[|,;]|/(?=\s*(?:early\s*)?phase))\s*", re.IGNORECASE)
_NCT: Final = re.compile(r"\bNCT\d{8}\b")

UNREADABLE_PHASE = (
    "phase {value!r} is not a registry phase (expected e.g. PHASE1, Phase 1/Phase 2, Early Phase 1, N/A)"
)


def normalise_phase(value: str) -> str | None:
    """Map one phase as any format spells it to the registry spelling.

    Args:
        value: e.g. ``"Phase 1"``, ``"PHASE1"``, ``"Early Phase 1"``, ``"N/A"``.

    Returns:
        ``EARLY_PHASE1``, ``PHASE1`` … ``PHASE4`` or ``NA``; None when the text is no phase.
    """
    return _PHASES.get(_PHASE_FOLD.sub("", value).casefold())


def parse_phases(value: str | list[str] | None, errors: list[str]) -> list[str]:
    """Read a phase list in any format's spelling; unreadable entries go to ``errors``.

    Args:
        value: a list of phases, or one string holding several ("Phase 1/Phase 2", "PHASE1|PHASE2").
        errors: the study's error list, appended to.

    Returns:
        The phases in registry spelling, in order, without duplicates.
    """
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    pieces = [p for item in items if isinstance(item, str) for p in _PHASE_SEP.split(item)]
    out: list[str] = []
    for item in pieces:
        if not isinstance(item, str) or not item.strip():
            continue
        phase = normalise_phase(item)
        if phase is None:
            errors.append(UNREADABLE_PHASE.format(value=item))
        elif phase not in out:
            out.append(phase)
    return out


def parse_enrollment(value: object, errors: list[str]) -> int | None:
    """Read the registry's enrollment count (an int, or its text); unreadable values go to ``errors``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors.append(f"enrollment {value!r} is not a count")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    errors.append(f"enrollment {value!r} is not a count (expected a whole number)")
    return None


def find_nct(text: str) -> str | None:
    """The first NCT id in ``text``, if any."""
    m = _NCT.search(text)
    return m.group(0) if m else None


def fallback_id(source: str, line: int, several: bool) -> str:
    """The id of a record without an NCT id: the file's stem, plus ``:LINE`` when the file holds several."""
    stem = PurePath(source).name
    for suffix in (".gz", ".jsonl", ".json", ".csv", ".xml", ".txt", ".ndjson"):
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
    return f"{stem}:{line}" if several else stem


def finish(study: Study, source: str, line: int, several: bool) -> Study:
    """Give a study its origin, and its fallback id when it has no NCT id."""
    study.origin = f"{source}:{line}"
    if not study.id:
        study.id = fallback_id(source, line, several)
    return study


_IV_TYPES: Final = frozenset(
    {
        "BEHAVIORAL",
        "BIOLOGICAL",
        "COMBINATION_PRODUCT",
        "DEVICE",
        "DIAGNOSTIC_TEST",
        "DIETARY_SUPPLEMENT",
        "DRUG",
        "GENETIC",
        "OTHER",
        "PROCEDURE",
        "RADIATION",
    }
)
INTERVENTION_CELL: Final = re.compile(r"^(?:" + "|".join(sorted(_IV_TYPES)) + r")\s*:", re.IGNORECASE)


def intervention_type(value: str) -> str:
    """The registry spelling of an intervention type ("Dietary Supplement" -> DIETARY_SUPPLEMENT)."""
    folded = re.sub(r"[\s\-/]+", "_", value.strip()).upper()
    return folded if folded in _IV_TYPES else value.strip()


def parse_interventions_cell(cell: str) -> list[Intervention]:
    """Read the export's interventions cell: ``DRUG: Fludarabine|BIOLOGICAL: CAR-T cells``."""
    out: list[Intervention] = []
    for item in cell.split("|"):
        item = item.strip()
        if not item:
            continue
        kind, sep, name = item.partition(":")
        if sep and intervention_type(kind) in _IV_TYPES:
            out.append(Intervention(name=name.strip(), type=intervention_type(kind)))
        else:
            out.append(Intervention(name=item))
    return out


def split_list_cell(cell: str) -> list[str]:
    """Read a ``|``-separated list cell (conditions, collaborators)."""
    return [item.strip() for item in cell.split("|") if item.strip()]
