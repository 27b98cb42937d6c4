"""Dose groups of a dose-finding study: which stated doses define its groups, levels, cohorts or arms.

The doses come from :func:`nlp.doses.parse_doses` over every prose field of the study. A dose is a
*group* candidate unless a conditioning, premedication, imaging or partner drug is named just before it
(``resources/dose_groups.json``, ``background``). Candidates are gathered per field, and one set per
study is chosen: the field (or the set of arm groups, one dose each) holding the most distinct values of
one unit, where those values sit in a group context ("dose level", "cohort", "escalation", an arm of
its own). A lone dose counts only as a stated starting dose or the dose of a single registered arm.
``count`` is the planned number of groups when the prose states it ("one of three dose levels" → 3,
"low/medium/high dose levels" → 3), else the number of groups found when there are at least two and
they are levels rather than the two ends of a range.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from nlp.doses import Dose, parse_doses
from nlp.errors import ResourceError
from nlp.resource_files import checked_pattern, read_json_resource
from nlp.study import ArmGroup, Intervention

_RESOURCE: Final = "nlp/resources/dose_groups.json"
_KEYS: Final = (
    "_comment",
    "background",
    "group_cues",
    "single_cues",
    "label",
    "number_words",
    "count_nouns",
    "count_fillers",
    "graded",
)
_WINDOW: Final = 60  # characters before a dose searched for a background drug or a label
_SENTENCE: Final = re.compile(r"(?<=[.;!?])\s+(?=[A-Z(])|\n+")
# What may remain of an intervention name once its background drugs are removed, for it still to be
# only a background drug ("Fludarabine phosphate", "Cyclophosphamide + fludarabine lymphodepletion").
_FILLER: Final = re.compile(
    r"\b(?:and|plus|with|in|of|the|for|combination|combined|injection|infusion|chemotherapy|therapy|regimen|"
    r"doses?|low|high|iv|oral|tablets?|capsules?|phosphate|hydrochloride|sodium|acetate|mg|kg|m2|drug|"
    r"agent|premedication|conditioning|lymphodepleting|lymphodepletion)\b|[^A-Za-z]+",
    re.IGNORECASE,
)
# A cell product or a coded investigational drug in a name: not a background drug, whatever its other names.
_PRODUCT: Final = re.compile(r"\b[A-Z]{1,6}-?\d{2,}|\bCAR\b|CAR-?T|\bcells?\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DoseGroup:
    """One dose group: ``text`` = the ``field``'s text ``[start:end]``; ``label`` as written, if any."""

    label: str | None
    value: float
    unit: str
    text: str
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DoseGroups:
    """The study's dose groups (deduplicated by value and unit) and the planned number of groups."""

    groups: tuple[DoseGroup, ...]
    count: int | None
    count_span: tuple[str, int, int] | None = None


@dataclass(frozen=True, slots=True)
class _Cues:
    background: re.Pattern[str]
    group: re.Pattern[str]
    single: re.Pattern[str]
    label: re.Pattern[str]
    count: re.Pattern[str]
    numbers: dict[str, int]
    graded: tuple[tuple[re.Pattern[str], int], ...]


def _fail(where: str, problem: str, fix: str) -> ResourceError:
    return ResourceError(_RESOURCE, where, problem, fix)


def _rx(where: str, pattern: Any) -> str:
    return checked_pattern(_RESOURCE, where, pattern)


def _alt(key: str, items: Any) -> str:
    if not isinstance(items, list) or not items:
        raise _fail(f"key {key!r}", "missing or not a list", "Give a list of regular expressions")
    return "|".join(_rx(f"{key}[{n}]", p) for n, p in enumerate(items))


def _build(data: Any) -> _Cues:
    if not isinstance(data, dict):
        raise _fail("top level", "not a JSON object", f"Use an object with keys {list(_KEYS)}")
    for key in data:
        if key not in _KEYS:
            raise _fail(f"key {key!r}", "unknown key", f"Allowed keys: {list(_KEYS)}")
    numbers = data.get("number_words")
    if not isinstance(numbers, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in numbers.values()
    ):
        raise _fail("key 'number_words'", "not an object of positive integers", 'Use e.g. {"three": 3}')
    graded = data.get("graded")
    if not isinstance(graded, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 1 for v in graded.values()
    ):
        raise _fail("key 'graded'", "not an object of integers above 1", 'Use e.g. {"low/medium/high": 3}')
    nouns = _rx("key 'count_nouns'", data.get("count_nouns"))
    fillers = _rx("key 'count_fillers'", data.get("count_fillers"))
    num_alt = "|".join(sorted(numbers, key=len, reverse=True))
    count = re.compile(
        rf"\b(?P<n>\d{{1,2}}|{num_alt})\s+(?:{fillers}\s+){{0,2}}?(?:{nouns})\b"
        rf"|\b(?:dose[- ]?levels?|DL)\s*(?P<a>-?\d)\s*(?:-|–|to|through)\s*(?P<b>\d{{1,2}})\b",
        re.IGNORECASE,
    )
    graded_rx = tuple(
        (re.compile(rf"\b(?:{_rx(f'graded.{k}', k)})[- ]*(?:dose|dosing)", re.IGNORECASE), v)
        for k, v in sorted(graded.items(), key=lambda kv: -len(kv[0]))
    )
    return _Cues(
        background=re.compile(_alt("background", data.get("background")), re.IGNORECASE),
        group=re.compile(_alt("group_cues", data.get("group_cues")), re.IGNORECASE),
        single=re.compile(_alt("single_cues", data.get("single_cues")), re.IGNORECASE),
        label=re.compile(_rx("key 'label'", data.get("label")), re.IGNORECASE),
        count=count,
        numbers={k.lower(): v for k, v in numbers.items()},
        graded=graded_rx,
    )


