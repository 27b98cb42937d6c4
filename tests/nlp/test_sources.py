"""nlp.ingest.sources: input specs expanded to files, and the records of a list of inputs."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from pathlib import Path

import pytest

from nlp.errors import RecordError
from nlp.ingest import JsonLine
from nlp.ingest.sources import Inputs, Source, expand
from nlp.study import Study
from tests.conftest import ROOT

SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"


def _sample_lines(n: int) -> list[str]:
    """The first ``n`` JSON lines of the bundled sample (each ends with a newline)."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return list(itertools.islice(f, n))


def _nct(line: str) -> str:
    return str(json.loads(line)["protocolSection"]["identificationModule"]["nctId"])


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name, encoding="utf-8")


def _names(entries: list[Source | RecordError], root: Path) -> list[str]:
    return [
        Path(e.name).relative_to(root).as_posix() if isinstance(e, Source) else f"error: {e}" for e in entries
    ]


# -- expand ----------------------------------------------------------------------------------------------

TREE = [
    "b.jsonl",
    "a.json",
    "sub/z.txt",
    "sub/deeper/y.json.gz",
    "sub/.hidden.json",
    ".git/config",
    ".cache/sub/x.json",
    "c/d.csv",
]


def test_sources_expand_directory_recursive_sorted_skipping_hidden(tmp_path: Path) -> None:
    _tree(tmp_path, TREE)
    entries = expand([str(tmp_path)])
    assert _names(entries, tmp_path) == ["a.json", "b.jsonl", "c/d.csv", "sub/deeper/y.json.gz", "sub/z.txt"]
    assert all(isinstance(e, Source) for e in entries)


