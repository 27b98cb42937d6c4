"""Work out what a file holds from its bytes: compression, text or binary, and which format."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

GZIP_MAGIC: Final = b"\x1f\x8b"
ZIP_MAGIC: Final = b"PK\x03\x04"


class Format(StrEnum):
    """The input formats trialsift reads."""

    JSON = "json"
    CSV = "csv"
    XML = "xml"
    TEXT = "text"  # seed layout or protocol text; told apart by nlp.ingest.text


EXPECTED: Final = (
    "expected API v2 JSON, JSON Lines, the registry's CSV export, legacy XML (<clinical_study>), "
    "a seed record or protocol text"
)

#: Column names of the website's CSV export; a header row holding a few of them is an export.
CSV_COLUMNS: Final = frozenset(
    {
        "NCT Number",
        "Study Title",
        "Study URL",
        "Acronym",
        "Study Status",
        "Brief Summary",
        "Study Results",
        "Conditions",
        "Interventions",
        "Primary Outcome Measures",
        "Secondary Outcome Measures",
        "Other Outcome Measures",
        "Sponsor",
        "Collaborators",
        "Sex",
        "Age",
        "Phases",
        "Enrollment",
        "Funder Type",
        "Study Type",
        "Study Design",
        "Other IDs",
        "Start Date",
        "Primary Completion Date",
        "Completion Date",
        "First Posted",
        "Results First Posted",
        "Last Update Posted",
        "Locations",
        "Study Documents",
        # the older export's spellings
        "Title",
        "Outcome Measures",
        "Phase",
        "Status",
        "URL",
    }
)
_HEADER_CELL: Final = re.compile(r'"?([^",]+)"?')


def binary_reason(head: bytes) -> str | None:
    """Why ``head`` (the first bytes of a decompressed file) is not text, or None when it is."""
    if head.startswith(ZIP_MAGIC):
        return f"a zip archive, not a study file; unzip it first ({EXPECTED})"
    nul = head.find(b"\x00")
    if nul >= 0:
        return f"binary content (NUL byte at offset {nul}), {EXPECTED}"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut by the end of the sample is not an error.
        if err.start < len(head) - 3 or err.reason != "unexpected end of data":
            return f"not UTF-8 text (byte 0x{head[err.start]:02x} at offset {err.start}), {EXPECTED}"
    return None


def is_csv_header(first_line: str) -> bool:
    """Whether a first line is the registry CSV export's header row."""
    cells = {c.strip() for c in _HEADER_CELL.findall(first_line)}
    return "NCT Number" in cells or len(cells & CSV_COLUMNS) >= 3


def detect(head: str) -> Format:
    """The format of a text file from its beginning (a few kilobytes are enough).

    Args:
        head: the file's first characters, decoded.

    Returns:
        The detected format.
    """
    text = head.lstrip("\ufeff \t\r\n")
    if text.startswith(("{", "[")):
        return Format.JSON
    if text.startswith("<"):
        return Format.XML
    first_line = text.split("\n", 1)[0]
    if "," in first_line and is_csv_header(first_line):
        return Format.CSV
    return Format.TEXT
