"""Dose expressions in protocol prose: value, normalised unit and span.

``parse_doses("two dose groups of 12×10\\^8 CAR-T cells and 20×10\\^8 CAR-T cells")`` gives
1.2e9 cells and 2.0e9 cells with their spans. Every form of scientific notation seen in registry
records is read: ``12×10^8``, ``12×10\\^8`` (markdown-escaped caret), ``1.2 x 10e9`` (``10e9`` means
10^9 in these records, not 10×10^9), ``1.0E+08``, ``2 × 10*6``, ``3×10⁷`` and a superscript lost in
copying, ``1.0 × 108`` / ``3 x 106 cells/kg`` (digits glued after ``×10``, read as the exponent).
Lists and ranges share the unit of their last member ("1, 3 and 10 mg/kg", "0.5-2 mg/kg").
Concentrations and lab counts ("1.5 x 10^9/L", "2 mg/mL") are not doses.

Units are normalised to the spec's list (:data:`UNITS`); the spellings are data, in
``resources/dose_units.json``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from nlp.errors import ResourceError
from nlp.resource_files import checked_pattern, read_json_resource

UNITS: Final[tuple[str, ...]] = (
    "cells",
    "cells/kg",
    "mg",
    "mg/kg",
    "mg/m2",
    "ug",
    "ug/kg",
    "g",
    "IU",
    "IU/kg",
    "Gy",
    "mL",
    "PFU",
    "vg/kg",
)
_BASES: Final = ("cells", "mg", "ug", "g", "IU", "Gy", "mL", "PFU", "vg")
_RESOURCE: Final = "nlp/resources/dose_units.json"
_TOP_KEYS: Final = ("_comment", "units", "denominators", "multipliers", "cell_words", "reject_after")
_UNIT_KEYS: Final = ("pattern", "unit", "factor")
_SUPER: Final = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


@dataclass(frozen=True, slots=True)
class Dose:
    """One dose: ``value`` in ``unit`` (one of :data:`UNITS`), ``text`` = ``source[start:end]``."""

    value: float
    unit: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Vocab:
    quantity: re.Pattern[str]
    unit_rx: tuple[tuple[re.Pattern[str], str, float], ...]
    denominators: tuple[tuple[re.Pattern[str], str], ...]
    multipliers: dict[str, float]
    joiner: re.Pattern[str]


def _fail(where: str, problem: str, fix: str) -> ResourceError:
    return ResourceError(_RESOURCE, where, problem, fix)


def _compile(where: str, pattern: Any) -> str:
    return checked_pattern(_RESOURCE, where, pattern)


# Scientific notation, as written: the exponent after "×10" comes as ^8, \^8, **8, *8, e8, E+08,
# (8), a superscript, "to the 8th", or glued digits whose superscript was lost ("× 108").
# A decimal comma ("0,35 mg/kg", "2,5mg") is read only right before a unit letter: "1,000" and lists
# with spaces ("1, 3 and 10 mg") keep their meaning.
_NUM: Final = r"\d{1,4},\d{1,2}(?![\d,])(?=\s?[A-Za-zµμ])|(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+)?|\.\d+"
_DECIMAL_COMMA: Final = re.compile(r"\d+,\d{1,2}")
_COUNTER_BEFORE: Final = re.compile(r"\b(?:days?|weeks?|cycles?|hours?|grade|D|C)\s*\Z", re.IGNORECASE)
_COUNTER_JOIN: Final = re.compile(r"\s*(?:-|–|to|through|and|,)\s*", re.IGNORECASE)
_EXP: Final = (
    r"(?:\s*\\?\^\s*|\s*\*\*?\s*|\s*[eE]\s*)\(?(?P<e1>[+-]?\d{1,2})\)?(?!\d)"
    r"|\s*\((?P<e2>[+-]?\d{1,2})\)"
    r"|(?P<e3>[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]{1,2})"
    r"|\s+to\s+the\s+(?P<e4>\d{1,2})(?:st|nd|rd|th)?(?:\s+power)?"
    r"|(?P<e5>[3-9]|1\d)(?!\d)"
)
_TIMES: Final = r"\s*[x×X\*·]\s*"


def _build(data: Any) -> _Vocab:
    if not isinstance(data, dict):
        raise _fail("top level", "not a JSON object", f"Use an object with keys {list(_TOP_KEYS)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(f"key {key!r}", "unknown key", f"Allowed keys: {list(_TOP_KEYS)}")
    units = data.get("units")
    if not isinstance(units, list) or not units:
        raise _fail("key 'units'", "missing or not a list", "Give a list of unit objects")
    unit_rx: list[tuple[re.Pattern[str], str, float]] = []
    spellings: list[str] = []
    for n, item in enumerate(units):
        where = f"units[{n}]"
        if not isinstance(item, dict):
            raise _fail(where, "not an object", f"Use keys {list(_UNIT_KEYS)}")
        for key in item:
            if key not in _UNIT_KEYS:
                raise _fail(where, f"unknown key {key!r}", f"Allowed keys: {list(_UNIT_KEYS)}")
        pattern = _compile(where, item.get("pattern"))
        unit = item.get("unit")
        if unit not in _BASES:
            raise _fail(where, f"unit {unit!r} is not a base unit", f"Use one of {list(_BASES)}")
        factor = item.get("factor", 1)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
            raise _fail(where, f"factor {factor!r} is not a positive number", "Give e.g. 1 or 0.001")
        unit_rx.append((re.compile(rf"(?:{pattern})\Z", re.IGNORECASE), unit, float(factor)))
        spellings.append(pattern)
    dens = data.get("denominators")
    if not isinstance(dens, dict) or set(dens) - {"kg", "m2"} or not dens:
        raise _fail(
            "key 'denominators'", "not an object keyed by 'kg'/'m2'", 'Use {"kg": [...], "m2": [...]}'
        )
    den_rx: list[tuple[re.Pattern[str], str]] = []
    den_parts: list[str] = []
    for den, words in dens.items():
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise _fail(f"denominators.{den}", "not a list of spellings", "Give a list of non-empty strings")
        alt = "|".join(sorted(words, key=len, reverse=True))
        _compile(f"denominators.{den}", alt)
        den_rx.append((re.compile(rf"(?:{alt})\Z", re.IGNORECASE), den))
        den_parts.append(alt)
    mults = data.get("multipliers", {})
    if not isinstance(mults, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in mults.values()
    ):
        raise _fail("key 'multipliers'", "not an object of positive numbers", 'Use e.g. {"million": 1000000}')
    cell = _compile("key 'cell_words'", data.get("cell_words"))
    reject = _compile("key 'reject_after'", data.get("reject_after"))
    unit_alt = "|".join(spellings)
    den_alt = "|".join(den_parts)
    mult_alt = "|".join(sorted(mults, key=len, reverse=True)) or "(?!)"
    # "(?<![A-Za-z]-)": a number glued to a drug code ("JAB-23E73", "CNP-201") is part of a name.
    # Mass and other units come before cell words, so "10 mg of cells" is mg; a unit must not run on
    # into a word ("10 months" is not 10 m...), hence the lookahead.
    quantity = re.compile(
        rf"(?<![\w.,^\\])(?<![A-Za-z]-)(?:10(?:\s*\\?\^\s*|\s*\*\*\s*)(?P<e7>\d{{1,2}})(?!\d)|10(?P<e8>[⁰¹²³⁴⁵⁶⁷⁸⁹]{{1,2}})"
        rf"|(?P<mant>{_NUM})(?:{_TIMES}10(?:{_EXP})|\s*[eE](?P<e6>[+-]?\d{{1,2}})(?!\d))?)"
        rf"(?:\s*(?P<mult>{mult_alt})\b)?"
        rf"(?:\s*(?P<unit>(?:{unit_alt})(?![A-Za-z0-9µμ])|{cell}))?"
        rf"(?P<den>\s*(?:/|per|/\s*per)\s*(?:{den_alt})(?![A-Za-z]))?"
        rf"(?P<rej>{reject})?",
        re.IGNORECASE,
    )
    joiner = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|&|-|–|—|to|through|/|;)\s*\Z", re.IGNORECASE)
    return _Vocab(
        quantity, tuple(unit_rx), tuple(den_rx), {k.lower(): float(v) for k, v in mults.items()}, joiner
    )


@functools.cache
def _vocab() -> _Vocab:
    data = read_json_resource("dose_units.json", shown_as=_RESOURCE)
    return _build(data)


def _exponent(m: re.Match[str]) -> int | None:
    for name in ("e1", "e2", "e4", "e5", "e6", "e7"):
        got = m.group(name)
        if got is not None:
            return int(got)
    for name in ("e3", "e8"):
        got = m.group(name)
        if got is not None:
            return int(got.translate(_SUPER))
    return None


def _unit_of(vocab: _Vocab, unit_text: str) -> tuple[str, float]:
    text = " ".join(unit_text.split())
    for rx, unit, factor in vocab.unit_rx:
        if rx.match(text):
            return unit, factor
    return "cells", 1.0


def _den_of(vocab: _Vocab, den_text: str) -> str:
    tail = re.sub(r"^\s*(?:/\s*per|/|per)\s*", "", den_text, flags=re.IGNORECASE)
    tail = " ".join(tail.split())
    for rx, den in vocab.denominators:
        if rx.match(tail):
            return den
    return ""


def _combine(base: str, den: str) -> str | None:
    unit = f"{base}/{den}" if den else base
    return unit if unit in UNITS else None


def parse_doses(text: str) -> list[Dose]:
    """All doses in ``text``, in order; cached (protocol texts repeat across fields).

    Args:
        text: any string.

    Returns:
        Doses with their values normalised to the unit (``12×10^8 CAR-T cells`` → 1.2e9 ``cells``).
        A list member without its own unit ("1" in "1, 3 and 10 mg/kg") takes the unit of the member
        that has one and spans only its number. Never raises.
    """
    return list(_parse_cached(text))


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str) -> tuple[Dose, ...]:
    if not isinstance(text, str) or not any(c.isdigit() for c in text):
        return ()
    vocab = _vocab()
    out: list[Dose] = []
    pending: list[tuple[float, int, int, bool]] = []  # (value, start, end, scientific) awaiting a unit
    last_end = -1
    counter_end = -1  # end of the last day/week number skipped
    for m in vocab.quantity.finditer(text):
        if m.end() == m.start():
            continue
        mant = m.group("mant")
        exp = _exponent(m)
        try:
            if mant and _DECIMAL_COMMA.fullmatch(mant):
                value = float(mant.replace(",", "."))
            else:
                value = float(mant.replace(",", "")) if mant else 1.0
        except ValueError:
            continue
        if exp is not None:
            value *= 10.0**exp
        mult = m.group("mult")
        if mult:
            value *= vocab.multipliers.get(mult.lower(), 1.0)
        scientific = exp is not None or bool(mult)
        # The quantity ends where the unit or number ends, not after whatever the reject group ate.
        end = m.end("den") if m.group("den") else m.end("unit") if m.group("unit") else m.end("mult")
        if end < 0:
            end = m.end("mant") if exp is None and mant else m.start() + len(m.group(0).rstrip())
            if m.group("rej"):
                end = m.start("rej")
        if m.group("rej"):
            pending = []  # a list of lab counts, not doses
            last_end = m.end()
            continue
        unit_text, den_text = m.group("unit"), m.group("den")
        if unit_text is None and not den_text:
            if _COUNTER_BEFORE.search(text, max(0, m.start() - 10), m.start()) or (
                counter_end >= 0 and _COUNTER_JOIN.fullmatch(text, counter_end, m.start())
            ):
                # "on day 1 and 30 mg/m^2", "weeks 0-4, 0.5 mg": day or week numbers are not list members.
                _flush(text, pending, out)
                pending = []
                last_end = counter_end = _number_end(m)
                continue
            item = (value, m.start(), _number_end(m), scientific)
            if _joined(vocab, text, last_end, m.start(), pending):
                pending.append(item)
            else:
                _flush(text, pending, out)
                pending = [item]
            last_end = _number_end(m)
            continue
        if unit_text is not None:
            base, factor = _unit_of(vocab, unit_text)
            if base == "cells" and value < 1000 and not scientific:
                # "IL-12 may kill tumor cells", "CD7 CAR T cells": a small number before a cell word is a
                # name, not a count.
                _flush(text, pending, out)
                pending = []
                last_end = m.end()
                continue
        else:
            # "5×10^4 /kg": a per-kg count with no unit word is a cell dose.
            if not scientific:
                _flush(text, pending, out)
                pending = []
                last_end = m.end()
                continue
            base, factor = "cells", 1.0
        den = _den_of(vocab, den_text) if den_text else ""
        unit = _combine(base, den)
        if unit is None and den:
            unit = _combine(base, "")
        if unit is None:
            _flush(text, pending, out)
            pending = []
            last_end = m.end()
            continue
        if pending and _joined(vocab, text, last_end, m.start(), pending):
            for p_value, p_start, p_end, _sci in pending:
                out.append(Dose(p_value * factor, unit, text[p_start:p_end], p_start, p_end))
        else:
            _flush(text, pending, out)
        pending = []
        out.append(Dose(value * factor, unit, text[m.start() : end], m.start(), end))
        last_end = end
    _flush(text, pending, out)
    out.sort(key=lambda d: d.start)
    return tuple(out)


def _flush(text: str, pending: list[tuple[float, int, int, bool]], out: list[Dose]) -> None:
    # Unit-less scientific counts ("1 ×106", "10^6") are cell counts in dose prose.
    for value, start, end, sci in pending:
        if sci and value >= 1000:
            out.append(Dose(value, "cells", text[start:end], start, end))


def _number_end(m: re.Match[str]) -> int:
    for name in ("mult", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "mant"):
        if m.group(name) is not None:
            end = m.end(name)
            if name in ("e1", "e2") and end < len(m.string) and m.string[end] == ")":
                end += 1
            return end
    return m.end()


def _joined(vocab: _Vocab, text: str, last_end: int, start: int, pending: list[Any]) -> bool:
    if not pending or last_end < 0 or start - last_end > 12:
        return False
    return bool(vocab.joiner.match(text, last_end, start)) if start > last_end else False
