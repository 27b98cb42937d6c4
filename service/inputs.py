"""Request bodies to :class:`~nlp.study.Study` objects: pure functions, each bad input a precise message."""

from __future__ import annotations

from typing import Any

from nlp.errors import RecordError, TrialsiftError
from nlp.ingest import read_bytes, read_record, read_text
from nlp.ingest._common import find_nct
from nlp.study import Study, study_texts


class InputError(TrialsiftError, ValueError):
    """A request body that cannot be read as a study; the message says which field and why."""


def study_from_text(text: str, study_id: str | None, *, need_id: bool = False) -> Study:
    """A seed-layout record or protocol text; its id is ``study_id``, else the NCT id the text names."""
    if not text.strip():
        raise InputError("`text` is empty")
    found = study_id or find_nct(text)
    if found is None and need_id:
        raise InputError("`text` names no NCT id: give the study's id in `id`")
    study = read_text(text, found or "text")
    study.id = found or "text"
    study.origin = "request"
    return study


def study_from_record(record: Any, where: str = "`record`") -> Study:
    """A ClinicalTrials.gov API v2 study object."""
    try:
        study = read_record(record, source="request")
    except RecordError as err:
        raise InputError(f"{where}: {err.reason}") from None
    return study


def study_from_item(item: dict[str, Any] | str, where: str) -> tuple[Study, int | None]:
    """One ``/v1/extract/batch`` item (a string of text, ``{"text", "id"}``, or an API v2 study object), and
    the length of its text when it is text (see :func:`check_length`)."""
    if isinstance(item, str):
        return _text_item(item, None, where), len(item)
    if "text" in item and "protocolSection" not in item:
        unknown = sorted(set(item) - {"text", "id"})
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; a text item has `text` and `id`")
        text, study_id = item["text"], item.get("id")
        if not isinstance(text, str):
            raise InputError(f"{where}.text: expected a string, got {type(text).__name__}")
        if study_id is not None and (not isinstance(study_id, str) or not study_id.strip()):
            raise InputError(f"{where}.id: expected a non-empty string")
        return _text_item(text, study_id, where), len(text)
    return study_from_record(item, where), None


def _text_item(text: str, study_id: str | None, where: str) -> Study:
    try:
        return study_from_text(text, study_id)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def studies_from_upload(data: bytes, filename: str) -> list[Study | RecordError]:
    """Every record of an uploaded file, in any format ``trialsift annotate`` reads (plain or gzipped)."""
    if not data:
        raise InputError(f"uploaded file {filename!r} is empty")
    return list(read_bytes(data, filename))


def text_length(study: Study) -> int:
    """Characters of text the study carries (prose fields and outcome texts)."""
    total = sum(len(text) for _, text in study_texts(study))
    total += sum(len(o.measure) + len(o.description) + len(o.time_frame) for o in study.outcomes)
    return total


def check_length(study: Study, limit: int, where: str, text_chars: int | None = None) -> None:
    """Refuse a study longer than ``limit`` characters, saying by how much.

    Args:
        text_chars: the length of the text a study was read from, when it was text: the reader may place
            a line in two fields (a synopsis' first line is its title and part of its description), so the
            text itself is what is measured.
    """
    n = text_length(study) if text_chars is None else text_chars
    if n > limit:
        raise InputError(
            f"{where}: study {study.id!r} has {n:,} characters of text; the limit is {limit:,} "
            "(TRIALSIFT_MAX_TEXT_CHARS)"
        )


def describe_errors(errors: Any) -> str:
    """FastAPI's validation errors as one line per problem: ``body.filters.phase[0]: message``."""
    lines = []
    for err in errors:
        loc = ""
        for part in err.get("loc", ()):
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "json_invalid":
            # FastAPI's location is (body, character offset): say so, with the parser's reason.
            where = err.get("loc", ("body", "?"))
            reason = (err.get("ctx") or {}).get("error", "")
            lines.append(
                f"body: not valid JSON at character {where[-1]}" + (f" ({reason})" if reason else "")
            )
            continue
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)
