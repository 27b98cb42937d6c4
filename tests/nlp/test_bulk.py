"""nlp.bulk: annotation in chunks, on worker processes, in input order, resumable."""

from __future__ import annotations

import gzip
import itertools
import json
import multiprocessing
import pickle
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp import pipeline
from nlp.bulk import Annotated, annotate, encode_json, process_chunk, run_chunks, skip_done
from nlp.errors import RecordError
from nlp.ingest import JsonLine, read_record
from nlp.ingest.sources import Inputs, Item
from nlp.pipeline import Extractor, extract
from nlp.study import Study
from tests.conftest import ROOT

SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"


@pytest.fixture(scope="module")
def sample_lines() -> list[str]:
    """The first 40 JSON lines of the bundled sample, newline included."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return list(itertools.islice(f, 40))


@pytest.fixture(autouse=True)
def _shared_extractor(extractor: Extractor, monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers are forked, so they inherit this one instead of building their own (seconds each).
    monkeypatch.setattr(pipeline, "_DEFAULT_EXTRACTOR", extractor)


def _nct(line: str) -> str:
    return str(json.loads(line)["protocolSection"]["identificationModule"]["nctId"])


def _without_nct(line: str) -> str:
    obj = json.loads(line)
    del obj["protocolSection"]["identificationModule"]["nctId"]
    return json.dumps(obj) + "\n"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


# -- annotate ----------------------------------------------------------------------------------------------


def test_bulk_annotate_dicts_equals_extract(extractor: Extractor, sample_lines: list[str]) -> None:
    records = [json.loads(line) for line in sample_lines[:6]]
    del records[2]["protocolSection"]["identificationModule"]["nctId"]
    got = list(annotate(records))
    assert got == extract(records, extractor=extractor)
    assert got[2]["id"] == "<record 3>"
    assert json.dumps(got) == json.dumps(extract(records, extractor=extractor))


def test_bulk_annotate_studies_and_non_records(sample_lines: list[str]) -> None:
    study = read_record(json.loads(sample_lines[0]), source="<given>")
    run = annotate([study, 42, json.loads(sample_lines[1])])
    with pytest.warns(UserWarning, match=r"^1 record\(s\) could not be read"):
        got = list(run)
    assert [r["id"] for r in got] == [_nct(sample_lines[0]), _nct(sample_lines[1])]
    [error] = run.errors
    assert (error.source, error.line, error.reason) == (
        "<record 2>",
        None,
        "expected an API v2 study dict or a Study, found int",
    )


def test_bulk_annotate_path_equals_extract(
    extractor: Extractor, tmp_path: Path, sample_lines: list[str]
) -> None:
    path = _write(tmp_path / "s.jsonl", sample_lines[:5])
    assert list(annotate(str(path))) == extract(path, extractor=extractor)


def test_bulk_annotate_two_workers_equal_one(tmp_path: Path, sample_lines: list[str]) -> None:
    path = _write(tmp_path / "studies.jsonl", sample_lines)
    one = annotate(str(path), workers=1, chunk_size=4)
    two = annotate([path], workers=2, chunk_size=4)
    got_one, got_two = list(one), list(two)
    assert len(got_one) == 40
    assert [r["id"] for r in got_two] == [_nct(line) for line in sample_lines]
    assert got_two == got_one
    assert two.stats == one.stats
    assert two.stats["studies"] == 40
    assert two.stats["outcomes"] == sum(len(r["outcomes"]) for r in got_one)
    assert (one.errors, two.errors) == ([], [])


@pytest.mark.parametrize("workers", [1, 2])
def test_bulk_annotate_reports_bad_lines_in_order_and_warns_at_end(
    tmp_path: Path, sample_lines: list[str], workers: int
) -> None:
    good = sample_lines[:4]
    path = _write(
        tmp_path / "mixed.jsonl",
        [good[0], "{not json\n", good[1], '{"name": "x"}\n', "\n", good[2], "[]\n", good[3]],
    )
    run = annotate(str(path), workers=workers, chunk_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = list(itertools.islice(run, 4))
    assert [r["id"] for r in first] == [_nct(line) for line in good]
    assert [(e.source, e.line) for e in run.errors] == [(str(path), 2), (str(path), 4), (str(path), 7)]
    assert run.errors[0].reason.startswith("not valid JSON: ")
    assert run.errors[2].reason == "no studies: the JSON list is empty"
    with pytest.warns(UserWarning) as caught:
        assert next(run, None) is None
    assert [str(w.message) for w in caught] == [
        f"3 record(s) could not be read; see .errors (first: {run.errors[0]})"
    ]
    assert (run.stats["studies"], run.stats["errors"]) == (4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert next(run, None) is None  # warned once only


def test_bulk_annotate_no_warning_without_errors(sample_lines: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = annotate([json.loads(line) for line in sample_lines[:2]])
        assert len(list(run)) == 2
    assert run.errors == []


def test_bulk_annotate_close_stops_workers(tmp_path: Path, sample_lines: list[str]) -> None:
    path = _write(tmp_path / "studies.jsonl", sample_lines)
    before = set(multiprocessing.active_children())
    run = annotate(str(path), workers=2, chunk_size=1)
    assert next(run)["id"] == _nct(sample_lines[0])
    assert set(multiprocessing.active_children()) - before
    run.close()
    assert set(multiprocessing.active_children()) <= before
    assert next(run, None) is None


@pytest.mark.parametrize("workers", [0, -1])
def test_bulk_annotate_rejects_fewer_than_one_worker(workers: int) -> None:
    with pytest.raises(ValueError, match=rf"^workers must be at least 1, got {workers}$"):
        annotate([], workers=workers)


def test_bulk_run_chunks_encode_json_in_workers(extractor: Extractor, sample_lines: list[str]) -> None:
    studies = [read_record(json.loads(line)) for line in sample_lines[:7]]
    chunks = list(run_chunks(studies, workers=2, encode=encode_json, chunk_size=3))
    assert [len(c.items) for c in chunks] == [3, 3, 1]
    values = [a.value for c in chunks for a in c.items if isinstance(a, Annotated)]
    expected = list(extractor.extract_studies(studies))
    assert values == [json.dumps(r, ensure_ascii=False) for r in expected]
    assert [a.id for c in chunks for a in c.items if isinstance(a, Annotated)] == [s.id for s in studies]


# -- skip_done ---------------------------------------------------------------------------------------------


def _study(id: str) -> Study:
    return Study(id=id, source_format="apiv2")


def _ids(items: list[Item]) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, JsonLine):
            out.append(f"line:{item.peek_id()}")
        elif isinstance(item, Study):
            out.append(item.id)
        else:
            out.append(f"error:{item.line}")
    return out


def test_bulk_skip_done_counts_duplicates() -> None:
    items: list[Item] = [_study("A"), _study("B"), _study("A"), RecordError("f", 4, "bad"), _study("C")]
    done, skipped = Counter({"A": 1, "C": 1}), Counter[str]()
    assert _ids(list(skip_done(items, done, skipped))) == ["B", "A", "error:4"]
    assert skipped == Counter({"A": 1, "C": 1})
    assert +done == Counter()


def test_bulk_skip_done_ids_not_in_input_skip_nothing() -> None:
    items: list[Item] = [_study("A"), _study("B")]
    skipped: Counter[str] = Counter()
    assert _ids(list(skip_done(items, Counter({"Z": 2}), skipped))) == ["A", "B"]
    assert skipped == Counter()


def test_bulk_skip_done_json_lines_peeked_not_parsed(tmp_path: Path, sample_lines: list[str]) -> None:
    lines = [sample_lines[0], sample_lines[1], sample_lines[0], sample_lines[2]]
    path = _write(tmp_path / "dup.jsonl", lines)
    a, b, c = (_nct(line) for line in sample_lines[:3])
    done, skipped = Counter({a: 1, c: 1}), Counter[str]()
    out = list(skip_done(Inputs([str(path)], defer=True), done, skipped))
    assert all(isinstance(item, JsonLine) for item in out)
    assert [(item.line, item.peek_id()) for item in out if isinstance(item, JsonLine)] == [(2, b), (3, a)]
    assert skipped == Counter({a: 1, c: 1})


def test_bulk_skip_done_json_line_without_nct_uses_fallback_id(
    tmp_path: Path, sample_lines: list[str]
) -> None:
    lines = [_without_nct(sample_lines[0]), _without_nct(sample_lines[1]), sample_lines[2]]
    path = _write(tmp_path / "batch.jsonl", [*lines, _without_nct(sample_lines[3])])
    done, skipped = Counter({"batch:1": 1, _nct(sample_lines[2]): 1}), Counter[str]()
    out = list(skip_done(Inputs([str(path)], defer=True), done, skipped))
    # line 2 is parsed to learn its id; line 4 comes after every done id was met, so it stays a JsonLine
    assert [type(item).__name__ for item in out] == ["Study", "JsonLine"]
    assert isinstance(out[0], Study)
    assert out[0].id == "batch:2"
    assert isinstance(out[1], JsonLine)
    assert out[1].line == 4
    assert skipped == Counter({"batch:1": 1, _nct(sample_lines[2]): 1})


@given(
    st.lists(st.sampled_from("ABCD"), max_size=12),
    st.dictionaries(st.sampled_from("ABCDE"), st.integers(min_value=0, max_value=3)),
)
def test_bulk_skip_done_removes_first_occurrences(ids: list[str], done_counts: dict[str, int]) -> None:
    done, skipped = Counter(done_counts), Counter[str]()
    out = [s.id for s in skip_done([_study(i) for i in ids], done, skipped) if isinstance(s, Study)]
    budget = Counter(done_counts)
    expected = []
    for i in ids:
        if budget[i] > 0:
            budget[i] -= 1
        else:
            expected.append(i)
    assert out == expected
    assert skipped == Counter(
        {k: min(n, ids.count(k)) for k, n in done_counts.items() if min(n, ids.count(k))}
    )


# -- process_chunk -----------------------------------------------------------------------------------------


@pytest.fixture
def failing_on(extractor: Extractor, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make the extractor raise on any batch holding a study whose id the test puts in the list."""
    bad: list[str] = []
    original = extractor.extract_items

    def extract_items(items: Any) -> Iterator[dict[str, Any] | RecordError]:
        items = list(items)
        if any(isinstance(i, Study) and i.id in bad for i in items):
            raise RuntimeError("boom")
        return original(items)

    monkeypatch.setattr(extractor, "extract_items", extract_items)
    yield bad


