"""``trialsift annotate``: output, error reporting with file and line, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import EXIT_NONE_READABLE, EXIT_OK, EXIT_SOME_UNREADABLE, EXIT_USAGE, main
from tests.conftest import SEEDS

GOOD_STUDY = {
    "protocolSection": {
        "identificationModule": {"nctId": "NCT00000001", "briefTitle": "A study"},
        "outcomesModule": {
            "primaryOutcomes": [{"measure": "Overall survival (OS)", "timeFrame": "Up to 2 years"}],
        },
    }
}


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_cli_annotate_seeds_writes_one_object_per_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "seeds.jsonl"
    status = main(["annotate", str(SEEDS / "IM96.txt"), str(SEEDS / "TH-CART-027.txt"), "-o", str(out)])
    assert status == EXIT_OK
    studies = _read_jsonl(out)
    assert [s["id"] for s in studies] == ["IM96", "TH-CART-027"]
    assert [len(s["outcomes"]) for s in studies] == [11, 6]  # type: ignore[arg-type]
    assert set(studies[0]) == {
        "id",
        "source_format",
        "outcomes",
        "design",
        "dose_groups",
        "registry_enrollment",
        "errors",
    }
    err = capsys.readouterr().err
    assert "studies annotated" in err and "outcomes" in err


def test_cli_annotate_reports_bad_lines_and_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        json.dumps(GOOD_STUDY) + "\n{not json\n" + json.dumps(GOOD_STUDY).replace("0001", "0002") + "\n"
    )
    out = tmp_path / "out.jsonl"
    status = main(["annotate", str(src), "-o", str(out), "-q"])
    assert status == EXIT_SOME_UNREADABLE
    assert [s["id"] for s in _read_jsonl(out)] == ["NCT00000001", "NCT00000002"]
    err = capsys.readouterr().err
    assert f"trialsift: cannot read {src}:2: " in err


def test_cli_annotate_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    status = main(["annotate", str(missing), "-o", str(tmp_path / "o.jsonl"), "-q"])
    assert status == EXIT_NONE_READABLE
    assert capsys.readouterr().err == f"trialsift: cannot read {missing}: no such file or directory\n"


def test_cli_annotate_usage_error_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["annotate"])
    assert exc.value.code == EXIT_USAGE
    assert "the following arguments are required: INPUT" in capsys.readouterr().err


def test_cli_annotate_help_documents_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["annotate", "--help"])
    help_text = capsys.readouterr().out
    for line in ("0    every record", "1    some records", "2    no record", "64   usage", "74   the output"):
        assert line in help_text
