"""What an outcome measures: endpoint ids from the vocabulary and the outcome's category.

The vocabulary is ``resources/endpoints.tsv``; how each id is written (synonyms, abbreviations, misspellings)
is ``resources/endpoint_patterns.json``; keywords for the category when no id fits are
``resources/categories.json``. All three are validated on first use; a malformed file raises
:class:`nlp.errors.ResourceError` naming the file, the entry and the fix.

The labelling convention (the dev gold's notes): the measure (title) decides. The description is read
only when the title is generic ("Safety", "Preliminary efficacy of X", "Outcome of patients with ...") or
names nothing, and then only up to the first definition or method clause, so "OS is defined as the time
until death" never turns an overall-survival outcome into a mortality one.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from nlp.errors import ResourceError
from nlp.resource_files import read_json_resource
from nlp.types import CATEGORIES, EndpointHit, EndpointResult

_VOCAB_FILE: Final = "endpoints.tsv"
_PATTERN_FILE: Final = "endpoint_patterns.json"
_CATEGORY_FILE: Final = "categories.json"
_VOCAB_COLUMNS: Final = ("id", "category", "abbreviation", "definition")
_PATTERN_TOP_KEYS: Final = (
    "_doc",
    "endpoints",
    "ignore",
    "generic_measure",
    "description_stop",
    "yields_to",
)
_PATTERN_ENTRY_KEYS: Final = ("i", "cs", "weak")
_CATEGORY_TOP_KEYS: Final = ("_doc", "default", "keywords", "implied")
#: A space in a fragment stands for any run of separators, so "progression free" also matches
#: "Progression-Free", "progression  free" and the run-together "progressionfree" seen in the corpus.
_SEP: Final = r"[\s\-‐‑–—_]*"
#: Above this many characters of pattern an :class:`Alternation` does not keep a skipping copy.
_SKIP_MAX_PATTERN: Final = 16_000
_PAREN_AFTER: Final = re.compile(r"\s*[(（\[][^()（）\[\]]*[)）\]]")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One vocabulary row."""

    id: str
    category: str
    abbreviation: str
    definition: str


@dataclass(frozen=True, slots=True)
class _Matcher:
    alternation: Alternation
    #: fragment index -> (endpoint id, weak); the id is "" for an 'ignore' fragment
    groups: tuple[tuple[str, bool], ...]


@dataclass(frozen=True, slots=True)
class _Rules:
    matcher: _Matcher
    generic: re.Pattern[str] | None
    stop: re.Pattern[str] | None
    categories: dict[str, str]
    #: ``stop.search``, tried only where a stop phrase's first letters occur
    stop_search: Prefiltered | None
    #: id -> the ids that make it redundant when found in the same field
    yields_to: dict[str, frozenset[str]]


def _read_text(name: str) -> str:
    return (resources.files("nlp") / "resources" / name).read_text(encoding="utf-8")


def parse_vocabulary(text: str, resource: str = _VOCAB_FILE) -> dict[str, Endpoint]:
    """Parse and validate the endpoint vocabulary (TSV: id, category, abbreviation, definition).

    Args:
        text: the file's content.
        resource: the name used in error messages.

    Returns:
        The endpoints by id, in file order.

    Raises:
        ResourceError: on a wrong header, a short row, an unknown category or a repeated id.
    """
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows or tuple(rows[0]) != _VOCAB_COLUMNS:
        raise ResourceError(
            resource,
            "line 1",
            f"header is {rows[0] if rows else []!r}",
            f"Use the columns {list(_VOCAB_COLUMNS)}",
        )
    vocab: dict[str, Endpoint] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(_VOCAB_COLUMNS):
            raise ResourceError(
                resource,
                f"line {lineno}",
                f"{len(row)} columns",
                f"Give exactly {len(_VOCAB_COLUMNS)} tab-separated columns",
            )
        ident, category, abbreviation, definition = (cell.strip() for cell in row)
        if category not in CATEGORIES:
            raise ResourceError(
                resource, f"line {lineno}", f"unknown category {category!r}", f"Use one of {list(CATEGORIES)}"
            )
        if not re.fullmatch(r"[a-z][a-z0-9_]*", ident):
            raise ResourceError(
                resource, f"line {lineno}", f"bad id {ident!r}", "Use lower-case letters, digits and _"
            )
        if ident in vocab:
            raise ResourceError(resource, f"line {lineno}", f"id {ident!r} repeated", "Give each id one row")
        vocab[ident] = Endpoint(ident, category, abbreviation, definition)
    return vocab


