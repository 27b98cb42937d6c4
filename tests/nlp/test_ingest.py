"""nlp.ingest: every input format read into Study, detected by content, with precise errors."""
# ruff: noqa: E501  (real registry strings pasted whole, so the expected values can be read against the source)

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.errors import RecordError
from nlp.ingest import JsonLine, read_bytes, read_path, read_record, read_stream, read_text
from nlp.ingest.detect import Format, detect
from nlp.ingest.jsonfile import read_json_lines_deferred
from nlp.study import ArmGroup, Intervention, Outcome, Study

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
SEEDS = Path(__file__).resolve().parents[2] / "data" / "seeds"
EXPECTED = (
    "expected API v2 JSON, JSON Lines, the registry's CSV export, legacy XML (<clinical_study>), "
    "a seed record or protocol text"
)


def studies(path: Path | str) -> list[Study]:
    out = list(read_path(path))
    assert all(isinstance(s, Study) for s in out), out
    return [s for s in out if isinstance(s, Study)]


def errors_of(path: Path) -> list[str]:
    return [str(r) for r in read_path(path) if isinstance(r, RecordError)]


# -- formats ---------------------------------------------------------------------------------------------


def test_ingest_apiv2_single_study() -> None:
    (s,) = studies(FIXTURES / "study.json")
    assert (s.id, s.source_format, s.origin) == ("NCT05756322", "apiv2", f"{FIXTURES / 'study.json'}:1")
    assert s.phases == ["PHASE1", "PHASE2"]
    assert (s.enrollment, s.enrollment_type, s.study_type) == (60, "ESTIMATED", "INTERVENTIONAL")
    assert s.interventions == [
        Intervention(name="LBS-007", type="DRUG", description="Open Label.", other_names=[])
    ]
    assert s.arm_groups[0] == ArmGroup(
        label="Dose Finding and Expansion Phase",
        type="EXPERIMENTAL",
        description="Phase 1: Dose finding Phase 2: Optimal dose identified by phase 1 (dose finding) "
        "administrated to subject.",
        intervention_names=["Drug: LBS-007"],
    )
    assert [o.role for o in s.outcomes] == ["primary", "primary"] + ["secondary"] * 4
    assert s.outcomes[1] == Outcome(
        "primary",
        "Maximum Tolerated Dose (MTD) of LBS-007 in the subject population.",
        "",
        "From baseline through 28 days after end of last treatment cycle (up to 12 months)",
    )
    assert s.errors == []


def test_ingest_apiv2_page_gives_each_study_its_start_line() -> None:
    got = studies(FIXTURES / "page.json")
    assert [(s.id, s.origin.rsplit(":", 1)[1]) for s in got] == [("NCT05756322", "3"), ("NCT00055081", "102")]


def test_ingest_apiv2_list_of_studies(tmp_path: Path) -> None:
    page = json.loads((FIXTURES / "page.json").read_text(encoding="utf-8"))
    path = tmp_path / "list.json"
    path.write_text(json.dumps(page["studies"], indent=1), encoding="utf-8")
    got = studies(path)
    assert [s.id for s in got] == ["NCT05756322", "NCT00055081"]
    assert got[0].origin == f"{path}:2"


def test_ingest_jsonl_resplits_raw_outcomes() -> None:
    got = studies(FIXTURES / "studies.jsonl")
    assert [(s.id, s.origin.rsplit(":", 1)[1]) for s in got] == [
        ("NCT05756322", "1"),
        ("NCT00055081", "2"),
        ("NCT06964789", "3"),
    ]
    # The corpus guessed "..., through study completion" into the description; _raw is re-split.
    assert got[2].outcomes[0] == Outcome(
        "primary",
        "Protocol Adherence/Compliance Rate.",
        "Percentage of scheduled procedures, visits, or assessments completed as planned. 95% "
        "adherence/compliance rate suggest strong adherence/compliance rate.",
        "through study completion, an average of 1 year",
    )


def test_ingest_gzip_detected_by_magic_bytes_not_suffix(tmp_path: Path) -> None:
    path = tmp_path / "studies.data"
    path.write_bytes(gzip.compress((FIXTURES / "studies.jsonl").read_bytes()))
    assert [s.id for s in studies(path)] == ["NCT05756322", "NCT00055081", "NCT06964789"]


