"""Study-design facts from prose: phases, escalation scheme, DLT window and rule, enrollment, cohort size.

The vocabulary (scheme names, patient nouns, enrollment verbs, exclusions) is data:
``resources/design.json``. Conventions follow the dev gold notes:

- phases: the registry's phases; prose phases only when the registry has none or only ``NA``.
- escalation: a named scheme; "modified" before a 3+3 name gives ``modified 3+3``; when accelerated
  titration is named with another scheme, it wins unless the text confines it to the first cohort(s) or
  stage; with no name, cohorts of 3-6 plus a count rule over 6 patients is a 3+3.
- dlt_rule: the tolerated count. "no more than 2 of 6" -> 2/6; "MTD is the dose preceding that at which
  2 of 6 have DLT" and "fewer than 2 of 6" -> 1/6; "6 or more of 12" -> 5/12; a 6-patient denominator
  is preferred when 3 and 6 are both given.
- enrollment: the planned total; stage or phase parts are summed; an open bound ("at least 6",
  "a minimum of 6") gives no enrollment; "up to N" and "a maximum of N" give (N, N); counts per dose
  level ("at each of", "at the 100 microgram dose") and fractions ("9 of 12 patients") are no enrollment.
- cohort_size: "cohorts of 3" with a count rule over 6 patients is 3-6 (the cohort expands on a DLT).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from nlp.endpoints import literal_prefixes
from nlp.errors import ResourceError
from nlp.resource_files import read_json_resource
from nlp.study import Outcome
from nlp.timeframes import parse_time_frame

_FILE: Final = "design.json"
_KEYS: Final = (
    "_doc",
    "schemes",
    "scheme_restricted",
    "patient_nouns",
    "number_words",
    "enroll_verbs",
    "enroll_exclude",
    "dlt_words",
    "window_words",
)
SCHEMES: Final = (
    "3+3",
    "modified 3+3",
    "BOIN",
    "CRM",
    "mTPI",
    "i3+3",
    "accelerated titration",
    "rolling six",
)
_PROSE_PHASE_FIELDS: Final = ("title", "official_title", "brief_summary", "detailed_description")

Evidence = tuple[str, int, int, str]

# Every match of the "N patients per level" cohort pattern ends in "per/each (dose) level/cohort/group/
# dose"; texts without that phrase are skipped before the pattern, whose leading number alternative the
# regex engine must try at every position (most of the design extractor's time on long descriptions).
_PER_LEVEL: Final = re.compile(r"(?:per|each)\s+(?:dose\s+)?(?:level|cohort|group|dose)", re.IGNORECASE)


@dataclass(slots=True)
class Design:
    """Design facts of one study; every value has an ``evidence`` entry (field, start, end, label).

    Registry phases carry no evidence (they are not prose); prose phases do.
    """

    phases: list[str] = field(default_factory=list)
    escalation: str | None = None
    dlt_window_days: float | None = None
    dlt_rule: tuple[int, int] | None = None
    enrollment: tuple[int | None, int | None] | None = None
    cohort_size: tuple[int, int] | None = None
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Vocab:
    schemes: tuple[tuple[str, re.Pattern[str]], ...]
    restricted: re.Pattern[str]
    numbers: dict[str, int]
    num: str
    noun: str
    enroll_mention: re.Pattern[str]
    min_max: re.Pattern[str]
    enroll_verb: re.Pattern[str]
    enroll_exclude: re.Pattern[str]
    dlt: re.Pattern[str]
    window_word: re.Pattern[str]
    fraction: re.Pattern[str]
    #: Cohort-size patterns, each with a cheap pattern every text holding one of its matches must match.
    cohort: tuple[tuple[re.Pattern[str], re.Pattern[str] | None], ...]
    cohort_33: re.Pattern[str]
    fraction_head: re.Pattern[str]


def _fail(where: str, problem: str, fix: str) -> ResourceError:
    return ResourceError(_FILE, where, problem, fix)


def _patterns(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(x, str) and x for x in value):
        raise _fail(
            f"key {key!r}", "missing or not a non-empty list of strings", "Give a list of regex fragments"
        )
    for frag in value:
        try:
            re.compile(frag)
        except re.error as exc:
            raise _fail(f"{key}: {frag!r}", f"invalid regex ({exc})", "Fix the fragment") from None
    return value


def _alt(frags: Sequence[str]) -> str:
    return "(?:" + "|".join(f"(?:{f})" for f in frags) + ")"


def parse_vocab(data: Any) -> _Vocab:
    """Validate decoded ``design.json`` and compile it.

    Args:
        data: the decoded JSON.

    Returns:
        The compiled vocabulary.

    Raises:
        ResourceError: on an unknown or missing key, an unknown scheme, a bad number word or regex.
    """
    if not isinstance(data, dict):
        raise _fail("top level", "not a JSON object", f"Use an object with keys {list(_KEYS)}")
    for key in data:
        if key not in _KEYS:
            raise _fail(f"key {key!r}", "unknown key", f"Allowed keys: {list(_KEYS)}")
    schemes_raw = data.get("schemes")
    if not isinstance(schemes_raw, dict) or not schemes_raw:
        raise _fail(
            "key 'schemes'", "missing or not an object", "Map scheme names to lists of regex fragments"
        )
    schemes: list[tuple[str, re.Pattern[str]]] = []
    for name, frags in schemes_raw.items():
        if name not in SCHEMES:
            raise _fail(f"schemes: {name!r}", "unknown scheme", f"Allowed schemes: {list(SCHEMES)}")
        pats = _patterns({name: frags}, name)
        schemes.append((name, re.compile(_alt(pats), re.IGNORECASE)))
    words = data.get("number_words")
    if not isinstance(words, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in words.items()
    ):
        raise _fail("key 'number_words'", "missing or not an object of word -> integer", 'e.g. {"six": 6}')
    numbers = {k.lower(): int(v) for k, v in words.items()}
    num = r"(?:\d{1,4}|" + "|".join(sorted(map(re.escape, numbers), key=len, reverse=True)) + r")"
    noun = _alt(_patterns(data, "patient_nouns"))
    restricted = _alt(_patterns(data, "scheme_restricted"))
    verbs = _alt(_patterns(data, "enroll_verbs"))
    exclude = _alt(_patterns(data, "enroll_exclude"))
    dlt = _alt(_patterns(data, "dlt_words"))
    window = _alt(_patterns(data, "window_words"))
    qual = (
        r"(?P<q>approximately|about|around|roughly|a total of|total of|up to|a maximum of|maximum of|"
        r"at most|no more than|not more than|a minimum of|minimum of|at least|"
        r"no less than|not less than|no fewer than|"
        r"as many as|~|≥|≤|>=|<=)"
    )
    rng = rf"(?P<a>{num})(?:\s*(?:-|–|—|to)\s*(?P<b>{num}))?"
    return _Vocab(
        schemes=tuple(schemes),
        restricted=re.compile(rf"\b{restricted}\b", re.IGNORECASE),
        numbers=numbers,
        num=num,
        noun=noun,
        enroll_mention=re.compile(
            rf"(?:{qual}\s*)?(?<![\d.,/×x^-]){rng}\s+(?:{_FILLER}[a-z][\w-]*\s+){{0,3}}?{noun}\b",
            re.IGNORECASE,
        ),
        min_max=re.compile(
            rf"minimum of\s+(?P<a>{num})(?:\s*(?:-|–|to)\s*{num})?\s+(?:{noun}\s+)?"
            rf"and\s+(?:a\s+)?maximum of\s+(?P<b>{num})",
            re.IGNORECASE,
        ),
        enroll_verb=re.compile(rf"\b{verbs}", re.IGNORECASE),
        enroll_exclude=re.compile(exclude, re.IGNORECASE),
        dlt=re.compile(rf"\b{dlt}", re.IGNORECASE),
        window_word=re.compile(rf"\b{window}|\bwithin\b|\bduring\b", re.IGNORECASE),
        fraction=re.compile(
            r"(?:(?P<q>no more than|not more than|at most|fewer than or equal to|less than or equal to|"
            r"fewer than|less than|more than|greater than|at least|≤|≥|<=|>=|<|>)\s*)?"
            rf"(?<![\d/.]){_NUM_G('n', num)}(?P<plus>\s*\+|\s+or more)?\s*(?:/|out of|of)\s*(?:the\s+)?"
            rf"(?:first\s+|initial\s+)?{_NUM_G('m', num)}(?![\d/.])"
            rf"(?:\s*(?:-|–|to|or)\s*{_NUM_G('m2', num)}(?![\d/.])(?!\s*(?:of|out of|/)\s))?",
            re.IGNORECASE,
        ),
        cohort=(
            (
                re.compile(
                    rf"\b(?:cohorts?|groups?)\s+of\s+(?:at least\s+)?{_NUM_G('a', num)}"
                    rf"(?:\s*(?:-|–|to|or)\s*{_NUM_G('b', num)})?"
                    r"(?![\d.,]|\s*(?:[x×*^]|10\b|dose|level|mg|µg|ug|g\b|%|cells|days?|weeks?))",
                    re.IGNORECASE,
                ),
                None,
            ),
            (
                re.compile(
                    rf"(?<![\d.,\-–])(?:(?:at least|a minimum of|minimum of)\s+)?{_NUM_G('a', num)}"
                    rf"(?:\s*(?:-|–|to)\s*{_NUM_G('b', num)})?\s+(?:[a-z-]+\s+){{0,2}}?{noun}\s+"
                    rf"(?:(?:are|is|will be|were|to be|would be|must be|planned to be|are planned to be)\s+)?"
                    rf"(?:\w+\s+){{0,3}}?(?:per|in each|at each|for each|to each|each)\s+(?:dose\s+)?"
                    rf"(?:level|cohort|group|dose)",
                    re.IGNORECASE,
                ),
                _PER_LEVEL,
            ),
        ),
        cohort_33=re.compile(
            rf"\b(?:3|three)\s+(?:additional|more|further|new|other)\s+{noun}|"
            rf"\b(?:expand\w*|increas\w*|extend\w*)\s+to\s+(?:(?:incorporate|include)\s+)?(?:a total of\s+)?"
            rf"(?:6|six)\s+{noun}|"
            rf"\b(?:6|six)\s+{noun}\s+(?:are|will be)\s+(?:entered|enrolled|treated)\s+"
            rf"at\s+(?:that|the same)\b|"
            rf"\b(?:3|three)\s+{noun}\s+(?:will be|are|is)\s+(?:added|enrolled in addition)",
            re.IGNORECASE,
        ),
        fraction_head=re.compile(
            rf"(?<![\w.]){num}\s*(?:of|out of|/)\s*(?:(?:the|these|those)\s+)?$", re.IGNORECASE
        ),
    )


#: Words that may not stand between a count and its patient noun ("10 percent of patients", "74 in subjects").
_FILLER: Final = r"(?!(?:percent|per|of|in|with|to|for|at|and|or|from|than|years?|months?|weeks?|days?)\b)"


def _NUM_G(name: str, num: str) -> str:
    return f"(?P<{name}>{num})"


@functools.cache
def _vocab() -> _Vocab:
    data = read_json_resource(_FILE)
    return parse_vocab(data)


# Prose phase names: "Phase l" (letter l for 1), "phase I/II", "Phase 1b/2", "Ib", "early phase 1".
_PHASE: Final = re.compile(
    r"\b(?P<early>early[- ])?phase\s*[-:]?\s*(?P<p1>0|[1-4]|iv|i{1,3}|l{1,3})(?:\s*[ab])?"
    r"(?:\s*(?:/|-|–|and|or|to|&)\s*(?:phase\s*)?(?P<p2>[1-4]|iv|i{1,3}|l{1,3})(?:\s*[ab])?)?"
    r"(?![\w.]\w)",
    re.IGNORECASE,
)
_PHASE_BARE: Final = re.compile(
    r"\b(?P<p1>I{1,3}|[1-3])[ab](?:\s*/\s*(?P<p2>I{1,3}|[1-3])[ab]?)?\s+(?:study|trial)\b"
)
_PHASE_DOSE: Final = re.compile(
    r"\s*(?:\(|-)?\s*(?:recommended\s+)?(?:dose|RP2D|portion of the dose)", re.IGNORECASE
)
_SELF: Final = re.compile(
    r"\b(?:this|a|an|the present|the current|our)\s+(?:[\w-]+,?\s+){0,4}$", re.IGNORECASE
)
_STUDY_AFTER: Final = re.compile(r"[^.;]{0,80}?\b(?:study|trial|protocol|investigation)\b", re.IGNORECASE)
_PHASE_NUM: Final = {"0": "EARLY_PHASE1", "1": "PHASE1", "2": "PHASE2", "3": "PHASE3", "4": "PHASE4"}
_ROMAN: Final = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "l": "1", "ll": "2", "lll": "3"}


def _phase_name(raw: str | None) -> str | None:
    if not raw:
        return None
    key = raw.lower()
    return _PHASE_NUM.get(_ROMAN.get(key, key))


def _prose_phases(texts: Sequence[tuple[str, str]]) -> tuple[list[str], list[Evidence]]:
    for name, text in texts:
        if name not in _PROSE_PHASE_FIELDS:
            continue
        found: list[str] = []
        ev: list[Evidence] = []
        for m in _PHASE.finditer(text):
            if re.search(
                r"\bnot\s+(?:an?\s+)?(?:[\w-]+\s+){0,2}$", text[max(0, m.start() - 30) : m.start()], re.I
            ):
                continue  # "not an NIH-defined Phase III trial"
            if _PHASE_DOSE.match(text, m.end()) or re.search(
                r"recommended\s*$", text[max(0, m.start() - 15) : m.start()], re.I
            ):
                continue
            # Beyond the titles, only the study naming itself ("This is a Phase l, Open-Label ... Study"),
            # not earlier trials or the "phase II portion" of a protocol.
            if name not in ("title", "official_title") and not (
                _SELF.search(text[max(0, m.start() - 40) : m.start()]) and _STUDY_AFTER.match(text, m.end())
            ):
                continue
            early = bool(m.group("early"))
            for g in ("p1", "p2"):
                ph = _phase_name(m.group(g))
                if ph is None:
                    continue
                if early and ph == "PHASE1" and g == "p1":
                    ph = "EARLY_PHASE1"
                if ph not in found:
                    found.append(ph)
                ev.append((name, m.start(), m.end(), f"phase:{ph}"))
        for m in _PHASE_BARE.finditer(text):
            for g in ("p1", "p2"):
                ph = _phase_name(m.group(g))
                if ph is not None and ph not in found:
                    found.append(ph)
                    ev.append((name, m.start(), m.end(), f"phase:{ph}"))
        if found:
            return sorted(found), ev
    return [], []


def _phases(texts: Sequence[tuple[str, str]], registry: Sequence[str]) -> tuple[list[str], list[Evidence]]:
    real = [p for p in registry if p and p != "NA"]
    if real:
        return sorted(dict.fromkeys(real)), []
    prose, ev = _prose_phases(texts)
    if prose:
        return prose, ev
    return (["NA"] if "NA" in registry else []), []


_MODIFIED: Final = re.compile(r"\bmodified\W{0,3}$", re.IGNORECASE)


@functools.cache
def _scheme_prefixes(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lower-cased literal prefixes one of which starts every match of ``pattern`` (None: unknown)."""
    prefixes = literal_prefixes(pattern)
    if prefixes is None or not all(p.isascii() for p in prefixes):
        return None
    return tuple(sorted({p.lower() for p in prefixes}))