def test_sources_expand_source_carries_path_and_size(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_bytes(b"x" * 37)
    assert expand([str(path)]) == [Source(str(path), path, 37)]
    [entry] = expand([str(tmp_path)])
    assert entry == Source(str(path), path, 37)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.json", ["a.json"]),
        ("*.json*", ["a.json", "b.jsonl"]),
        ("sub/*", ["sub/deeper/y.json.gz", "sub/z.txt"]),
        ("**/*.json*", ["a.json", "b.jsonl", "sub/deeper/y.json.gz"]),
        ("s?b/**/*.gz", ["sub/deeper/y.json.gz"]),
        ("[ab].json*", ["a.json", "b.jsonl"]),
        ("c", ["c/d.csv"]),
    ],
)
def test_sources_expand_glob_sorted(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    _tree(tmp_path, TREE)
    assert _names(expand([f"{tmp_path}/{pattern}"]), tmp_path) == expected


def test_sources_expand_double_star_alone_reads_each_file_once(tmp_path: Path) -> None:
    # "dir/**" matches dir/ itself, every subdirectory and every file: each file must still come once.
    _tree(tmp_path, ["d/a.json", "d/sub/b.json"])
    assert _names(expand([f"{tmp_path}/d/**"]), tmp_path) == ["d/a.json", "d/sub/b.json"]


def test_sources_expand_pattern_matching_nothing(tmp_path: Path) -> None:
    spec = f"{tmp_path}/*.jsonl"
    [error] = expand([spec])
    assert isinstance(error, RecordError)
    assert (error.source, error.line, error.reason) == (spec, None, "no file matches this pattern")


def test_sources_expand_missing_path(tmp_path: Path) -> None:
    spec = str(tmp_path / "nope.jsonl")
    [error] = expand([spec])
    assert isinstance(error, RecordError)
    assert (error.source, error.line, error.reason) == (spec, None, "no such file or directory")


@pytest.mark.parametrize("files", [[], [".hidden.json"], [".git/config"]])
def test_sources_expand_directory_without_visible_files(tmp_path: Path, files: list[str]) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    _tree(root, files)
    [error] = expand([str(root)])
    assert isinstance(error, RecordError)
    assert (error.source, error.line, error.reason) == (
        str(root),
        None,
        "the directory holds no files (hidden ones are not read)",
    )


def test_sources_expand_stdin() -> None:
    assert expand(["-"]) == [Source("<stdin>", None, None)]


def test_sources_expand_keeps_spec_order_with_errors_in_place(tmp_path: Path) -> None:
    _tree(tmp_path, ["z.json", "a.json"])
    entries = expand([str(tmp_path / "z.json"), str(tmp_path / "missing"), "-", str(tmp_path / "a.json")])
    assert [e.name if isinstance(e, Source) else e.reason for e in entries] == [
        str(tmp_path / "z.json"),
        "no such file or directory",
        "<stdin>",
        str(tmp_path / "a.json"),
    ]


# -- Inputs ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return _sample_lines(6)


@pytest.fixture
def two_files(tmp_path: Path, lines: list[str]) -> tuple[Path, Path]:
    gz = tmp_path / "first.jsonl.gz"
    gz.write_bytes(gzip.compress("".join(lines[:3]).encode("utf-8")))
    plain = tmp_path / "second.jsonl"
    plain.write_text("".join(lines[3:]), encoding="utf-8")
    return gz, plain


def test_sources_inputs_records_in_order(two_files: tuple[Path, Path], lines: list[str]) -> None:
    gz, plain = two_files
    records = list(Inputs([str(gz), str(plain)]))
    assert all(isinstance(r, Study) for r in records)
    assert [(r.id, r.origin) for r in records if isinstance(r, Study)] == [
        (_nct(lines[0]), f"{gz}:1"),
        (_nct(lines[1]), f"{gz}:2"),
        (_nct(lines[2]), f"{gz}:3"),
        (_nct(lines[3]), f"{plain}:1"),
        (_nct(lines[4]), f"{plain}:2"),
        (_nct(lines[5]), f"{plain}:3"),
    ]


def test_sources_inputs_counts_bytes(two_files: tuple[Path, Path]) -> None:
    gz, plain = two_files
    inputs = Inputs([str(gz), str(plain)])
    total = gz.stat().st_size + plain.stat().st_size
    assert inputs.total_bytes == total
    assert inputs.bytes_read == 0
    seen = [inputs.bytes_read for _ in inputs]
    assert seen == sorted(seen)
    assert all(0 <= b <= total for b in seen)
    assert seen[3] >= gz.stat().st_size  # the first record of the second file
    assert inputs.bytes_read == total


def test_sources_inputs_error_spec_in_place(two_files: tuple[Path, Path], tmp_path: Path) -> None:
    gz, plain = two_files
    missing = str(tmp_path / "missing.jsonl")
    inputs = Inputs([str(gz), missing, str(plain)])
    assert inputs.total_bytes == gz.stat().st_size + plain.stat().st_size
    records = list(inputs)
    assert [type(r).__name__ for r in records] == ["Study"] * 3 + ["RecordError"] + ["Study"] * 3
    error = records[3]
    assert isinstance(error, RecordError)
    assert (error.source, error.reason) == (missing, "no such file or directory")


@pytest.mark.parametrize("buffered", [False, True])
def test_sources_inputs_reads_gzipped_stdin(lines: list[str], buffered: bool) -> None:
    data = io.BytesIO(gzip.compress("".join(lines[:2]).encode("utf-8")))
    stdin = io.BufferedReader(data) if buffered else data
    inputs = Inputs(["-"], stdin=stdin)
    assert inputs.total_bytes is None
    records = list(inputs)
    assert [(r.id, r.origin) for r in records if isinstance(r, Study)] == [
        (_nct(lines[0]), "<stdin>:1"),
        (_nct(lines[1]), "<stdin>:2"),
    ]
    assert len(records) == 2


def test_sources_inputs_plain_stdin_single_document() -> None:
    stdin = io.BytesIO(b'{"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}}')
    [study] = Inputs(["-"], stdin=stdin)
    assert isinstance(study, Study)
    assert (study.id, study.origin) == ("NCT01234567", "<stdin>:1")


def test_sources_inputs_defer_yields_json_lines(two_files: tuple[Path, Path], lines: list[str]) -> None:
    gz, plain = two_files
    specs = [str(gz), str(plain)]
    deferred = list(Inputs(specs, defer=True))
    assert all(isinstance(item, JsonLine) for item in deferred)
    assert [(j.source, j.line) for j in deferred if isinstance(j, JsonLine)] == [
        (str(gz), 1),
        (str(gz), 2),
        (str(gz), 3),
        (str(plain), 1),
        (str(plain), 2),
        (str(plain), 3),
    ]
    assert [j.text.rstrip("\n") for j in deferred if isinstance(j, JsonLine)] == [
        ln.rstrip("\n") for ln in lines
    ]
    parsed = [s for j in deferred if isinstance(j, JsonLine) for s in j.parse()]
    eager = list(Inputs(specs))
    assert [(s.id, s.outcomes) for s in parsed if isinstance(s, Study)] == [
        (s.id, s.outcomes) for s in eager if isinstance(s, Study)
    ]
    assert parsed == eager


def test_sources_inputs_studies_parses_deferred(two_files: tuple[Path, Path]) -> None:
    specs = [str(p) for p in two_files]
    assert list(Inputs(specs, defer=True).studies()) == list(Inputs(specs))


def test_sources_inputs_defer_keeps_bad_lines_for_the_worker(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(lines[0] + "{broken\n\n" + lines[1], encoding="utf-8")
    items = list(Inputs([str(path)], defer=True))
    assert [(type(i).__name__, getattr(i, "line", None)) for i in items] == [
        ("JsonLine", 1),
        ("JsonLine", 2),
        ("JsonLine", 4),
    ]
    [error] = items[1].parse() if isinstance(items[1], JsonLine) else []
    assert isinstance(error, RecordError)
    assert (error.source, error.line) == (str(path), 2)
    assert error.reason.startswith("not valid JSON: ")
