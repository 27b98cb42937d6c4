"""Split the registry CSV export's outcome cells back into (measure, description, time frame).

The export joins each outcome's three texts with ``", "`` and the outcomes with ``"|"``; the texts
themselves often hold ``", "`` too, so which commas are the joins must be inferred. Every way of cutting
an outcome at two of its ``", "`` (or one, when the description or the time frame is empty) is a
candidate; a linear model over features of the three pieces (a time frame is short and speaks of time,
a description is sentences, a measure is a title; brackets are never cut) scores the candidates and the
best one wins. The weights are data (``resources/csvsplit_weights.json``), fitted on outcomes whose true
split the registry's API gives (see ``benchmarks/dev_csvsplit.py``).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import re
from typing import Final

from nlp.errors import ResourceError

_SEP: Final = ", "
WEIGHTS_FILE: Final = "csvsplit_weights.json"

_NUM: Final = (
    r"(?:\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty)"
)
_UNIT: Final = (
    r"(?:min(?:ute)?s?|h(?:ou)?rs?|h|days?|d|weeks?|wks?|w|months?|mo(?:nth)?s?|years?|yrs?|y|"
    r"mounths?|weeek?s?|visits?|cycles?|doses?)"
)
_NUM_UNIT: Final = re.compile(rf"\b{_NUM}(?:\s*(?:-|to|and|or|–)\s*{_NUM})?\s*-?\s*{_UNIT}\b", re.IGNORECASE)
_UNIT_NUM: Final = re.compile(
    r"\b(?:day|week|month|year|cycle|visit|hour|wk|d|w|m|c)\s*-?\s*\d+\b", re.IGNORECASE
)
_TF_WORDS: Final = re.compile(
    r"\b(?:baseline|up to|through(?:out)?|until|from|end of|completion|follow[- ]?up|post[- ]?(?:op\w*|dose|"
    r"treatment|infusion|surgery|transplant\w*|procedure|intervention|partum)|pre[- ]?(?:op\w*|dose|"
    r"treatment|infusion)|screening|discharge|enrol?lment|randomi[sz]ation|annually|daily|weekly|monthly|"
    r"time ?points?|approximately|average|duration|period|during|within|at|after|before|prior|every|"
    r"immediately|study|visit|day|week|month|year|hours?|minutes?|years?|days|weeks|months|"
    r"admission|hospitali[sz]ation|delivery|birth|death|progression|session|intervention|whichever|"
    r"an average|assessed|pre-?operative\w*|post-?operative\w*|perioperative\w*|intraoperative\w*)\b",
    re.IGNORECASE,
)
_TF_START: Final = re.compile(
    r"^(?:up to|through(?:out)?|until|from|at|after|before|baseline|within|during|day|week|month|year|"
    r"cycle|visit|pre|post|end|every|approximately|approx|average|over|for|time|screening|\d|one|two|three|"
    r"four|five|six|seven|eight|nine|ten|twelve|first|last|immediately|on|by|between|continuous|daily|"
    r"weekly|monthly|annually|once|twice|periop|intraop|postop|preop|hours?|minutes?|days|weeks|months|years|"
    r"change|the (?:first|study|end|duration|entire|day|time|period))",
    re.IGNORECASE,
)
# A piece that is only numbers ("-2", "0", "24 and 48", "1.5 hr"): one item of a list of time points.
_NUMERIC: Final = re.compile(
    rf"^[\s\-–+~]*\d+(?:\.\d+)?(?:\s*(?:and|or|to|-)\s*\d+(?:\.\d+)?)?\s*{_UNIT}?\.?\s*$"
)
# A piece ending in a word that cannot end a text ("i.e.", "and", "of"): the next piece continues it.
_DANGLING: Final = re.compile(
    r"(?:\b(?:i\.e\.|e\.g\.|and|or|of|to|the|a|an|in|with|by|for|at|from|including|such as|vs\.?|"
    r"versus|than)|[:(])\s*$",
    re.IGNORECASE,
)
_SENTENCE: Final = re.compile(r"[.?!:;]\s+[A-Z(\"'\d]|\n")
_UPPER_START: Final = re.compile(r"^[\"'(\[]?[A-Z0-9]")
_LOWER_START: Final = re.compile(r"^[a-z]")
_CONTINUATION: Final = re.compile(
    r"^(?:and|or|as|including|which|who|whose|where|with|without|such as|e\.g\.|i\.e\.|etc|but|than|then|"
    r"defined|measured|assessed|using|by|in|of|for|to|whichever|if|when|respectively|nor|plus|versus|vs)\b",
    re.IGNORECASE,
)
_OPENERS: Final = "([{"
_CLOSERS: Final = ")]}"

#: What is measured of each comma-separated piece.
PART_FEATURES: Final[tuple[str, ...]] = (
    "bias",
    "num_unit",
    "time_word",
    "tf_start",
    "numeric",
    "upper_start",
    "lower_start",
    "continuation",
    "end_period",
    "dangling",
    "sentence",
    "words_le_3",
    "words_gt_10",
    "digit",
    "opens",
    "closes",
    "colon",
    "an_average",
)
#: Where a piece's features count: summed over each segment, and at the segments' edges.
ROLES: Final[tuple[str, ...]] = ("M", "D", "T", "lastM", "firstD", "lastD", "firstT")
GLOBAL_FEATURES: Final[tuple[str, ...]] = (
    "no_description",
    "no_time_frame",
    "m_log_len",
    "d_log_len",
    "t_log_len",
    "m_unbalanced",
    "d_unbalanced",
    "t_unbalanced",
    "t_words_gt_25",
    "m_words_gt_25",
)
FEATURES: Final[tuple[str, ...]] = (
    *(f"{role}:{name}" for role in ROLES for name in PART_FEATURES),
    *(f"g:{name}" for name in GLOBAL_FEATURES),
)
_K: Final = len(PART_FEATURES)
_G0: Final = len(ROLES) * _K


@functools.cache
def load_weights() -> tuple[float, ...]:
    """The model's weights from ``nlp/resources/csvsplit_weights.json``, validated.

    Returns:
        One weight per name in FEATURES, in that order.

    Raises:
        ResourceError: when the file is missing, malformed, names an unknown feature or misses one.
    """
    resource = importlib.resources.files("nlp") / "resources" / WEIGHTS_FILE
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ResourceError(
            WEIGHTS_FILE,
            "whole file",
            f"cannot be read as JSON ({err})",
            "Restore it from git or refit it with benchmarks/dev_csvsplit.py --fit.",
        ) from err
    weights = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(weights, dict):
        raise ResourceError(
            WEIGHTS_FILE,
            "top level",
            'has no "weights" object',
            'Write {"weights": {"feature name": number, ...}}.',
        )
    unknown = sorted(set(weights) - set(FEATURES))
    if unknown:
        raise ResourceError(
            WEIGHTS_FILE,
            f"weights.{unknown[0]}",
            "is not a feature of the splitter",
            f"Allowed names: {', '.join(FEATURES)}.",
        )
    missing = [name for name in FEATURES if name not in weights]
    if missing:
        raise ResourceError(
            WEIGHTS_FILE,
            f"weights.{missing[0]}",
            "is missing",
            "Give every feature a weight (0 to ignore one).",
        )
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ResourceError(
                WEIGHTS_FILE, f"weights.{name}", f"is {value!r}, not a number", "Use a number."
            )
    return tuple(float(weights[name]) for name in FEATURES)


def _depth(text: str) -> int:
    return sum(text.count(c) for c in _OPENERS) - sum(text.count(c) for c in _CLOSERS)


@functools.lru_cache(maxsize=65536)
def part_features(part: str) -> tuple[float, ...]:
    """The features of one comma-separated piece (see PART_FEATURES)."""
    stripped = part.strip()
    words = stripped.count(" ") + 1
    depth = _depth(part)
    return (
        1.0,
        float(bool(_NUM_UNIT.search(part) or _UNIT_NUM.search(part))),
        float(bool(_TF_WORDS.search(part))),
        float(bool(_TF_START.match(stripped))),
        float(bool(_NUMERIC.match(part))),
        float(bool(_UPPER_START.match(stripped))),
        float(bool(_LOWER_START.match(stripped))),
        float(bool(_CONTINUATION.match(stripped))),
        float(stripped.endswith(".")),
        float(bool(_DANGLING.search(part))),
        float(bool(_SENTENCE.search(part))),
        float(words <= 3),
        float(words > 10),
        float(any(ch.isdigit() for ch in part)),
        float(depth > 0),
        float(depth < 0),
        float(":" in part or "：" in part),
        float(stripped.lower().startswith(("an average", "average"))),
    )


class _Parts:
    """An outcome's pieces with prefix sums, so each candidate cut is scored in constant time."""

    def __init__(self, parts: list[str]) -> None:
        self.parts = parts
        self.phi = [part_features(p) for p in parts]
        self.cum = [[0.0] * _K]
        self.lens = [0]
        self.depth = [0]
        self.spaces = [0]
        for p, phi in zip(parts, self.phi, strict=True):
            self.cum.append([x + y for x, y in zip(self.cum[-1], phi, strict=True)])
            self.lens.append(self.lens[-1] + len(p) + len(_SEP))
            self.depth.append(self.depth[-1] + _depth(p))
            self.spaces.append(self.spaces[-1] + p.count(" ") + 1)

    def seg_len(self, i: int, j: int) -> int:
        return self.lens[j] - self.lens[i] - len(_SEP) if j > i else 0