def _escalation(v: _Vocab, texts: Sequence[tuple[str, str]]) -> tuple[str | None, Evidence | None]:
    hits: list[tuple[str, str, int, int, bool]] = []  # scheme, field, start, end, restricted
    for name, text in texts:
        found: list[tuple[int, int, str, bool]] = []
        low = text.lower() if text.isascii() else None
        for scheme, pat in v.schemes:
            needed = _scheme_prefixes(pat)
            # Every match starts with one of the pattern's literal prefixes; for ASCII text a case-
            # insensitive match means the lower-cased prefix occurs in the lower-cased text.
            if low is not None and needed is not None and not any(p in low for p in needed):
                continue
            for m in pat.finditer(text):
                if scheme == "3+3" and any(s <= m.start() < e for s, e, _, _ in found):
                    continue  # the 3+3 inside "i3+3"
                label, start = scheme, m.start()
                mod = _MODIFIED.search(text[max(0, m.start() - 14) : m.start()]) if scheme == "3+3" else None
                if mod is not None:
                    label, start = "modified 3+3", max(0, m.start() - 14) + mod.start()
                restricted = False
                if scheme == "accelerated titration":
                    before = text[max(0, m.start() - 70) : m.start()]
                    after = text[m.end() : m.end() + 45]
                    restricted = bool(v.restricted.search(before[before.rfind(".") + 1 :])) or bool(
                        re.match(r"[^.;]{0,25}\b(?:first|initial|1st|lower|low|starting)\b", after, re.I)
                    )
                found.append((start, m.end(), label, restricted))
        for s, e, label, restricted in sorted(found):
            hits.append((label, name, s, e, restricted))
    if not hits:
        return None, None
    names = list(dict.fromkeys(h[0] for h in hits))
    if "modified 3+3" in names and "3+3" in names:
        names.remove("3+3")
    chosen = names[0]
    if chosen == "accelerated titration" and len(names) > 1 and any(h[4] for h in hits if h[0] == chosen):
        chosen = names[1]
    h = next(h for h in hits if h[0] == chosen)
    return chosen, (h[1], h[2], h[3], f"escalation:{chosen}")


