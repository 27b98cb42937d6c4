"""`trialsift index build`, `search`, `similar` in-process, with the real model, on a small real sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from index.encoder import default_encoder
from index.trial_index import TrialIndex
from service.cli import EXIT_NONE_READABLE, EXIT_OK, EXIT_SOME_UNREADABLE, EXIT_USAGE, main
from tests.conftest import FIXTURES, SEEDS

# Eleven registry records (protocol sections of real studies from data/sample) and one seed protocol.
STUDIES = FIXTURES / "index" / "studies.jsonl"
ALL_IDS = [
    "NCT06956261",
    "NCT06963398",
    "NCT05839600",
    "NCT06834399",
    "NCT03642236",
    "NCT03672851",
    "NCT04904237",
    "NCT06177015",
    "NCT05983783",
    "NCT00668018",
    "NCT06952478",
    "IM96",
]
AML = {"NCT03642236", "NCT03672851", "NCT04904237"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index over the sample, built through the CLI (the model loads once per process)."""
    import faiss

    from tests.index.conftest import single_torch_thread

    single_torch_thread()  # see there: threads spinning on a shared machine, not needed for correctness
    faiss.omp_set_num_threads(1)
    out = tmp_path_factory.mktemp("cli") / "index"
    assert main(["index", "build", str(STUDIES), str(SEEDS / "IM96.txt"), "--out", str(out), "-q"]) == EXIT_OK
    return out


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_cli_index_build_writes_a_loadable_index(built: Path) -> None:
    index = TrialIndex.load(built, default_encoder())
    assert index.ids() == ALL_IDS
    counts = index.counts()
    assert counts["studies"] == 12 and counts["tci_vectors"] == 12
    assert counts["outcomes_vectors"] == 51  # every registry outcome, and the seed's 11
    meta = json.loads((built / "meta.json").read_text())
    assert (
        meta["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["model"]["dimension"] == 384
    )
    assert meta["metric"] == "inner_product" and meta["counts"] == counts
    im96 = index.get("IM96")
    assert im96.escalation is not None and im96.dlt_window_days == 28.0  # extracted during the build


def test_cli_index_build_resumes(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "build", str(STUDIES), str(SEEDS / "IM96.txt"), "--out", str(built)]) == EXIT_OK
    err = capsys.readouterr().err
    assert f"index {built}: 12 studies (0 added, 12 already there), 51 outcomes, 0 unreadable records;" in err
    assert "indexed 12/12 studies (100%)" in err  # the progress line


def test_cli_index_build_no_resume_refuses_existing(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["index", "build", str(STUDIES), "--out", str(built), "--no-resume", "-q"])
    assert status == EXIT_NONE_READABLE
    assert capsys.readouterr().err == (
        f"trialsift: {built}: an index is already there; remove it, or extend it (leave out --no-resume)\n"
    )


def test_cli_index_build_reports_unreadable_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = STUDIES.read_text(encoding="utf-8").splitlines()
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join([lines[0], '{"protocolSection": [oops', lines[5]]) + "\n", encoding="utf-8")
    out = tmp_path / "index"
    assert main(["index", "build", str(src), "--out", str(out)]) == EXIT_SOME_UNREADABLE
    err = capsys.readouterr().err
    assert f"trialsift: cannot read {src}:2: " in err
    assert f"index {out}: 2 studies (2 added, 0 already there)" in err and "1 unreadable records" in err
    assert TrialIndex.load(out, default_encoder()).ids() == ["NCT06956261", "NCT03672851"]


def test_cli_index_build_nothing_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["index", "build", str(missing), "--out", str(tmp_path / "i"), "-q"]) == EXIT_NONE_READABLE
    assert capsys.readouterr().err == f"trialsift: cannot read {missing}: no such file or directory\n"


