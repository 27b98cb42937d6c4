"""Abbreviations defined in a text: "objective response rate (ORR)" and "ORR (objective response rate)".

Implements the algorithm of Schwartz, A. S. & Hearst, M. A. (2003), "A simple algorithm for identifying
abbreviation definitions in biomedical text", Pacific Symposium on Biocomputing 8:451-462: a candidate
short form is the text inside parentheses (or the word before them, when the parenthesised text is the
longer one); its long form is the shortest run of preceding words, at most min(|A| + 5, 2|A|) words for a
short form of |A| characters, in which the short form's characters occur in order, read right to left,
the first one at the start of a word.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from nlp.types import Abbreviation

_PAREN: Final = re.compile(r"[(（]([^()（）]{1,120})[)）]")
_HEAD_SPLIT: Final = re.compile(r"[;,]\s")
#: Sentence-level separators a long form does not reach across.
_CLAUSE_BREAK: Final = re.compile(r"[.;:!?|\[\]]\s|[;|]")


def _is_short_form(candidate: str) -> bool:
    # Schwartz & Hearst: at most two words, at most ten characters, starts with a letter or digit,
    # has a capital (the paper asks for a letter; lower-case parentheses here are units and words).
    words = candidate.split()
    return (
        0 < len(words) <= 2
        and 2 <= len(candidate) <= 10
        and candidate[0].isalnum()
        and any(c.isupper() for c in candidate)
    )


def _best_long_form(short: str, long: str) -> int | None:
    """Start in ``long`` of the shortest suffix that defines ``short`` (the paper's findBestLongForm)."""
    if short.isascii() and long.isascii():
        return _best_long_form_ascii(short, long)
    s_index = len(short) - 1
    l_index = len(long) - 1
    while s_index >= 0:
        c = short[s_index].lower()
        if not c.isalnum():
            s_index -= 1
            continue
        while l_index >= 0 and (
            long[l_index].lower() != c or (s_index == 0 and l_index > 0 and long[l_index - 1].isalnum())
        ):
            l_index -= 1
        if l_index < 0:
            return None
        l_index -= 1
        s_index -= 1
    start = l_index + 1
    # Extend to the beginning of the word the match started in.
    while start > 0 and long[start - 1].isalnum():
        start -= 1
    return start


def _best_long_form_ascii(short: str, long: str) -> int | None:
    """:func:`_best_long_form` for ASCII text, with ``str.rfind`` in place of the character loop.

    For ASCII, lower-casing maps one character to one, so ``low[i] == long[i].lower()`` and searching
    ``low`` right to left finds the same indices as the loop.
    """
    low = long.lower()
    s_index = len(short) - 1
    l_index = len(long) - 1
    while s_index >= 0:
        c = short[s_index].lower()
        if not c.isalnum():
            s_index -= 1
            continue
        if s_index == 0:
            # The first character must also start a word.
            while l_index >= 0:
                l_index = low.rfind(c, 0, l_index + 1)
                if l_index <= 0 or not long[l_index - 1].isalnum():
                    break
                l_index -= 1
        else:
            l_index = low.rfind(c, 0, l_index + 1)
        if l_index < 0:
            return None
        l_index -= 1
        s_index -= 1
    start = l_index + 1
    while start > 0 and long[start - 1].isalnum():
        start -= 1
    return start


def _define(short: str, window: str) -> int | None:
    """Start index of the long form inside ``window`` (the text before the short form), if any."""
    core = short[:-1] if short.endswith("s") and len(short) > 2 and short[-2].isupper() else short
    limit = min(len(core) + 5, 2 * len(core))
    # The start of the limit-th word from the end (or of the first word): ``rsplit`` leaves the words
    # before it, up to the end of the last of them, in ``parts[0]``; str.split and the regex ``\S+``
    # agree on what white space is.
    parts = window.rsplit(None, limit)
    if not parts:
        return None
    if len(parts) > limit:
        cut = len(parts[0])
        rest = window[cut:]
        first = cut + len(rest) - len(rest.lstrip())
    else:
        first = len(window) - len(window.lstrip())
    start = _best_long_form(core, window[first:])
    if start is None:
        return None
    start += first
    long = window[start:]
    if len(long.split()) > limit or len(long.strip()) <= len(core) or short.lower() in long.lower().split():
        return None
    return start


def find_abbreviations(text: str) -> list[Abbreviation]:
    """Find abbreviation definitions in ``text`` by the Schwartz & Hearst (2003) algorithm.

    Both "long form (SHORT)" and "SHORT (long form)" are found. Each short form is reported once (its
    first definition).

    Args:
        text: any text.

    Returns:
        The definitions in order, with offsets of both forms into ``text``; e.g. "Objective response rate
        (ORR)" gives short "ORR", long "Objective response rate".
    """
    if "(" not in text and "（" not in text:
        # Every definition has parentheses; most texts have none, and they stay out of the cache.
        return []
    return _find_abbreviations(text)


@functools.lru_cache(maxsize=4096)
def _find_abbreviations(text: str) -> list[Abbreviation]:
    found: list[Abbreviation] = []
    seen: set[str] = set()
    # Clause breaks are at most two characters and never overlap (the second character of ".\s" is
    # white space, which starts none), so the breaks before each parenthesis are found by scanning on
    # from the previous one; a "." right before "(" is no break, so none straddles a scanned stretch.
    window_start = 0
    scanned = 0
    for m in _PAREN.finditer(text):
        inner = m.group(1)
        stripped = inner.strip()
        # "(ORR; ...)" or "(ORR, defined as ...)": the short form is the first part.
        head = _HEAD_SPLIT.split(stripped, maxsplit=1)[0].strip()
        inner_start = m.start(1) + inner.index(stripped)
        paren_start = m.start()
        for brk in _CLAUSE_BREAK.finditer(text, scanned, paren_start):
            window_start = brk.end()
        scanned = paren_start
        window = text[window_start:paren_start].rstrip()
        if _is_short_form(head):
            start = _define(head, window)
            if start is None and " " in head:
                # "(RECIST 1.1)": the version is not part of what the long form spells.
                head = head.split()[0]
                start = _define(head, window) if _is_short_form(head) else None
            if start is not None and head not in seen:
                long_start = window_start + start
                long_end = window_start + len(window)
                found.append(
                    Abbreviation(
                        head,
                        text[long_start:long_end],
                        inner_start,
                        inner_start + len(head),
                        long_start,
                        long_end,
                    )
                )
                seen.add(head)
            continue
        # "SHORT (long form)": the word before the parentheses is the short form.
        # ``window`` ends in a non-space, so its last word is what ``(\S+)\s*$`` would find.
        if not window or len(stripped.split()) < 2:
            continue
        short = window.rsplit(None, 1)[-1]
        if not _is_short_form(short) or not any(c.isupper() for c in short) or short in seen:
            continue
        start = _define(short, stripped)
        if start == 0:
            s_start = window_start + len(window) - len(short)
            found.append(
                Abbreviation(
                    short, stripped, s_start, s_start + len(short), inner_start, inner_start + len(stripped)
                )
            )
            seen.add(short)
    return found


def abbreviation_map(text: str) -> dict[str, str]:
    """``{short: long}`` for the definitions in ``text`` (the spec's ``abbreviations`` field)."""
    return {a.short: a.long for a in find_abbreviations(text)}