@functools.cache
def vocabulary() -> dict[str, Endpoint]:
    """The bundled endpoint vocabulary, by id (loaded and validated once)."""
    return parse_vocabulary(_read_text(_VOCAB_FILE))


def check_fragment(fragment: object, resource: str, where: str, indexed: bool = True) -> str:
    """Validate one regex fragment of a resource file and return its compilable source.

    Args:
        fragment: the value from the file.
        resource: the file name, for the error message.
        where: the entry, for the error message.
        indexed: True for fragments of an :class:`Alternation`, which must start with a letter or digit.

    Returns:
        The regex source (spaces replaced by the separator class).

    Raises:
        ResourceError: when the fragment is not a string, not a valid regex, has a capturing group or
            (``indexed``) does not start with a letter or digit.
    """
    if not isinstance(fragment, str) or not fragment.strip():
        raise ResourceError(
            resource, where, f"fragment {fragment!r} is not a non-empty string", "Write a regex string"
        )
    if indexed and not (fragment[0].isascii() and fragment[0].isalnum()):
        raise ResourceError(
            resource,
            where,
            f"fragment {fragment!r} does not start with a letter or digit",
            "Start each fragment with a plain letter or digit; spell alternatives out as separate fragments",
        )
    source = fragment.replace(" ", _SEP)
    try:
        groups = _count_groups(source)
    except re.error as exc:
        raise ResourceError(
            resource, where, f"fragment {fragment!r} is not a valid regex ({exc})", "Fix the regex"
        ) from None
    if groups:
        raise ResourceError(
            resource,
            where,
            f"fragment {fragment!r} has a capturing group",
            "Use non-capturing groups (?:...)",
        )
    return source


def _count_groups(source: str) -> int:
    """The number of capturing groups of ``source``; raises ``re.error`` when it does not compile.

    Parsing is enough for that, and it is the cheap half of compiling: code generation builds a
    65,536-entry table for every separator class (``_SEP`` holds dashes above U+00FF), about 0.13 ms each,
    and the fragments hold hundreds of them. Compiling each fragment also pushed the combined patterns out
    of ``re``'s 512-entry cache, so every reload recompiled those too. The only errors code generation
    adds to parsing are about look-behinds (and internal ones), so a fragment with a look-behind is still
    compiled in full.
    """
    if "(?<" not in source:
        try:
            from re import _parser  # type: ignore[attr-defined]
        except ImportError:  # pragma: no cover - the private parser moved; compile instead
            pass
        else:
            return int(_parser.parse(source).state.groups) - 1
    return re.compile(source).groups


def _min_width(source: str) -> int:
    # Longer fragments are tried first at a position, so "survival rate" beats "survival".
    try:
        from re import _parser  # type: ignore[attr-defined]

        lo, _hi = _parser.parse(source).getwidth()
        return int(lo)
    except Exception:  # pragma: no cover - the private parser moved; length is a fair proxy
        return len(source)


def _literal_prefix(fragment: str) -> int:
    """Length of the fragment's leading run of plain letters and digits (none followed by a quantifier)."""
    n = 0
    while n < len(fragment) and fragment[n].isascii() and fragment[n].isalnum():
        if n + 1 < len(fragment) and fragment[n + 1] in "?*+{":
            break
        n += 1
    return n


