"""trialsift's error catalogue: every error says what went wrong and how to fix it."""

from __future__ import annotations

import re


class TrialsiftError(Exception):
    """Base class of every error trialsift raises on purpose."""


class ResourceError(TrialsiftError):
    """A bundled rule or vocabulary file is malformed.

    The message names the resource, the line or entry, and what a valid entry looks like.
    """

    def __init__(self, resource: str, where: str, problem: str, fix: str) -> None:
        self.resource, self.where, self.problem, self.fix = resource, where, problem, fix
        super().__init__(f"{resource}, {where}: {problem}. {fix}")


class RecordError(TrialsiftError):
    """A record could not be read. ``source`` is the file (or ``<stdin>``, ``<record>``), ``line`` 1-based."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


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