def candidate_features(parts: list[str], a: int, b: int, pre: _Parts | None = None) -> list[float]:
    """Features of cutting ``parts`` into measure ``[:a]``, description ``[a:b]`` and time frame ``[b:]``.

    Args:
        parts: the outcome's text split at every ``", "``.
        a: where the measure ends (1 <= a <= b).
        b: where the time frame starts (a <= b <= len(parts)).
        pre: the pieces' precomputed sums, when scoring many cuts of one outcome.

    Returns:
        One value per name in FEATURES.
    """
    p = pre or _Parts(parts)
    n = len(parts)
    f = [0.0] * len(FEATURES)
    for k in range(_K):
        f[k] = p.cum[a][k]
        f[_K + k] = p.cum[b][k] - p.cum[a][k]
        f[2 * _K + k] = p.cum[n][k] - p.cum[b][k]
        f[3 * _K + k] = p.phi[a - 1][k]
        if b > a:
            f[4 * _K + k] = p.phi[a][k]
            f[5 * _K + k] = p.phi[b - 1][k]
        if b < n:
            f[6 * _K + k] = p.phi[b][k]
    g = _G0
    f[g] = float(a == b)
    f[g + 1] = float(b == n)
    f[g + 2] = math.log1p(p.seg_len(0, a))
    f[g + 3] = math.log1p(p.seg_len(a, b))
    f[g + 4] = math.log1p(p.seg_len(b, n))
    f[g + 5] = float(p.depth[a] != 0)
    f[g + 6] = float(p.depth[b] - p.depth[a] != 0)
    f[g + 7] = float(p.depth[n] - p.depth[b] != 0)
    f[g + 8] = float(p.spaces[n] - p.spaces[b] > 25)
    f[g + 9] = float(p.spaces[a] > 25)
    return f


