"""Tests of nlp.doses: real dose strings from registry records (pasted), offsets, properties."""

from __future__ import annotations

import importlib.resources
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp import doses
from nlp.doses import UNITS, parse_doses
from nlp.errors import ResourceError

# (text as found in ctgov records, expected [(value, unit)] in order)
REAL = [
    (
        "with two dose groups of 12×10\\^8 CAR-T cells and 20×10\\^8 CAR-T cells.",
        [(1200000000.0, "cells"), (2000000000.0, "cells")],
    ),
    ("The planned doses are 1.0×10\\^8 CAR gdT", [(100000000.0, "cells")]),
    ("a starting dose of 1 ×106. The data", [(1000000.0, "cells")]),
    ("1 x 106 transduced T cells/kg", [(1000000.0, "cells/kg")]),
    ("3 x 106 transduced T cells/kg", [(3000000.0, "cells/kg")]),
    ("receive 1x10e7 CAR T cell", [(10000000.0, "cells")]),
    ("1 x 10e6/kg", [(1000000.0, "cells/kg")]),
    ("1×10⁷ cells/dose", [(10000000.0, "cells")]),
    ("6× 10\\^7 CAR+cells", [(60000000.0, "cells")]),
    ("1.0 × 108", [(100000000.0, "cells")]),
    ("5×10\\^4 /kg", [(50000.0, "cells/kg")]),
    ("PM1009 120 mg", [(120.0, "mg")]),
    ("4.5 mg/sq m", [(4.5, "mg/m2")]),
    ("2 mg/m²/dose", [(2.0, "mg/m2")]),
    ("1.2 μg/kg/dose", [(1.2, "ug/kg")]),
    ("Cohort A1: 25 mg/m2/day", [(25.0, "mg/m2")]),
    ("Cohort C2: 5-AC 12.5mg/m2/day", [(12.5, "mg/m2")]),
    ("rhIL-12 4 mcg", [(4.0, "ug")]),
    ("interleukin-2 (600,000 or 720,000 IU/kg every 8 h", [(600000.0, "IU/kg"), (720000.0, "IU/kg")]),
    ("known nodal disease received 60 Gy at 2.0 Gy", [(60.0, "Gy"), (2.0, "Gy")]),
    ("2mg/kg -5 to -4, Flu 30mg/m2 -12 to -9", [(2.0, "mg/kg"), (30.0, "mg/m2")]),
    ("pants will receive omalizumab 8 mg/kg monthly", [(8.0, "mg/kg")]),
    (": AraC 2g/m2, q12h, 1-2, Dex: 10mg/m2, 1-2", [(2.0, "g"), (10.0, "mg/m2")]),
    ("Cohort 2 Group 4: 0.22 mg/kg SQ dose", [(0.22, "mg/kg")]),
    ("WBRT to 37.5 Gy/15 fractions", [(37.5, "Gy")]),
    ("fluticasone/salmeterol 250/25 mcg", [(250.0, "ug"), (25.0, "ug")]),
    ("500 mcg of CI daily", [(500.0, "ug")]),
    ("given at a dose of 2000 mg/m2 in NS IV", [(2000.0, "mg/m2")]),
    ("Ketamine group: 0.25 mg/kg Ketamine", [(0.25, "mg/kg")]),
    ("Nivolumab 4.5 mg/kg every 3 weeks", [(4.5, "mg/kg")]),
    ("6 x 10^9 cells/dose on", [(6000000000.0, "cells")]),
    ("0.5 x 10\\^6 CAR+ T cells/kg", [(500000.0, "cells/kg")]),
    ("2 x 10\\^11 PFU", [(200000000000.0, "PFU")]),
    ("venetoclax 200 mg adult equivalent dose", [(200.0, "mg")]),
    ("10 x 10e6/kg", [(10000000.0, "cells/kg")]),
    ("30mg/QW", [(30.0, "mg")]),
    ("3.0 × 10\\^8", [(300000000.0, "cells")]),
    (
        "cyclophosphamide 60mg/kg day -7, intravenous infusion of fludarabine 25mg/㎡/day",
        [(60.0, "mg/kg"), (25.0, "mg/m2")],
    ),
    (
        "0.25 mg/kg, 1 mg/kg, 2.5 mg/kg, 5 mg/kg, 10 mg/kg and 15 mg/kg",
        [(0.25, "mg/kg"), (1.0, "mg/kg"), (2.5, "mg/kg"), (5.0, "mg/kg"), (10.0, "mg/kg"), (15.0, "mg/kg")],
    ),
    (
        "18mg, 60mg, 180mg, 600mg and 1800mg",
        [(18.0, "mg"), (60.0, "mg"), (180.0, "mg"), (600.0, "mg"), (1800.0, "mg")],
    ),
    ("1, 3 and 10 mg/kg", [(1.0, "mg/kg"), (3.0, "mg/kg"), (10.0, "mg/kg")]),
    # decimal commas (NCT records written with European number style)
    ("Velcade: 1,3 mg/m2", [(1.3, "mg/m2")]),
    ("ants in this arm will be given 3,5mg", [(3.5, "mg")]),
    ("ysiologic saline i.v. or i.m. (62,5 mg", [(62.5, "mg")]),
    ("1,000 mg", [(1000.0, "mg")]),
    # a day or week number is not a member of the dose list that follows it (NCT00491855, NCT05813925)
    (
        "110 mg/m^2 given continuous infusion on day 1 and 30 mg/m^2 given",
        [(110.0, "mg/m2"), (30.0, "mg/m2")],
    ),
    ("0.25 mg of semaglutide from weeks 0-4, 0.5 mg of cagrilintide", [(0.25, "mg"), (0.5, "mg")]),
    ("Dose Level 2 Day 29-56 600 mg b.i.d. Dose Level 3 Day 57- 800 mg", [(600.0, "mg"), (800.0, "mg")]),
    # drug codes and concentrations are not doses (NCT06959615, NCT05522816)
    ("Advanced Solid Tumors: JAB-23E73 in Patients", []),
    ("KX01 0.1% (0.1 mg/g)", []),
    ("0.5-2 mg/kg", [(0.5, "mg/kg"), (2.0, "mg/kg")]),
    ("1.0E+08 cells", [(100000000.0, "cells")]),
    ("2 × 10*6 NK cells/kg", [(2000000.0, "cells/kg")]),
    ("1.2 x 10e9 cells", [(1200000000.0, "cells")]),
    ("5 x 10^12 vg/kg", [(5000000000000.0, "vg/kg")]),
    ("1000 IU/m2", [(1000.0, "IU")]),
    ("platelets ≥ 100 x 10^9/L", []),
]


