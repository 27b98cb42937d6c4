"""Shared checks of the files in nlp/resources/."""

from __future__ import annotations

import pytest

from nlp.errors import ResourceError
from nlp.resource_files import checked_pattern, read_json_resource


def test_resource_files_read_json_resource_parses_a_bundled_file() -> None:
    data = read_json_resource("tokenizer.json")
    assert set(data) == {"_comment", "prefix", "suffix", "infix"}


def test_resource_files_missing_file_says_how_to_fix() -> None:
    with pytest.raises(ResourceError) as exc:
        read_json_resource("missing.json", shown_as="nlp/resources/missing.json")
    message = str(exc.value)
    assert message.startswith("nlp/resources/missing.json, file: cannot be read (")
    assert message.endswith("). Reinstall trialsift or restore nlp/resources")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "x.json, key 'k': not a non-empty string. Give a regular expression as a JSON string"),
        (3, "x.json, key 'k': not a non-empty string. Give a regular expression as a JSON string"),
        (
            "(a",
            "x.json, key 'k': bad regular expression (missing ), unterminated subpattern at position 0). "
            "Fix the pattern (escape backslashes twice)",
        ),
    ],
)
def test_resource_files_checked_pattern_rejects_with_fix(pattern: object, message: str) -> None:
    with pytest.raises(ResourceError) as exc:
        checked_pattern("x.json", "key 'k'", pattern)
    assert str(exc.value) == message


def test_resource_files_checked_pattern_returns_valid_pattern() -> None:
    assert checked_pattern("x.json", "key 'k'", r"\bdose\b") == r"\bdose\b"
