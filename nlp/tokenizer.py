"""trialsift's tokenizer for registry text, registered so a pipeline's config names it.

The extraction functions work on characters, not tokens: tokens only decide where ``doc.spans`` begin and
end. spaCy's English rule set (exceptions, emoticons, URL matching) costs more than half of the pipeline's
time on registry text and buys nothing here, so this tokenizer keeps just the affix rules that matter for
spans over outcome text: brackets and punctuation split off, hyphens, slashes, operators and
digit/letter boundaries split inside words ("28days" -> "28", "days"; "D90" -> "D", "90").
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import registry

from nlp.errors import ResourceError

RESOURCE = "tokenizer.json"
_KEYS = ("prefix", "suffix", "infix")


@functools.cache
def affix_patterns() -> dict[str, re.Pattern[str]]:
    """The compiled affix rules from ``nlp/resources/tokenizer.json``, validated."""
    raw: Any = json.loads((files("nlp") / "resources" / RESOURCE).read_text(encoding="utf-8"))
    return parse_affix_patterns(raw)


def parse_affix_patterns(raw: Any) -> dict[str, re.Pattern[str]]:
    """Validate and compile affix rules (``{"prefix": regex, "suffix": regex, "infix": regex}``).

    Raises:
        ResourceError: a key is missing or unknown, or a value is not a valid regular expression.
    """
    if not isinstance(raw, dict):
        raise ResourceError(
            RESOURCE, "top level", "expected a JSON object", f"Give the keys {', '.join(_KEYS)}."
        )
    unknown = sorted(k for k in raw if k not in _KEYS and not k.startswith("_"))
    if unknown:
        raise ResourceError(
            RESOURCE,
            f"key {unknown[0]!r}",
            "unknown key",
            f"Allowed keys: {', '.join(_KEYS)} (and _comment).",
        )
    compiled: dict[str, re.Pattern[str]] = {}
    for key in _KEYS:
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise ResourceError(
                RESOURCE, f"key {key!r}", "missing or not a string", "Give a regular expression."
            )
        try:
            compiled[key] = re.compile(value)
        except re.error as err:
            raise ResourceError(
                RESOURCE, f"key {key!r}", f"invalid regular expression ({err})", "Fix the pattern's syntax."
            ) from err
    return compiled


@registry.tokenizers("trialsift.registry_tokenizer.v1")  # type: ignore[untyped-decorator]
def create_registry_tokenizer() -> Callable[[Language], Tokenizer]:
    """Registered tokenizer factory: ``[nlp.tokenizer] @tokenizers = "trialsift.registry_tokenizer.v1"``."""

    def make(nlp: Language) -> Tokenizer:
        patterns = affix_patterns()
        return Tokenizer(
            nlp.vocab,
            prefix_search=patterns["prefix"].search,
            suffix_search=patterns["suffix"].search,
            infix_finditer=patterns["infix"].finditer,
        )

    return make