def test_cli_index_build_bad_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "ann.jsonl"
    bad.write_text('{"id": "X"}\n')
    status = main(["index", "build", str(STUDIES), "--out", str(tmp_path / "i"), "--annotations", str(bad)])
    assert status == EXIT_NONE_READABLE
    assert capsys.readouterr().err == (
        f"trialsift: {bad}:1: not a `trialsift annotate` record (needs id, outcomes, design)\n"
    )


def test_cli_search_json_one_object_per_query(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries = ["acute myeloid leukemia", "objective response rate"]
    assert main(["search", *queries, "--index", str(built), "-k", "3", "--json"]) == EXIT_OK
    records = _json_lines(capsys.readouterr().out)
    assert [r["query"] for r in records] == queries
    for record in records:
        assert set(record) == {"query", "mode", "target", "filters", "hits"}
        assert (record["mode"], record["target"], record["filters"]) == ("hybrid", "trials", {})
        assert len(record["hits"]) == 3
        for hit in record["hits"]:
            assert set(hit) == {"id", "score", "title", "phases", "conditions", "reasons"}
            assert hit["id"] in ALL_IDS and isinstance(hit["score"], float)
            assert {"dense", "lexical"} & set(hit["reasons"])
        scores = [h["score"] for h in record["hits"]]
        assert scores == sorted(scores, reverse=True)
    assert {h["id"] for h in records[0]["hits"]} == AML  # the three leukaemia trials


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_cli_search_modes_and_filters(built: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "search",
        "dose limiting toxicity",
        "--index",
        str(built),
        "--mode",
        mode,
        "--phase",
        "1",
        "--json",
    ]
    assert main(argv) == EXIT_OK
    [record] = _json_lines(capsys.readouterr().out)
    assert record["mode"] == mode and record["filters"] == {"phases": ["PHASE1"]}
    found = {h["id"] for h in record["hits"]}
    assert all("PHASE1" in h["phases"] for h in record["hits"])
    phase1 = {"NCT06956261", "NCT05839600", "NCT03672851", "NCT06963398"}  # all four have a DLT/MTD outcome
    if mode == "lexical":  # only studies with one of the words
        assert found <= phase1 and len(found) >= 3
    else:
        assert found == phase1


def test_cli_search_outcomes_with_outcome_filters(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "search",
        "survival",
        "--outcomes",
        "--index",
        str(built),
        "--endpoint",
        "overall_survival",
        "--json",
    ]
    assert main(argv) == EXIT_OK
    [record] = _json_lines(capsys.readouterr().out)
    assert record["target"] == "outcomes" and record["filters"] == {"endpoints": ["overall_survival"]}
    assert len(record["hits"]) >= 3
    for hit in record["hits"]:
        assert set(hit) == {
            "id",
            "outcome",
            "score",
            "role",
            "measure",
            "endpoints",
            "category",
            "horizon_days",
            "reasons",
        }
        assert "overall_survival" in hit["endpoints"]


def test_cli_search_table_output(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "prostate cancer", "--index", str(built), "-k", "2"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "query: prostate cancer  (hybrid, 2 hits)"
    assert lines[1].split()[:5] == ["#", "score", "id", "phase", "title"]
    assert {line.split()[2] for line in lines[2:4]} == {"NCT06177015", "NCT05983783"}
    assert lines[4] == ""


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--time-point", "abc"],
            "day range 'abc': expected DAYS, LOW..HIGH, ..HIGH or LOW.. (numbers of days)",
        ),
        (["--horizon", "120..60"], "day range 120..60 is empty: the low end is above the high"),
        (
            ["--phase", "7"],
            "phase '7' is not one of 1, 2, 3, 4, early1, NA (or PHASE1 … as the registry spells)",
        ),
        (["-k", "0"], "-k must be at least 1, got 0"),
        (
            ["--category", "pk"],
            "category 'pk' is not one of efficacy, safety, pharmacokinetics, biomarker, patient_reported, "
            "other",
        ),
        (
            ["--endpoint", "survival"],
            "endpoint 'survival' is not an endpoint id of the vocabulary (e.g. overall_survival)",
        ),
    ],
)
def test_cli_search_bad_options_exit_64(
    built: Path, option: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "x", "--index", str(built), *option])
    assert exc.value.code == EXIT_USAGE
    assert capsys.readouterr().err == f"trialsift: error: {message}\n"


