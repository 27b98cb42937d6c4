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