class Alternation:
    """Many regex fragments compiled into one fast, word-bounded matcher.

    Python's regex engine tries the alternatives of a branch one by one at every position, so a flat,
    case-insensitive alternation of hundreds of fragments costs about a millisecond per title. Here the
    fragments' leading letters are merged into a trie of plain lower-case literals
    (``c(?:max|lear...)``) matched against the lower-cased text: the engine then jumps straight to
    positions whose character can start a fragment and leaves a failing branch after one comparison
    (it has no such shortcut for case-folded literals). Case-sensitive fragments ("OS", "AE") share the
    trie and are checked against the original text afterwards. At one trie node, longer literal prefixes
    are tried first, then case-insensitive fragments, then case-sensitive ones, each in the given order
    (the first alternative that matches wins).
    """

    __slots__ = ("_cs", "_skip", "order", "regex")

    def __init__(
        self, fragments: list[tuple[str, bool]], before: str = r"\w", after: str = r"(?!\w)"
    ) -> None:
        """Compile the fragments.

        Args:
            fragments: regex fragments (non-capturing groups only, starting with a letter or digit; a space
                stands for any run of separators) and whether each is case-sensitive.
            before: a character class that must not precede a match.
            after: the right boundary (a lookahead).
        """
        items: list[tuple[int, str, str, bool]] = []
        for n, (fragment, cs) in enumerate(fragments):
            k = _literal_prefix(fragment)
            rest = fragment[k:].replace(" ", _SEP)
            items.append((n, fragment[:k].lower(), f"(?i:{rest})" if rest else "", cs))
        order: list[int] = []
        #: group number -> the case-sensitive fragments of its trie node from it on: (fragment, regex)
        self._cs: dict[int, tuple[tuple[int, re.Pattern[str]], ...]] = {}

        def build(node: list[tuple[int, str, str, bool]], depth: int) -> str:
            children: dict[str, list[tuple[int, str, str, bool]]] = {}
            here: list[tuple[int, str, str, bool]] = []
            for item in node:
                (children.setdefault(item[1][depth], []) if len(item[1]) > depth else here).append(item)
            alternatives: list[str] = []
            for char, sub in children.items():
                # The boundary is checked after the first character, so that the regex starts with plain
                # literals and the engine can skip positions that cannot start a fragment.
                head = re.escape(char) + (f"(?<!{before}.)" if depth == 0 else "")
                alternatives.append(head + build(sub, depth + 1))
            here.sort(key=lambda item: item[3])
            siblings = [
                (n, re.compile(fragments[n][0].replace(" ", _SEP) + after)) for n, _p, _r, cs in here if cs
            ]
            for n, _prefix, rest, cs in here:
                order.append(n)
                if cs:
                    self._cs[len(order)] = tuple(siblings[[k for k, _ in siblings].index(n) :])
                alternatives.append(f"({rest})")
            if len(alternatives) == 1 and not children:
                return alternatives[0]
            return "(?:" + "|".join(alternatives) + ")"

        body = build(items, 0)
        self.regex = re.compile(body + after)
        self.order = order
        # Every match starts at a word start, i.e. right after a character outside ``before`` (or at the
        # search position). ``_skip`` consumes that character first: a pattern that starts with a
        # character class lets the engine skip in C to the few candidate positions, where ``regex`` is
        # tried at every letter (each try costs a call into the matcher). Only valid when every fragment
        # has a literal first character (those carry the boundary check). Measured on the corpus: a
        # win for the criteria and category tries, a loss inside the pipeline for the big endpoint trie
        # (a second compiled copy of it costs more in CPU cache than the skipping saves).
        negated = _negate_class(before)
        self._skip: re.Pattern[str] | None = (
            re.compile(negated + body + after)
            if negated and all(item[1] for item in items) and len(body) < _SKIP_MAX_PATTERN
            else None
        )

    def finditer(self, text: str, end: int | None = None) -> Iterator[tuple[int, int, int]]:
        """Yield (fragment index, start, end) for non-overlapping matches in ``text[:end]``, left to right."""
        low = text.lower()
        if len(low) != len(text):  # a few characters lower-case to two ("İ"); keep offsets aligned
            low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        stop = len(text) if end is None else end
        search, cs, order = self.regex.search, self._cs, self.order
        match = self.regex.match
        skip = self._skip.search if self._skip is not None else None
        pos = 0
        while True:
            if skip is None:
                m = search(low, pos, stop)
                if m is None:
                    return
                start = m.start()
            else:
                # At the start a match needs no character before it; later ones start after a non-word
                # character at or after ``pos - 1`` (see __init__).
                m = match(low, 0, stop) if pos == 0 else None
                if m is not None:
                    start = 0
                else:
                    m = skip(low, max(0, pos - 1), stop)
                    if m is None:
                        return
                    start = m.start() + 1
            group = m.lastindex or 0
            checks = cs.get(group)
            if checks is None:
                yield order[group - 1], start, m.end()
                pos = m.end()
                continue
            # "or" matched the lower-cased "OR": find the case-sensitive fragment that really matches here.
            for n, regex in checks:
                c = regex.match(text, start, stop)
                if c is not None:
                    yield n, c.start(), c.end()
                    pos = c.end()
                    break
            else:
                pos = start + 1