def test_cli_search_missing_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "x", "--index", str(tmp_path / "none")]) == EXIT_NONE_READABLE
    missing = tmp_path / "none"
    assert capsys.readouterr().err == (
        f"trialsift: {missing}: no such index directory (build one with `trialsift index build`)\n"
    )


def test_cli_similar_several_ids_and_ids_file(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# studies to compare\nNCT06177015\n\nIM96  # the seed\n")
    argv = ["similar", "NCT03672851", "--ids-file", str(ids_file), "--index", str(built), "-k", "4", "--json"]
    assert main(argv) == EXIT_OK
    records = _json_lines(capsys.readouterr().out)
    assert [r["query"] for r in records] == ["NCT03672851", "NCT06177015", "IM96"]
    for record in records:
        assert set(record) == {"query", "filters", "hits"} and len(record["hits"]) == 4
        assert record["query"] not in {h["id"] for h in record["hits"]}
        for hit in record["hits"]:
            assert set(hit) == {"id", "score", "title", "reasons"}
            assert set(hit["reasons"]) == {
                "shared_conditions",
                "shared_interventions",
                "shared_endpoints",
                "shared_phases",
                "field_scores",
            }
    assert records[0]["hits"][0]["id"] in AML
    assert records[1]["hits"][0]["id"] == "NCT05983783"  # the other metastatic prostate cancer trial
    assert "Metastatic Prostate Cancer" in records[1]["hits"][0]["reasons"]["shared_conditions"]


def test_cli_similar_unknown_id_is_reported(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", "NCT99999999", "IM96", "--index", str(built), "--json"]) == EXIT_SOME_UNREADABLE
    captured = capsys.readouterr()
    assert captured.err == f"trialsift: NCT99999999: not in the index {built}\n"
    assert [r["query"] for r in _json_lines(captured.out)] == ["IM96"]
    assert main(["similar", "NCT99999999", "--index", str(built), "--json"]) == EXIT_NONE_READABLE
    assert capsys.readouterr().out == ""


def test_cli_similar_new_record(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["similar", "--record", str(SEEDS / "TH-CART-027.txt"), "--index", str(built), "-k", "3", "--json"]
    assert main(argv) == EXIT_OK
    [record] = _json_lines(capsys.readouterr().out)
    assert record["query"] == "TH-CART-027" and len(record["hits"]) == 3
    # Nothing readable at all: the unknown id and the missing record both fail.
    missing = tmp_path / "nope.txt"
    argv = ["similar", "NCT99999999", "--record", str(missing), "--index", str(built)]
    assert main(argv) == EXIT_NONE_READABLE
    err = capsys.readouterr().err
    assert f"trialsift: cannot read {missing}: no such file or directory\n" in err
    assert "trialsift: NCT99999999: not in the index" in err


def test_cli_similar_usage_errors(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["similar", "--index", str(built)])
    assert exc.value.code == EXIT_USAGE
    assert capsys.readouterr().err == "trialsift: error: give study ids, --ids-file or --record\n"
    with pytest.raises(SystemExit) as exc:
        main(["similar", "--ids-file", str(tmp_path / "none.txt"), "--index", str(built)])
    assert exc.value.code == EXIT_USAGE
    assert (
        capsys.readouterr().err
        == f"trialsift: error: --ids-file {tmp_path / 'none.txt'}: No such file or directory\n"
    )


def test_cli_similar_table_output(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", "NCT06177015", "--index", str(built), "-k", "2"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "similar to: NCT06177015  (2 hits)"
    assert lines[1].split()[:4] == ["#", "score", "id", "title"] and lines[1].rstrip().endswith("why")
    assert lines[2].split()[2] == "NCT05983783" and "conditions: Metastatic Prostate Cancer" in lines[2]
