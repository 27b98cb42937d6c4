"""The registry's legacy XML (``<clinical_study>``, the schema ClinicalTrials.gov served until 2023)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Final

from nlp.errors import RecordError
from nlp.ingest._common import finish, intervention_type, parse_enrollment, parse_phases
from nlp.study import ArmGroup, Intervention, Outcome, Study

FORMAT: Final = "legacy_xml"
_ROOT: Final = "clinical_study"
_OUTCOME_TAGS: Final = (
    ("primary", "primary_outcome"),
    ("secondary", "secondary_outcome"),
    ("other", "other_outcome"),
)
_WRAPPED: Final = re.compile(r"(?<=\S)[ \t]*\n[ \t]*(?=\S)")
_PARAGRAPH: Final = re.compile(r"\n[ \t]*\n\s*")
_LIST_START: Final = re.compile(r"^(?:[-*•·]|\d{1,2}[.)])\s")


def _text(el: ET.Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _block(el: ET.Element | None) -> str:
    """A ``<textblock>``'s text with the XML's indentation and hard line wrapping undone."""
    if el is None:
        return ""
    block = el.find("textblock")
    raw = _text(block if block is not None else el)
    paragraphs = []
    for para in _PARAGRAPH.split(raw.strip()):
        lines = [ln.strip() for ln in para.splitlines()]
        joined: list[str] = []
        for ln in lines:
            if joined and not _LIST_START.match(ln):
                joined[-1] += " " + ln
            else:
                joined.append(ln)
        paragraphs.append("\n".join(joined))
    return "\n\n".join(paragraphs)


def _upper(value: str) -> str:
    """Legacy spellings to the API's: "Active Comparator" -> ACTIVE_COMPARATOR, "Anticipated" -> ESTIMATED."""
    folded = re.sub(r"[\s\-/]+", "_", value.strip()).upper()
    return "ESTIMATED" if folded == "ANTICIPATED" else folded


def study_from_element(root: ET.Element) -> Study:
    """Read one ``<clinical_study>`` element (``origin`` and fallback id left to the caller)."""
    errors: list[str] = []
    study = Study(
        id=_text(root.find("id_info/nct_id")),
        source_format=FORMAT,
        title=_text(root.find("brief_title")),
        official_title=_text(root.find("official_title")),
        brief_summary=_block(root.find("brief_summary")),
        detailed_description=_block(root.find("detailed_description")),
        conditions=[_text(c) for c in root.findall("condition") if _text(c)],
        keywords=[_text(c) for c in root.findall("keyword") if _text(c)],
        study_type=_upper(_text(root.find("study_type"))),
        errors=errors,
    )
    study.phases = parse_phases([_text(p) for p in root.findall("phase")], errors)
    enrollment = root.find("enrollment")
    study.enrollment = parse_enrollment(_text(enrollment), errors)
    if enrollment is not None and enrollment.get("type"):
        study.enrollment_type = _upper(enrollment.get("type", ""))
    labels_by_name: list[tuple[str, list[str]]] = []
    for iv in root.findall("intervention"):
        kind = intervention_type(_text(iv.find("intervention_type")))
        name = _text(iv.find("intervention_name"))
        study.interventions.append(
            Intervention(
                name=name,
                type=kind,
                description=_block(iv.find("description")),
                other_names=[_text(o) for o in iv.findall("other_name") if _text(o)],
            )
        )
        display = f"{_text(iv.find('intervention_type'))}: {name}"
        labels_by_name.append((display, [_text(a) for a in iv.findall("arm_group_label")]))
    for arm in root.findall("arm_group"):
        label = _text(arm.find("arm_group_label"))
        study.arm_groups.append(
            ArmGroup(
                label=label,
                type=_upper(_text(arm.find("arm_group_type"))),
                description=_block(arm.find("description")),
                intervention_names=[name for name, labels in labels_by_name if label in labels],
            )
        )
    for role, tag in _OUTCOME_TAGS:
        for i, out in enumerate(root.findall(tag)):
            measure = _text(out.find("measure"))
            if not measure:
                errors.append(f"<{tag}> #{i + 1} has no <measure>")
                continue
            study.outcomes.append(
                Outcome(role, measure, _block(out.find("description")), _text(out.find("time_frame")))
            )
    return study


def read_legacy_xml(data: bytes, source: str) -> Iterator[Study | RecordError]:
    """Read a legacy XML file: one ``<clinical_study>`` (or a wrapper element holding several).

    Args:
        data: the file's bytes (the XML declaration names their encoding).
        source: the file, for messages.

    Yields:
        The Study, or a RecordError when the XML is not well-formed or not a ``<clinical_study>``.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        # The record starts on line 1; the parser's message says where it broke.
        yield RecordError(source, 1, f"not well-formed XML: {err}")
        return
    studies = [root] if root.tag == _ROOT else root.findall(_ROOT)
    if not studies:
        yield RecordError(
            source, 1, f"expected a <{_ROOT}> root element (legacy registry XML), found <{root.tag}>"
        )
        return
    for el in studies:
        yield finish(study_from_element(el), source, 1, len(studies) > 1)