def test_bulk_process_chunk_reports_a_failing_study(
    extractor: Extractor, failing_on: list[str], tmp_path: Path, sample_lines: list[str]
) -> None:
    path = _write(tmp_path / "three.jsonl", sample_lines[:3])
    items = list(Inputs([str(path)], defer=True))
    expected = list(extractor.extract_studies(s for i in items if isinstance(i, JsonLine) for s in i.parse()))
    failing_on.append(_nct(sample_lines[1]))
    chunk = process_chunk(items)
    assert [type(i).__name__ for i in chunk.items] == ["Annotated", "RecordError", "Annotated"]
    error = chunk.items[1]
    assert isinstance(error, RecordError)
    assert (error.source, error.line, error.id, error.reason) == (
        str(path),
        2,
        _nct(sample_lines[1]),
        "extraction failed: RuntimeError: boom",
    )
    assert [i.value for i in chunk.items if isinstance(i, Annotated)] == [expected[0], expected[2]]
    assert (chunk.stats["studies"], chunk.stats["errors"]) == (2, 1)


def test_bulk_process_chunk_failing_record_without_line(
    failing_on: list[str], sample_lines: list[str]
) -> None:
    studies: list[Item] = [
        read_record(json.loads(line), source=f"<record {i}>") for i, line in enumerate(sample_lines[:2], 1)
    ]
    failing_on.append(_nct(sample_lines[0]))
    chunk = process_chunk(studies)
    error, ok = chunk.items
    assert isinstance(error, RecordError)
    assert (error.source, error.line, error.id) == ("<record 1>", None, _nct(sample_lines[0]))
    assert error.reason.startswith("extraction failed: ")
    assert isinstance(ok, Annotated)
    assert ok.id == _nct(sample_lines[1])