def _negate_class(before: str) -> str | None:
    """The character class of everything outside ``before`` (``\\w`` or ``[...]``), if it is one."""
    if re.fullmatch(r"\\[wWdDsS]", before):
        return f"[^{before}]"
    if before.startswith("[") and not before.startswith("[^") and before.endswith("]"):
        return "[^" + before[1:]
    return None


def parse_patterns(data: Any, vocab: dict[str, Endpoint], resource: str = _PATTERN_FILE) -> _Matcher:
    """Validate the endpoint pattern data and compile it into one matcher.

    Args:
        data: the decoded JSON of ``endpoint_patterns.json``.
        vocab: the endpoint vocabulary; every key of ``endpoints`` must be one of its ids.
        resource: the name used in error messages.

    Returns:
        The compiled matcher.

    Raises:
        ResourceError: on an unknown key or id, a non-list, or a fragment that is not a valid regex.
    """
    if not isinstance(data, dict):
        raise ResourceError(
            resource, "top level", "not a JSON object", f"Use an object with keys {list(_PATTERN_TOP_KEYS)}"
        )
    for key in data:
        if key not in _PATTERN_TOP_KEYS:
            raise ResourceError(
                resource, f"key {key!r}", "unknown key", f"Allowed keys: {list(_PATTERN_TOP_KEYS)}"
            )
    endpoints = data.get("endpoints")
    if not isinstance(endpoints, dict):
        raise ResourceError(
            resource, "key 'endpoints'", "missing or not an object", "Map endpoint ids to pattern lists"
        )
    entries: list[tuple[str, bool, str, bool, int]] = []
    for ident, entry in endpoints.items():
        if ident not in vocab:
            raise ResourceError(
                resource,
                f"endpoint {ident!r}",
                "unknown endpoint id",
                f"Use an id from {_VOCAB_FILE}: {sorted(vocab)}",
            )
        if not isinstance(entry, dict):
            raise ResourceError(
                resource, f"endpoint {ident!r}", "not an object", f"Use keys {list(_PATTERN_ENTRY_KEYS)}"
            )
        for key, fragments in entry.items():
            if key not in _PATTERN_ENTRY_KEYS:
                raise ResourceError(
                    resource,
                    f"endpoint {ident!r}",
                    f"unknown key {key!r}",
                    f"Allowed keys: {list(_PATTERN_ENTRY_KEYS)}",
                )
            if not isinstance(fragments, list):
                raise ResourceError(
                    resource, f"endpoint {ident!r}, key {key!r}", "not a list", "Give a list of regex strings"
                )
            for fragment in fragments:
                source = check_fragment(fragment, resource, f"endpoint {ident!r}, key {key!r}")
                entries.append((str(fragment), key == "cs", ident, key == "weak", _min_width(source)))
    ignore = data.get("ignore", [])
    if not isinstance(ignore, list):
        raise ResourceError(resource, "key 'ignore'", "not a list", "Give a list of regex strings")
    for fragment in ignore:
        source = check_fragment(fragment, resource, "key 'ignore'")
        entries.append((str(fragment), False, "", False, _min_width(source)))
    entries.sort(key=lambda e: -e[4])
    alternation = Alternation([(source, cs) for source, cs, _i, _w, _n in entries])
    return _Matcher(alternation, tuple((ident, weak) for _s, _cs, ident, weak, _n in entries))