def candidates(n: int) -> list[tuple[int, int]]:
    """Every (measure end, time frame start) cut of an outcome of ``n`` comma-separated parts."""
    if n == 1:
        return [(1, 1)]
    return [(a, b) for a in range(1, n + 1) for b in range(a, n + 1) if not a == b == n]


@functools.lru_cache(maxsize=8192)
def split_outcome(text: str) -> tuple[str, str, str]:
    """Split one outcome's joined text ``measure, description, time frame``.

    Args:
        text: one outcome of a CSV-export cell (no ``|``).

    Returns:
        ``(measure, description, time_frame)``, each stripped; the description or time frame may be empty.
    """
    text = text.strip()
    parts = text.split(_SEP)
    if len(parts) == 1:
        return text, "", ""
    w = load_weights()
    pre = _Parts(parts)
    n = len(parts)
    # Score every cut from per-piece dot products and their prefix sums: the same value as
    # w · candidate_features(parts, a, b), without building the feature vectors.
    dots = [
        [sum(wk * x for wk, x in zip(w[r * _K : (r + 1) * _K], phi, strict=True)) for phi in pre.phi]
        for r in range(7)
    ]
    cum = [[0.0] for _ in range(3)]
    for r in range(3):
        for d in dots[r]:
            cum[r].append(cum[r][-1] + d)
    g = w[_G0:]
    best, best_score = (1, n), -math.inf
    for a, b in candidates(n):
        score = cum[0][a] + cum[1][b] - cum[1][a] + cum[2][n] - cum[2][b] + dots[3][a - 1]
        if b > a:
            score += dots[4][a] + dots[5][b - 1]
        else:
            score += g[0]
        if b < n:
            score += dots[6][b]
        else:
            score += g[1]
        score += (
            g[2] * math.log1p(pre.seg_len(0, a))
            + g[3] * math.log1p(pre.seg_len(a, b))
            + g[4] * math.log1p(pre.seg_len(b, n))
            + g[5] * (pre.depth[a] != 0)
            + g[6] * (pre.depth[b] - pre.depth[a] != 0)
            + g[7] * (pre.depth[n] - pre.depth[b] != 0)
            + g[8] * (pre.spaces[n] - pre.spaces[b] > 25)
            + g[9] * (pre.spaces[a] > 25)
        )
        if score > best_score:
            best, best_score = (a, b), score
    a, b = best
    return (_SEP.join(parts[:a]).strip(), _SEP.join(parts[a:b]).strip(), _SEP.join(parts[b:]).strip())


def split_outcome_cell(cell: str) -> list[tuple[str, str, str]]:
    """Split a CSV-export outcome cell into its outcomes.

    Args:
        cell: outcomes separated by ``|``, each ``measure, description, time frame`` joined by ``", "``;
            any of the three may itself hold commas, and the description may be empty.

    Returns:
        One ``(measure, description, time_frame)`` per outcome, in order.
    """
    return [split_outcome(part) for part in cell.split("|") if part.strip()]
