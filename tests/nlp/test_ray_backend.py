"""The Ray backend's stages as plain functions (no Ray runtime): read rows, batches, the shard sink."""

from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nlp.bulk import encode_json, process_chunk
from nlp.errors import RecordError
from nlp.ingest.sources import expand
from nlp.ray_backend import Annotator, ShardSink, _items, read_source, records_of_row, source_rows
from nlp.study import Study

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "studies.jsonl.gz"


@dataclass
class Ctx:
    task_idx: int


def _lines(n: int) -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return list(itertools.islice(handle, n))


def _rows(tmp_path: Path) -> list[dict]:
    (tmp_path / "a.jsonl").write_text("".join(_lines(4)) + "not json\n", encoding="utf-8")
    pq.write_table(pa.table({"json": [line.strip() for line in _lines(6)[4:]]}), tmp_path / "b.parquet")
    sources = [s for s in expand([str(tmp_path)]) if not isinstance(s, RecordError)]
    return [row for source in source_rows(sources) for row in read_source(source)]


def test_read_rows_keep_file_line_and_order(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    assert [(Path(r["name"]).name, r["source_no"], r["seq"], r["line"]) for r in rows] == [
        ("a.jsonl", 0, 0, 1),
        ("a.jsonl", 0, 1, 2),
        ("a.jsonl", 0, 2, 3),
        ("a.jsonl", 0, 3, 4),
        ("a.jsonl", 0, 4, 5),
        ("b.parquet", 1, 0, 1),
        ("b.parquet", 1, 1, 2),
    ]
    studies = [records_of_row(r) for r in rows]
    assert [type(s[0]).__name__ for s in studies] == ["Study"] * 4 + ["RecordError"] + ["Study"] * 2
    assert studies[4][0].line == 5 and studies[6][0].origin == f"{tmp_path / 'b.parquet'}:2"


def test_an_actor_batch_gives_what_the_local_workers_give(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    table = pa.Table.from_pylist(rows)
    out = Annotator("jsonl")(table)
    local = process_chunk(_items(rows), encode_json)
    assert out["kind"] == ["study"] * 4 + ["error"] + ["study"] * 2 + ["stats"]
    assert [p.decode() for k, p in zip(out["kind"], out["payload"], strict=True) if k == "study"] == [
        i.value for i in local.items if not isinstance(i, RecordError)
    ]
    assert json.loads(out["payload"][-1]) == dict(local.stats)


def test_a_retried_write_task_rewrites_its_shard(tmp_path: Path) -> None:
    sink = ShardSink(tmp_path, "jsonl")
    block = pa.table(
        {
            "kind": ["study", "error", "stats"],
            "id": ["NCT1", None, None],
            "payload": [
                b'{"id": "NCT1"}',
                json.dumps(RecordError("f", 3, "bad").to_json()).encode(),
                b'{"studies": 1}',
            ],
        }
    )
    first = sink.write([block], Ctx(7))
    again = sink.write([block], Ctx(7))  # Ray retried the task after its worker died
    assert first == again
    assert (first.shard, first.studies, first.stats) == ("part-00007", 1, {"studies": 1})
    assert first.errors == [{"source": "f", "line": 3, "id": None, "reason": "bad"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00007.jsonl"]
    assert (tmp_path / "part-00007.jsonl").read_text() == '{"id": "NCT1"}\n'


def test_studies_survive_the_trip_through_rows(tmp_path: Path) -> None:
    (tmp_path / "IM96.txt").write_text(
        (Path(__file__).resolve().parents[2] / "data" / "seeds" / "IM96.txt").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    [row] = [r for s in source_rows(expand([str(tmp_path / "IM96.txt")])) for r in read_source(s)]
    assert row["study"] is not None and row["line"] is None  # read whole, shipped pickled
    [study] = records_of_row(row)
    assert isinstance(study, Study) and study.id == "IM96"
