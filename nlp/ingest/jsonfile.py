"""API v2 JSON files: one study, a list of studies, a page ``{"studies": [...]}``, or JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from nlp.errors import RecordError
from nlp.ingest._common import finish
from nlp.ingest.apiv2 import _kind, study_from_apiv2
from nlp.study import Study

_DECODER: Final = json.JSONDecoder()
_WS: Final = " \t\n\r"


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _array_items(text: str, i: int) -> Iterator[tuple[int, Any]]:
    """(start offset, value) of each element of the JSON array starting at ``text[i] == "["``.

    Only called on text json.loads has accepted, so the grammar needs no checking here.
    """
    i = _skip_ws(text, i + 1)
    while i < len(text) and text[i] != "]":
        value, end = _DECODER.raw_decode(text, i)
        yield i, value
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)


def _page_studies_offset(text: str, i: int) -> int | None:
    """Offset of the ``"studies"`` array in the JSON object starting at ``text[i] == "{"``."""
    i = _skip_ws(text, i + 1)
    while i < len(text) and text[i] == '"':
        key, end = _DECODER.raw_decode(text, i)
        i = _skip_ws(text, _skip_ws(text, end) + 1)  # past the colon
        if key == "studies" and text[i] == "[":
            return i
        _, end = _DECODER.raw_decode(text, i)
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
    return None


def is_page(value: object) -> bool:
    """Whether ``value`` is an API v2 page (``{"studies": [...], "nextPageToken": ...}``)."""
    return (
        isinstance(value, dict) and "protocolSection" not in value and isinstance(value.get("studies"), list)
    )


_NOT_A_STUDY: Final = (
    'expected an API v2 study (an object with "protocolSection"), a list of studies or a page '
    '{{"studies": [...]}}, found {found}'
)


def _found(value: object) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:8])
        return f"an object with keys: {keys}" if keys else "an empty object"
    return _kind(value)


def _records(value: Any, text: str | None, offset: int, line: int) -> list[tuple[int, Any]]:
    """The study records a parsed JSON value holds, each with its 1-based start line.

    ``text``/``offset`` locate the value in its document so that list elements get their own lines;
    without them (JSON Lines) every record gets ``line``.
    """
    if isinstance(value, list):
        items: Iterable[tuple[int, Any]] = (
            _array_items(text, offset) if text is not None else ((offset, v) for v in value)
        )
    elif is_page(value):
        at = _page_studies_offset(text, offset) if text is not None else None
        items = (
            _array_items(text, at)
            if text is not None and at is not None
            else ((offset, v) for v in value["studies"])
        )
    else:
        return [(line, value)]
    if text is None:
        return [(line, v) for _, v in items]
    out: list[tuple[int, Any]] = []
    last, last_line = offset, line
    for start, v in items:
        last_line += text.count("\n", last, start)
        last = start
        out.append((last_line, v))
    return out


def _study(value: Any, source: str, line: int, several: bool) -> Study | RecordError:
    if isinstance(value, dict) and "protocolSection" not in value:
        return RecordError(source, line, _NOT_A_STUDY.format(found=_found(value)))
    try:
        return finish(study_from_apiv2(value, source, line), source, line, several)
    except RecordError as err:
        return err


def _json_error(err: json.JSONDecodeError | RecursionError, whole: bool) -> str:
    if isinstance(err, RecursionError):
        return "not readable JSON: nested too deeply for the parser"
    if not whole:
        return f"not valid JSON: {err.msg} at column {err.colno}"
    reason = f"not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
    if err.pos >= len(err.doc.rstrip()) or err.msg.startswith("Unterminated string"):
        reason += "; the document ends before it is complete (truncated?)"
    return reason


def read_json_document(text: str, source: str) -> Iterator[Study | RecordError]:
    """Read a whole JSON document (one study, a list, a page); falls back to JSON Lines when it is one."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        lines = text.splitlines()
        if sum(1 for ln in lines if ln.strip()) > 1 and _any_line_is_json(lines[1:]):
            yield from read_json_lines(((i + 1, ln) for i, ln in enumerate(lines)), source)
        else:
            yield RecordError(source, 1, _json_error(err, whole=True))
        return
    start = _skip_ws(text.lstrip("\ufeff"), 0) + (1 if text.startswith("\ufeff") else 0)
    records = _records(value, text, start, text.count("\n", 0, start) + 1)
    if not records:
        yield RecordError(source, 1, "no studies: the JSON list is empty")
    several = len(records) > 1
    for line, record in records:
        yield _study(record, source, line, several)