def _optional_regex(
    data: dict[str, Any], key: str, resource: str, flags: int, template: str
) -> re.Pattern[str] | None:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise ResourceError(resource, f"key {key!r}", "not a list", "Give a list of regex strings")
    sources = [check_fragment(item, resource, f"key {key!r}", indexed=False) for item in items]
    if not sources:
        return None
    return re.compile(template.format("|".join(f"(?:{s})" for s in sources)), flags)


def parse_yields(
    data: dict[str, Any], vocab: dict[str, Endpoint], resource: str = _PATTERN_FILE
) -> dict[str, frozenset[str]]:
    """Validate ``yields_to`` of the pattern data: ids made redundant by a more precise id beside them.

    "Pharmacokinetic Parameter - Time to Maximum Plasma Concentration [Tmax]" measures Tmax, not a
    pharmacokinetic parameter "not named more precisely" as well.

    Args:
        data: the decoded JSON of ``endpoint_patterns.json``.
        vocab: the endpoint vocabulary.
        resource: the name used in error messages.

    Returns:
        For each id, the ids that make it redundant.

    Raises:
        ResourceError: when ``yields_to`` is not an object of id lists, or names an unknown id.
    """
    raw = data.get("yields_to", {})
    if not isinstance(raw, dict):
        raise ResourceError(resource, "key 'yields_to'", "not an object", "Map endpoint ids to lists of ids")
    out: dict[str, frozenset[str]] = {}
    for ident, others in raw.items():
        if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
            raise ResourceError(resource, f"yields_to {ident!r}", "not a list of ids", "Give a list of ids")
        for name in (ident, *others):
            if name not in vocab:
                raise ResourceError(
                    resource,
                    f"yields_to {ident!r}",
                    f"unknown endpoint id {name!r}",
                    f"Use an id from {_VOCAB_FILE}: {sorted(vocab)}",
                )
        out[ident] = frozenset(others)
    return out


def parse_implied(data: Any, vocab: dict[str, Endpoint], resource: str = _CATEGORY_FILE) -> dict[str, str]:
    """Validate ``implied`` of ``categories.json``: the endpoint id a category keyword stands for.

    In the gold every biomarker outcome carries an id ("Serum Creatinine Concentration" -> biomarker),
    so a keyword that makes an outcome a biomarker one also gives the catch-all ``biomarker`` id.

    Args:
        data: the decoded JSON of ``categories.json``.
        vocab: the endpoint vocabulary.
        resource: the name used in error messages.

    Returns:
        Category -> endpoint id (of that category).

    Raises:
        ResourceError: on a non-object, an unknown category or id, or an id of another category.
    """
    raw = data.get("implied", {}) if isinstance(data, dict) else {}
    if not isinstance(raw, dict):
        raise ResourceError(resource, "key 'implied'", "not an object", "Map categories to endpoint ids")
    for category, ident in raw.items():
        if category not in CATEGORIES:
            raise ResourceError(
                resource, f"implied {category!r}", "unknown category", f"Use one of {list(CATEGORIES)}"
            )
        if ident not in vocab or vocab[ident].category != category:
            allowed = sorted(k for k, ep in vocab.items() if ep.category == category)
            raise ResourceError(
                resource,
                f"implied {category!r}",
                f"{ident!r} is not an id of that category",
                f"Use one of {allowed}",
            )
    return dict(raw)


