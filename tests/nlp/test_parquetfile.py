"""Registry records in Parquet (``nlp.ingest.parquetfile``): API v2 columns or one column of JSON text."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nlp.errors import RecordError
from nlp.ingest import JsonLine, read_path
from nlp.ingest.sources import Inputs
from nlp.study import Study

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "studies.jsonl.gz"


def _records(n: int) -> list[dict[str, Any]]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in itertools.islice(handle, n)]


def _as_studies(items: list[Any]) -> list[Study]:
    assert all(isinstance(s, Study) for s in items), items
    return items


@pytest.mark.parametrize("shape", ["columns", "json", "only-column"])
def test_parquet_studies_equal_the_json_lines_ones(shape: str, tmp_path: Path) -> None:
    records = _records(25)
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    path = tmp_path / "s.parquet"
    if shape == "columns":
        table = pa.Table.from_pylist(records)  # structs: fields a record lacks come back as nulls
    else:
        name = "json" if shape == "json" else "payload"
        columns = {name: [json.dumps(r) for r in records]}
        if shape == "json":
            columns["nct_id"] = [r["protocolSection"]["identificationModule"]["nctId"] for r in records]
        table = pa.table(columns)
    pq.write_table(table, path, row_group_size=10)
    from_parquet = _as_studies(list(read_path(path)))
    from_jsonl = _as_studies(list(read_path(jsonl)))
    assert [s.id for s in from_parquet] == [s.id for s in from_jsonl]
    for a, b in zip(from_parquet, from_jsonl, strict=True):
        assert a.origin == f"{path}:{from_parquet.index(a) + 1}"
        assert (a.title, a.outcomes, a.phases, a.conditions) == (b.title, b.outcomes, b.phases, b.conditions)


def test_json_text_rows_are_deferred_for_workers(tmp_path: Path) -> None:
    records = _records(3)
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"json": [json.dumps(records[0]), None, "{oops", json.dumps(records[2])]}), path)
    items = list(Inputs([str(path)], defer=True))
    assert [type(i).__name__ for i in items] == ["JsonLine", "RecordError", "JsonLine", "JsonLine"]
    assert isinstance(items[1], RecordError) and str(items[1]) == f"{path}:2: empty record (null)"
    bad = items[2]
    assert isinstance(bad, JsonLine) and bad.line == 3
    [error] = bad.parse()
    assert isinstance(error, RecordError) and error.line == 3


def test_a_parquet_file_without_studies_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path)
    [error] = list(read_path(path))
    assert isinstance(error, RecordError)
    assert str(error) == (
        f"{path}: a Parquet file of studies needs API v2 columns (protocolSection, …) or one column of JSON "
        "records (named json, record, study, raw, or the only column); found a, b"
    )


def test_a_truncated_parquet_file_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"json": [json.dumps(r) for r in _records(2)]}), path)
    path.write_bytes(path.read_bytes()[:-20])
    [error] = list(read_path(path))
    assert isinstance(error, RecordError) and error.line is None
    assert str(error).startswith(f"{path}: not a readable Parquet file: ")
