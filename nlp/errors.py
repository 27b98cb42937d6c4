"""trialsift's error catalogue: every error says what went wrong and how to fix it."""

from __future__ import annotations


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