def test_ingest_csv_export_rows_with_multiline_cells() -> None:
    path = FIXTURES / "export.csv"
    first, second = studies(path)
    assert (first.id, first.origin, first.source_format) == ("NCT06964841", f"{path}:2", "csv")
    assert first.outcomes == [
        Outcome("primary", "Mortality", "Describe the mortality in primary testicular lymphoma", "3 months")
    ]
    assert (first.phases, first.enrollment, first.study_type) == ([], 1, "OBSERVATIONAL")
    assert (second.id, second.origin) == ("NCT06964828", f"{path}:5")
    assert second.title.startswith("Proof of Concept, Randomized, and Crossover Study")
    assert (second.phases, second.enrollment, second.conditions) == (["NA"], 34, ["Lipedema"])
    assert second.interventions == [Intervention(name="Flat-knitted compression garment", type="DEVICE")]
    assert [(o.role, o.measure, o.time_frame) for o in second.outcomes] == [
        ("primary", "Percentage of Volume Change (PVC)", "at the 6th and 12th month of treatment"),
        ("secondary", "Pain intensity", "at the 6th and 12th month of treatment"),
        ("secondary", "Characteristics of pain", "at the 6th and 12th month of treatment"),
        ("secondary", "Reported Quality of Life", "at the 6th and 12th months of treatment"),
    ]
    assert second.outcomes[2].description == "Intensity (VAS scale), location, and type of sensation"
    assert second.outcomes[0].description.endswith("final volume)/ baseline volume\\] x 100")


def test_ingest_legacy_xml() -> None:
    path = FIXTURES / "legacy.xml"
    (s,) = studies(path)
    assert (s.id, s.source_format, s.origin) == ("NCT00055081", "legacy_xml", f"{path}:1")
    assert s.title == s.official_title == "The Impact of Family CTI on Homeless Children"
    assert s.brief_summary == (
        "The purpose of this study is to examine how services and housing provided for homeless families "
        "affect the mental health and behavior of homeless children over time."
    )
    assert s.detailed_description.count("\n\n") == 1
    assert s.phases == ["PHASE1", "PHASE2"]
    assert (s.enrollment, s.enrollment_type, s.study_type) == (320, "ACTUAL", "INTERVENTIONAL")
    assert (s.conditions, s.keywords) == (["Mental Health"], ["Homeless Persons"])
    assert s.interventions == [
        Intervention(
            name="Critical Time Intervention",
            type="BEHAVIORAL",
            description="Time-limited case management during the transition to housing.",
            other_names=["CTI"],
        )
    ]
    assert [(a.label, a.type, a.intervention_names) for a in s.arm_groups] == [
        ("Critical Time Intervention", "EXPERIMENTAL", ["Behavioral: Critical Time Intervention"]),
        ("Shelter", "NO_INTERVENTION", []),
    ]
    assert s.outcomes == [
        Outcome("primary", "Internalizing, externalizing, school outcomes", "", "18 months post enrollment"),
        Outcome(
            "secondary",
            "Housing stability",
            "Days housed in the community, from the residential follow-back calendar.",
            "3, 9, and 15 months after study entry",
        ),
    ]


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Phase 1/Phase 2", ["PHASE1", "PHASE2"]),
        ("Early Phase 1", ["EARLY_PHASE1"]),
        ("N/A", ["NA"]),
        ("Phase 4", ["PHASE4"]),
    ],
)
def test_ingest_legacy_xml_phase_spellings(tmp_path: Path, phase: str, expected: list[str]) -> None:
    path = tmp_path / "p.xml"
    path.write_text(f"<clinical_study><brief_title>T</brief_title><phase>{phase}</phase></clinical_study>")
    (s,) = studies(path)
    assert (s.id, s.phases, s.errors) == ("p", expected, [])


def test_ingest_seed_files_from_the_repo() -> None:
    (im96,) = studies(SEEDS / "IM96.txt")
    assert (im96.id, im96.source_format) == ("IM96", "seed")
    assert (
        im96.title == "Clinical Study of IM96 CAR-T Cell Therapy in Patients With Advanced Colorectal Cancer"
    )
    assert im96.conditions == ["Colorectal Cancer (CRC)"]
    assert im96.interventions == [Intervention(name="IM96 CAR-T Cells", type="BIOLOGICAL")]
    assert [o.role for o in im96.outcomes] == ["primary"] + ["secondary"] * 10
    assert im96.outcomes[1] == Outcome(
        "secondary",
        "Objective remission rate (ORR)",
        "Objective remission rate (ORR) after infusion",
        "At 28 days, 3 months, 6 months and 12 months after CAR-T cell infusion",
    )
    assert im96.detailed_description.startswith("This study is planned to enroll 6-12 patients")
    (th,) = studies(SEEDS / "TH-CART-027.txt")
    assert th.id == "TH-CART-027"
    assert [(o.measure, o.time_frame) for o in th.outcomes[:3]] == [
        (
            "Safety：Incidence of Dose Limiting Toxicity (DLT)",
            "28 days after the first TH-CART-027 infusion.",
        ),
        ("Safety：Incidence and severity of adverse events (AEs)", "Six months post CAR-T cells infusion."),
        ("Overall survival (OS)", "12 and 24 months post CAR-T cells infusion."),
    ]
    assert th.outcomes[0].description == (
        "Limiting toxicity type, incidence, and severity of dose limiting toxicities (DLTs) within 28 days "
        "after the first TH-CART-027 infusion"
    )


