"""Read every supported input format into the one ``nlp.study.Study`` model.

Formats are detected from content, not file names: API v2 JSON (one study, a list, a page
``{"studies": [...]}`` or JSON Lines), the registry website's CSV export, the legacy XML
(``<clinical_study>``), the seed layout and plain protocol text; any of them may be gzipped.
Readers never raise on bad input and never skip silently: every record that cannot be read comes out
as a ``RecordError`` naming the file, the line where the record starts, and what was expected.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Final, Literal, overload

from nlp.errors import RecordError
from nlp.ingest._common import fallback_id, finish
from nlp.ingest.apiv2 import study_from_apiv2
from nlp.ingest.csv_export import read_csv_export
from nlp.ingest.detect import EXPECTED, GZIP_MAGIC, Format, binary_reason, detect
from nlp.ingest.jsonfile import (
    JsonLine,
    parsed,
    read_json_document,
    read_json_lines,
    read_json_lines_deferred,
)
from nlp.ingest.legacy_xml import read_legacy_xml
from nlp.ingest.parquetfile import MAGIC as PARQUET_MAGIC
from nlp.ingest.parquetfile import read_parquet
from nlp.ingest.text import study_from_text
from nlp.study import Study

__all__ = [
    "Format",
    "JsonLine",
    "RecordError",
    "parsed",
    "read_bytes",
    "read_path",
    "read_record",
    "read_stream",
    "read_text",
]

_HEAD: Final = 65536


def read_record(obj: object, source: str = "<record>") -> Study:
    """Read one parsed API v2 study object.

    Args:
        obj: e.g. ``json.loads(line)`` of one study.
        source: where it came from, for ``origin`` and messages.

    Returns:
        The Study (``origin`` is ``source``).

    Raises:
        RecordError: when ``obj`` is not an API v2 study, saying what was found instead.
    """
    study = study_from_apiv2(obj, source, None)
    study.origin = source
    if not study.id:
        study.id = fallback_id(source, 1, several=False)
    return study


def read_text(text: str, name: str) -> Study:
    """Read a seed record or a protocol synopsis, whichever ``text`` is.

    Args:
        text: the record's text.
        name: its file name (or any name); the stem becomes the id.

    Returns:
        The Study.
    """
    study = study_from_text(text, fallback_id(name, 1, several=False))
    study.origin = f"{name}:1"
    return study


def _decode(data: bytes, source: str) -> str | RecordError:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return RecordError(source, line, f"not UTF-8 text (byte 0x{data[err.start]:02x}), {EXPECTED}")


def _lines(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """The lines of ``head`` followed by the rest of ``stream``."""
    lines = head.split(b"\n")
    partial = lines.pop()
    for line in lines:
        yield line + b"\n"
    for line in stream:
        yield partial + line
        partial = b""
    if partial:
        yield partial


def _json_lines(head: bytes, stream: BinaryIO, source: str) -> Iterator[tuple[int, str | RecordError]]:
    for number, raw in enumerate(_lines(head, stream), start=1):
        try:
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            reason = f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            yield number, RecordError(source, number, reason)


def _is_complete_json_line(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _read_stream(stream: BinaryIO, source: str, defer: bool) -> Iterator[Study | RecordError | JsonLine]:
    """Detect the format of a (decompressed) byte stream and read its records."""
    head = stream.read(_HEAD)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        yield RecordError(source, None, f"empty file: {EXPECTED}")
        return
    if head.startswith(PARQUET_MAGIC):
        # Parquet's index is at its end: the file is read whole, then decoded a batch of rows at a time.
        yield from read_parquet(head + stream.read(), source, defer)
        return
    reason = binary_reason(head)
    if reason is not None:
        yield RecordError(source, 1, reason)
        return
    fmt = detect(head[:8192].decode("utf-8", errors="replace"))
    first_line = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    if fmt is Format.JSON and b"\n" in head.strip() and _is_complete_json_line(first_line):
        # JSON Lines: streamed, so a whole corpus never has to fit in memory.
        lines = _json_lines(head, stream, source)
        yield from read_json_lines_deferred(lines, source) if defer else read_json_lines(lines, source)
        return
    data = head + stream.read()
    if fmt is Format.XML:
        yield from read_legacy_xml(data, source)
        return
    text = _decode(data, source)
    if isinstance(text, RecordError):
        yield text
        return
    if fmt is Format.JSON:
        yield from read_json_document(text, source)
    elif fmt is Format.CSV:
        yield from read_csv_export(text, source)
    else:
        yield finish(study_from_text(text, ""), source, 1, several=False)


def _guarded(stream: BinaryIO, source: str, defer: bool) -> Iterator[Study | RecordError | JsonLine]:
    """Read a stream; a corrupt compressed stream becomes one last RecordError."""
    try:
        yield from _read_stream(stream, source, defer)
    except (OSError, EOFError, zlib.error) as err:
        yield RecordError(source, None, f"cannot decompress: {err} (a damaged or truncated .gz file?)")


def read_bytes(data: bytes, name: str) -> Iterator[Study | RecordError]:
    """Read uploaded content, detecting compression and format as ``read_path`` does.

    Args:
        data: the content (plain or gzipped).
        name: its file name, for ids and messages.

    Yields:
        A Study or a RecordError per record, in file order.
    """
    yield from read_stream(io.BufferedReader(io.BytesIO(data)), name)


@overload
def read_stream(
    stream: io.BufferedIOBase, source: str, *, defer: Literal[False] = ...
) -> Iterator[Study | RecordError]: ...
@overload
def read_stream(
    stream: io.BufferedIOBase, source: str, *, defer: bool
) -> Iterator[Study | RecordError | JsonLine]: ...
def read_stream(
    stream: io.BufferedIOBase, source: str, *, defer: bool = False
) -> Iterator[Study | RecordError | JsonLine]:
    """Read a binary stream (plain or gzipped: told by its first bytes), whatever supported format it holds.

    Args:
        stream: a buffered binary stream, e.g. ``sys.stdin.buffer`` or a file opened ``"rb"``; it is
            read to its end and not closed.
        source: its name, for ids and messages (``<stdin>``).
        defer: leave JSON Lines records unparsed (:class:`JsonLine`; call ``.parse()``), so that a bulk
            run can parse them in its worker processes.

    Yields:
        A Study or a RecordError per record (or a JsonLine, with ``defer``), in stream order. Never
        raises on bad content.
    """
    raw: BinaryIO = stream  # type: ignore[assignment]
    if stream.peek(2)[:2] == GZIP_MAGIC:  # type: ignore[attr-defined]
        raw = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    items = _guarded(raw, source, defer)
    yield from (items if defer else parsed(items))


def read_path(path: str | os.PathLike[str]) -> Iterator[Study | RecordError]:
    """Read one file (plain or gzipped: told by its magic bytes), whatever supported format it holds.

    Args:
        path: the file.

    Yields:
        A Study or a RecordError per record, in file order. Never raises on bad content; an unreadable
        file gives one RecordError.
    """
    source = os.fspath(path)
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed in the finally below, after the generator ends
    except OSError as err:
        yield RecordError(source, None, f"cannot open: {err.strerror or err}")
        return
    try:
        yield from read_stream(handle, source)
    finally:
        handle.close()
