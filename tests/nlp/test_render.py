"""Tests of nlp.render: the HTML page of a study's extraction (displaCy span views).

Study texts are real registry strings (NCT05830045) plus made-up hostile ones for escaping.
"""

from __future__ import annotations

import html
import re
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nlp.render
from nlp.errors import ResourceError
from nlp.pipeline import Extractor
from nlp.render import DEFAULT_COLOR, load_colors, parse_colors, render_study_html
from nlp.study import Outcome, Study

#: Every span label the components write (nlp/components.py, nlp/design.py, nlp/dose_groups.py).
LABELS = {
    "point", "cycle", "interval", "horizon", "anchor", "endpoint", "category", "criterion", "abbreviation",
    "long_form", "phase", "escalation", "dlt_window", "dlt_rule", "cohort_size", "enrollment", "dose_group",
    "dose_group_count",
}  # fmt: skip

TITLE = "A Phase I Study of QLP2117 in Subjects With Advanced Solid Tumors"

# displaCy's span view: one block per highlighted token holding a slice per span over it, and a labelled
# start marker for each span beginning there.
_TOKEN_OPEN = '<span style="font-weight: bold; display: inline-block; position: relative; height: '
_SLICE = re.compile(r'<span style="background: (#[0-9a-f]{6}); top: \d+px; height: 4px; left')
_START = re.compile(
    r'<span style="background: (#[0-9a-f]{6}); z-index: 10;[^>]*>\n        ([a-z_]+)'
    r"(?:\n <a [^>]*>([^<]*)</a>\n)?\n    </span>"
)

Token = tuple[str, list[str], list[tuple[str, str, str]]]


def _highlighted(page: str) -> list[Token]:
    """(token text, slice colours, [(colour, label, kb id) of spans starting there]) per highlighted token."""
    out: list[Token] = []
    for chunk in page.split(_TOKEN_OPEN)[1:]:
        out.append((chunk.split("\n", 2)[1].strip(), _SLICE.findall(chunk), _START.findall(chunk)))
    return out


def _study(*outcomes: Outcome, title: str = "", study_id: str = "NCT05830045") -> Study:
    return Study(id=study_id, source_format="ctgov", title=title, outcomes=list(outcomes))


ORR = "#ffeb80"
HORIZON = "#feca74"
POINT = "#7aecec"


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            Outcome("primary", "Objective response rate", "", "Up to 12 weeks"),
            [
                ("Objective", [ORR], [(ORR, "endpoint", "objective_response_rate")]),
                ("response", [ORR], []),
                ("rate", [ORR], []),
                ("12", [HORIZON, POINT], [(HORIZON, "horizon", ""), (POINT, "point", "")]),
                ("weeks", [HORIZON, POINT], []),
            ],
        ),
        (
            Outcome("primary", "Objective Response Rate for phase 1b", "", "up to 96 weeks"),
            [
                ("Objective", [ORR], [(ORR, "endpoint", "objective_response_rate")]),
                ("Response", [ORR], []),
                ("Rate", [ORR], []),
                ("96", [HORIZON, POINT], [(HORIZON, "horizon", ""), (POINT, "point", "")]),
                ("weeks", [HORIZON, POINT], []),
            ],
        ),
    ],
    ids=["orr_12_weeks", "orr_96_weeks"],
)
def test_render_highlights_outcome_spans(
    extractor: Extractor, outcome: Outcome, expected: list[Token]
) -> None:
    page = render_study_html(_study(outcome), extractor)
    assert _highlighted(page) == expected
    assert f'<h2 style="margin: 0">Primary outcome 1: {outcome.measure}</h2>' in page


def test_render_page_frame_and_study_doc(extractor: Extractor) -> None:
    page = render_study_html(
        _study(Outcome("primary", "Objective response rate", "", "Up to 12 weeks"), title=TITLE), extractor
    )
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
    assert "<title>NCT05830045</title>" in page
    assert f"<h1>NCT05830045: {TITLE}</h1>" in page
    assert '<h2 style="margin: 0">Study design and dose groups</h2>' in page
    assert _highlighted(page)[-2:] == [
        ("Phase", ["#a5d6a7"], [("#a5d6a7", "phase", "PHASE1")]),
        ("I", ["#a5d6a7"], []),
    ]
    assert page.endswith("</body>\n</html>\n")