def test_ingest_protocol_text_outcomes_found_in_prose() -> None:
    (s,) = studies(FIXTURES / "synopsis.txt")
    assert (s.id, s.source_format) == ("synopsis", "text")
    assert s.title == "A Phase I Study of TH027 CAR-T Cells in Relapsed or Refractory Solid Tumors"
    assert s.detailed_description.startswith(s.title)
    assert s.outcomes == [
        Outcome(
            "primary",
            "Incidence of dose-limiting toxicity (DLT)",
            "DLTs graded by CTCAE 5.0.",
            "28 days after the first infusion",
        ),
        Outcome("primary", "Incidence of adverse events", "", "6 months"),
        Outcome("secondary", "Objective response rate (ORR) per RECIST 1.1", "", "3 months"),
        Outcome("secondary", "Overall survival, from infusion to death from any cause", "", "Up to 2 years"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Title\n\nPrimary endpoint(s): Progression-free survival at 12 months\n\nSecondary objectives/"
            "endpoints:\n* Overall survival\n* Toxicity per CTCAE v5.0\n",
            [
                ("primary", "Progression-free survival at 12 months", ""),
                ("secondary", "Overall survival", ""),
                ("secondary", "Toxicity per CTCAE v5.0", ""),
            ],
        ),
        (
            "Title\nPRIMARY OUTCOMES\n1) ORR [Time Frame: 12 weeks]\n2) DoR (Time frame: up to 2 years)\n",
            [("primary", "ORR", "12 weeks"), ("primary", "DoR", "up to 2 years")],
        ),
        (
            "Title\nSecondary Outcome Measures:\n- Cmax and AUC of Drug X [Time Frame: Cycle 1 Day 1 and Day 15 "
            "(pre-dose, 0.5, 1, 2, 4 hours post-dose)]\n",
            [
                (
                    "secondary",
                    "Cmax and AUC of Drug X",
                    "Cycle 1 Day 1 and Day 15 (pre-dose, 0.5, 1, 2, 4 hours post-dose)",
                )
            ],
        ),
        ("Just a title\nand some text without outcome headings.", []),
    ],
)
def test_ingest_read_text_headings_and_lists(text: str, expected: list[tuple[str, str, str]]) -> None:
    s = read_text(text, "protocol.txt")
    assert s.id == "protocol"
    assert [(o.role, o.measure, o.time_frame) for o in s.outcomes] == expected


def test_ingest_read_text_detects_seed_layout() -> None:
    s = read_text((SEEDS / "IM96.txt").read_text(encoding="utf-8"), "IM96.txt")
    assert (s.id, s.source_format, len(s.outcomes)) == ("IM96", "seed", 11)


def test_ingest_read_record() -> None:
    obj = json.loads((FIXTURES / "study.json").read_text(encoding="utf-8"))
    s = read_record(obj, "upload")
    assert (s.id, s.origin, len(s.outcomes)) == ("NCT05756322", "upload", 6)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1], 'upload: expected an API v2 study object with "protocolSection", found a list'),
        ({"studies": []}, 'upload: not an API v2 study: no "protocolSection" (keys found: studies)'),
        ({"protocolSection": "x"}, 'upload: "protocolSection" is a string, expected an object'),
    ],
)
def test_ingest_read_record_rejects_non_studies(obj: object, message: str) -> None:
    with pytest.raises(RecordError) as info:
        read_record(obj, "upload")
    assert str(info.value) == message


