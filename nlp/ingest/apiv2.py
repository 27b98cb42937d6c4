"""API v2 JSON: one study object -> Study."""

from __future__ import annotations

from typing import Any, Final

from nlp.csvsplit import split_outcomes
from nlp.errors import RecordError
from nlp.ingest._common import parse_enrollment, parse_phases
from nlp.study import ArmGroup, Intervention, Outcome, Study

FORMAT: Final = "apiv2"
_OUTCOME_KEYS: Final = (
    ("primary", "primaryOutcomes"),
    ("secondary", "secondaryOutcomes"),
    ("other", "otherOutcomes"),
)


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Reader:
    """Typed access to a record's parts; anything of the wrong type becomes a Study error, not a crash."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors

    def obj(self, parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.errors.append(f"{where}{key} is {_kind(value)}, expected an object")
            return {}
        return value

    def text(self, parent: dict[str, Any], key: str, where: str) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.errors.append(f"{where}{key} is {_kind(value)}, expected a string")
            return ""
        return value

    def items(self, parent: dict[str, Any], key: str, where: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.errors.append(f"{where}{key} is {_kind(value)}, expected a list")
            return []
        return value

    def texts(self, parent: dict[str, Any], key: str, where: str) -> list[str]:
        out: list[str] = []
        for i, item in enumerate(self.items(parent, key, where)):
            if isinstance(item, str):
                out.append(item)
            else:
                self.errors.append(f"{where}{key}[{i}] is {_kind(item)}, expected a string")
        return out

    def objs(self, parent: dict[str, Any], key: str, where: str) -> list[tuple[int, dict[str, Any]]]:
        out: list[tuple[int, dict[str, Any]]] = []
        for i, item in enumerate(self.items(parent, key, where)):
            if isinstance(item, dict):
                out.append((i, item))
            else:
                self.errors.append(f"{where}{key}[{i}] is {_kind(item)}, expected an object")
        return out


def check_study(obj: object, source: str, line: int | None) -> dict[str, Any]:
    """Return ``obj`` as an API v2 study, or raise RecordError saying why it is not one."""
    if not isinstance(obj, dict):
        raise RecordError(
            source, line, f'expected an API v2 study object with "protocolSection", found {_kind(obj)}'
        )
    section = obj.get("protocolSection")
    if section is None:
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        raise RecordError(source, line, f'not an API v2 study: no "protocolSection" (keys found: {keys})')
    if not isinstance(section, dict):
        raise RecordError(source, line, f'"protocolSection" is {_kind(section)}, expected an object')
    return obj


def study_from_apiv2(obj: object, source: str = "<record>", line: int | None = None) -> Study:
    """Read one API v2 study object.

    Args:
        obj: the parsed JSON of one study (``{"protocolSection": {...}, ...}``).
        source: the file (or ``<record>``) it came from, for messages.
        line: the 1-based line where the record starts, if known.

    Returns:
        The Study, with ``origin`` and the fallback id left for the caller to set.

    Raises:
        RecordError: when ``obj`` is not an API v2 study.
    """
    record = check_study(obj, source, line)
    errors: list[str] = []
    r = _Reader(errors)
    ps: dict[str, Any] = record["protocolSection"]
    ident = r.obj(ps, "identificationModule", "protocolSection.")
    desc = r.obj(ps, "descriptionModule", "protocolSection.")
    cond = r.obj(ps, "conditionsModule", "protocolSection.")
    design = r.obj(ps, "designModule", "protocolSection.")
    arms = r.obj(ps, "armsInterventionsModule", "protocolSection.")
    outcomes_module = r.obj(ps, "outcomesModule", "protocolSection.")
    enrollment = r.obj(design, "enrollmentInfo", "designModule.")

    study = Study(
        id=r.text(ident, "nctId", "identificationModule.").strip(),
        source_format=FORMAT,
        title=r.text(ident, "briefTitle", "identificationModule."),
        official_title=r.text(ident, "officialTitle", "identificationModule."),
        brief_summary=r.text(desc, "briefSummary", "descriptionModule."),
        detailed_description=r.text(desc, "detailedDescription", "descriptionModule."),
        conditions=r.texts(cond, "conditions", "conditionsModule."),
        keywords=r.texts(cond, "keywords", "conditionsModule."),
        study_type=r.text(design, "studyType", "designModule."),
        enrollment_type=r.text(enrollment, "type", "enrollmentInfo."),
        errors=errors,
    )
    study.phases = parse_phases(r.texts(design, "phases", "designModule."), errors)
    study.enrollment = parse_enrollment(enrollment.get("count"), errors)
    for _, iv in r.objs(arms, "interventions", "armsInterventionsModule."):
        study.interventions.append(
            Intervention(
                name=r.text(iv, "name", "interventions[]."),
                type=r.text(iv, "type", "interventions[]."),
                description=r.text(iv, "description", "interventions[]."),
                other_names=r.texts(iv, "otherNames", "interventions[]."),
            )
        )
    for _, arm in r.objs(arms, "armGroups", "armsInterventionsModule."):
        study.arm_groups.append(
            ArmGroup(
                label=r.text(arm, "label", "armGroups[]."),
                type=r.text(arm, "type", "armGroups[]."),
                description=r.text(arm, "description", "armGroups[]."),
                intervention_names=r.texts(arm, "interventionNames", "armGroups[]."),
            )
        )
    for role, key in _OUTCOME_KEYS:
        entries = list(r.objs(outcomes_module, key, "outcomesModule."))
        raws = [r.text(out, "_raw", f"{key}[{i}].") for i, out in entries]
        # The corpus's own split of the export's joined text was guessed; ours is the one to trust. One
        # role's outcomes were one export cell, and the split is decided for the cell as a whole.
        resplit = iter(split_outcomes([raw for raw in raws if raw.strip()]))
        for (i, out), raw in zip(entries, raws, strict=True):
            where = f"{key}[{i}]."
            if raw.strip():
                measure, description, time_frame = next(resplit)
            else:
                measure = r.text(out, "measure", where)
                description = r.text(out, "description", where)
                time_frame = r.text(out, "timeFrame", where)
            if not measure.strip() and not description.strip():
                errors.append(f"{key}[{i}] has no measure")
                continue
            study.outcomes.append(Outcome(role, measure, description, time_frame))
    return study
