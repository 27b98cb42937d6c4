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
    """A record could not be read. ``source`` is the file (or ``<stdin>``, ``<record>``), ``line`` 1-based.

    ``id`` is the study's id when it was read but could not be extracted.
    """

    def __init__(self, source: str, line: int | None, reason: str, id: str | None = None) -> None:
        self.source, self.line, self.reason, self.id = source, line, reason, id
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[RecordError], tuple[str, int | None, str, str | None]]:
        # Pickled between bulk-annotation processes; the default would pass only the message.
        return (RecordError, (self.source, self.line, self.reason, self.id))

    def to_json(self) -> dict[str, str | int | None]:
        """The error as one line of an errors file: ``{"source", "line", "id", "reason"}``."""
        return {"source": self.source, "line": self.line, "id": self.id, "reason": self.reason}

    @classmethod
    def from_json(cls, obj: dict[str, str | int | None]) -> RecordError:
        """The error :meth:`to_json` wrote (errors travel as JSON between processes and machines)."""
        line, error_id = obj.get("line"), obj.get("id")
        return cls(
            str(obj["source"]),
            None if line is None else int(line),
            str(obj["reason"]),
            None if error_id is None else str(error_id),
        )