@functools.cache
def _cues() -> _Cues:
    data = read_json_resource("dose_groups.json", shown_as=_RESOURCE)
    return _build(data)


def _sentence_start(text: str, pos: int) -> int:
    best = 0
    for m in _SENTENCE.finditer(text, 0, pos):
        best = m.end()
    return best


@dataclass(slots=True)
class _Cand:
    dose: Dose
    field: str
    label: str | None
    cued: bool
    single: bool


def _is_background(cues: _Cues, text: str, study_drugs: frozenset[str]) -> bool:
    return any(m.group(0).lower() not in study_drugs for m in cues.background.finditer(text))


def _pure_background(cues: _Cues, name: str) -> bool:
    return bool(cues.background.search(name)) and not _FILLER.sub("", cues.background.sub(" ", name)).strip()


def _candidates(
    field: str, text: str, cues: _Cues, background_field: bool, study_drugs: frozenset[str] = frozenset()
) -> list[_Cand]:
    out: list[_Cand] = []
    prev_end = 0
    doses = parse_doses(text)
    for i, dose in enumerate(doses):
        sent = _sentence_start(text, dose.start)
        lo = max(sent, dose.start - _WINDOW)
        before = text[max(lo, prev_end) : dose.start]
        prev_end = dose.end
        # A dose in a list shares the drug named before the list's first member.
        j = i
        while j > 0 and dose.start - doses[j - 1].end < 12 and doses[j - 1].unit == dose.unit:
            j -= 1
        head = text[max(sent, doses[j].start - _WINDOW) : doses[j].start] if j != i else before
        if background_field or _is_background(cues, head if j != i else before, study_drugs):
            continue
        sentence_end = _SENTENCE.search(text, dose.end)
        context = text[sent : sentence_end.start() if sentence_end else len(text)]
        labels = list(cues.label.finditer(text, lo, dose.start))
        label = labels[-1].group(0).strip() if labels else None
        out.append(
            _Cand(dose, field, label, bool(cues.group.search(context)), bool(cues.single.search(context)))
        )
    return out


def _dedupe(cands: list[_Cand]) -> list[_Cand]:
    seen: list[tuple[float, str]] = []
    out: list[_Cand] = []
    for c in cands:
        key = (c.dose.value, c.dose.unit)
        if any(u == key[1] and abs(v - key[0]) <= 0.01 * abs(v) for v, u in seen):
            continue
        seen.append(key)
        out.append(c)
    return out


def _by_unit(cands: list[_Cand]) -> dict[str, list[_Cand]]:
    units: dict[str, list[_Cand]] = {}
    for c in cands:
        units.setdefault(c.dose.unit, []).append(c)
    return {u: _dedupe(cs) for u, cs in units.items()}


def _is_range(text: str, cands: list[_Cand]) -> bool:
    if len(cands) != 2 or cands[0].field != cands[1].field:
        return False
    gap = text[cands[0].dose.end : cands[1].dose.start]
    return bool(re.fullmatch(r"\s*(?:-|–|to|through)\s*", gap, re.IGNORECASE))


def _count(texts: Sequence[tuple[str, str]], cues: _Cues) -> tuple[int, tuple[str, int, int]] | None:
    for field, text in texts:
        for rx, n in cues.graded:
            m = rx.search(text)
            if m:
                return n, (field, m.start(), m.end())
        for m in cues.count.finditer(text):
            if m.group("n"):
                word = m.group("n").lower()
                n = int(word) if word.isdigit() else cues.numbers.get(word, 0)
            else:
                a, b = int(m.group("a")), int(m.group("b"))
                n = b - a + 1 - (1 if a < 0 else 0)  # no level 0 between DL-1 and DL1
            if 1 < n <= 20:
                return n, (field, m.start(), m.end())
    return None


def _arm_label_count(arm_groups: Sequence[ArmGroup], cues: _Cues) -> tuple[int, tuple[str, int, int]] | None:
    # Arms named "Dose Level 1" ... "Dose Level 5" plan that many levels even when no value is stated.
    names: dict[str, tuple[str, int, int]] = {}
    for i, arm in enumerate(arm_groups):
        m = cues.label.search(arm.label)
        if m and re.match(r"(?i)dose[- ]?level|DL", m.group(0)):
            key = re.sub(r"\D", "", m.group(0)) + ("-" if "-" in m.group(0)[2:] else "")
            names.setdefault(key, (f"arm_groups[{i}].label", m.start(), m.end()))
    if len(names) >= 2:
        return len(names), next(iter(names.values()))
    return None


