"""The one internal shape every input format is read into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

ROLES: Final[tuple[str, ...]] = ("primary", "secondary", "other")


@dataclass(slots=True)
class Outcome:
    """One outcome measure: its role and its three texts, split as the registry meant them."""

    role: str
    measure: str
    description: str = ""
    time_frame: str = ""


@dataclass(slots=True)
class ArmGroup:
    label: str
    type: str = ""
    description: str = ""
    intervention_names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Intervention:
    name: str
    type: str = ""
    description: str = ""
    other_names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Study:
    """A clinical study, whatever format it came in.

    ``id`` is the NCT id when the record has one, else the file's stem (plus ``:LINE`` when the
    file holds several records). ``origin`` says where the record was read (``path:line``).
    ``errors`` lists parts of the record that could not be read (the rest still is).
    """

    id: str
    source_format: str
    origin: str = ""
    title: str = ""
    official_title: str = ""
    brief_summary: str = ""
    detailed_description: str = ""
    conditions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    arm_groups: list[ArmGroup] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    study_type: str = ""
    enrollment: int | None = None
    enrollment_type: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def study_texts(study: Study) -> list[tuple[str, str]]:
    """The study's prose fields as ``(field, text)`` pairs, in reading order, empty ones left out.

    Field names address the record: ``title``, ``official_title``, ``brief_summary``,
    ``detailed_description``, ``arm_groups[i].label``, ``arm_groups[i].description``,
    ``interventions[i].name``, ``interventions[i].description``. Study-level extraction (design facts,
    dose groups) reports offsets into these texts under these names.
    """
    pairs: list[tuple[str, str]] = [
        ("title", study.title),
        ("official_title", study.official_title),
        ("brief_summary", study.brief_summary),
        ("detailed_description", study.detailed_description),
    ]
    for i, arm in enumerate(study.arm_groups):
        pairs.append((f"arm_groups[{i}].label", arm.label))
        pairs.append((f"arm_groups[{i}].description", arm.description))
    for i, iv in enumerate(study.interventions):
        pairs.append((f"interventions[{i}].name", iv.name))
        pairs.append((f"interventions[{i}].description", iv.description))
    return [(name, text) for name, text in pairs if text and text.strip()]