@pytest.mark.parametrize(("text", "expected"), REAL)
def test_doses_real_strings(text: str, expected: list[tuple[float, str]]) -> None:
    got = [(d.value, d.unit) for d in parse_doses(text)]
    assert len(got) == len(expected)
    for (gv, gu), (ev, eu) in zip(got, expected, strict=True):
        assert gu == eu
        assert gv == pytest.approx(ev, rel=1e-9)


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        (
            "with two dose groups of 12×10\\^8 CAR-T cells and 20×10\\^8 CAR-T cells.",
            [(24, 44, "12×10\\^8 CAR-T cells"), (49, 69, "20×10\\^8 CAR-T cells")],
        ),
        ("1, 3 and 10 mg/kg", [(0, 1, "1"), (3, 4, "3"), (9, 17, "10 mg/kg")]),
        ("Cohort C2: 5-AC 12.5mg/m2/day", [(16, 25, "12.5mg/m2")]),
        ("a starting dose of 1 ×106. The data", [(19, 25, "1 ×106")]),
        ("6 x 10^9 cells/dose on", [(0, 14, "6 x 10^9 cells")]),
    ],
)
def test_doses_offsets(text: str, spans: list[tuple[int, int, str]]) -> None:
    got = [(d.start, d.end, d.text) for d in parse_doses(text)]
    assert got == spans
    assert all(text[s:e] == t for s, e, t in got)


@pytest.mark.parametrize(
    "text",
    [
        "ANC ≥ 1.5 x 10^9/L and platelets 100 x 10\\^9/L",
        "2 mg/mL",
        "3 months",
        "Day 1, 8 and 15",
        "IL-12 may kill tumor cells",
    ],
)
def test_doses_not_doses(text: str) -> None:
    assert parse_doses(text) == []


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_doses_never_raise_and_spans_inside(text: str) -> None:
    for d in parse_doses(text):
        assert 0 <= d.start < d.end <= len(text)
        assert text[d.start : d.end] == d.text
        assert d.unit in UNITS


@given(
    st.integers(min_value=1, max_value=99),
    st.integers(min_value=3, max_value=12),
    st.sampled_from(["×", "x", " x ", " × "]),
    st.sampled_from(["^", "\\^", "e"]),
    st.sampled_from([("CAR-T cells", "cells"), ("cells/kg", "cells/kg"), ("PFU", "PFU"), ("vg/kg", "vg/kg")]),
)
def test_doses_scientific_round_trip(
    mant: int, exp: int, times: str, caret: str, unit: tuple[str, str]
) -> None:
    text = f"{mant / 10}{times}10{caret}{exp} {unit[0]}"
    got = parse_doses(text)
    assert len(got) == 1
    assert got[0].unit == unit[1]
    assert got[0].value == pytest.approx(mant / 10 * 10**exp, rel=1e-9)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [],
            "nlp/resources/dose_units.json, top level: not a JSON object. Use an object with keys "
            "['_comment', 'units', 'denominators', 'multipliers', 'cell_words', 'reject_after']",
        ),
        (
            {"unit": []},
            "nlp/resources/dose_units.json, key 'unit': unknown key. Allowed keys: "
            "['_comment', 'units', 'denominators', 'multipliers', 'cell_words', 'reject_after']",
        ),
        (
            {"units": [{"pattern": "mg", "unit": "mg/dl"}]},
            "nlp/resources/dose_units.json, units[0]: unit 'mg/dl' is not a base unit. Use one of "
            "['cells', 'mg', 'ug', 'g', 'IU', 'Gy', 'mL', 'PFU', 'vg']",
        ),
        (
            {"units": [{"pattern": "mg(", "unit": "mg"}]},
            "nlp/resources/dose_units.json, units[0]: bad regular expression "
            "(missing ), unterminated subpattern at position 2). Fix the pattern (escape backslashes twice)",
        ),
        (
            {"units": [{"pattern": "mg", "unit": "mg", "factor": 0}]},
            "nlp/resources/dose_units.json, units[0]: factor 0 is not a positive number. "
            "Give e.g. 1 or 0.001",
        ),
    ],
)
def test_doses_resource_errors(data: object, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        doses._build(data)
    assert str(err.value) == message


def test_doses_bundled_resource_loads() -> None:
    raw = json.loads((importlib.resources.files("nlp") / "resources" / "dose_units.json").read_text("utf-8"))
    assert doses._build(raw).quantity.pattern