def test_ingest_wrong_types_become_study_errors() -> None:
    s = read_record(
        {
            "protocolSection": {
                "identificationModule": {"nctId": "NCT00000001", "briefTitle": 5},
                "designModule": {"phases": ["PHASE2", "Phase X"], "enrollmentInfo": {"count": "many"}},
                "outcomesModule": {"primaryOutcomes": [{"measure": "OS", "timeFrame": "2 years"}, "oops"]},
            }
        }
    )
    assert s.errors == [
        "identificationModule.briefTitle is a number, expected a string",
        "phase 'Phase X' is not a registry phase (expected e.g. PHASE1, Phase 1/Phase 2, Early Phase 1, N/A)",
        "enrollment 'many' is not a count (expected a whole number)",
        "outcomesModule.primaryOutcomes[1] is a string, expected an object",
    ]
    assert (s.phases, s.outcomes) == (["PHASE2"], [Outcome("primary", "OS", "", "2 years")])


def test_ingest_read_bytes_matches_read_path() -> None:
    data = gzip.compress((FIXTURES / "export.csv").read_bytes())
    got = list(read_bytes(data, "upload.csv"))
    assert [(s.id, s.origin) for s in got if isinstance(s, Study)] == [
        ("NCT06964841", "upload.csv:2"),
        ("NCT06964828", "upload.csv:5"),
    ]


def test_ingest_ids_without_nct_use_stem_and_line(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text('{"protocolSection": {}}\n\n{"protocolSection": {}}\n', encoding="utf-8")
    assert [s.id for s in studies(path)] == ["batch:1", "batch:3"]
    single = tmp_path / "one.json"
    shutil.copy(FIXTURES / "study.json", single)
    obj = json.loads(single.read_text(encoding="utf-8"))
    del obj["protocolSection"]["identificationModule"]["nctId"]
    single.write_text(json.dumps(obj), encoding="utf-8")
    assert [s.id for s in studies(single)] == ["one"]


# -- detection -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('\ufeff  {"protocolSection": {}}', Format.JSON),
        ('[{"protocolSection": {}}]', Format.JSON),
        ('<?xml version="1.0"?>\n<clinical_study>', Format.XML),
        ("NCT Number,Study Title,Study URL\n", Format.CSV),
        ('"Study Title","Conditions","Enrollment"\n', Format.CSV),
        ("Title, with a comma\nSummary\n", Format.TEXT),
        ("Clinical Study of IM96\n", Format.TEXT),
    ],
)
def test_ingest_detect_by_content(head: str, expected: Format) -> None:
    assert detect(head) is expected


# -- malformed input: one RecordError per unreadable record, exact messages ----------------------------


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_ingest_jsonl_bad_line_reported_and_run_continues(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "bad.jsonl",
        '{"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}}}\n'
        '{"protocolSection": {}}\n'
        '{"protocolSection": {"a": 1 "b": 2}}\n'
        '{"foo": 1}\n'
        '{"protocolSection": {"identificationModule": {"nctId": "NCT00000005"}}}\n',
    )
    out = list(read_path(path))
    assert [r.id if isinstance(r, Study) else str(r) for r in out] == [
        "NCT00000001",
        "bad:2",
        f"{path}:3: not valid JSON: Expecting ',' delimiter at column 29",
        f'{path}:4: expected an API v2 study (an object with "protocolSection"), a list of studies or a page '
        '{"studies": [...]}, found an object with keys: foo',
        "NCT00000005",
    ]
    err = out[2]
    assert isinstance(err, RecordError)
    assert (err.source, err.line) == (str(path), 3)