def parse_categories(
    data: Any, resource: str = _CATEGORY_FILE
) -> tuple[str, Alternation | None, tuple[str, ...]]:
    """Validate ``categories.json``: returns (default category, keyword regex, category per group)."""
    if not isinstance(data, dict):
        raise ResourceError(
            resource, "top level", "not a JSON object", f"Use an object with keys {list(_CATEGORY_TOP_KEYS)}"
        )
    for key in data:
        if key not in _CATEGORY_TOP_KEYS:
            raise ResourceError(
                resource, f"key {key!r}", "unknown key", f"Allowed keys: {list(_CATEGORY_TOP_KEYS)}"
            )
    default = data.get("default", "other")
    if default not in CATEGORIES:
        raise ResourceError(
            resource, "key 'default'", f"unknown category {default!r}", f"Use one of {list(CATEGORIES)}"
        )
    keywords = data.get("keywords", {})
    if not isinstance(keywords, dict):
        raise ResourceError(resource, "key 'keywords'", "not an object", "Map categories to keyword lists")
    fragments: list[tuple[str, bool]] = []
    cats: list[str] = []
    for category, items in keywords.items():
        if category not in CATEGORIES:
            raise ResourceError(
                resource, f"keywords {category!r}", "unknown category", f"Use one of {list(CATEGORIES)}"
            )
        if not isinstance(items, list):
            raise ResourceError(
                resource, f"keywords {category!r}", "not a list", "Give a list of regex strings"
            )
        for fragment in items:
            check_fragment(fragment, resource, f"keywords {category!r}")
            fragments.append((str(fragment), False))
            cats.append(category)
    return default, (Alternation(fragments) if fragments else None), tuple(cats)


@dataclass(frozen=True, slots=True)
class _CategoryRules:
    default: str
    alternation: Alternation | None
    #: fragment index -> category
    groups: tuple[str, ...]
    #: category -> the endpoint id its keyword implies
    implied: dict[str, str]


@functools.cache
def _rules() -> tuple[_Rules, _CategoryRules]:
    vocab = vocabulary()
    data = read_json_resource(_PATTERN_FILE)
    matcher = parse_patterns(data, vocab)
    generic = _optional_regex(data, "generic_measure", _PATTERN_FILE, re.IGNORECASE, r"\W*(?:{})\W*")
    stop = _optional_regex(data, "description_stop", _PATTERN_FILE, re.IGNORECASE, "{}")
    cat_data = read_json_resource(_CATEGORY_FILE)
    default, cat_regex, cat_groups = parse_categories(cat_data)
    categories = {ident: ep.category for ident, ep in vocab.items()}
    stop_search = Prefiltered(stop, ascii_lower=True) if stop is not None else None
    rules = _Rules(matcher, generic, stop, categories, stop_search, parse_yields(data, vocab))
    return rules, _CategoryRules(default, cat_regex, cat_groups, parse_implied(cat_data, vocab))


def _scan(
    matcher: _Matcher,
    text: str,
    field: str,
    end: int | None = None,
    yields_to: dict[str, frozenset[str]] | None = None,
) -> tuple[list[EndpointHit], bool]:
    """Endpoint hits in ``text[:end]``: the strong ones, else the weak ones (then the flag is True).

    Hits inside a parenthesis right after a hit explain it ("Objective response (PR or CR)") and are
    dropped unless they repeat its id ("Overall survival (OS)") or name it more precisely ("plasma drug
    concentration (Cmax)", see ``yields_to``).
    """
    strong: list[EndpointHit] = []
    weak: list[EndpointHit] = []
    groups = matcher.groups
    explained_until = -1
    explained_id = ""
    precise: frozenset[str] = frozenset()
    for n, start, stop in matcher.alternation.finditer(text, end):
        ident, is_weak = groups[n]
        if start < explained_until and ident != explained_id and ident not in precise:
            continue
        if ident:
            (weak if is_weak else strong).append(EndpointHit(ident, field, start, stop))
        paren = _PAREN_AFTER.match(text, stop)
        if paren is not None:
            explained_until, explained_id = paren.end(), ident
            precise = yields_to.get(ident, frozenset()) if yields_to else frozenset()
    return (strong, False) if strong else (weak, bool(weak))


