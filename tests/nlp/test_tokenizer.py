"""The registry tokenizer: its affix rules, and their validation on load."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st

from nlp.errors import ResourceError
from nlp.tokenizer import parse_affix_patterns


@functools.cache
def _tokenizer() -> Any:
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "trialsift.registry_tokenizer.v1"}}})
    return nlp.tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return _tokenizer()


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (
            "Safety：Incidence of Dose Limiting Toxicity (DLT)",
            ["Safety", "：", "Incidence", "of", "Dose", "Limiting", "Toxicity", "(", "DLT", ")"],
        ),
        ("AUC 0-D90", ["AUC", "0", "-", "D", "90"]),
        ("12×10^8 CAR-T cells", ["12", "×", "10", "^", "8", "CAR", "-", "T", "cells"]),
        ("Up to 28days post-dose.", ["Up", "to", "28", "days", "post", "-", "dose", "."]),
        ("Cycle 1 Day 1, 8, 15", ["Cycle", "1", "Day", "1", ",", "8", ",", "15"]),
        ("RECIST v1.1", ["RECIST", "v", "1.1"]),
        ("≤1/6", ["≤", "1", "/", "6"]),
    ],
)
def test_tokenizer_splits_registry_text(tokenizer: Any, text: str, tokens: list[str]) -> None:
    assert [t.text for t in tokenizer(text)] == tokens


@given(st.text(max_size=200))
def test_tokenizer_keeps_every_character(text: str) -> None:
    assert _tokenizer()(text).text == text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "tokenizer.json, top level: expected a JSON object. Give the keys prefix, suffix, infix."),
        (
            {"prefix": "a", "suffix": "b", "infix": "c", "suffixes": "d"},
            "tokenizer.json, key 'suffixes': unknown key. "
            "Allowed keys: prefix, suffix, infix (and _comment).",
        ),
        (
            {"prefix": "a", "suffix": "b"},
            "tokenizer.json, key 'infix': missing or not a string. Give a regular expression.",
        ),
        (
            {"prefix": "(", "suffix": "b", "infix": "c"},
            "tokenizer.json, key 'prefix': invalid regular expression (missing ), unterminated subpattern at "
            "position 0). Fix the pattern's syntax.",
        ),
    ],
)
def test_tokenizer_rules_validated_with_fix(raw: Any, message: str) -> None:
    with pytest.raises(ResourceError) as exc:
        parse_affix_patterns(raw)
    assert str(exc.value) == message