def test_render_numbers_outcomes_per_role(extractor: Extractor) -> None:
    study = _study(
        Outcome("primary", "Objective response rate"),
        Outcome("secondary", "Overall survival"),
        Outcome("primary", ""),
    )
    captions = re.findall(r'<h2 style="margin: 0">([^<]*)</h2>', render_study_html(study, extractor))
    assert captions == [
        "Primary outcome 1: Objective response rate",
        "Secondary outcome 1: Overall survival",
        "Primary outcome 2",
    ]


def test_render_escapes_registry_text(extractor: Extractor) -> None:
    study = _study(
        Outcome("primary", "Rate of <b>grade 3</b> & worse", "<img src=x onerror=alert(1)>", "<i>Day 28</i>"),
        title="Evil <script>alert('x')</script>",
        study_id='NCT"<1>',
    )
    page = render_study_html(study, extractor)
    for raw in ("<script", "<b>", "<img", "<i>"):
        assert raw not in page
    assert "<title>NCT&quot;&lt;1&gt;</title>" in page
    assert "<h1>NCT&quot;&lt;1&gt;: Evil &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</h1>" in page
    assert (
        '<h2 style="margin: 0">Primary outcome 1: Rate of &lt;b&gt;grade 3&lt;/b&gt; &amp; worse</h2>' in page
    )


@pytest.mark.parametrize(
    ("title", "expected_h2"),
    [("", []), ("Quality of life questionnaire", ["Study design and dose groups"])],
    ids=["nothing", "title_only"],
)
def test_render_study_without_outcomes(extractor: Extractor, title: str, expected_h2: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # displaCy warns (W117) on a Doc without spans; we must not call it so
        page = render_study_html(_study(title=title), extractor)
    assert re.findall(r'<h2 style="margin: 0">([^<]*)</h2>', page) == expected_h2
    assert ("<p>No outcomes and no study text.</p>" in page) is (not title)
    assert _highlighted(page) == []


def test_render_unknown_label_gets_default_color(
    extractor: Extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nlp.render, "load_colors", lambda: {"point": "#123456"})
    page = render_study_html(
        _study(Outcome("primary", "Objective response rate", "", "Up to 12 weeks")), extractor
    )
    assert _highlighted(page)[3] == (
        "12",
        [DEFAULT_COLOR, "#123456"],
        [(DEFAULT_COLOR, "horizon", ""), ("#123456", "point", "")],
    )


def test_render_colors_cover_every_label() -> None:
    colors = load_colors()
    assert set(colors) == LABELS
    assert len(set(colors.values())) == len(LABELS)


def test_render_parse_colors_skips_doc_key() -> None:
    assert parse_colors({"_doc": "comment", "point": "#ABCdef"}) == {"point": "#ABCdef"}


@pytest.mark.parametrize("value", ["red", "#12345", "#1234567", "#12345g", 7, None, " #123456"])
def test_render_parse_colors_rejects_bad_colour(value: Any) -> None:
    with pytest.raises(ResourceError) as info:
        parse_colors({"point": "#7aecec", "dose_group": value})
    assert info.value.where == "label 'dose_group'"
    assert str(info.value) == (
        f"render_colors.json, label 'dose_group': bad colour {value!r}. "
        'Give the colour as "#rrggbb" (six hex digits, e.g. "#7aecec")'
    )


def test_render_parse_colors_rejects_non_object() -> None:
    with pytest.raises(ResourceError, match=r"^render_colors\.json, top level: not a JSON object\. "):
        parse_colors(["#7aecec"])


def test_render_load_colors_checks_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp.render, "read_json_resource", lambda name: {"endpoint": "#ffeb8"})
    with pytest.raises(ResourceError, match=r"^render_colors\.json, label 'endpoint': bad colour '#ffeb8'\."):
        load_colors.__wrapped__()


@settings(max_examples=30, deadline=None)
@given(measure=st.text(max_size=60), time_frame=st.text(max_size=40), role=st.sampled_from(["primary", ""]))
def test_render_never_raises(extractor: Extractor, measure: str, time_frame: str, role: str) -> None:
    page = render_study_html(_study(Outcome(role, measure, "", time_frame), title=measure), extractor)
    assert isinstance(page, str)
    assert page.startswith("<!DOCTYPE html>")
    assert page.endswith("</html>\n")
    caption = f"{(role or 'other').capitalize()} outcome 1"
    if measure:
        caption += ": " + html.escape(measure)
    assert f'<h2 style="margin: 0">{caption}</h2>' in page