def test_bulk_process_chunk_passes_read_errors_through(sample_lines: list[str]) -> None:
    bad = RecordError("f.jsonl", 3, "not valid JSON: x")
    chunk = process_chunk([bad, read_record(json.loads(sample_lines[0]))])
    assert chunk.items[0] is bad
    assert isinstance(chunk.items[1], Annotated)
    assert chunk.stats["errors"] == 1


# -- RecordError between processes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "reason", "id"),
    [
        ("a.jsonl", 12, "not valid JSON: Expecting value at column 1", None),
        ("<record 3>", None, "extraction failed: RuntimeError: boom", "NCT01234567"),
        ("<stdin>", 1, "empty file", ""),
    ],
)
def test_bulk_record_error_pickles(source: str, line: int | None, reason: str, id: str | None) -> None:
    error = RecordError(source, line, reason, id=id)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is RecordError
    assert (back.source, back.line, back.reason, back.id) == (source, line, reason, id)
    assert str(back) == str(error)
    assert back.to_json() == {"source": source, "line": line, "id": id, "reason": reason}


@pytest.mark.slow
def test_bulk_readme_pandas_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's library example, executed verbatim (3,000 studies: slow)."""
    from service.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index("The same from Python") :]
    code = after[
        after.index("```python\n") + len("```python\n") : after.index("\n```", after.index("```python"))
    ]
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    assert (
        main(["annotate", "data/sample/studies.jsonl.gz", "--format", "parquet", "-o", "out/tables", "-q"])
        == 0
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["outcomes"]) == len(namespace["tables"])
    assert namespace["run"].errors == []
    assert (len(namespace["outcomes"]), len(namespace["pfs"])) == (18522, 281)  # as the README prints


def test_bulk_annotation_as_context_manager_stops_its_workers(
    sample_lines: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(sample_lines[:20]), encoding="utf-8")
    with annotate(str(path), workers=2, chunk_size=2) as run:
        first = next(run)
        assert multiprocessing.active_children()
    assert first["id"] == json.loads(sample_lines[0])["protocolSection"]["identificationModule"]["nctId"]
    assert not multiprocessing.active_children()
    with pytest.raises(StopIteration):
        next(run)
