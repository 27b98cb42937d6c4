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
TIME_FRAMES_FILE: Final = "csvsplit_time_frames.tsv"

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
#: What is measured of the two pieces on either side of a cut (a list goes on, a sentence ends...).
CUT_FEATURES: Final[tuple[str, ...]] = (
    "bias",
    "both_short",
    "num_list",
    "right_and",
    "sentence_break",
    "lower_no_stop",
    "short_tail_list",
    "right_repeats_left",
)
#: Which cut: measure|description, description|time frame, measure|time frame (no description); then the
#: ``", "`` left uncut inside the measure, the description and the time frame (summed).
CUT_ROLES: Final[tuple[str, ...]] = ("cMD", "cDT", "cMT", "iM", "iD", "iT")
#: What the rest of the cell and the list of frequent time frames say of a candidate.
CONTEXT_FEATURES: Final[tuple[str, ...]] = (
    "t_vocab",
    "t_vocab_longer",
    "d_vocab",
    "no_t_vocab_suffix",
    "t_shared",
    "t_shared_max",
    "t_shared_longer_same",
    "t_shape_shared",
    "t_shape_max",
    "t_shape_longer_same",
    "no_t_shared_suffix",
    "m_shared",
    "m_shared_max",
    "m_shared_longer_same",
)
FEATURES: Final[tuple[str, ...]] = (
    *(f"{role}:{name}" for role in ROLES for name in PART_FEATURES),
    *(f"g:{name}" for name in GLOBAL_FEATURES),
    *(f"{role}:{name}" for role in CUT_ROLES for name in CUT_FEATURES),
    *(f"x:{name}" for name in CONTEXT_FEATURES),
)
_K: Final = len(PART_FEATURES)
_G0: Final = len(ROLES) * _K
_C: Final = len(CUT_FEATURES)
_C0: Final = _G0 + len(GLOBAL_FEATURES)
_X0: Final = _C0 + len(CUT_ROLES) * _C


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


@functools.cache
def load_time_frames() -> frozenset[str]:
    """The shapes of frequent real time frames (see ``time_frame_shape``), from ``nlp/resources``.

    Returns:
        The shapes listed in ``csvsplit_time_frames.tsv``.

    Raises:
        ResourceError: when the file is missing or a row is not ``shape<TAB>number of studies``.
    """
    resource = importlib.resources.files("nlp") / "resources" / TIME_FRAMES_FILE
    try:
        lines = resource.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ResourceError(
            TIME_FRAMES_FILE,
            "whole file",
            f"cannot be read ({err})",
            "Restore it from git or rebuild it with benchmarks/dev_csvsplit.py --fit.",
        ) from err
    if not lines or lines[0] != "shape\tstudies":
        raise ResourceError(
            TIME_FRAMES_FILE, "line 1", "is not the header 'shape<TAB>studies'", "Restore the header row."
        )
    shapes = set()
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1].isdigit():
            raise ResourceError(
                TIME_FRAMES_FILE,
                f"line {number}",
                f"is {line!r}, not 'shape<TAB>number of studies'",
                "Write the time frame's shape (lower case, numbers as #), a tab and a count.",
            )
        shapes.add(fields[0])
    return frozenset(shapes)


#: The longest text looked up in the time-frame list (its longest entry is shorter).
_SHAPE_MAX: Final = 240
_SHAPE_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_SPACES: Final = re.compile(r"\s+")


@functools.lru_cache(maxsize=65536)
def time_frame_shape(text: str) -> str:
    """A time frame's shape: case-folded, spaces collapsed, numbers as ``#``, no final full stop.

    Args:
        text: a time frame (or a candidate one).

    Returns:
        The shape, e.g. ``"up to # weeks"`` for ``"Up to 12 weeks."``.
    """
    return _SPACES.sub(" ", _SHAPE_NUMBER.sub("#", text.casefold())).strip().rstrip(". ")


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text.casefold()).strip().rstrip(". ")


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


_RIGHT_AND: Final = re.compile(r"^(?:and|or|&|as well as|nor)\s", re.IGNORECASE)
# The left piece ends in a short token or an acronym ("Number of T", "CD4"): an item of a list.
_SHORT_TAIL: Final = re.compile(r"(?:^|\s)(?:\S{1,2}|[A-Z0-9][A-Z0-9\-+/]{1,5})$")
_FIRST_WORD: Final = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")