def _stop(rules: _Rules, text: str) -> int | None:
    m = rules.stop_search.search(text) if rules.stop_search is not None else None
    return m.start() if m is not None else None


def _is_generic(rules: _Rules, measure: str) -> bool:
    return rules.generic is not None and rules.generic.fullmatch(measure) is not None


@functools.lru_cache(maxsize=4096)
def match_endpoints(measure: str, description: str = "") -> EndpointResult:
    """Find the endpoint ids an outcome measures, and its category.

    The measure decides; the description is read only when the measure is generic or names no endpoint,
    and then only up to its first definition or method clause. The category is that of the first
    endpoint found, else the first category keyword (measure, then description), else the default.

    Args:
        measure: the outcome's title.
        description: the outcome's description ("" when none).

    Returns:
        The hits (each with field ``"measure"`` or ``"description"`` and offsets into that field), in
        order of mention, and the category; ``category_evidence`` holds the keyword that decided it
        when no endpoint did.
    """
    rules, cat_rules = _rules()
    hits, _weak = _scan(rules.matcher, measure, "measure", _stop(rules, measure), rules.yields_to)
    generic = _is_generic(rules, measure)
    if description and generic:
        described, described_weak = _scan(
            rules.matcher, description, "description", _stop(rules, description)
        )
        # A generic title's own weak word ("Safety") yields to what the description names precisely.
        if described and (not hits or not described_weak):
            hits = described
    if hits:
        if len(hits) > 1 and rules.yields_to:
            hits = _drop_redundant(hits, rules.yields_to)
        return EndpointResult(hits=tuple(hits), category=rules.categories[hits[0].id])
    evidence = _category_keyword(cat_rules, measure, "measure") or (
        _category_keyword(cat_rules, description, "description") if description and generic else None
    )
    if evidence is None:
        return EndpointResult(category=cat_rules.default)
    category, where = evidence
    implied = cat_rules.implied.get(category)
    if implied is not None:
        return EndpointResult(
            hits=(EndpointHit(implied, where.field, where.start, where.end),), category=category
        )
    return EndpointResult(category=category, category_evidence=where)


def _drop_redundant(hits: list[EndpointHit], yields_to: dict[str, frozenset[str]]) -> list[EndpointHit]:
    found = {hit.id for hit in hits}
    drop = {ident for ident in found if ident in yields_to and yields_to[ident] & found}
    return [hit for hit in hits if hit.id not in drop] if drop else hits


def _category_keyword(cat_rules: _CategoryRules, text: str, field: str) -> tuple[str, EndpointHit] | None:
    if cat_rules.alternation is None:
        return None
    for n, start, end in cat_rules.alternation.finditer(text):
        category = cat_rules.groups[n]
        return category, EndpointHit(category, field, start, end)
    return None


#: How many leading characters :func:`literal_prefixes` follows into a pattern.
_PREFIX_DEPTH: Final = 4
#: A prefix set larger than this makes a prefilter no cheaper than the pattern itself.
_MAX_PREFIXES: Final = 200


