"""Assessment standards named in a text (RECIST 1.1, CTCAE 5.0, Lugano, iwCLL ...), in the spec's spellings.

The standards and how they are written are data: ``resources/criteria.json``. Versions written after a
name ("RECIST v1.1", "CTCAE version 5", "Common Terminology Criteria for Adverse Events (CTCAE) version
4.03") become part of the name ("RECIST 1.1", "CTCAE 5.0", "CTCAE 4.03").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from nlp.endpoints import Alternation, check_fragment
from nlp.errors import ResourceError
from nlp.resource_files import read_json_resource
from nlp.types import CriterionHit

_FILE: Final = "criteria.json"
_TOP_KEYS: Final = ("_doc", "criteria")
_ENTRY_KEYS: Final = ("name", "i", "cs", "versioned", "long")
#: What may stand between a name and its version: a closing parenthesis ("(RECIST) v1.1"), "criteria",
#: "version", "v." ... A bare number needs a dot ("RECIST 1.1"), so "CTCAE grade 3" or "CTCAE 3 or
#: higher" gives no version.
_VERSION: Final = re.compile(
    r"\s*\)?\s*,?\s*"
    r"(?:(?:criteria|guidelines?|classification|toxicity grading|grading(?: system)?|scale)\s*,?\s*)?"
    r"(?:\(?\s*(?:v|ver|vers|version)\s*\.?\s*(?:\(v\)\s*)?(?P<v>\d{1,2}(?:\.\d{1,2})?)"
    r"|\(?(?P<d>\d\.\d{1,2}))(?![\d.]*\d)",
    re.IGNORECASE,
)
#: Between a spelled-out name and the acronym that follows it: "(", ", ", " (", version words.
_BETWEEN_LONG_AND_ACRONYM: Final = re.compile(
    r"[\s(,\-–]*(?:(?:v|version)\s*\d[\d.]*\s*)?[\s(]*", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    versioned: bool
    long: bool


@dataclass(frozen=True, slots=True)
class _Criteria:
    alternation: Alternation
    #: fragment index -> entry
    entries: tuple[_Entry, ...]


def parse_criteria(data: Any) -> _Criteria:
    """Validate the decoded ``criteria.json`` and compile it into one regex.

    Args:
        data: the decoded JSON.

    Returns:
        The compiled matcher.

    Raises:
        ResourceError: on an unknown key, a missing name, a non-list or an invalid regex.
    """
    if not isinstance(data, dict):
        raise ResourceError(
            _FILE, "top level", "not a JSON object", f"Use an object with keys {list(_TOP_KEYS)}"
        )
    for key in data:
        if key not in _TOP_KEYS:
            raise ResourceError(_FILE, f"key {key!r}", "unknown key", f"Allowed keys: {list(_TOP_KEYS)}")
    items = data.get("criteria")
    if not isinstance(items, list):
        raise ResourceError(
            _FILE, "key 'criteria'", "missing or not a list", "Give a list of criterion objects"
        )
    parts: list[tuple[int, str, bool]] = []  # (entry index, fragment, case-sensitive)
    entries: list[_Entry] = []
    for n, item in enumerate(items):
        where = f"criteria[{n}]"
        if not isinstance(item, dict):
            raise ResourceError(_FILE, where, "not an object", f"Use keys {list(_ENTRY_KEYS)}")
        for key in item:
            if key not in _ENTRY_KEYS:
                raise ResourceError(
                    _FILE, where, f"unknown key {key!r}", f"Allowed keys: {list(_ENTRY_KEYS)}"
                )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ResourceError(_FILE, where, "no 'name'", 'Give the standard\'s spelling, e.g. "RECIST"')
        where = f"criteria[{n}] ({name})"
        for flag in ("versioned", "long"):
            if not isinstance(item.get(flag, False), bool):
                raise ResourceError(_FILE, where, f"{flag!r} is not true/false", "Use a JSON boolean")
        entries.append(_Entry(name, bool(item.get("versioned", False)), bool(item.get("long", False))))
        for key in ("i", "cs"):
            fragments = item.get(key, [])
            if not isinstance(fragments, list):
                raise ResourceError(
                    _FILE, f"{where}, key {key!r}", "not a list", "Give a list of regex strings"
                )
            for fragment in fragments:
                check_fragment(fragment, _FILE, f"{where}, key {key!r}")
                parts.append((n, str(fragment), key == "cs"))
    if not parts:
        raise ResourceError(
            _FILE, "key 'criteria'", "no patterns", "Give at least one criterion with patterns"
        )
    # Longer fragments first, so "iRECIST"/"irRECIST" win over "RECIST" at one position.
    parts.sort(key=lambda p: -len(p[1]))
    # Not followed by a letter, except the "v" of a version run on ("RECISTv1.1", "CTCAEv4"); a digit may
    # follow ("RECIST1.1"). Either way the version is then read by _VERSION.
    alternation = Alternation([(src, cs) for _n, src, cs in parts], r"[\w-]", r"(?!(?![vV]\d)[^\W\d_])")
    return _Criteria(alternation, tuple(entries[n] for n, _src, _cs in parts))


@functools.cache
def _criteria() -> _Criteria:
    return parse_criteria(read_json_resource(_FILE))


def _normalise_version(version: str) -> str:
    return version if "." in version else f"{version}.0"


@functools.lru_cache(maxsize=8192)
def find_criteria(text: str) -> list[CriterionHit]:
    """Find the assessment standards a text names, in the spec's spellings, in order of first mention.

    Args:
        text: any text (an outcome's measure, description or time frame; a protocol).

    Returns:
        One hit per distinct name (its first mention), with offsets into ``text``; the span covers the
        version when one is written. A name without a version ("RECIST") is left out when the text also
        names that standard with one ("RECIST 1.1").
    """
    crit = _criteria()
    raw: list[tuple[_Entry, str, int, int]] = []
    for n, start, end in crit.alternation.finditer(text):
        entry = crit.entries[n]
        name = entry.name
        if entry.versioned:
            v = _VERSION.match(text, end)
            if v is not None:
                name = f"{name} {_normalise_version(v.group('v') or v.group('d'))}"
                end = v.end()
        raw.append((entry, name, start, end))
    if len(raw) == 1:
        # One mention has no acronym after it and nothing to merge with.
        return [CriterionHit(raw[0][1], raw[0][2], raw[0][3])]
    hits: list[CriterionHit] = []
    for k, (entry, name, start, end) in enumerate(raw):
        if entry.long and k + 1 < len(raw):
            nxt = raw[k + 1]
            # "Response Evaluation Criteria in Solid Tumors (RECIST 1.1)": the acronym that follows decides.
            gap = _BETWEEN_LONG_AND_ACRONYM.match(text, end)
            if not nxt[0].long and gap is not None and gap.end() >= nxt[2] and nxt[2] >= end:
                continue
        hits.append(CriterionHit(name, start, end))
    # Merging fewer than two hits changes nothing.
    return merge_criteria([hits]) if len(hits) > 1 else hits


def merge_criteria(hit_lists: Iterable[Iterable[CriterionHit]]) -> list[CriterionHit]:
    """Union of several texts' hits (e.g. measure, description, time frame), first mention kept.

    A name without a version is dropped when a versioned name of the same standard is present.

    Args:
        hit_lists: the hits of each text, in reading order.

    Returns:
        The deduplicated hits, in order.
    """
    seen: dict[str, CriterionHit] = {}
    for hits in hit_lists:
        for hit in hits:
            seen.setdefault(hit.name, hit)
    versioned_bases = {name.rsplit(" ", 1)[0] for name in seen if _has_version(name)}
    return [hit for name, hit in seen.items() if _has_version(name) or name not in versioned_bases]


def _has_version(name: str) -> bool:
    last = name.rsplit(" ", 1)[-1]
    return " " in name and last[:1].isdigit()