@functools.lru_cache(maxsize=65536)
def cut_features(left: str, right: str) -> tuple[float, ...]:
    """The features of cutting between two neighbouring pieces (see CUT_FEATURES)."""
    left, right = left.strip(), right.strip()
    left_short = left.count(" ") < 3
    right_short = right.count(" ") < 3
    head = _FIRST_WORD.search(left)
    return (
        1.0,
        float(left_short and right_short),
        float(left[-1:].isdigit() and right[:1].isdigit()),
        float(bool(_RIGHT_AND.match(right))),
        float(left[-1:] in ".?!" and right[:1].isupper()),
        float(right[:1].islower() and left[-1:] not in ".;:"),
        float(bool(_SHORT_TAIL.search(left)) and right_short),
        float(head is not None and right.casefold().startswith(head.group().casefold())),
    )


class _Parts:
    """An outcome's pieces with prefix sums, so each candidate cut is scored in constant time."""

    def __init__(self, parts: list[str]) -> None:
        self.parts = parts
        n = len(parts)
        self.lens = [0]
        self.depth = [0]
        self.spaces = [0]
        for p in parts:
            self.lens.append(self.lens[-1] + len(p) + len(_SEP))
            self.depth.append(self.depth[-1] + _depth(p))
            self.spaces.append(self.spaces[-1] + p.count(" ") + 1)
        # suffix[k]: parts[k:] joined; vocab[k]: that suffix is a frequent time frame's shape.
        self.suffix = [_SEP.join(parts[k:]) for k in range(n)] + [""]
        shapes = load_time_frames()
        # Only short suffixes can be a listed time frame; a long one keeps its own text as its shape, which
        # still lets two outcomes that end in the same long text share it.
        self.shape = [time_frame_shape(x) if len(x) <= _SHAPE_MAX else "\0" + x for x in self.suffix]
        self.vocab = [x in shapes for x in self.shape]
        self.vocab[n] = False
        self._sums_done = False

    def sums(self) -> None:
        """The feature vectors and their prefix sums (only candidate_features needs them)."""
        if self._sums_done:
            return
        parts = self.parts
        self.phi = [part_features(p) for p in parts]
        # cut[i]: cutting between parts[i - 1] and parts[i] (cut[0] unused).
        self.cut = [(0.0,) * _C] + [cut_features(parts[i - 1], parts[i]) for i in range(1, len(parts))]
        self.cut_cum = [[0.0] * _C]
        for c in self.cut[1:]:
            self.cut_cum.append([x + y for x, y in zip(self.cut_cum[-1], c, strict=True)])
        self.cum = [[0.0] * _K]
        for phi in self.phi:
            self.cum.append([x + y for x, y in zip(self.cum[-1], phi, strict=True)])
        self._sums_done = True

    def inner(self, lo: int, hi: int, k: int) -> float:
        """Cut feature ``k`` summed over the ``", "`` inside ``parts[lo:hi]``."""
        return self.cut_cum[hi - 1][k] - self.cut_cum[lo][k] if hi - 1 > lo else 0.0

    def seg_len(self, i: int, j: int) -> int:
        return self.lens[j] - self.lens[i] - len(_SEP) if j > i else 0


class _Shared:
    """How many outcomes of the cell (this one included) have each of an outcome's prefixes and suffixes."""

    def __init__(self, n: int) -> None:
        self.suffix = [0] * (n + 1)
        self.suffix_shape = [0] * (n + 1)
        self.prefix = [0] * (n + 1)


def _keys(pre: _Parts) -> tuple[set[str], set[str], set[str]]:
    parts = pre.parts
    n = len(parts)
    suffixes = {_norm(pre.suffix[k]) for k in range(n)}
    shapes = {pre.shape[k] for k in range(n)}
    prefixes = {_norm(_SEP.join(parts[:k])) for k in range(1, n + 1)}
    return suffixes, shapes, prefixes


def _share(pres: list[_Parts]) -> list[_Shared | None]:
    """For each outcome of a cell, what its pieces share with the other outcomes'."""
    if len(pres) < 2:
        return [None] * len(pres)
    keys = [_keys(pre) for pre in pres]
    counts: list[dict[str, int]] = [{}, {}, {}]
    for triple in keys:
        for count, found in zip(counts, triple, strict=True):
            for key in found:
                count[key] = count.get(key, 0) + 1
    out: list[_Shared | None] = []
    for pre in pres:
        n = len(pre.parts)
        sh = _Shared(n)
        for k in range(n):
            sh.suffix[k] = counts[0][_norm(pre.suffix[k])]
            sh.suffix_shape[k] = counts[1][pre.shape[k]]
        for k in range(1, n + 1):
            sh.prefix[k] = counts[2][_norm(_SEP.join(pre.parts[:k]))]
        out.append(sh)
    return out


def _shared_unit(count: list[int], here: int, longer: int) -> tuple[float, float, float]:
    # Shared at all; shared by more outcomes than the piece grown by one more piece (so a maximal unit);
    # shared just as widely when grown (so the unit likely goes on).
    shared = count[here] > 1
    return (
        float(shared),
        float(shared and count[here] > count[longer]),
        float(shared and count[longer] == count[here]),
    )


