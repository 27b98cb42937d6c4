"""``trialsift annotate`` at scale: inputs, tables, errors, byte-identical re-runs, resume after a kill."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nlp.tables import COLUMNS, TABLES
from service.cli import (
    EXIT_INTERRUPTED,
    EXIT_NONE_READABLE,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SOME_UNREADABLE,
    EXIT_USAGE,
    EXIT_WORKER_DIED,
    main,
)
from tests.conftest import SEEDS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "studies.jsonl.gz"
TRIALSIFT = Path(sys.executable).with_name("trialsift")


def _sample_lines(n: int, start: int = 0) -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return list(itertools.islice(handle, start, start + n))


@pytest.fixture(scope="module")
def studies_40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "studies.jsonl"
    path.write_text("".join(_sample_lines(40)), encoding="utf-8")
    return path


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def _annotate(*argv: str) -> int:
    return main(["annotate", *argv, "-q"])


# -- inputs -----------------------------------------------------------------------------------------


def test_cli_annotate_reads_directories_globs_and_gzip_in_path_order(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    (shards / "b").mkdir(parents=True)
    lines = _sample_lines(6)
    (shards / "a.jsonl").write_text("".join(lines[:2]), encoding="utf-8")
    with gzip.open(shards / "b" / "c.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(lines[2:4]))
    (shards / ".hidden.jsonl").write_text(lines[4], encoding="utf-8")
    (tmp_path / "z.jsonl").write_text(lines[5], encoding="utf-8")
    expected = [json.loads(line)["protocolSection"]["identificationModule"]["nctId"] for line in lines]

    assert _annotate(str(shards), str(tmp_path / "z*.jsonl"), "-o", str(tmp_path / "out.jsonl")) == EXIT_OK
    assert _ids(tmp_path / "out.jsonl") == expected[:4] + expected[5:]


def test_cli_annotate_reads_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, studies_40: Path
) -> None:
    data = gzip.compress(studies_40.read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert _annotate("-", "-o", str(tmp_path / "out.jsonl"), "--workers", "1") == EXIT_OK
    assert len(_ids(tmp_path / "out.jsonl")) == 40


def test_cli_annotate_pattern_matching_nothing_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _annotate(str(tmp_path / "*.jsonl"), "-o", str(tmp_path / "out.jsonl"))
    assert status == EXIT_NONE_READABLE
    assert (
        capsys.readouterr().err
        == f"trialsift: cannot read {tmp_path}/*.jsonl: no file matches this pattern\n"
    )


# -- errors -----------------------------------------------------------------------------------------


def test_cli_annotate_mixed_malformed_records_all_reported_good_ones_all_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _sample_lines(30)
    bad = {
        3: "{not json\n",
        9: '{"protocolSection": 5}\n',
        15: "[]\n",
        21: '{"studies": "none"}\n',
        27: json.dumps({"hello": "world"}) + "\n",
    }
    lines = list(good)
    for at in sorted(bad):
        lines.insert(at - 1, bad[at])
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "out.jsonl"

    assert main(["annotate", str(src), "-o", str(out), "--workers", "2"]) == EXIT_SOME_UNREADABLE

    assert _ids(out) == [json.loads(g)["protocolSection"]["identificationModule"]["nctId"] for g in good]
    errors = [json.loads(e) for e in (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()]
    assert [(e["source"], e["line"]) for e in errors] == [(str(src), n) for n in sorted(bad)]
    assert errors[0]["reason"].startswith("not valid JSON: Expecting property name")
    assert errors[1]["reason"] == '"protocolSection" is a number, expected an object'
    assert errors[2]["reason"] == "no studies: the JSON list is empty"
    err = capsys.readouterr().err
    assert f"trialsift: cannot read {src}:3: not valid JSON" in err
    assert re.search(r"^records unreadable +5$", err, re.M)


def test_cli_annotate_errors_beyond_the_first_ten_go_to_the_file_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text("".join(_sample_lines(1)) + "{\n" * 14, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(src), "-o", str(out), "--workers", "1"]) == EXIT_SOME_UNREADABLE
    err = capsys.readouterr().err
    assert err.count("trialsift: cannot read") == 10
    assert f"trialsift: … 4 more unreadable records in {out}.errors.jsonl" in err
    assert len((tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()) == 14


def test_cli_annotate_nothing_readable_exit_status(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text("{\n[\n", encoding="utf-8")
    assert _annotate(str(src), "-o", str(tmp_path / "out.jsonl")) == EXIT_NONE_READABLE
    assert (tmp_path / "out.jsonl").read_text() == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "csv"], "--format csv writes three tables: give a directory with -o DIR"),
        (["--resume"], "--resume needs an output file (-o OUT): standard output cannot be resumed"),
        (["--workers", "0", "-o", "x.jsonl"], "--workers must be at least 1, got 0"),
        (["--commit-every", "0", "-o", "x.jsonl"], "--commit-every must be at least 1, got 0"),
        (["-", "-"], "standard input (-) can be read only once"),
    ],
)
def test_cli_annotate_usage_errors(
    argv: list[str], message: str, studies_40: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["annotate", str(studies_40), *argv]) == EXIT_USAGE
    assert capsys.readouterr().err == f"trialsift annotate: error: {message}\n"


def test_cli_annotate_output_kind_must_match_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    assert _annotate(str(SEEDS / "IM96.txt"), "-o", str(tmp_path)) == EXIT_USAGE
    assert _annotate(str(SEEDS / "IM96.txt"), "-o", str(tmp_path / "file"), "--format", "csv") == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"-o {tmp_path} is a directory; jsonl output is one file" in err
    assert f"-o {tmp_path / 'file'} is a file; --format csv writes into a directory" in err


# -- determinism ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_cli_annotate_reruns_and_worker_counts_give_byte_identical_output(
    fmt: str, tmp_path: Path, studies_40: Path
) -> None:
    def run(name: str, workers: str, *extra: str) -> list[tuple[str, bytes]]:
        out = tmp_path / name
        inputs = [str(studies_40), str(SEEDS / "IM96.txt")]
        assert _annotate(*inputs, "-o", str(out), "--format", fmt, "--workers", workers, *extra) == EXIT_OK
        files = [out, out.with_name(out.name + ".errors.jsonl")] if fmt == "jsonl" else sorted(out.iterdir())
        return [(f.name.removeprefix(name) if fmt == "jsonl" else f.name, f.read_bytes()) for f in files]

    first = run("a", "1")
    assert first == run("b", "1")
    assert first == run("c", "2", "--commit-every", "7")
    assert len(first) == (2 if fmt == "jsonl" else 4)


# -- tables -----------------------------------------------------------------------------------------

PARQUET_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "list_str": pa.list_(pa.string()),
    "list_float": pa.list_(pa.float64()),
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory, studies_40: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tables")
    inputs = [str(studies_40), str(SEEDS / "IM96.txt"), str(SEEDS / "TH-CART-027.txt")]
    for fmt in ("csv", "parquet"):
        assert _annotate(*inputs, "-o", str(root / fmt), "--format", fmt, "--workers", "1") == EXIT_OK
    assert _annotate(*inputs, "-o", str(root / "all.jsonl"), "--workers", "1") == EXIT_OK
    return {"csv": root / "csv", "parquet": root / "parquet", "jsonl": root / "all.jsonl"}


@pytest.mark.parametrize("table", TABLES)
def test_cli_annotate_parquet_columns_and_types(table: str, tables: dict[str, Path]) -> None:
    schema = pq.read_schema(tables["parquet"] / f"{table}.parquet")
    assert schema.names == [c.name for c in COLUMNS[table]]
    assert [schema.field(c.name).type for c in COLUMNS[table]] == [
        PARQUET_TYPES[c.kind] for c in COLUMNS[table]
    ]


@pytest.mark.parametrize("table", TABLES)
def test_cli_annotate_csv_header_and_row_counts_match_parquet(table: str, tables: dict[str, Path]) -> None:
    import csv

    with open(tables["csv"] / f"{table}.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [c.name for c in COLUMNS[table]]
    assert len(rows) - 1 == pq.read_metadata(tables["parquet"] / f"{table}.parquet").num_rows


def test_cli_annotate_tables_hold_what_the_json_lines_hold(tables: dict[str, Path]) -> None:
    studies = [json.loads(line) for line in tables["jsonl"].read_text(encoding="utf-8").splitlines()]
    outcomes = pq.read_table(tables["parquet"] / "outcomes.parquet").to_pylist()
    expected = [
        (s["id"], i, o["endpoints"], o["timing"]["horizon_days"])
        for s in studies
        for i, o in enumerate(s["outcomes"])
    ]
    assert [
        (r["study_id"], r["outcome_index"], r["endpoints"], r["horizon_days"]) for r in outcomes
    ] == expected
    doses = pq.read_table(tables["parquet"] / "dose_groups.parquet").to_pylist()
    im96 = [(r["value"], r["unit"], r["text"]) for r in doses if r["study_id"] == "IM96"]
    assert im96[:2] == [(1.2e9, "cells", "12×10\\^8 CAR-T cells"), (2e9, "cells", "20×10\\^8 CAR-T cells")]
    assert pq.read_table(tables["parquet"] / "studies.parquet").column("study_id").to_pylist() == [
        s["id"] for s in studies
    ]


def test_cli_annotate_csv_loads_in_pandas_with_numeric_columns(tables: dict[str, Path]) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(tables["csv"] / "outcomes.csv")
    assert str(frame["horizon_days"].dtype) == "float64"
    assert str(frame["outcome_index"].dtype) == "int64"
    parquet = pd.read_parquet(tables["parquet"] / "outcomes.parquet")
    assert frame["horizon_days"].equals(parquet["horizon_days"])
    assert list(frame["endpoints"].fillna("")) == ["|".join(e) for e in parquet["endpoints"]]


# -- resume -----------------------------------------------------------------------------------------


def test_cli_annotate_resume_extends_a_finished_output_with_new_studies_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(_sample_lines(20)), encoding="utf-8")
    second.write_text("".join(_sample_lines(10, start=20)), encoding="utf-8")
    out, whole = tmp_path / "out.jsonl", tmp_path / "whole.jsonl"
    assert _annotate(str(first), "-o", str(out), "--workers", "1") == EXIT_OK
    capsys.readouterr()
    assert (
        main(["annotate", str(first), str(second), "-o", str(out), "--resume", "--workers", "1"]) == EXIT_OK
    )
    err = capsys.readouterr().err
    assert re.search(r"^studies annotated +10$", err, re.M)
    assert re.search(r"^already in the output +20$", err, re.M)
    assert _annotate(str(first), str(second), "-o", str(whole), "--workers", "1") == EXIT_OK
    assert out.read_bytes() == whole.read_bytes()


def test_cli_annotate_resume_counts_duplicate_ids(tmp_path: Path) -> None:
    line = _sample_lines(1)[0]
    src = tmp_path / "dup.jsonl"
    src.write_text(line * 2, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert _annotate(str(src), "-o", str(out), "--workers", "1") == EXIT_OK
    assert _annotate(str(src), "-o", str(out), "--workers", "1", "--resume") == EXIT_OK
    assert len(_ids(out)) == 2


def test_cli_annotate_resume_refuses_another_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t"
    work = out / ".partial"
    work.mkdir(parents=True)
    (work / "state.json").write_text('{"version": 1, "format": "csv", "files": {}}')
    status = _annotate(str(SEEDS / "IM96.txt"), "-o", str(out), "--format", "parquet", "--resume")
    assert status == EXIT_OUTPUT
    assert "was written by a csv run" in capsys.readouterr().err


def _kill_midway(argv: list[str], committed: Callable[[], bool], sig: int) -> tuple[int, str]:
    """Start ``trialsift annotate``, send ``sig`` once ``committed()`` holds; return its status and stderr."""
    proc = subprocess.Popen([str(TRIALSIFT), "annotate", *argv, "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while not committed():
            assert proc.poll() is None, "the run finished before it could be killed: give it more input"
            assert time.monotonic() < deadline, "no commit within 120 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # a hung run must not outlive the test
    return proc.returncode, err


@pytest.fixture(scope="module")
def studies_600(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "studies.jsonl.gz"
    path.write_bytes(gzip.compress("".join(_sample_lines(600)).encode()))
    return path


@pytest.mark.parametrize(
    ("fmt", "sig"), [("jsonl", signal.SIGKILL), ("parquet", signal.SIGKILL), ("csv", signal.SIGTERM)]
)
def test_cli_annotate_resume_after_kill_gives_the_uninterrupted_output(
    fmt: str, sig: int, tmp_path: Path, studies_600: Path
) -> None:
    out, whole = tmp_path / "out", tmp_path / "whole"
    argv = [str(studies_600), "-o", str(out), "--format", fmt, "--workers", "2", "--commit-every", "100"]
    work = tmp_path / ".out.partial" if fmt == "jsonl" else out / ".partial"

    def committed() -> bool:
        try:
            state = json.loads((work / "state.json").read_text())
        except (OSError, ValueError):
            return False
        if fmt == "parquet":
            return bool(state["parts"] >= 2)
        return bool(state["files"].get("data" if fmt == "jsonl" else "studies", 0) > 2000)

    status, err = _kill_midway(argv, committed, sig)
    if sig == signal.SIGTERM:
        assert status == EXIT_INTERRUPTED
        assert f"stopped; what was committed is in {work}: run the same command with --resume" in err
    else:
        assert status == -signal.SIGKILL
    assert not (out / "studies.csv").exists() if fmt != "jsonl" else not out.exists()
    assert work.is_dir()

    status = main(["annotate", *argv, "--resume", "-q"])
    assert status == EXIT_OK
    assert not work.exists()
    assert _annotate(str(studies_600), "-o", str(whole), "--format", fmt, "--workers", "2") == EXIT_OK
    if fmt == "jsonl":
        assert out.read_bytes() == whole.read_bytes()
        assert len(_ids(out)) == 600
    else:
        for name in (*[f"{t}.{fmt}" for t in TABLES], "errors.jsonl"):
            assert (out / name).read_bytes() == (whole / name).read_bytes(), name


def test_cli_annotate_resume_cuts_a_torn_tail(tmp_path: Path, studies_40: Path) -> None:
    out = tmp_path / "out.jsonl"
    argv = [str(studies_40), "-o", str(out), "--workers", "1"]
    assert _annotate(*argv) == EXIT_OK
    whole = out.read_bytes()
    # Rebuild the state of a run killed mid-write: 25 committed studies, then half a line.
    work = tmp_path / ".out.jsonl.partial"
    work.mkdir()
    lines = whole.splitlines(keepends=True)
    committed = b"".join(lines[:25])
    (work / "data").write_bytes(committed + lines[25][:100])
    (work / "errors").write_bytes(b"")
    (work / "state.json").write_text(
        json.dumps({"version": 1, "format": "jsonl", "files": {"data": len(committed), "errors": 0}})
    )
    out.unlink()
    assert _annotate(*argv, "--resume") == EXIT_OK
    assert out.read_bytes() == whole


def test_cli_annotate_without_resume_starts_afresh(
    tmp_path: Path, studies_40: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / ".out.jsonl.partial"
    work.mkdir()
    (work / "data").write_text("junk")
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(studies_40), "-o", str(out), "--workers", "1"]) == EXIT_OK
    assert len(_ids(out)) == 40
    assert f"started afresh over the interrupted run in {work}" in capsys.readouterr().err


# -- progress ---------------------------------------------------------------------------------------


def test_cli_annotate_progress_lines_report_rate_share_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli_annotate import Progress

    progress = Progress("lines", total_bytes=1000, bytes_read=lambda: 250, interval=0.0)
    progress.started -= 10.0  # as if the run had started 10 s ago
    progress.update(studies=1500, errors=2)
    progress.close()
    line = capsys.readouterr().err
    match = re.fullmatch(
        r"trialsift annotate: 1,500 studies \((\d+)/s\), 2 unreadable, "
        r"25% of input read, about (\d+)s left\n",
        line,
    )
    assert match is not None, line
    assert 149 <= int(match.group(1)) <= 150  # 1,500 studies in just over 10 s
    assert 30 <= int(match.group(2)) <= 31  # a quarter read in 10 s: 30 s more


def test_cli_annotate_progress_lines_are_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli_annotate import Progress

    progress = Progress("lines", total_bytes=None, bytes_read=lambda: 0, interval=3600.0)
    for n in range(100):
        progress.update(studies=n, errors=0)
    assert capsys.readouterr().err == ""


def test_cli_annotate_progress_bar_counts_input_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli_annotate import Progress

    read = [0]
    progress = Progress("bar", total_bytes=400, bytes_read=lambda: read[0])
    read[0] = 100
    progress.update(studies=10, errors=1)
    assert progress._bar.n == 100
    progress.write("trialsift: cannot read x:1: bad")
    progress.close()
    err = capsys.readouterr().err
    assert "trialsift: cannot read x:1: bad\n" in err
    assert "100%" in err and "10 studies" in err and "1 unreadable" in err


def test_cli_annotate_progress_none_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli_annotate import Progress

    progress = Progress("none", total_bytes=10, bytes_read=lambda: 5, interval=0.0)
    progress.update(studies=5, errors=0)
    progress.close()
    assert capsys.readouterr().err == ""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc")
def test_cli_annotate_worker_killed_midway_then_resume_gives_the_whole_output(
    tmp_path: Path, studies_600: Path
) -> None:
    out, whole = tmp_path / "out.jsonl", tmp_path / "whole.jsonl"
    argv = [str(studies_600), "-o", str(out), "--workers", "2"]
    work = tmp_path / ".out.jsonl.partial"
    proc = subprocess.Popen([str(TRIALSIFT), "annotate", *argv, "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (work / "data").exists() or (work / "data").stat().st_size < 2000:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # a hung run must not outlive the test

    assert proc.returncode == EXIT_WORKER_DIED
    assert (
        f"trialsift annotate: worker process {workers[0]} died (exit code -9): killed? out of memory?" in err
    )
    assert not out.exists() and work.is_dir()
    assert main(["annotate", *argv, "--resume", "-q"]) == EXIT_OK
    assert _annotate(str(studies_600), "-o", str(whole), "--workers", "1") == EXIT_OK
    assert out.read_bytes() == whole.read_bytes()