def find_dose_groups(
    texts: Sequence[tuple[str, str]],
    interventions: Sequence[Intervention],
    arm_groups: Sequence[ArmGroup],
) -> DoseGroups:
    """The dose groups of a study and their planned number.

    Args:
        texts: the study's prose fields as ``(field, text)`` (see :func:`nlp.study.study_texts`).
        interventions: the registered interventions (a background drug's own fields are skipped).
        arm_groups: the registered arm groups (each arm with its own dose is a group, labelled by the arm).

    Returns:
        Groups in reading order, deduplicated by (value within 1 %, unit), and ``count``: the stated
        number of planned groups, else the number of groups when two or more levels were found, else
        ``None``.
    """
    cues = _cues()
    text_of = dict(texts)
    # An intervention is a background drug when its name is nothing but background drugs, or its other
    # names are and its name is no cell product or coded drug ("Chemotherapy" aka fludarabine).
    background_iv = {
        i
        for i, iv in enumerate(interventions)
        if _pure_background(cues, iv.name)
        or (
            iv.other_names
            and all(_pure_background(cues, o) for o in iv.other_names)
            and not _PRODUCT.search(iv.name)
        )
    }
    # When every active intervention is a "background" drug, that drug is the one under study (an
    # aldesleukin or etoposide dose escalation): its doses are the groups.
    active = [
        i for i, iv in enumerate(interventions) if not re.search(r"(?i)placebo|saline|vehicle", iv.name)
    ]
    study_drugs: frozenset[str] = frozenset()
    if active and all(i in background_iv for i in active):
        study_drugs = frozenset(
            m.group(0).lower() for i in active for m in cues.background.finditer(interventions[i].name)
        )
        background_iv = set()
    per_field: list[tuple[str, list[_Cand]]] = []
    arm_cands: list[_Cand] = []
    iv_cands: list[_Cand] = []
    for field, text in texts:
        bg = False
        if field.startswith("interventions["):
            bg = int(field[len("interventions[") : field.index("]")]) in background_iv
        cands = _candidates(field, text, cues, bg, study_drugs)
        if field.startswith("interventions[") and field.endswith(".name"):
            # A dose in an intervention's name is the dose of a registered intervention: a group context.
            cands = [_Cand(c.dose, c.field, c.label, True, c.single) for c in cands]
            i = int(field[len("interventions[") : field.index("]")])
            if cands and not any(c.field.startswith(f"interventions[{i}]") for c in iv_cands):
                iv_cands.append(cands[0])
        # An arm's first dose stands for the arm; an arm text listing several levels is also a field.
        if field.startswith("arm_groups[") and cands:
            i = int(field[len("arm_groups[") : field.index("]")])
            label = arm_groups[i].label if i < len(arm_groups) else None
            if not any(c.field.startswith(f"arm_groups[{i}]") for c in arm_cands):
                first = cands[0]
                arm_cands.append(_Cand(first.dose, first.field, label, True, first.single))
        per_field.append((field, cands))

    options: list[tuple[int, int, list[_Cand], str]] = []  # (distinct, priority, groups, source text)
    arm_sets = _by_unit(arm_cands)
    for _unit, cs in arm_sets.items():
        if len({c.field.split("]")[0] for c in cs}) >= 2 and len(cs) >= 2:
            options.append((len(cs), 3, cs, ""))
    for _unit, cs in _by_unit(iv_cands).items():
        if len({c.field.split("]")[0] for c in cs}) >= 2 and len(cs) >= 2:
            options.append((len(cs), 2, cs, ""))
    for field, cands in per_field:
        for _unit, cs in _by_unit([c for c in cands if c.cued]).items():
            options.append((len(cs), 1, cs, text_of.get(field, "")))
    multi = [o for o in options if o[0] >= 2]
    groups: list[_Cand] = []
    source = ""
    if multi:
        _n, _p, groups, source = max(multi, key=lambda o: (o[0], o[1]))
    else:
        singles = [c for _f, cands in per_field for c in cands if c.single]
        if singles:
            groups = [singles[0]]
        elif len(arm_groups) == 1 and arm_cands:
            groups = [arm_cands[0]]
    stated = _count(texts, cues)
    if stated is None:
        stated = _arm_label_count(arm_groups, cues)
    if stated is not None:
        count: int | None = stated[0]
    elif len(groups) >= 2 and not _is_range(source, groups):
        count = len(groups)
    else:
        count = None
    out = tuple(
        DoseGroup(c.label, c.dose.value, c.dose.unit, c.dose.text, c.field, c.dose.start, c.dose.end)
        for c in groups
    )
    return DoseGroups(out, count, stated[1] if stated else None)
