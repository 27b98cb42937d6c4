"""A study's extraction as one HTML page: each outcome's text and the study's prose with the extracted values
underlined and labelled by spaCy's displaCy (style ``"span"``, the spans in ``doc.spans[SPANS_KEY]``).

Label colours are data: ``resources/render_colors.json`` (``{label: "#rrggbb"}``); other labels are grey.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any, Final

from spacy import displacy
from spacy.tokens import Doc

from nlp.components import SPANS_KEY
from nlp.errors import ResourceError
from nlp.pipeline import Extractor, make_outcome_doc, make_study_doc
from nlp.resource_files import read_json_resource
from nlp.study import Study

_FILE: Final = "render_colors.json"
_HEX: Final = re.compile(r"#[0-9a-fA-F]{6}")
#: The colour of a label missing from the colour file.
DEFAULT_COLOR: Final = "#dddddd"

_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
</head>
<body style="font-size: 16px; font-family: -apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, \
Arial, sans-serif; padding: 2rem; max-width: 70rem">
<h1>{heading}</h1>
{content}
</body>
</html>
"""


def parse_colors(data: Any) -> dict[str, str]:
    """Validate the decoded ``render_colors.json``.

    Args:
        data: the decoded JSON: an object mapping span labels to ``"#rrggbb"`` (``_doc`` is a comment).

    Returns:
        The label -> colour mapping.

    Raises:
        ResourceError: the top level is not an object, or a colour is not ``"#rrggbb"``.
    """
    if not isinstance(data, dict):
        raise ResourceError(
            _FILE, "top level", "not a JSON object", 'Use an object mapping labels to "#rrggbb" colours'
        )
    colors: dict[str, str] = {}
    for label, value in data.items():
        if label == "_doc":
            continue
        if not isinstance(value, str) or _HEX.fullmatch(value) is None:
            raise ResourceError(
                _FILE,
                f"label {label!r}",
                f"bad colour {value!r}",
                'Give the colour as "#rrggbb" (six hex digits, e.g. "#7aecec")',
            )
        colors[label] = value
    return colors


@functools.cache
def load_colors() -> dict[str, str]:
    """The label colours of ``nlp/resources/render_colors.json``, read and checked once.

    Raises:
        ResourceError: the file is missing, not JSON, or holds a bad colour.
    """
    return parse_colors(read_json_resource(_FILE))


def _parsed(doc: Doc, title: str, options: dict[str, Any]) -> dict[str, Any]:
    """displaCy's manual input for one Doc, with everything displaCy writes unescaped escaped here.

    displaCy escapes the token text but not the title, the span labels or the kb ids; the title is the
    registry's own text ("<script>" in a measure must stay text).
    """
    if doc.spans.get(SPANS_KEY):
        parsed: dict[str, Any] = displacy.parse_spans(doc, options)
        for span in parsed["spans"]:
            span["label"] = html.escape(span["label"])
            span["kb_id"] = html.escape(span["kb_id"])
    else:
        # parse_spans warns (W117) on a Doc without spans; an outcome with nothing found is normal.
        parsed = {
            "text": doc.text,
            "tokens": [t.text for t in doc],
            "spans": [],
            "settings": {"lang": doc.lang_, "direction": "ltr"},
        }
    parsed["title"] = html.escape(title)
    return parsed


def render_study_html(study: Study, extractor: Extractor) -> str:
    """A self-contained HTML page showing what was extracted from one study.

    One displaCy span view per outcome (captioned "Primary outcome 1: <measure>"), then one of the study's
    prose fields (design facts, dose groups) when it has any.

    Args:
        study: the study to show.
        extractor: supplies the outcome pipeline (``.nlp``) and the study pipeline (``.study_nlp``).

    Returns:
        The page, a ``str`` starting with ``<!DOCTYPE html>``; all registry text in it is HTML-escaped.
    """
    colors = load_colors()
    options: dict[str, Any] = {"spans_key": SPANS_KEY}
    nlp = extractor.nlp
    outcome_docs = nlp.pipe(
        make_outcome_doc(nlp, o.measure, o.description, o.time_frame) for o in study.outcomes
    )
    parsed: list[dict[str, Any]] = []
    per_role: dict[str, int] = {}
    for outcome, doc in zip(study.outcomes, outcome_docs, strict=True):
        n = per_role[outcome.role] = per_role.get(outcome.role, 0) + 1
        caption = f"{(outcome.role or 'other').capitalize()} outcome {n}"
        parsed.append(_parsed(doc, f"{caption}: {outcome.measure}" if outcome.measure else caption, options))
    study_doc = extractor.study_nlp(make_study_doc(extractor.study_nlp, study))
    if study_doc.text.strip():
        parsed.append(_parsed(study_doc, "Study design and dose groups", options))
    # Every label gets a colour of ours: displaCy's own defaults would colour a label that happens to
    # share a name with one of spaCy's entity types ("date", "time").
    labels = {span["label"] for p in parsed for span in p["spans"]}
    options["colors"] = {label: colors.get(label, DEFAULT_COLOR) for label in labels}
    content = (
        displacy.render(parsed, style="span", options=options, manual=True, page=False, jupyter=False)
        if parsed
        else "<p>No outcomes and no study text.</p>"
    )
    heading = f"{study.id}: {study.title}" if study.title else study.id
    return _PAGE.format(title=html.escape(study.id), heading=html.escape(heading), content=content)
