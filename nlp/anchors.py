"""What an outcome's times count from: anchor phrases in time frames, measures and descriptions.

The phrase lists live in ``resources/anchors.json``. A time frame names its anchor with bare words
("post-transplant", "Baseline to Week 12"); in a measure or a description the same words often appear
without anchoring anything ("adverse events of the treatment"), so there only the stricter ``context``
phrases count ("change from baseline", "from the first dose", "after the last dose").
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any

from nlp.endpoints import Prefiltered
from nlp.errors import ResourceError
from nlp.types import ANCHORS, Anchor

_RESOURCE = "anchors.json"
_FIELDS = ("time_frame", "context")
_ALLOWED_KEYS = ("_comment", "time_frame", "context", "after_unknown")

# A connector right before a time-frame anchor belongs to its words ("after the first infusion").
_LEAD_IN = re.compile(
    r"\b(?:after|following|from|since|post|before|prior\s+to|of)\s+(?:the\s+)?(?:[\w-]+\s+){0,3}$"
)
# Letters outside escapes (\s, \w, \b ...): patterns must be lower case since the text is lower-cased.
_UPPER = re.compile(r"(?<!\\)[A-Z]")


@dataclass(frozen=True, slots=True)
class _Rules:
    time_frame: re.Pattern[str]
    context: re.Pattern[str]
    after_unknown: re.Pattern[str]
    kinds: tuple[str, ...]
    #: ``context.search``, tried only where a phrase's first letters occur. The measure and description
    #: scans (when the time frame names no anchor) were the cost of resolve_anchor; the time-frame
    #: phrases have ~100 prefixes, and prefiltering them measured slower than the plain search.
    context_search: Prefiltered


def _fail(where: str, problem: str, fix: str) -> ResourceError:
    return ResourceError(f"nlp/resources/{_RESOURCE}", where, problem, fix)


def _compile_kinds(table: Any, where: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    if not isinstance(table, dict):
        raise _fail(where, "is not an object", "Map each anchor kind to a list of regexes")
    parts: list[str] = []
    kinds: list[str] = []
    # Kinds are tried in the file's order at one position, so specific phrases ("last dose") go first.
    for kind, patterns in table.items():
        if kind not in ANCHORS:
            raise _fail(f"{where}.{kind}", "unknown anchor kind", f"Use one of: {', '.join(ANCHORS)}")
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise _fail(f"{where}.{kind}", "is not a list of non-empty strings", "Write a list of regexes")
        for i, pattern in enumerate(patterns):
            if _UPPER.search(pattern):
                raise _fail(f"{where}.{kind}[{i}]", "has an upper-case letter", "Write it in lower case")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _fail(
                    f"{where}.{kind}[{i}]", f"bad regex ({exc})", "Fix the regular expression"
                ) from exc
        group = f"k{len(kinds)}"
        kinds.append(kind)
        parts.append(f"(?P<{group}>" + "|".join(f"(?:{p})" for p in patterns) + ")")
    body = "|".join(parts) or "(?!)"
    # Tried only where a word starts: far fewer attempts than at every character.
    return re.compile(rf"(?<![a-z0-9])(?=[a-z])(?:{body})(?![a-z0-9])"), tuple(kinds)


@functools.cache
def _rules() -> _Rules:
    path = importlib.resources.files("nlp") / "resources" / _RESOURCE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(
            "whole file", f"cannot be read as JSON ({exc})", "Restore the file from the repository"
        ) from exc
    if not isinstance(data, dict):
        raise _fail("whole file", "is not a JSON object", f"Use the keys {', '.join(_ALLOWED_KEYS)}")
    for key in data:
        if key not in _ALLOWED_KEYS:
            raise _fail(key, "unknown key", f"Allowed keys: {', '.join(_ALLOWED_KEYS)}")
    for key in _ALLOWED_KEYS[1:]:
        if key not in data:
            raise _fail(key, "missing", f"Add the key {key!r}")
    tf, tf_kinds = _compile_kinds(data["time_frame"], "time_frame")
    ctx, ctx_kinds = _compile_kinds(data["context"], "context")
    if tf_kinds != ctx_kinds:
        raise _fail(
            "context", "lists other kinds, or another order, than time_frame", "List the same kinds in order"
        )
    try:
        after = re.compile(data["after_unknown"])
    except (re.error, TypeError) as exc:
        raise _fail("after_unknown", f"bad regex ({exc})", "Fix the regular expression") from exc
    return _Rules(tf, ctx, after, tf_kinds, Prefiltered(ctx))


def lower(text: str) -> str:
    """``text`` lower-cased with its length kept, so offsets into it are offsets into ``text``."""
    low = text.lower()
    if len(low) == len(text):
        return low
    # A few characters grow when lower-cased ("İ"); keep those as they are.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _anchor(text: str, m: re.Match[str], field: str) -> Anchor:
    rules = _rules()
    group = m.lastgroup or "k0"
    kind = rules.kinds[int(group[1:])]
    start = m.start()
    if field == "time_frame":
        lead = _LEAD_IN.search(m.string, max(0, start - 40), start)
        if lead is not None:
            start = lead.start()
    return Anchor(kind, text[start : m.end()], start, m.end(), field)


def anchor_matches(text: str, field: str = "time_frame", low: str | None = None) -> list[Anchor]:
    """Every anchor phrase in ``text``, left to right (overlaps resolved leftmost, then by kind order).

    Args:
        text: the text to search.
        field: ``"time_frame"`` for the loose time-frame phrases; any other field name uses the strict
            context phrases and is recorded as the anchors' field.
        low: ``lower(text)`` when the caller has it already.

    Returns:
        The anchors found, with offsets into ``text``.
    """
    rules = _rules()
    pattern = rules.time_frame if field == "time_frame" else rules.context
    low = lower(text) if low is None else low
    return [_anchor(text, m, field) for m in pattern.finditer(low)]


def next_anchor(text: str, low: str, pos: int = 0) -> Anchor | None:
    """The first time-frame anchor phrase starting at or after ``pos`` (``low`` is ``lower(text)``)."""
    m = _rules().time_frame.search(low, pos)
    return None if m is None else _anchor(text, m, "time_frame")


def after_unknown(low: str, pos: int) -> re.Match[str] | None:
    """An "after <something>" phrase starting at ``pos`` of lower-cased text (an anchor no phrase names)."""
    return _rules().after_unknown.match(low, pos)


def find_anchor(text: str, field: str) -> Anchor | None:
    """The anchor ``text`` names: the first anchor phrase in it.

    Args:
        text: a time frame, a measure or a description.
        field: which of them ``text`` is (``"time_frame"``, ``"measure"``, ``"description"``); measures
            and descriptions are read with the strict context phrases.

    Returns:
        The anchor, or ``None`` when ``text`` names none.
    """
    if not text:
        return None
    rules = _rules()
    search = rules.time_frame.search if field == "time_frame" else rules.context_search.search
    m = search(lower(text))
    return None if m is None else _anchor(text, m, field)


def resolve_anchor(time_frame: str, measure: str, description: str) -> Anchor | None:
    """The anchor of an outcome: read from the time frame, else the measure, else the description.

    Args:
        time_frame: the outcome's time frame.
        measure: the outcome's measure (title).
        description: the outcome's description.

    Returns:
        The anchor (``Anchor.field`` says which text it came from), or ``None``.
    """
    from nlp.timeframes import parse_time_frame  # local: timeframes imports this module

    anchor = parse_time_frame(time_frame or "").anchor
    if anchor is not None:
        return anchor
    return find_anchor(measure or "", "measure") or find_anchor(description or "", "description")
