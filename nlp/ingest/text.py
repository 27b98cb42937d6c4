"""Plain protocol text (a synopsis): the outcomes are found in the prose under their headings."""

from __future__ import annotations

import re
from typing import Final

from nlp.ingest.seed import looks_like_seed, study_from_seed
from nlp.study import Outcome, Study

FORMAT: Final = "text"

_ROLE_WORDS: Final = {
    "primary": "primary",
    "main": "primary",
    "secondary": "secondary",
    "other": "other",
    "exploratory": "other",
    "tertiary": "other",
    "additional": "other",
}
# "Primary Outcome Measure(s):", "Primary endpoint(s)", "Secondary objectives/endpoints", "PRIMARY ENDPOINTS",
# "Exploratory Efficacy Endpoints:", "2.1 Primary outcome" ...
_HEADING: Final = re.compile(
    r"""^[ \t]*(?:\#+[ \t]*)?(?:\d+(?:\.\d+)*\.?[ \t]+)?(?:\*\*)?
    (?P<role>primary|main|secondary|other|exploratory|tertiary|additional)[ \t]+
    (?:(?:efficacy|safety|study|clinical|pre-?specified)[ \t]+)?
    (?:outcome[ \t]+measures?|outcomes?|end[ \t-]?points?|objectives?|variables?|measures?)
    (?:\(s\))?
    (?:[ \t]*(?:/|and|&)[ \t]*(?:outcome[ \t]+measures?|outcomes?|end[ \t-]?points?|objectives?)(?:\(s\))?)?
    [ \t]*(?:\*\*)?[ \t]*(?:[:：.\-–—][ \t]*|$)(?:\*\*)?[ \t]*(?P<rest>.*)$""",
    re.IGNORECASE | re.VERBOSE,
)
_ITEM: Final = re.compile(r"^[ \t]*(?:\(?\d{1,2}[.)](?!\d)|\(?[a-z][.)]|[-*•·●▪◦‣–])[ \t]+", re.IGNORECASE)
# A line that starts some other section: short, ends with a colon (or is a markdown heading).
_OTHER_HEADING: Final = re.compile(r"^[ \t]*(?:\#+[ \t]+.*|[A-Z][^.:\n]{0,60}[:：][ \t]*)$")
_TIME_FRAME: Final = re.compile(
    r"(?P<open>[\[(])[ \t]*Time[ \t]*Frame[ \t]*[:：][ \t]*"
    r"|^[ \t]*Time[ \t]*Frame[ \t]*[:：][ \t]*(?P<tf2>.+)$",
    re.IGNORECASE | re.MULTILINE,
)
_CLOSE: Final = {"[": "]", "(": ")"}
_LINES: Final = re.compile(r"\r\n|\r|\n")


def _items(body: list[str]) -> list[list[str]]:
    """Group a section's lines into outcomes: list items with their continuation lines, else lines."""
    items: list[list[str]] = []
    if any(_ITEM.match(ln) for ln in body):
        for ln in body:
            if _ITEM.match(ln):
                items.append([_ITEM.sub("", ln, count=1).strip()])
            elif ln.strip() and items:
                items[-1].append(ln.strip())
            elif ln.strip():
                items.append([ln.strip()])
        return items
    for ln in body:
        if ln.strip():
            items.append([ln.strip()])
        elif items:
            break  # without list markers, the section is its first paragraph
    return items


def _closing(text: str, start: int, opener: str) -> int:
    """Index of the bracket closing ``opener`` (brackets inside the time frame nest), else the text's end."""
    closer, depth = _CLOSE[opener], 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == opener:
            depth += 1
        elif ch == closer:
            if depth == 0:
                return i
            depth -= 1
    return len(text)


def _outcome(role: str, lines: list[str]) -> Outcome | None:
    text = "\n".join(lines)
    time_frame = ""
    m = _TIME_FRAME.search(text)
    if m and m.group("tf2") is not None:
        time_frame = m.group("tf2").strip()
        text = (text[: m.start()] + text[m.end() :]).strip()
    elif m:
        end = _closing(text, m.end(), m.group("open"))
        time_frame = text[m.end() : end].strip()
        text = (text[: m.start()] + text[end + 1 :]).strip()
    head, _, rest = text.partition("\n")
    measure = head.strip().rstrip(":：").strip()
    if not measure:
        return None
    return Outcome(role, measure, rest.strip(), time_frame)


def find_outcomes(text: str) -> list[Outcome]:
    """Find the outcome measures a protocol synopsis states, in text order.

    Args:
        text: the protocol text.

    Returns:
        Outcomes under "Primary/Secondary/Other … outcome(s)/endpoint(s)/objective(s)" headings, one per
        list item (or line), with ``[Time Frame: …]`` taken out into ``time_frame``.
    """
    lines = _LINES.split(text)
    outcomes: list[Outcome] = []
    i = 0
    while i < len(lines):
        m = _HEADING.match(lines[i])
        if not m:
            i += 1
            continue
        role = _ROLE_WORDS[m.group("role").lower()]
        body = [m.group("rest")] if m.group("rest").strip() else []
        i += 1
        while i < len(lines) and not _HEADING.match(lines[i]):
            if _OTHER_HEADING.match(lines[i]) and not _ITEM.match(lines[i]) and body:
                break
            body.append(lines[i])
            i += 1
        for item in _items(body):
            outcome = _outcome(role, item)
            if outcome is not None:
                outcomes.append(outcome)
    return outcomes


def study_from_protocol(text: str, study_id: str) -> Study:
    """Read a protocol synopsis: title = first non-empty line, description = the text."""
    title = next((ln.strip() for ln in _LINES.split(text) if ln.strip()), "")
    return Study(
        id=study_id,
        source_format=FORMAT,
        title=title,
        detailed_description=text.strip(),
        outcomes=find_outcomes(text),
    )


def study_from_text(text: str, study_id: str) -> Study:
    """Read a seed record or a protocol synopsis, whichever ``text`` is."""
    text = text.lstrip("\ufeff")
    if looks_like_seed(text):
        return study_from_seed(text, study_id)
    return study_from_protocol(text, study_id)