@pytest.mark.parametrize(
    ("name", "content", "messages"),
    [
        (
            "trunc.json",
            '{\n  "protocolSection": {\n    "identificationModule": {"nctId": "NCT0',
            [
                "{path}:1: not valid JSON: Unterminated string starting at (line 3, column 39); the document "
                "ends before it is complete (truncated?)"
            ],
        ),
        (
            "trunc2.json",
            '[{"protocolSection": {}},\n {"protocolSection": {',
            [
                "{path}:1: not valid JSON: Expecting property name enclosed in double quotes (line 2, column 23); "
                "the document ends before it is complete (truncated?)"
            ],
        ),
        (
            "broken.csv",
            'NCT Number,Study Title,Primary Outcome Measures\nNCT00000001,"A title,"x, y, 3 months"\n'
            'NCT00000002,B,"m, d, 1 year"\n',
            [
                "{path}:2: broken quoting: ',' expected after '\"' (a quote inside a quoted field must be doubled)",
                "NCT00000002",
            ],
        ),
        (
            "unclosed.csv",
            'NCT Number,Study Title,Primary Outcome Measures\nNCT00000001,A,"m, d, 1 year"\nNCT00000002,"B,m\n',
            [
                "NCT00000001",
                "{path}:3: broken quoting: a quoted field opened in this record is never closed "
                "(unexpected end of data)",
            ],
        ),
        (
            "fields.csv",
            "NCT Number,Study Title,Primary Outcome Measures\nNCT00000001,A,m,extra\n",
            [
                "{path}:2: row has 4 fields, the header has 3 (a cell holding a comma, quote or line break must "
                "be quoted)"
            ],
        ),
        (
            "bad.xml",
            "<clinical_study>\n  <brief_title>x</brief_title>\n  <phase>Phase 2</phse>\n</clinical_study>\n",
            ["{path}:1: not well-formed XML: mismatched tag: line 3, column 18"],
        ),
        (
            "other.xml",
            '<?xml version="1.0"?>\n<rss><channel/></rss>\n',
            ["{path}:1: expected a <clinical_study> root element (legacy registry XML), found <rss>"],
        ),
        (
            "bin.dat",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00",
            [f"{{path}}:1: binary content (NUL byte at offset 8), {EXPECTED}"],
        ),
        (
            "latin1.txt",
            "Titre caf\xe9\n".encode("latin-1"),
            [f"{{path}}:1: not UTF-8 text (byte 0xe9 at offset 9), {EXPECTED}"],
        ),
        ("empty.txt", "", [f"{{path}}: empty file: {EXPECTED}"]),
        ("blank.json", " \n\n", [f"{{path}}: empty file: {EXPECTED}"]),
        (
            "notstudy.json",
            '{"name": "x", "items": [1]}',
            [
                '{path}:1: expected an API v2 study (an object with "protocolSection"), a list of studies or a '
                'page {{"studies": [...]}}, found an object with keys: items, name'
            ],
        ),
        ("emptylist.json", "[]", ["{path}:1: no studies: the JSON list is empty"]),
    ],
)
def test_ingest_malformed_inputs_give_exact_errors(
    tmp_path: Path, name: str, content: str | bytes, messages: list[str]
) -> None:
    path = _write(tmp_path, name, content)
    got = [r.id if isinstance(r, Study) else str(r) for r in read_path(path)]
    assert got == [m.format(path=path) for m in messages]