def literal_prefixes(pattern: re.Pattern[str], depth: int = _PREFIX_DEPTH) -> frozenset[str] | None:
    """Strings one of which starts every match of ``pattern`` (the text a match consumes), if known.

    Look-arounds and anchors consume nothing and are stepped over, so the set is a superset of what the
    pattern can start with: safe for finding candidate positions. ``None`` when a match may start with
    about any character (a class, an optional first part that may be empty, a pattern that can match
    nothing, an inline flag) or the set would be too large.
    """
    try:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser  # type: ignore[attr-defined]

        tree = list(_parser.parse(pattern.pattern, pattern.flags & ~re.UNICODE))
    except Exception:  # pragma: no cover - the private parser moved: no prefilter
        return None
    zero_width = (c.AT, c.ASSERT, c.ASSERT_NOT)
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT))

    def walk(seq: list[Any], k: int) -> set[str]:
        # "" in the result means "may go on with anything here", which ends a prefix early.
        if k == 0 or not seq:
            return {""}
        op, av = seq[0]
        rest = seq[1:]
        if op is c.LITERAL:
            return {chr(av) + p for p in walk(rest, k - 1)}
        if op in zero_width:
            return walk(rest, k)
        if op is c.SUBPATTERN and not av[1] and not av[2]:
            return walk(list(av[3]) + rest, k)
        if op is c.BRANCH:
            out: set[str] = set()
            for item in av[1]:
                out |= walk(list(item) + rest, k)
                if len(out) > _MAX_PREFIXES:
                    return {""}
            return out
        if op is c.IN and all(o is c.LITERAL for o, _ in av):
            return {chr(a) + p for _o, a in av for p in walk(rest, k - 1)}
        if op in repeats:
            lo, _hi, item = av
            first = walk(list(item), k)  # what follows a repeat is not followed
            return first | walk(rest, k) if lo == 0 else first
        return {""}

    found = walk(tree, depth)
    if "" in found or len(found) > _MAX_PREFIXES:
        return None
    # A prefix that starts with a shorter one adds no position.
    return frozenset(p for p in found if not any(q != p and p.startswith(q) for q in found))


class Prefiltered:
    """``pattern.search`` that tries the pattern only where one of its literal prefixes occurs.

    A big alternation that starts with look-arounds gives the regex engine nothing to skip by, so it
    enters every alternative at every position; a plain alternation of the few literal prefixes (see
    :func:`literal_prefixes`) is scanned in C at a fraction of the cost. Every position where the pattern
    can match starts with one of the prefixes, and ``pattern.match(text, pos)`` at a position is the
    attempt ``search`` makes there (look-behinds and ``\\b`` still see the text before ``pos``), so the
    first candidate that matches is what ``search`` returns. With ``ascii_lower`` (for an IGNORECASE
    pattern) the prefixes are searched in ``text.lower()`` when the text is ASCII, where case-insensitive
    equality is equality of the lower-cased letters; other text is searched the plain way.
    """

    __slots__ = ("_ascii_lower", "_match", "_pre", "_search")

    def __init__(self, pattern: re.Pattern[str], ascii_lower: bool = False) -> None:
        """Derive the prefilter; without usable prefixes ``search`` is ``pattern.search``."""
        self._search = pattern.search
        self._match = pattern.match
        self._ascii_lower = ascii_lower
        prefixes = literal_prefixes(pattern)
        if ascii_lower and prefixes is not None and not all(p.isascii() for p in prefixes):
            prefixes = None
        self._pre = (
            None
            if prefixes is None
            else re.compile(
                "|".join(re.escape(p.lower() if ascii_lower else p) for p in sorted(prefixes)),
                0 if ascii_lower else pattern.flags & ~re.UNICODE,
            ).search
        )

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        """The first match at or after ``pos``, exactly as ``pattern.search(text, pos)``."""
        pre = self._pre
        if pre is None:
            return self._search(text, pos)
        scan = text
        if self._ascii_lower:
            if not text.isascii():
                return self._search(text, pos)
            scan = text.lower()
        match = self._match
        while True:
            candidate = pre(scan, pos)
            if candidate is None:
                return None
            start = candidate.start()
            m = match(text, start)
            if m is not None:
                return m
            pos = start + 1