def _context(pre: _Parts, sh: _Shared | None, a: int, b: int) -> tuple[float, ...]:
    n = len(pre.parts)
    has_t = b < n
    vocab = (
        float(has_t and pre.vocab[b]),
        float(has_t and b >= 2 and pre.vocab[b - 1]),
        float(
            a < b
            and pre.seg_len(a, b) <= _SHAPE_MAX
            and time_frame_shape(_SEP.join(pre.parts[a:b])) in load_time_frames()
        ),
        float(not has_t and any(pre.vocab[1:n])),
    )
    if sh is None:
        return (*vocab, *(0.0,) * 10)
    t = _shared_unit(sh.suffix, b, b - 1) if has_t else (0.0, 0.0, 0.0)
    t_shape = _shared_unit(sh.suffix_shape, b, b - 1) if has_t else (0.0, 0.0, 0.0)
    m = _shared_unit(sh.prefix, a, a + 1) if a < n else (0.0, 0.0, 0.0)
    return (*vocab, *t, *t_shape, float(not has_t and max(sh.suffix[1:n]) > 1), *m)


def candidate_features(
    parts: list[str], a: int, b: int, pre: _Parts | None = None, shared: _Shared | None = None
) -> list[float]:
    """Features of cutting ``parts`` into measure ``[:a]``, description ``[a:b]`` and time frame ``[b:]``.

    Args:
        parts: the outcome's text split at every ``", "``.
        a: where the measure ends (1 <= a <= b).
        b: where the time frame starts (a <= b <= len(parts)).
        pre: the pieces' precomputed sums, when scoring many cuts of one outcome.
        shared: what the outcome shares with the other outcomes of its cell (None: alone).

    Returns:
        One value per name in FEATURES.
    """
    p = pre or _Parts(parts)
    p.sums()
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
    cuts = []
    if a < b:
        cuts.append((0, a))
        if b < n:
            cuts.append((1, b))
    elif a < n:
        cuts.append((2, a))
    for role, i in cuts:
        for k in range(_C):
            f[_C0 + role * _C + k] = p.cut[i][k]
    for role, (lo, hi) in enumerate(((0, a), (a, b), (b, n)), start=3):
        for k in range(_C):
            f[_C0 + role * _C + k] = p.inner(lo, hi, k)
    f[_X0:] = _context(p, shared, a, b)
    return f


def candidates(n: int) -> list[tuple[int, int]]:
    """Every (measure end, time frame start) cut of an outcome of ``n`` comma-separated parts."""
    if n == 1:
        return [(1, 1)]
    return [(a, b) for a in range(1, n + 1) for b in range(a, n + 1) if not a == b == n]


@functools.lru_cache(maxsize=65536)
def _piece_dots(part: str) -> tuple[float, ...]:
    w = load_weights()
    phi = part_features(part)
    return tuple(sum(wk * x for wk, x in zip(w[r * _K : (r + 1) * _K], phi, strict=True)) for r in range(7))


@functools.lru_cache(maxsize=65536)
def _cut_dots(left: str, right: str) -> tuple[float, ...]:
    w = load_weights()
    c = cut_features(left, right)
    return tuple(
        sum(wk * x for wk, x in zip(w[_C0 + r * _C : _C0 + (r + 1) * _C], c, strict=True))
        for r in range(len(CUT_ROLES))
    )


def clear_caches() -> None:
    """Forget the loaded weights and time-frame list and every result computed with them (after a refit)."""
    for cached in (load_weights, load_time_frames, _piece_dots, _cut_dots, split_outcome):
        cached.cache_clear()