def test_ingest_truncated_gzip_reports_after_good_records(tmp_path: Path) -> None:
    whole = gzip.compress((FIXTURES / "studies.jsonl").read_bytes() * 40)
    path = _write(tmp_path, "cut.jsonl.gz", whole[: len(whole) // 2])
    out = list(read_path(path))
    assert all(isinstance(r, Study) for r in out[:-1])
    assert str(out[-1]) == (
        f"{path}: cannot decompress: Compressed file ended before the end-of-stream marker was reached "
        "(a damaged or truncated .gz file?)"
    )


def test_ingest_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    assert [str(r) for r in read_path(path)] == [f"{path}: cannot open: No such file or directory"]


# -- streams and deferred JSON lines (bulk annotation) -------------------------------------------------

_JSONL = (
    b'{"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}}}\n\n{"protocolSection": {}}\n'
)


@pytest.mark.parametrize("compress", [False, True])
def test_ingest_read_stream_gzip_told_by_first_bytes(compress: bool) -> None:
    data = gzip.compress(_JSONL) if compress else _JSONL
    stream = io.BufferedReader(io.BytesIO(data))
    got = list(read_stream(stream, "batch.jsonl"))
    assert [(s.id, s.origin) for s in got if isinstance(s, Study)] == [
        ("NCT00000001", "batch.jsonl:1"),
        ("batch:3", "batch.jsonl:3"),
    ]
    assert len(got) == 2
    assert not stream.closed


@pytest.mark.parametrize("compress", [False, True])
def test_ingest_read_stream_defer_gives_json_lines(compress: bool) -> None:
    data = gzip.compress(_JSONL) if compress else _JSONL
    got = list(read_stream(io.BufferedReader(io.BytesIO(data)), "batch.jsonl", defer=True))
    assert got == [
        JsonLine(
            "batch.jsonl",
            1,
            '{"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}}}\n',
            True,
        ),
        JsonLine("batch.jsonl", 3, '{"protocolSection": {}}\n', True),
    ]
    parsed = [s for line in got if isinstance(line, JsonLine) for s in line.parse()]
    assert parsed == list(read_stream(io.BufferedReader(io.BytesIO(data)), "batch.jsonl"))


def test_ingest_read_stream_defer_reads_whole_documents_now() -> None:
    data = (FIXTURES / "page.json").read_bytes()
    deferred = list(read_stream(io.BufferedReader(io.BytesIO(data)), "page.json", defer=True))
    assert deferred and all(isinstance(s, Study) for s in deferred)
    assert deferred == list(read_bytes(data, "page.json"))


@pytest.mark.parametrize(
    ("several", "expected_id"),
    [(False, "one"), (True, "one:7")],
)
def test_ingest_json_line_fallback_id_depends_on_several(several: bool, expected_id: str) -> None:
    [study] = JsonLine("dir/one.jsonl", 7, '{"protocolSection": {}}', several).parse()
    assert isinstance(study, Study)
    assert (study.id, study.origin) == (expected_id, "dir/one.jsonl:7")


def test_ingest_read_json_lines_deferred_marks_single_record() -> None:
    lines: list[tuple[int, str | RecordError]] = [(1, "  \n"), (2, '{"protocolSection": {}}\n')]
    assert list(read_json_lines_deferred(lines, "f.jsonl")) == [
        JsonLine("f.jsonl", 2, '{"protocolSection": {}}\n', False)
    ]


def test_ingest_read_json_lines_deferred_passes_errors_in_place() -> None:
    bad = RecordError("f.jsonl", 2, "not UTF-8 text (byte 0xe9 at column 3)")
    lines: list[tuple[int, str | RecordError]] = [(1, "[]\n"), (2, bad), (3, "{}\n")]
    assert list(read_json_lines_deferred(lines, "f.jsonl")) == [
        JsonLine("f.jsonl", 1, "[]\n", True),
        bad,
        JsonLine("f.jsonl", 3, "{}\n", True),
    ]


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        (
            "{broken",
            ["f.jsonl:4: not valid JSON: Expecting property name enclosed in double quotes at column 2"],
        ),
        ("[]", ["f.jsonl:4: no studies: the JSON list is empty"]),
        (
            '[{"protocolSection": {}}, {"protocolSection": {"identificationModule": {"nctId": "NCT00000002"}}}]',
            ["f:4", "NCT00000002"],
        ),
    ],
)
def test_ingest_json_line_parse(text: str, reasons: list[str]) -> None:
    got = JsonLine("f.jsonl", 4, text, False).parse()
    assert [s.id if isinstance(s, Study) else str(s) for s in got] == reasons


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}}', "NCT01234567"),
        ('{"protocolSection": {"identificationModule": {"nctId": " NCT01234567\\n"}}}', "NCT01234567"),
        ('{"protocolSection": {"identificationModule": {"nctId": "  "}}}', None),
        ('{"protocolSection": {"identificationModule": {"nctId": 1234}}}', None),
        ('{"protocolSection": {"identificationModule": {}}}', None),
        ('{"protocolSection": {"identificationModule": []}}', None),
        ('{"protocolSection": "x"}', None),
        ('{"protocolSection": {}}', None),
        ('[{"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}}]', None),
        ('{"studies": []}', None),
        ("{broken", None),
        ("", None),
        ("null", None),
    ],
)
def test_ingest_json_line_peek_id(text: str, expected: str | None) -> None:
    assert JsonLine("f.jsonl", 1, text, True).peek_id() == expected


@given(st.text())
def test_ingest_json_line_peek_id_never_raises(text: str) -> None:
    got = JsonLine("f.jsonl", 1, text, True).peek_id()
    assert got is None or (isinstance(got, str) and got == got.strip() and got)


@given(st.text())
def test_ingest_json_line_peek_id_reads_any_nct_string(nct: str) -> None:
    text = json.dumps({"protocolSection": {"identificationModule": {"nctId": nct}}, "x": [1]})
    assert JsonLine("f.jsonl", 1, text, True).peek_id() == (nct.strip() or None)


def test_ingest_deeply_nested_json_line_is_a_record_error() -> None:
    # "Never raises on bad content": a line nested past the JSON decoder's recursion limit is bad content.
    data = _JSONL + b"[" * 100_000 + b"\n" + _JSONL
    got = list(read_stream(io.BufferedReader(io.BytesIO(data)), "deep.jsonl"))
    assert [s.id if isinstance(s, Study) else (s.source, s.line) for s in got] == [
        "NCT00000001",
        "deep:3",
        ("deep.jsonl", 4),
        "NCT00000001",
        "deep:7",
    ]


def test_ingest_deeply_nested_json_line_peek_id_is_none() -> None:
    assert JsonLine("deep.jsonl", 1, "[" * 100_000, True).peek_id() is None
