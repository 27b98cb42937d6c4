"""Reading and checking the rule and vocabulary files in ``nlp/resources/``: one place for the checks every
loader makes, so each file's errors read the same way."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

from nlp.errors import ResourceError


def read_json_resource(name: str, *, shown_as: str | None = None) -> Any:
    """The parsed JSON of ``nlp/resources/<name>``.

    Args:
        name: the file's name in ``nlp/resources/``.
        shown_as: how messages name the file (default ``name``).

    Raises:
        ResourceError: the file cannot be read, or is not valid JSON (the message gives the line).
    """
    label = shown_as or name
    try:
        text = (files("nlp") / "resources" / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ResourceError(
            label, "file", f"cannot be read ({exc})", "Reinstall trialsift or restore nlp/resources"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResourceError(
            label, f"line {exc.lineno}", f"invalid JSON ({exc.msg})", "Fix the JSON syntax"
        ) from None


def checked_pattern(resource: str, where: str, pattern: object) -> str:
    """``pattern`` when it is a non-empty, valid regular expression; else a ResourceError saying so.

    Args:
        resource: the resource file's name, for the message.
        where: the entry in it ("key 'label'", "units[0]").
        pattern: the value read from the file.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ResourceError(
            resource, where, "not a non-empty string", "Give a regular expression as a JSON string"
        )
    try:
        re.compile(pattern)
    except re.error as err:
        raise ResourceError(
            resource, where, f"bad regular expression ({err})", "Fix the pattern (escape backslashes twice)"
        ) from None
    return pattern