def _best(pre: _Parts, shared: _Shared | None) -> tuple[str, str, str]:
    parts = pre.parts
    n = len(parts)
    w = load_weights()
    # Score every cut from per-piece dot products and their prefix sums: the same value as
    # w · candidate_features(parts, a, b), without building the feature vectors.
    piece = [_piece_dots(p) for p in parts]
    dots = [[d[r] for d in piece] for r in range(7)]
    cut = [(0.0,) * len(CUT_ROLES)] + [_cut_dots(parts[i - 1], parts[i]) for i in range(1, n)]
    cuts = [[c[r] for c in cut] for r in range(len(CUT_ROLES))]
    # inner[r][i]: role r's cut score summed over the first i ", " (cut[1..i]).
    inner = [[0.0] for _ in range(3)]
    for r in range(3):
        for c in cuts[3 + r][1:]:
            inner[r].append(inner[r][-1] + c)
    cum = [[0.0] for _ in range(3)]
    for r in range(3):
        for d in dots[r]:
            cum[r].append(cum[r][-1] + d)
    inner_m, inner_d, inner_t = inner
    g = w[_G0:_C0]
    lens, depth, spaces, sep, log1p = pre.lens, pre.depth, pre.spaces, len(_SEP), math.log1p
    m_len = [0.0] + [g[2] * log1p(lens[a] - sep) for a in range(1, n + 1)]
    x = w[_X0:]
    best, best_score = (1, n), -math.inf
    for a, b in candidates(n):
        score = cum[0][a] + cum[1][b] - cum[1][a] + cum[2][n] - cum[2][b] + dots[3][a - 1]
        if b > a:
            score += dots[4][a] + dots[5][b - 1] + cuts[0][a]
            if b < n:
                score += cuts[1][b]
        else:
            score += g[0]
            if a < n:
                score += cuts[2][a]
        if b < n:
            score += dots[6][b]
        else:
            score += g[1]
        if a > 1:
            score += inner_m[a - 1]
        if b - 1 > a:
            score += inner_d[b - 1] - inner_d[a]
        if n - 1 > b:
            score += inner_t[n - 1] - inner_t[b]
        score += (
            m_len[a]
            + (g[3] * log1p(lens[b] - lens[a] - sep) if b > a else 0.0)
            + (g[4] * log1p(lens[n] - lens[b] - sep) if b < n else 0.0)
            + g[5] * (depth[a] != 0)
            + g[6] * (depth[b] - depth[a] != 0)
            + g[7] * (depth[n] - depth[b] != 0)
            + g[8] * (spaces[n] - spaces[b] > 25)
            + g[9] * (spaces[a] > 25)
        )
        if shared is not None:
            score += sum(wk * v for wk, v in zip(x, _context(pre, shared, a, b), strict=True))
        elif b < n:
            # Alone in its cell: only the time-frame list speaks (as _context would say).
            score += x[0] * pre.vocab[b] + x[1] * (b >= 2 and pre.vocab[b - 1])
            if a < b and pre.seg_len(a, b) <= _SHAPE_MAX:
                score += x[2] * (time_frame_shape(_SEP.join(parts[a:b])) in load_time_frames())
        else:
            if a < b and pre.seg_len(a, b) <= _SHAPE_MAX:
                score += x[2] * (time_frame_shape(_SEP.join(parts[a:b])) in load_time_frames())
            score += x[3] * any(pre.vocab[1:n])
        if score > best_score:
            best, best_score = (a, b), score
    a, b = best
    return (_SEP.join(parts[:a]).strip(), _SEP.join(parts[a:b]).strip(), _SEP.join(parts[b:]).strip())


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
    return _best(_Parts(parts), None)


# A "|" between two outcomes has text on both sides; one with spaces on both sides belongs to the text
# (a table or "a | b" written in a description).
_CELL_SEP: Final = re.compile(r"(?<!\s)\||\|(?!\s)")


def split_cell_texts(cell: str) -> list[str]:
    """A CSV-export outcome cell's outcomes, still joined: the cell cut at each separating ``|``.

    Args:
        cell: outcomes separated by ``|``.

    Returns:
        The non-blank outcome texts, stripped, in order.
    """
    return [part.strip() for part in _CELL_SEP.split(cell) if part.strip()]


def split_outcome_cell(cell: str) -> list[tuple[str, str, str]]:
    """Split a CSV-export outcome cell into its outcomes.

    The cell's outcomes are split together: a time frame (or measure opening) the outcomes share is
    evidence for where each one's pieces are cut.

    Args:
        cell: outcomes separated by ``|``, each ``measure, description, time frame`` joined by ``", "``;
            any of the three may itself hold commas, and the description may be empty.

    Returns:
        One ``(measure, description, time_frame)`` per outcome, in order.
    """
    return split_outcomes(split_cell_texts(cell))


def split_outcomes(texts: list[str]) -> list[tuple[str, str, str]]:
    """Split the joined texts of one cell's outcomes (one study's primary, secondary or other outcomes).

    Args:
        texts: each outcome's ``measure, description, time frame``.

    Returns:
        One ``(measure, description, time_frame)`` per text, in order.
    """
    stripped = [t.strip() for t in texts]
    multi = [i for i, t in enumerate(stripped) if _SEP in t]
    if len(multi) < 2:
        return [split_outcome(t) for t in stripped]
    pres = [_Parts(stripped[i].split(_SEP)) for i in multi]
    out = [split_outcome(t) if _SEP not in t else ("", "", "") for t in stripped]
    for i, pre, shared in zip(multi, pres, _share(pres), strict=True):
        out[i] = _best(pre, shared)
    return out