def _any_line_is_json(lines: list[str]) -> bool:
    for ln in lines[:50]:
        s = ln.strip()
        if s.startswith(("{", "[")):
            try:
                json.loads(s)
            except (json.JSONDecodeError, RecursionError):
                continue
            return True
    return False


@dataclass(frozen=True, slots=True)
class JsonLine:
    """One JSON Lines record, read but not yet parsed.

    Bulk annotation ships these to worker processes, so the parsing (JSON, and resplitting outcomes the
    registry joined) runs in parallel with the extraction instead of in the process reading the file.
    """

    source: str
    line: int
    text: str
    several: bool

    def parse(self) -> list[Study | RecordError]:
        """The record's studies (a line may hold a list or page of them), or why it cannot be read."""
        return list(_json_line(self.line, self.text, self.source, self.several))

    def peek_id(self) -> str | None:
        """The NCT id of a one-study line without reading the rest of the study; None when it takes more.

        Resuming a bulk run must tell the studies already annotated from the new ones, and a full parse
        (which resplits outcomes the registry joined) costs ten times a JSON decode.
        """
        try:
            value = json.loads(self.text)
        except (json.JSONDecodeError, RecursionError):
            return None
        section = value.get("protocolSection") if isinstance(value, dict) else None
        ident = section.get("identificationModule") if isinstance(section, dict) else None
        nct = ident.get("nctId") if isinstance(ident, dict) else None
        return nct.strip() or None if isinstance(nct, str) else None


def read_json_lines_deferred(
    lines: Iterable[tuple[int, str | RecordError]], source: str
) -> Iterator[JsonLine | RecordError]:
    """Like :func:`read_json_lines`, leaving each record unparsed: a :class:`JsonLine` per non-blank line.

    A record's fallback id depends on whether the file holds several records, so each line is held back
    until the next one is seen.
    """
    pending: list[tuple[int, str | RecordError]] = []
    several = False
    for number, raw in lines:
        if isinstance(raw, str) and not raw.strip():
            continue
        pending.append((number, raw))
        if len(pending) > 1:
            several = True
            yield _deferred(*pending.pop(0), source, several)
    for number, raw in pending:
        yield _deferred(number, raw, source, several)


def _deferred(number: int, raw: str | RecordError, source: str, several: bool) -> JsonLine | RecordError:
    return raw if isinstance(raw, RecordError) else JsonLine(source, number, raw, several)


def read_json_lines(
    lines: Iterable[tuple[int, str | RecordError]], source: str
) -> Iterator[Study | RecordError]:
    """Read JSON Lines: each non-blank line one study (or a list or page of them).

    Args:
        lines: (1-based line number, line text or the error that made it unreadable) pairs.
        source: the file, for messages.

    Yields:
        A Study or a RecordError per record; a bad line does not stop the file.
    """
    yield from parsed(read_json_lines_deferred(lines, source))


def parsed(items: Iterable[Study | RecordError | JsonLine]) -> Iterator[Study | RecordError]:
    """``items`` with every :class:`JsonLine` parsed into its studies (or why it cannot be read), in order."""
    for item in items:
        if isinstance(item, JsonLine):
            yield from item.parse()
        else:
            yield item


def _json_line(number: int, raw: str, source: str, several: bool) -> Iterator[Study | RecordError]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as err:
        yield RecordError(source, number, _json_error(err, whole=False))
        return
    records = _records(value, None, 0, number)
    if not records:
        yield RecordError(source, number, "no studies: the JSON list is empty")
    for line, record in records:
        yield _study(record, source, line, several or len(records) > 1)
