"""Time-frame parsing: points, cycles, horizon, interval and anchor of one outcome time frame.

``parse_time_frame("At 28 days, 3 months, 6 months and 12 months after CAR-T cell infusion")`` gives
points 28 day, 3/6/12 month, horizon 365.25 days and the anchor ``treatment``. The conventions are the
spec's (``shared/spec/extraction.md``): every number with a time unit is a point except the interval
of "every N ..." and ages given as "aged N"; baseline, pre-dose, screening and day 0 are ``{0, day}``;
"Week 12" and "Day 28" are points; ranges and lists give every member; the horizon is the latest
assessment time.

Invariant: a horizon, when set, is the day count of one of the points. Two horizons do not come from
a plain number with a unit, and for them a point is emitted as well:
- "13 months of age", "120 days of life": an age, but one that fixes when the outcome is assessed
  (anchor ``other``, birth), so it is kept as a point and gives the horizon;
- "Cycle 25 Day 1 (each cycle = 21 days)": the cycle converted to days (505 day) when the cycle
  length is stated and the conversion is the latest time;
- "3 years 5 months", "2 years and 10 months": one duration in two parts, given as a point in the
  smaller unit (41 month) whose days are the sum.

The vocabulary (number words, unit spellings, zero phrases, ...) is in ``resources/timeframes.json``.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from nlp.anchors import after_unknown, lower, next_anchor
from nlp.errors import ResourceError
from nlp.types import DAYS_PER_UNIT, Anchor, CycleRef, Interval, TimePoint, Timing

_RESOURCE = "timeframes.json"
_KEYS: Final = (
    "_comment",
    "number_words",
    "fractions",
    "ordinals",
    "units",
    "interval_words",
    "zero_phrases",
    "label_words",
    "lookback_words",
    "non_horizon_context",
)

# Point flags: why a point is not a horizon candidate (or, for AGE, why it is one despite being an age).
_LOOKBACK: Final = 1
_NO_HORIZON: Final = 2
_AGE: Final = 4
_DAY_PREFIX: Final = 8


_UPPER = re.compile(r"(?<!\\)[A-Z]")


def _fail(where: str, problem: str, fix: str) -> ResourceError:
    return ResourceError(f"nlp/resources/{_RESOURCE}", where, problem, fix)


def _alt(words: list[str]) -> str:
    # Longest first so "months" wins over "mo" and "one hundred" over "one".
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(set(words), key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class _Vocab:
    numbers: dict[str, float]
    fractions: dict[str, float]
    ordinals: dict[str, int]
    unit_of: dict[str, str]
    interval_words: dict[str, tuple[float, str]]
    main: re.Pattern[str]
    simple: re.Pattern[str]
    num: re.Pattern[str]
    window: re.Pattern[str]
    paren: re.Pattern[str]
    label_before: re.Pattern[str]
    lookback_before: re.Pattern[str]
    unit_before: re.Pattern[str]
    age_after: re.Pattern[str]
    age_before: re.Pattern[str]
    non_horizon: re.Pattern[str]
    cycle_length: re.Pattern[str]


def _str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(key, "is not a list of non-empty strings", "Write a JSON list of strings")
    return value


def _num_table(data: dict[str, Any], key: str) -> dict[str, float]:
    value = data[key]
    if not isinstance(value, dict):
        raise _fail(key, "is not an object", "Map each word to a number")
    out: dict[str, float] = {}
    for word, num in value.items():
        if not isinstance(num, int | float) or isinstance(num, bool):
            raise _fail(f"{key}.{word}", f"value {num!r} is not a number", "Give a JSON number")
        out[word.lower()] = float(num)
    return out


@functools.cache
def _vocab() -> _Vocab:
    path = importlib.resources.files("nlp") / "resources" / _RESOURCE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(
            "whole file", f"cannot be read as JSON ({exc})", "Restore the file from the repository"
        ) from exc
    if not isinstance(data, dict):
        raise _fail("whole file", "is not a JSON object", f"Use the keys {', '.join(_KEYS)}")
    for key in data:
        if key not in _KEYS:
            raise _fail(key, "unknown key", f"Allowed keys: {', '.join(_KEYS)}")
    for key in _KEYS[1:]:
        if key not in data:
            raise _fail(key, "missing", f"Add the key {key!r}")

    numbers = _num_table(data, "number_words")
    fractions = _num_table(data, "fractions")
    ordinals = {k: int(v) for k, v in _num_table(data, "ordinals").items()}
    units = data["units"]
    if not isinstance(units, dict):
        raise _fail("units", "is not an object", "Map each unit to a list of spellings")
    unit_of: dict[str, str] = {}
    for unit, aliases in units.items():
        if unit not in DAYS_PER_UNIT:
            raise _fail(f"units.{unit}", "unknown unit", f"Use one of: {', '.join(DAYS_PER_UNIT)}")
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise _fail(f"units.{unit}", "is not a list of spellings", "Write a JSON list of strings")
        for alias in aliases:
            unit_of[alias.lower()] = unit
    interval_raw = data["interval_words"]
    if not isinstance(interval_raw, dict):
        raise _fail("interval_words", "is not an object", "Map each adverb to [value, unit]")
    interval_words: dict[str, tuple[float, str]] = {}
    for word, pair in interval_raw.items():
        ok = isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int | float)
        if not ok or pair[1] not in DAYS_PER_UNIT:
            raise _fail(f"interval_words.{word}", f"{pair!r} is not [value, unit]", 'Write e.g. [1, "week"]')
        interval_words[word.lower()] = (float(pair[0]), str(pair[1]))
    zero = _str_list(data, "zero_phrases")
    labels = _str_list(data, "label_words")
    lookback = _str_list(data, "lookback_words")
    non_horizon = _str_list(data, "non_horizon_context")
    for key, pats in (("zero_phrases", zero), ("non_horizon_context", non_horizon)):
        for i, p in enumerate(pats):
            try:
                re.compile(p)
            except re.error as exc:
                raise _fail(f"{key}[{i}]", f"bad regex ({exc})", "Fix the regular expression") from exc

    for key, pats in (("zero_phrases", zero), ("non_horizon_context", non_horizon)):
        for i, pat in enumerate(pats):
            if _UPPER.search(pat):
                raise _fail(f"{key}[{i}]", "has an upper-case letter", "Write it in lower case")

    tens = [w for w, v in numbers.items() if v >= 20 and v % 10 == 0 and v < 100]
    ones = [w for w, v in numbers.items() if 1 <= v <= 9]
    word_num = rf"(?:(?:{_alt(tens)})[\s-]+(?:{_alt(ones)})|{_alt(list(numbers))})"
    frac = _alt(list(fractions))
    # A number: digits or words, optionally "and a half"; "one-half" alone is a number too.
    num = (
        rf"(?:(?:\d+(?:\.\d+)?|\.\d+|(?<![a-z]){word_num}(?![a-z]))(?:\s+and\s+(?:{frac}))?(?![\w.]*\d)"
        rf"|(?<![\w-])(?:{frac})(?![\w-]))"
    )
    unit = rf"(?:{_alt(list(unit_of))})(?:\(s\))?(?![a-z])"
    prefix_units = [a for a in unit_of if len(a) > 2 or a in ("wk", "hr", "mo")]
    prefix_unit = rf"(?:{_alt(prefix_units)})"
    ords = rf"(?:{_alt(list(ordinals))}|\d+(?:st|nd|rd|th))"
    iv_words = _alt(list(interval_words))
    window = r"(?:±|\+/-|\+-|\+\s*or\s*-|plus\s+or\s+minus|plus/minus)"
    paren_window = rf"(?:\s*\(\s*{window}[^)]*\))"
    sep = (
        rf"{paren_window}?"
        r"(?:\s*(?:,|，|、|;|/|&|-|–|—|~|\bto\b|\band\b|\bor\b|\bthrough\b|\bthru\b|\btill\b|\buntil\b)\s*"
        r"(?:and\s+|or\s+|to\s+)?|\s+)"
    )
    psep = (
        r"(?:\s*\([^)]{0,40}\))?\s*(?:,|，|、|/|&|-|–|\bto\b|\band\b|\bor\b|\bthrough\b|\bthru\b|\btill\b|\buntil\b)"
        r"\s*(?:and\s+|or\s+)?"
    )
    not_unit = rf"(?!\s*-?\s*{unit})"
    cyc = r"(?:cycles?|courses?)"
    # A list of cycle or day numbers: "1, 2, and 5", "2-4"; no number that a time unit follows ("6, 0 hours").
    nlist = (
        r"\d+(?!\.?\d)(?:\s*(?:,\s*(?:and\s+|&\s*)?|and\s+|&\s*|-\s*|–\s*|to\s+|through\s+)\d+(?!\.?\d)"
        rf"{not_unit})*"
    )
    lookback_words = _alt(lookback)
    alternatives = [
        # Cycle 2 Day 1, C1D1, Cycle (C) 1 Day (D) 1
        rf"(?P<cd>(?<![a-z])(?:{cyc}|c)\s*(?:\(c\)\s*)?(?P<cd_c>\d+)\s*[,;:/]?\s*"
        rf"(?:day|d)\s*(?:\(d\)\s*)?(?P<cd_d>-?\d+)(?!\d))",
        # Day 1 and 15 of Cycle 1, D1 of C2
        rf"(?P<dc>(?<![a-z])(?:days?|d)\s*(?P<dc_d>{nlist})\s*(?P<dc_p>\([^)]{{0,30}}\)\s*)?(?:of|in)\s+"
        rf"(?:each\s+)?(?:{cyc}|c)\s*(?P<dc_c>{nlist}))",
        # Cycle 1, Cycles 1-6
        rf"(?P<co>(?<![a-z])(?:cycles?|courses?)\s*#?\s*(?P<co_n>{nlist})(?!\.\d){not_unit})",
        # second cycle, first treatment cycle
        rf"(?P<cord>(?<![a-z])(?P<cord_n>{ords})\s+(?:\w+\s+)?(?:cycle|course)(?![a-z]))",
        # every 6 weeks, each 8 weeks, every other week, q3 weeks
        rf"(?P<iv>(?<![a-z])(?:every|each|q(?=\s?\d))\s*(?P<iv_other>other\s+)?(?:(?P<iv_n>{num})"
        rf"(?:\s*(?:-|–|to|or|{window})\s*{num})?\s*-?\s*)?(?P<iv_u>{unit}))",
        # 3-weekly, 6-monthly
        r"(?P<nw>(?<![\w.])(?P<nw_n>\d+)\s*-?\s*(?P<nw_w>weekly|monthly|daily|yearly|hourly)(?![a-z]))",
        # weekly, yearly, annually
        rf"(?P<ivw>(?<![a-z-])(?:{iv_words})(?![a-z-])(?!\s+(?:living|life|activit|routine|diar)))",
        # ±7 days: a visit window, kept as a point
        rf"(?P<win>{window}\s*(?P<win_n>{num})\s*-?\s*(?P<win_u>{unit}))",
        # baseline, pre-dose, screening, before treatment
        rf"(?P<zero>(?<![a-z])(?:{'|'.join(f'(?:{z})' for z in zero)})(?![a-z]))",
        # third day, 8th week
        rf"(?P<ou>(?<![a-z])(?P<ou_n>{ords})\s+(?P<ou_u>{prefix_unit})(?![a-z]))",
        # Week 12, Days 1-7, Months 1, 2, 3, Day -14, W12, D28
        rf"(?P<pre>(?<![a-z])(?P<pre_u>{prefix_unit}|[dwm](?=\d))\.?\s*(?:#\s*)?"
        rf"(?P<pre_n>(?:[-+]\s?(?=\d))?{num}{not_unit}(?:{psep}{num}{not_unit})*))",
        # 12 and 24 months, 0.5, 1, 2 hours, 6-9 months, 12 previous months
        # "24 ± 4 hours": the 24 hours is the time, the ± 4 hours its window.
        rf"(?P<li>(?<![\w.\-])(?P<li_n>{num}(?:{sep}{num})*)(?P<li_w>\s*{window}\s*{num})?{paren_window}?"
        rf"(?:\s+(?P<li_lb>{lookback_words}))?\s*-?\s*(?P<li_u>{unit}))",
    ]
    # Matches start at a word start (or a ± sign): far fewer attempts than at every character.
    # Matches start only where a word starts; shapes that cannot start with a digit are skipped at once there.
    guarded = [
        a if a.startswith(("(?P<nw>", "(?P<cord>", "(?P<ou>", "(?P<li>")) else f"(?![\\d.]){a}"
        for a in alternatives
    ]
    main = re.compile(r"(?<![a-z0-9])(?=[a-z0-9±+.(])(?:" + "|".join(guarded) + ")")
    simple = re.compile(
        r"\s*(?:(?:up\s+to|upto|approximately|approx\.?|about|around|at|within|through|after|for|over|~|"
        rf"at\s+least|an\s+average\s+of|average\s+of|in)\s*)*(?P<n>\d+(?:\.\d+)?)\s*-?\s*(?P<u>{unit})\.?\s*"
    )
    label_before = re.compile(rf"(?:^|[^a-z])(?:{_alt(labels)})\.?\s*#?\s*$")
    lookback_before = re.compile(rf"\b(?:{lookback_words})\s+$")
    unit_before = re.compile(rf"{unit}\s*$")
    age_after = re.compile(r"\s*(?:of\s+(?:\w+\s+)?(?:age|life)\b|(?:of\s+)?old\b|-old\b)")
    age_before = re.compile(r"\b(?:aged?|age\s+of|ages|until\s+age|by\s+age)\s+(?:of\s+)?(?:between\s+)?$")
    non_h = re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in non_horizon) + ")")
    cycle_length = re.compile(
        rf"(?:(?:each|every|one|a|per|1|the)\s+)?(?:treatment\s+)?cycles?\s*(?:\d+\s*)?"
        r"(?:=|:|(?:is|are|was|were)(?:\s+(?:of|max|defined\s+as))?|of|equals?(?:\s+to)?|has|lasts?|lasting"
        r"|consists\s+of|corresponds\s+to|being|length(?:\s+is)?|duration(?:\s+is)?|average\s+is)\s*"
        rf"(?:approximately\s+|~\s*)?(?P<cl_n>{num})(?P<cl_range>\s*(?:-|–|to)\s*{num})?\s*-?\s*(?P<cl_u>{unit})"
        rf"|(?P<cl_n2>\d+)\s*-?\s*(?P<cl_u2>days?|weeks?)\s+(?:treatment\s+)?cycles?"
    )
    return _Vocab(
        numbers=numbers,
        fractions=fractions,
        ordinals=ordinals,
        unit_of=unit_of,
        interval_words=interval_words,
        main=main,
        simple=simple,
        num=re.compile(num),
        window=re.compile(rf"{window}\s*(?P<n>{num})\s*-?\s*(?P<u>{unit})"),
        paren=re.compile(r"\([^)]*\)"),
        label_before=label_before,
        lookback_before=lookback_before,
        unit_before=unit_before,
        age_after=age_after,
        age_before=age_before,
        non_horizon=non_h,
        cycle_length=cycle_length,
    )


_WS = re.compile(r"[\s-]+")
_FRAC_SPLIT = re.compile(r"\s+and\s+")
_CLAUSE_END = re.compile(r"[;|\n]|\.\s+(?=[A-Z(])")


def _number(v: _Vocab, raw: str) -> float | None:
    """The value of one number token ("12", "6.5", "twenty-four", "one and one-half", "half")."""
    text = raw.strip().lower()
    parts = _FRAC_SPLIT.split(text, maxsplit=1)
    head = parts[0]
    tail = parts[1] if len(parts) > 1 else ""
    extra = 0.0
    if tail:
        frac = v.fractions.get(_WS.sub(" ", tail).replace(" ", "-")) or v.fractions.get(_WS.sub(" ", tail))
        if frac is None:
            return None
        extra = frac
    if head[:1].isdigit() or head[:1] == ".":
        try:
            return float(head) + extra
        except ValueError:
            return None
    key = _WS.sub(" ", head)
    if key in v.numbers:
        return v.numbers[key] + extra
    if key in v.fractions:
        return v.fractions[key] + extra
    if key.replace(" ", "-") in v.fractions:
        return v.fractions[key.replace(" ", "-")] + extra
    words = key.split(" ")
    if len(words) == 2 and words[0] in v.numbers and words[1] in v.numbers:
        return v.numbers[words[0]] + v.numbers[words[1]] + extra
    return None


def _unit(v: _Vocab, raw: str) -> str | None:
    key = raw.lower()
    if key.endswith("(s)"):
        key = key[:-3]
    return v.unit_of.get(key)


def _ordinal(v: _Vocab, raw: str) -> int | None:
    key = raw.lower()
    if key in v.ordinals:
        return v.ordinals[key]
    digits = key[:-2]
    return int(digits) if digits.isdigit() else None


@dataclass(slots=True)
class _Point:
    value: float
    unit: str
    start: int
    end: int
    flags: int = 0

    @property
    def days(self) -> float:
        return self.value * DAYS_PER_UNIT[self.unit]


class _Parse:
    """Mutable state of one parse; ``low`` is the lower-cased text all patterns run on."""

    __slots__ = ("cycles", "interval", "low", "points", "text", "v")

    def __init__(self, v: _Vocab, text: str, low: str) -> None:
        self.v = v
        self.text = text
        self.low = low
        self.points: list[_Point] = []
        self.cycles: list[CycleRef] = []
        self.interval: Interval | None = None

    def add_point(self, value: float, unit: str, start: int, end: int, flags: int = 0) -> None:
        if value == 0:
            unit = "day"  # time zero is {0, "day"} whatever unit it was written in
        elif value < 0:
            flags |= _NO_HORIZON
        elif 1900 <= value <= 2100 and value == int(value):
            return  # a calendar year ("Year 2019", "December 2008 - 12 months")
        self.points.append(_Point(value, unit, start, end, flags))

    def numbers(self, start: int, end: int) -> list[tuple[float, int, int]]:
        out: list[tuple[float, int, int]] = []
        for m in self.v.num.finditer(self.low, start, end):
            value = _number(self.v, m.group())
            if value is not None:
                out.append((value, m.start(), m.end()))
        return out


def _handle(p: _Parse, m: re.Match[str]) -> None:
    v, low, kind = p.v, p.low, m.lastgroup
    if kind == "li":
        _handle_list(p, m)
    elif kind == "pre":
        unit = _unit(v, m["pre_u"]) or _LETTER_UNITS.get(m["pre_u"])
        if unit is None:
            return
        nums_start = m.start("pre_n")
        for i, (value, s, e) in enumerate(p.numbers(nums_start, m.end("pre_n"))):
            signed = -value if i == 0 and low[nums_start] == "-" else value
            p.add_point(signed, unit, m.start() if i == 0 else s, e, _DAY_PREFIX if unit == "day" else 0)
    elif kind == "zero":
        # "4 weeks before surgery" is a time before the anchor, not time zero.
        if not v.unit_before.search(low, max(0, m.start() - 12), m.start()):
            p.add_point(0.0, "day", m.start(), m.end())
    elif kind == "cd":
        p.cycles.append(CycleRef(int(m["cd_c"]), int(m["cd_d"]), m.start(), m.end()))
    elif kind == "dc":
        days = _DIGITS.findall(m["dc_d"])
        for c in _DIGITS.findall(m["dc_c"]):
            for d in days:
                p.cycles.append(CycleRef(int(c), int(d), m.start(), m.end()))
        if m["dc_p"]:
            # "Day 1 (pre-dose) of Cycles 1, 2": the parenthesis is read like the rest of the text.
            for sub in v.main.finditer(low, m.start("dc_p"), m.end("dc_p")):
                _handle(p, sub)
    elif kind == "co":
        for c in _DIGITS.findall(m["co_n"]):
            p.cycles.append(CycleRef(int(c), None, m.start(), m.end()))
    elif kind == "cord":
        n = _ordinal(v, m["cord_n"])
        if n is not None:
            p.cycles.append(CycleRef(n, None, m.start(), m.end()))
    elif kind == "ou":
        n, unit = _ordinal(v, m["ou_n"]), _unit(v, m["ou_u"])
        if n is not None and unit is not None:
            p.add_point(float(n), unit, m.start(), m.end())
    elif kind == "win":
        wvalue, wunit = _number(v, m["win_n"]), _unit(v, m["win_u"])
        if wvalue is not None and wunit is not None:
            p.add_point(wvalue, wunit, m.start("win_n"), m.end(), _NO_HORIZON)
    elif p.interval is None:
        p.interval = _interval(v, m)


def _interval(v: _Vocab, m: re.Match[str]) -> Interval | None:
    kind = m.lastgroup
    if kind == "iv":
        unit = _unit(v, m["iv_u"])
        value = _number(v, m["iv_n"]) if m["iv_n"] else 1.0
        if unit is None or value is None:
            return None
        return Interval(value * (2 if m["iv_other"] else 1), unit, m.start(), m.end())
    if kind == "nw":
        base = v.interval_words[m["nw_w"]]
        return Interval(float(m["nw_n"]) * base[0], base[1], m.start(), m.end())
    if kind == "ivw":
        value, unit = v.interval_words[m.group()]
        return Interval(value, unit, m.start(), m.end())
    return None


def _handle_list(p: _Parse, m: re.Match[str]) -> None:
    v, low = p.v, p.low
    unit = _unit(v, m["li_u"])
    if unit is None:
        return
    ns, ne = m.start("li_n"), m.end("li_n")
    if ne - ns <= 6 and low[ns].isdigit() and _PLAIN.fullmatch(low, ns, ne):
        nums = [(float(low[ns:ne]), ns, ne)]
    else:
        nums = p.numbers(ns, ne)
        if "(" in m["li_n"]:
            # Numbers inside a "(±5 minutes)" window belong to the window, read below.
            inside = [(w.start(), w.end()) for w in v.paren.finditer(low, ns, ne)]
            nums = [n for n in nums if not any(a <= n[1] < b for a, b in inside)]
        if not nums:
            return
        # "Visit 3 12 months", "Phase 2, 12 weeks": a label's number is not a time.
        if len(nums) > 1 and v.label_before.search(low, max(0, nums[0][1] - 12), nums[0][1]):
            nums = nums[1:]
    flags = 0
    if v.age_after.match(low, m.end()):
        flags = _AGE
    elif m.start() > 2 and v.age_before.search(low, max(0, m.start() - 20), m.start()):
        return  # "aged 18 years": an age, never a time point
    if m["li_lb"] or (m.start() > 3 and v.lookback_before.search(low, max(0, m.start() - 12), m.start())):
        flags |= _LOOKBACK
    last = len(nums) - 1
    for i, (value, s, e) in enumerate(nums):
        p.add_point(value, unit, s, m.end() if i == last else e, flags)
    if m["li_w"] or "(" in low[ns : m.end()]:
        # A visit window inside the list ("0.5 (±5 minutes), 1, 2 hours", "24 ± 4 hours").
        for w in v.window.finditer(low, ns, m.end()):
            wvalue, wunit = _number(v, w["n"]), _unit(v, w["u"])
            if wvalue is not None and wunit is not None:
                p.add_point(wvalue, wunit, w.start("n"), w.end(), _NO_HORIZON)


_LETTER_UNITS: Final = {"d": "day", "w": "week", "m": "month"}
_DIGITS = re.compile(r"\d+")
_PLAIN = re.compile(r"\d+(?:\.\d+)?")
_CLAUSE_END = re.compile(r"[;|\n]|\.\s+(?=[a-z(])")


def _clause(low: str, pos: int) -> tuple[int, int]:
    start = 0
    for m in _CLAUSE_END.finditer(low, 0, pos):
        start = m.end()
    m2 = _CLAUSE_END.search(low, pos)
    return start, (m2.start() if m2 else len(low))


def _attach_days_to_cycles(p: _Parse) -> None:
    """In a clause about one numbered cycle, its "Day N" are days of that cycle, not study days."""
    if not p.cycles or not any(pt.flags & _DAY_PREFIX for pt in p.points):
        return
    keep: list[_Point] = []
    moved: set[int] = set()
    for pt in p.points:
        if pt.flags & _DAY_PREFIX and pt.value > 0:
            cs, ce = _clause(p.low, pt.start)
            numbers = {c.cycle for c in p.cycles if c.cycle is not None and cs <= c.start < ce}
            if len(numbers) == 1:
                cycle = numbers.pop()
                p.cycles.append(CycleRef(cycle, int(pt.value), pt.start, pt.end))
                moved.add(cycle)
                continue
        keep.append(pt)
    p.points = keep
    if moved:
        p.cycles = [c for c in p.cycles if not (c.day is None and c.cycle in moved)]


def _cycle_length(p: _Parse) -> tuple[float | None, list[tuple[int, int]]]:
    """The stated cycle length in days (None when not stated or a range) and the spans stating it."""
    length: float | None = None
    spans: list[tuple[int, int]] = []
    for m in p.v.cycle_length.finditer(p.low):
        spans.append((m.start(), m.end()))
        if length is not None:
            continue
        if m["cl_n"] is not None:
            if m["cl_range"]:
                continue
            value, unit = _number(p.v, m["cl_n"]), _unit(p.v, m["cl_u"])
        else:
            value, unit = float(m["cl_n2"]), "day" if m["cl_u2"].startswith("d") else "week"
        if value is not None and unit is not None and value > 0:
            length = value * DAYS_PER_UNIT[unit]
    return length, spans


_COMPOUND_GAP = re.compile(r"\s*(?:and\s+)?")


def _compound(p: _Parse, best: _Point) -> _Point:
    """A duration in two parts ("3 years 5 months", "2 years and 10 months"): their sum."""
    for pt in p.points:
        if (
            pt.start > best.end
            and not pt.flags
            # A remainder under 1 % ("147 months and 5 days") is not worth an extra point.
            and 0.01 * best.days < pt.days < DAYS_PER_UNIT[best.unit]
            and _COMPOUND_GAP.fullmatch(p.low, best.end, pt.start)
        ):
            # The horizon must be one of the points: the whole duration becomes one, in the smaller unit.
            whole = _Point(
                (best.days + pt.days) / DAYS_PER_UNIT[pt.unit], pt.unit, best.start, pt.end, best.flags
            )
            p.points.append(whole)
            return whole
    return best


def _horizon(p: _Parse) -> tuple[float | None, tuple[int, int] | None]:
    low = p.low
    length: float | None = None
    excluded: list[tuple[int, int]] = []
    if "cycle" in low:
        length, excluded = _cycle_length(p)
    for m in p.v.non_horizon.finditer(low):
        excluded.append(_clause(low, m.start()))
    best: _Point | None = None
    for pt in p.points:
        if pt.flags & (_LOOKBACK | _NO_HORIZON):
            continue
        if excluded and any(s <= pt.start < e for s, e in excluded):
            continue
        if best is None or pt.days >= best.days:
            best = pt
    if best is not None and not best.flags & _AGE:
        best = _compound(p, best)
    if length is not None and p.cycles:
        from_cycle: _Point | None = None
        for c in p.cycles:
            if c.cycle is None:
                continue
            days = (c.cycle - 1) * length + (c.day if c.day is not None else length)
            if (best is None or days > best.days) and (from_cycle is None or days > from_cycle.days):
                from_cycle = _Point(days, "day", c.start, c.end)
        if from_cycle is not None:
            # The horizon must be one of the points: the converted cycle becomes one.
            best = from_cycle
            p.points.append(best)
    if best is None:
        return None, None
    if best.days == 0 and _OPEN_END.match(low, best.end):
        return None, None  # "baseline to survival": the end is an event, not a time
    return best.days, (best.start, best.end)


_OPEN_END = re.compile(r"\s*(?:\([^)]*\)\s*)?(?:-|–|to\b|until\b|till\b|through\b|and\b|up\s+to\b)")
_AFTER_HORIZON = re.compile(
    r"\s*(?:\)\s*)?(?:\([^)]{0,30}\)\s*)?(?:(?P<conn>after|following|post-|post|from|since|of|on|beyond|into|in)\b\s*)?"
)
_GAP = re.compile(r"(?:[a-z-]+\s+){0,2}")
_OWN_CONN = re.compile(r"(?:after|following|post|from|since)\b")
_BREAK = re.compile(r"[;,|]|\b(?:and|or|then|until|to)\b")


def _choose_anchor(text: str, low: str, horizon_span: tuple[int, int] | None) -> Anchor | None:
    if horizon_span is not None:
        # The anchor right after the horizon ("30 days after last dose") is what the horizon counts from.
        m = _AFTER_HORIZON.match(low, horizon_span[1])
        if m is not None:
            # "post treatment" is one phrase: look from the connector on.
            pos = m.start("conn") if m["conn"] else m.end()
            near = next_anchor(text, low, pos)
            close = near is not None and near.end > pos and near.start <= pos + 40
            if close and near is not None and not m["conn"] and near.start > pos + 1:
                # Without a connector right after the horizon, only an adjacent phrase or one a noun or two
                # on that brings its own ("31-day period after the booster") counts, not "at 12 weeks for
                # each of the two treatments".
                close = (
                    bool(_GAP.fullmatch(low, pos, near.start))
                    and _OWN_CONN.match(low, near.start) is not None
                )
            if near is not None and close and not _BREAK.search(low, pos, max(pos, near.start)):
                if near.kind == "treatment":
                    # "after the third session (last session)": the closer look wins.
                    again = next_anchor(text, low, near.end)
                    if again is not None and again.kind == "treatment_end" and again.start <= near.end + 20:
                        return again
                return near
            if m["conn"] in ("after", "following", "post", "post-"):
                unknown = after_unknown(low, m.start("conn"))
                if unknown is not None:
                    return Anchor(
                        "other", text[unknown.start() : unknown.end()], unknown.start(), unknown.end()
                    )
    return next_anchor(text, low, 0)


def _parse(text: str) -> Timing:
    v = _vocab()
    low = lower(text)
    simple = v.simple.fullmatch(low)
    if simple is not None:
        # The commonest shape by far ("12 months", "Up to 2 years"): one point, the horizon, no anchor.
        unit = _unit(v, simple["u"])
        if unit is not None:
            value = float(simple["n"])
            if value == 0:
                unit = "day"
            if not 1900 <= value <= 2100:
                point = TimePoint(value, unit, simple.start("n"), simple.end("u"))
                return Timing((point,), (), point.days, (point.start, point.end))
    p = _Parse(v, text, low)
    for m in v.main.finditer(low):
        _handle(p, m)
    _attach_days_to_cycles(p)
    horizon, span = _horizon(p)
    seen: set[tuple[float, str]] = set()
    points: list[TimePoint] = []
    for pt in p.points:
        key = (pt.value, pt.unit)
        if key not in seen:
            seen.add(key)
            points.append(TimePoint(pt.value, pt.unit, pt.start, pt.end))
    cycles: list[CycleRef] = []
    if p.cycles:
        cseen: set[tuple[int | None, int | None]] = set()
        for c in p.cycles:
            if (c.cycle, c.day) not in cseen:
                cseen.add((c.cycle, c.day))
                cycles.append(c)
    anchor = _choose_anchor(text, low, span)
    return Timing(tuple(points), tuple(cycles), horizon, span, p.interval, anchor)


@functools.lru_cache(maxsize=65536)
def parse_time_frame(text: str) -> Timing:
    """Read the times of one outcome time frame.

    Args:
        text: the time frame, e.g. ``"Up to 24 months"`` or ``"Week 1, 2, 3, 4"``.

    Returns:
        The points, cycles, horizon (days, with the span that gave it), interval and the anchor named in
        the time frame (``Anchor.field == "time_frame"``). Never raises; an empty ``Timing`` when no
        time is stated.
    """
    if not isinstance(text, str) or not text:
        return Timing()
    return _parse(text)


def parse_time_frame_uncached(text: str) -> Timing:
    """:func:`parse_time_frame` without the cache (for benchmarks)."""
    return _parse(text) if text else Timing()