def _int(v: _Vocab, raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.lower()
    if raw.isdigit():
        return int(raw)
    return v.numbers.get(raw)


_SENT: Final = re.compile(r"[^.;\n]*(?:\.(?=\d)[^.;\n]*)*[.;\n]?")


def _sentences(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in _SENT.finditer(text):
        if m.end() > m.start():
            out.append((m.start(), m.end()))
    return out


def _sentence_around(text: str, pos: int) -> tuple[int, int]:
    lo = max(text.rfind(". ", 0, pos), text.rfind("\n", 0, pos)) + 1
    ends = [i for i in (text.find(". ", pos), text.find("\n", pos)) if i >= 0]
    return lo, min(ends) if ends else len(text)


_RULE_CONTEXT: Final = re.compile(
    r"\bMTD\b|maximum(?:ly)? tolerated|toxicit|\bDLT|escalat|\bdose level", re.IGNORECASE
)


def _dlt_rule(v: _Vocab, texts: Sequence[tuple[str, str]]) -> tuple[tuple[int, int] | None, Evidence | None]:
    cands: list[tuple[int, int, str, int, int]] = []
    for name, text in texts:
        for s, e in _sentences(text):
            sent = text[s:e]
            if not _RULE_CONTEXT.search(sent):
                continue
            for m in v.fraction.finditer(sent):
                n, total, total2 = _int(v, m.group("n")), _int(v, m.group("m")), _int(v, m.group("m2"))
                if total is not None and total2 is not None and total <= 6 <= total2:
                    total = 6  # "2 of 3-6", "2 of 3 or 6": the full cohort is the denominator
                if n is None or total is None or total < 2 or total > 20 or n > total:
                    continue
                slash = "/" in m.group(0)
                q = (m.group("q") or "").lower()
                tail = sent[m.end() : m.end() + 40].lower()
                if not slash and not re.match(r"\s*(?:\w+[- ]?){0,3}", tail):
                    continue
                if slash and not q and not v.dlt.search(sent):
                    continue
                if m.group("plus") or q in ("at least", "≥", ">="):
                    tolerated = n - 1
                elif q in (
                    "no more than",
                    "not more than",
                    "at most",
                    "≤",
                    "<=",
                    "fewer than or equal to",
                    "less than or equal to",
                ):
                    tolerated = n
                elif q in ("fewer than", "less than", "<"):
                    tolerated = n - 1
                elif q in ("more than", "greater than", ">"):
                    tolerated = n
                elif n >= 2:
                    tolerated = n - 1
                else:
                    continue  # "1 of 3 patients has a DLT" is 3+3 mechanics, not the rule
                if tolerated < 0:
                    continue
                cands.append((tolerated, total, name, s + m.start(), s + m.end()))
    if not cands:
        return None, None
    best = next((c for c in cands if c[1] == 6), cands[0])
    return (best[0], best[1]), (best[2], best[3], best[4], f"dlt_rule:{best[0]}/{best[1]}")


_TIME: Final = re.compile(
    r"(?P<n>\d{1,3})(?:\s*(?:-|–|to)\s*(?P<n2>\d{1,3}))?[\s-]*(?P<u>days?|weeks?|wks?|months?)\b",
    re.IGNORECASE,
)
_DAY_RANGE: Final = re.compile(r"\bday\s*1\s*(?:to|through|-|–)\s*day\s*(?P<n>\d{1,3})\b", re.IGNORECASE)
_OBSERVED_BEFORE: Final = re.compile(
    r"(?:observed|followed|evaluated|monitored|receive[sd]?)\s+(?:for\s+)?(?:at least\s+|a minimum of\s+)?"
    r"(?P<n>\d{1,3}|one|two|three|four|six)\s+(?P<u>days?|weeks?)\s+(?:[a-z]+\s+){0,4}?before\s+"
    r"(?:dose\s+)?(?:escalat\w*|the next|proceed\w*|enrol\w*|subsequent|a higher)",
    re.IGNORECASE,
)
_OUTCOME_WINDOW: Final = re.compile(
    r"\bwithin\s+(?P<n>\d{1,3})\s*(?P<u>days?|weeks?)\s+(?:after|of|following|from)\b", re.IGNORECASE
)
_PERIOD: Final = re.compile(
    r"(?P<n>\d{1,3})[- ](?P<u>days?|weeks?)\s+(?:DLT\s+|safety\s+|toxicity\s+)?"
    r"(?:evaluation|observation|assessment)\s+(?:period|window)",
    re.IGNORECASE,
)
_FIRST_CYCLE: Final = re.compile(
    r"\b(?:first|1st|initial)\s+(?:treatment\s+)?(?:cycle|course)\b|\b(?:cycle|course)\s*(?:1|one)\b",
    re.IGNORECASE,
)
_CYCLE_LEN: Final = re.compile(
    r"\b(?:courses|cycles)\s+(?:repeat|are repeated|recur)\s+every\s+(?P<n>\d{1,3})\s+(?P<u>days?|weeks?)"
    r"|(?P<n2>\d{1,3})[- ](?P<u2>days?|weeks?)\s+(?:treatment\s+)?(?:cycles?|courses?)\b",
    re.IGNORECASE,
)
_UNIT_DAYS: Final = {"d": 1.0, "w": 7.0, "m": 30.4375}
_WORD_N: Final = {"one": 1, "two": 2, "three": 3, "four": 4, "six": 6}
_NOT_WINDOW: Final = re.compile(r"every\s*$|\bq\s*$", re.IGNORECASE)


def _unit_days(u: str) -> float:
    return _UNIT_DAYS[u[0].lower()]


def _dlt_window(
    v: _Vocab, texts: Sequence[tuple[str, str]], outcomes: Sequence[Outcome]
) -> tuple[float | None, Evidence | None]:
    for name, text in texts:
        for m in _OBSERVED_BEFORE.finditer(text):
            raw = m.group("n").lower()
            n = float(_WORD_N.get(raw, 0) or raw)
            days = n * _unit_days(m.group("u"))
            return days, (name, m.start(), m.end(), f"dlt_window:{days:g} days")
        for m in _PERIOD.finditer(text):
            # "a 6-week evaluation period" is the DLT window only in a dose-finding sentence.
            lo, hi = _sentence_around(text, m.start())
            if not _RULE_CONTEXT.search(text[lo:hi]):
                continue
            days = float(m.group("n")) * _unit_days(m.group("u"))
            return days, (name, m.start(), m.end(), f"dlt_window:{days:g} days")
        for s, e in _sentences(text):
            sent = text[s:e]
            dm = v.dlt.search(sent)
            if dm is None or not v.window_word.search(sent):
                continue
            r = _DAY_RANGE.search(sent)
            if r is not None:
                days = float(r.group("n"))
                return days, (name, s + r.start(), s + r.end(), f"dlt_window:{days:g} days")
            best: tuple[float, int, int] | None = None
            for t in _TIME.finditer(sent):
                if _NOT_WINDOW.search(sent[max(0, t.start() - 8) : t.start()]):
                    continue
                n = float(t.group("n2") or t.group("n"))
                days = n * _unit_days(t.group("u"))
                # The nearest time to the DLT word is the window ("21 days of DLT observation").
                dist = min(abs(t.start() - dm.start()), abs(dm.start() - t.end()))
                if best is None or dist < abs(best[1] - dm.start()):
                    best = (days, t.start(), t.end())
            if best is not None:
                return best[0], (name, s + best[1], s + best[2], f"dlt_window:{best[0]:g} days")
            if _FIRST_CYCLE.search(sent):
                # "DLT during course 1" with "courses repeat every 56 days": the window is one cycle.
                for fname, ftext in texts:
                    c = _CYCLE_LEN.search(ftext)
                    if c is not None:
                        n = float(c.group("n") or c.group("n2"))
                        days = n * _unit_days(c.group("u") or c.group("u2"))
                        return days, (fname, c.start(), c.end(), f"dlt_window:{days:g} days")
    for i, o in enumerate(outcomes):
        if not (v.dlt.search(o.measure or "") or v.dlt.search(o.description or "")):
            continue
        if not v.dlt.search(o.measure or ""):
            continue
        # Only an outcome that itself states the DLT window ("DLTs within 28 days after the first
        # infusion"): a DLT outcome's time frame alone is often the whole cycle or study follow-up.
        w = _OUTCOME_WINDOW.search(o.description or "")
        if w is None:
            continue
        timing = parse_time_frame(o.time_frame or "")
        stated = float(w.group("n")) * _unit_days(w.group("u"))
        if timing.horizon_days is not None and abs(timing.horizon_days - stated) < 0.5:
            span = timing.horizon_span or (0, len(o.time_frame))
            days = timing.horizon_days
            return days, (f"outcomes[{i}].time_frame", span[0], span[1], f"dlt_window:{days:g} days")
    return None, None


def _cohort(v: _Vocab, texts: Sequence[tuple[str, str]]) -> tuple[tuple[int, int] | None, Evidence | None]:
    for name, text in texts:
        for pat, needed in v.cohort:
            if needed is not None and needed.search(text) is None:
                continue
            for m in pat.finditer(text):
                a, b = _int(v, m.group("a")), _int(v, m.group("b"))
                if a is None or a == 0 or a > 30 or (b is not None and (b < a or b > 30)):
                    continue
                before = text[max(0, m.start() - 16) : m.start()].lower()
                if re.search(r"first\s*$|next\s*$|additional\s*$", before):
                    continue
                if re.search(r"(?:least|minimum of|no less than|not less than|no fewer than)\s*$", before):
                    continue
                val = (a, b if b is not None else a)
                if val == (3, 3) and v.cohort_33.search(text, m.end()):
                    val = (3, 6)  # "cohorts of 3 patients ... 3 additional patients": a 3+3 cohort
                return val, (name, m.start(), m.end(), f"cohort_size:{val[0]}-{val[1]}")
    for name, text in texts:
        m33 = v.cohort_33.search(text)
        if m33 is not None:
            pre = text[max(0, m33.start() - 400) : m33.start()]
            if re.search(r"\b(?:3|three)\s+(?:patients?|subjects?|participants?)\b", pre, re.I):
                return (3, 6), (name, m33.start(), m33.end(), "cohort_size:3-6")
    return None, None


_ACCRUAL: Final = re.compile(r"PROJECTED ACCRUAL\s*:?", re.IGNORECASE)
_HEADING: Final = re.compile(r"\n\s*[A-Z][A-Z /]{3,}:|\b(?:RATIONALE|PURPOSE|OBJECTIVES|OUTLINE)\s*:")
_OPEN: Final = (
    "a minimum of",
    "minimum of",
    "at least",
    "no less than",
    "not less than",
    "no fewer than",
    "≥",
    ">=",
)
_PART: Final = re.compile(
    r"\bphase\s*(?:i{1,3}|[1-3])[ab]?\b|\bstage\b|\bpart\b|\bportion\b|\bescalation\b|\bexpansion\b|\bstep\b",
    re.IGNORECASE,
)
_TOTAL: Final = re.compile(
    r"\btotal\b|\b(?:this|the) (?:study|trial)\b|\boverall\b|\bin all\b", re.IGNORECASE
)


def _excluded(v: _Vocab, sent: str, ms: Sequence[re.Match[str]], k: int) -> bool:
    """Whether a cue near count ``k`` makes it a cohort, subgroup or rate rather than an enrollment.

    The context stops at the neighbouring counts, and a cue right before the next count is that count's
    ("approximately 27 patients will be accrued at a rate of 15 patients per year").
    """
    m = ms[k]
    if v.enroll_exclude.search(m.group(0)):
        return True
    lo = max(m.start() - 30, ms[k - 1].end() if k else 0)
    nxt = ms[k + 1].start() if k + 1 < len(ms) else None
    hi = min(m.end() + 45, nxt if nxt is not None else len(sent))
    for x in v.enroll_exclude.finditer(sent, lo, hi):
        if nxt is not None and not sent[x.end() : nxt].strip():
            continue
        return True
    return False


def _enrollment(
    v: _Vocab, texts: Sequence[tuple[str, str]]
) -> tuple[tuple[int | None, int | None] | None, Evidence | None]:
    scopes: list[tuple[str, str, int, int]] = []
    for name, text in texts:
        am = _ACCRUAL.search(text)
        if am is not None:
            hm = _HEADING.search(text, am.end())
            scopes = [(name, text, am.end(), hm.start() if hm else len(text))]
            break
    if not scopes:
        scopes = [(n, t, 0, len(t)) for n, t in texts if not n.endswith(".label") and n != "title"]
    for name, text, lo, hi in scopes:
        found: list[tuple[int, int, int | None, int | None, bool, bool, bool]] = []
        for s, e in _sentences(text[lo:hi]):
            s, e = s + lo, e + lo
            sent = text[s:e]
            mm = v.min_max.search(sent)
            if mm is not None:
                a, b = _int(v, mm.group("a")), _int(v, mm.group("b"))
                found.append((s + mm.start(), s + mm.end(), a, b, False, bool(_PART.search(sent)), False))
                continue
            if not v.enroll_verb.search(sent):
                continue
            ms = list(v.enroll_mention.finditer(sent))
            for k, m in enumerate(ms):
                a, b = _int(v, m.group("a")), _int(v, m.group("b"))
                if (
                    a is None
                    or (b is not None and b < a)
                    or max(a, b or 0) > 100000
                    or (b is None and a <= 6 and not m.group("q"))
                ):
                    continue
                if _excluded(v, sent, ms, k):
                    continue
                if re.search(
                    r"\b(?:first|next|last|remaining|initial)\s*$",
                    sent[max(0, m.start() - 12) : m.start()],
                    re.I,
                ) or v.fraction_head.search(sent, max(0, m.start() - 24), m.start()):
                    continue  # "the first 3 patients"; "DLT in 9 of 12 patients" is a fraction, not a count
                seg_lo = ms[k - 1].end() if k else 0
                seg_hi = ms[k + 1].start() if k + 1 < len(ms) else len(sent)
                seg = sent[seg_lo:seg_hi]
                q = (m.group("q") or "").lower()
                found.append(
                    (
                        s + m.start(),
                        s + m.end(),
                        a,
                        b,
                        q in _OPEN,
                        bool(_PART.search(seg)),
                        bool(_TOTAL.search(seg)),
                    )
                )
        if not found:
            continue
        total = [f for f in found if f[6] and not f[5]]
        use = (
            [total[0]] if total else ([f for f in found if f[5]] if all(f[5] for f in found) else [found[0]])
        )
        if any(f[4] for f in use):
            return None, None
        lo_sum = sum(f[2] or 0 for f in use)
        hi_sum = sum((f[3] if f[3] is not None else f[2]) or 0 for f in use)
        val: tuple[int | None, int | None] = (lo_sum, hi_sum)
        return val, (name, use[0][0], use[-1][1], f"enrollment:{val[0]}-{val[1]}")
    return None, None


def extract_design(
    texts: Sequence[tuple[str, str]], registry_phases: Sequence[str], outcomes: Sequence[Outcome]
) -> Design:
    """Read the design facts of one study.

    Args:
        texts: the study's prose as ``(field, text)`` pairs (``nlp.study.study_texts``).
        registry_phases: the registry's phases (registry spelling), possibly empty or ``["NA"]``.
        outcomes: the study's outcomes; a DLT outcome's time frame gives the DLT window when the prose
            states none.

    Returns:
        The Design; never raises on any input.
    """
    v = _vocab()
    texts = [(n, t) for n, t in texts if isinstance(t, str) and t]
    d = Design()
    try:
        d.phases, ev = _phases(texts, [p for p in registry_phases if isinstance(p, str)])
        d.evidence.extend(ev)
    except Exception:  # a design fact must never break a whole study
        d.phases = []
    steps = (
        ("escalation", lambda: _escalation(v, texts)),
        ("dlt_window_days", lambda: _dlt_window(v, texts, outcomes)),
        ("dlt_rule", lambda: _dlt_rule(v, texts)),
        ("enrollment", lambda: _enrollment(v, texts)),
        ("cohort_size", lambda: _cohort(v, texts)),
    )
    for attr, step in steps:
        try:
            value, evidence = step()
        except Exception:
            continue
        if value is not None and evidence is not None:
            setattr(d, attr, value)
            d.evidence.append(evidence)
    with contextlib.suppress(Exception):
        _infer(v, texts, d)
    return d


_BARE_RULE: Final = re.compile(
    r"(?P<q>no more than|not more than|at most|fewer than|less than)\s+(?P<n>\d|one|two|three)\s+"
    r"(?:patients?|subjects?|participants?)?\s*(?:\w+\s+){0,4}?(?:experiences?|has|have|develops?|with)\s+"
    r"(?:a\s+)?(?:DLT|dose[- ]limiting)",
    re.IGNORECASE,
)
_ESCALATING: Final = re.compile(r"\bescalat|\bdose[- ]finding|\bincreas\w* dose", re.IGNORECASE)


def _infer(v: _Vocab, texts: Sequence[tuple[str, str]], d: Design) -> None:
    """Fill what follows from the facts already read: a count rule without a denominator, an unnamed 3+3."""
    if d.dlt_rule is None and d.cohort_size is not None:
        for name, text in texts:
            m = _BARE_RULE.search(text)
            if m is None:
                continue
            n = _int(v, m.group("n"))
            if n is None:
                continue
            tolerated = n - 1 if m.group("q").lower() in ("fewer than", "less than") else n
            of = d.cohort_size[1]
            if 0 <= tolerated < of:
                d.dlt_rule = (tolerated, of)
                d.evidence.append((name, m.start(), m.end(), f"dlt_rule:{tolerated}/{of}"))
            break
    if d.cohort_size == (3, 3) and d.dlt_rule is not None and d.dlt_rule[1] == 6:
        # "Cohorts of 3 patients" with a rule over 6 patients: the cohort is expanded to 6 on a DLT.
        d.cohort_size = (3, 6)
        d.evidence = [
            (*e[:3], "cohort_size:3-6") if e[3].startswith("cohort_size:") else e for e in d.evidence
        ]
    if (
        d.escalation is None
        and d.cohort_size == (3, 6)
        and d.dlt_rule is not None
        and d.dlt_rule[1] in (3, 6)
    ):
        # Cohorts of 3-6 with a count rule over 3 or 6 patients is a 3+3 even when unnamed; the cohort
        # phrase is its evidence.
        cohort_ev = next((e for e in d.evidence if e[3].startswith("cohort_size:")), None)
        if cohort_ev is not None and any(_ESCALATING.search(t) for _, t in texts):
            d.escalation = "3+3"
            d.evidence.append((*cohort_ev[:3], "escalation:3+3"))
