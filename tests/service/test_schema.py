"""The API against its own OpenAPI schema: schemathesis generates requests for every operation (reads and
writes, valid and invalid); no answer is a 5xx, and every answer has a documented status, content type and
body shape."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.settings import Settings
from tests.conftest import FIXTURES, ROOT, SEEDS

SAMPLE = ROOT / "data" / "sample" / "studies.jsonl.gz"
N_STUDIES = 25
WRITE_KEY = "w"
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

#: Every route of the issue with its methods: no more, no fewer.
ROUTES = {
    "/v1/extract": {"post"},
    "/v1/extract/batch": {"post"},
    "/v1/studies": {"post"},
    "/v1/studies/{study_id}": {"get", "delete"},
    "/v1/studies/{study_id}/similar": {"get"},
    "/v1/search": {"get", "post"},
    "/v1/outcomes/search": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
}


@dataclass
class Api:
    app: FastAPI
    ids: list[str]  # the stored sample studies


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, extractor: Any) -> Iterator[Api]:
    """An app on its own store of 25 sample studies, which the generated writes change."""
    from service.cli import read_inputs
    from service.engine import Engine

    config = Settings(
        encoder="hashing",
        data_dir=tmp_path_factory.mktemp("schema-data"),
        write_key=WRITE_KEY,
        max_body_bytes=200_000,
        max_batch=5,
        max_text_chars=50_000,
        max_results=200,
        access_log=False,
    )
    engine = Engine.open(config, extractor=extractor)
    try:
        studies = list(itertools.islice(read_inputs([str(SAMPLE)]), N_STUDIES))
        report = engine.load(studies)
        assert report.added == N_STUDIES
        yield Api(create_app(config, engine=engine), [s.id for s in studies])  # type: ignore[union-attr]
    finally:
        engine.close(save=False)


# The document /openapi.json serves, built without starting the app, so collecting does not open an engine.
# (`schemathesis.pytest.from_fixture` would take the app from the fixture instead, but schemathesis 4.32.5's
# lazy loader sets `Function._nodeid`, which pytest 9 no longer has.)
OPENAPI = create_app(Settings(encoder="hashing", write_key=WRITE_KEY)).openapi()
schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI))


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_schema_every_operation_conforms(case: Any, api: Api) -> None:
    study_id = case.path_parameters.get("study_id") if case.path_parameters else None
    if isinstance(study_id, str) and case.method == "GET" and len(study_id) % 2:
        # Random ids are never stored: half the reads of one study go to a stored one, so its 200 answers
        # (with the generated filters and paging) are checked too.
        case.path_parameters["study_id"] = api.ids[len(study_id) % len(api.ids)]
    # The write key goes with every request (unless the case is about a missing or wrong key), so generated
    # writes are carried out; reads ignore it.
    case.call_and_validate(app=api.app, headers=AUTH, checks=CHECKS)


def _checked(api: Api, path: str, method: str, status: int, **parts: Any) -> Any:
    """Send one hand-made request of an operation; assert its status and check it like the generated ones."""
    case = schema[path][method].Case(**parts)
    response = case.call(app=api.app, headers=AUTH)
    assert response.status_code == status, response.text
    case.validate_response(response, checks=CHECKS, headers=AUTH)
    return response


def test_schema_write_cycle_answers_conform(api: Api) -> None:
    """Generated writes rarely succeed (their ids and texts are random), so one full cycle by hand."""
    seed = (SEEDS / "IM96.txt").read_text(encoding="utf-8")
    new = {"body": {"text": seed, "id": "SCHEMA-1"}, "media_type": "application/json"}
    created = _checked(api, "/v1/studies", "POST", 201, **new)
    assert created.headers["location"] == ["/v1/studies/SCHEMA-1"]
    assert created.json()["created"] is True
    assert _checked(api, "/v1/studies", "POST", 200, **new).json()["created"] is False
    # A registry record of one of the stored sample studies, as a file: it replaces the stored one.
    upload = {"file": (FIXTURES / "ingest" / "study.json").read_bytes()}
    uploaded = _checked(api, "/v1/studies", "POST", 200, body=upload, media_type="multipart/form-data")
    assert uploaded.json()["id"] == "NCT05756322"
    one = {"path_parameters": {"study_id": "SCHEMA-1"}}
    assert _checked(api, "/v1/studies/{study_id}", "GET", 200, **one).json()["source"]["id"] == "SCHEMA-1"
    similar = _checked(api, "/v1/studies/{study_id}/similar", "GET", 200, **one, query={"limit": 3})
    assert len(similar.json()["hits"]) == 3
    found = _checked(api, "/v1/search", "GET", 200, query={"q": "IM96 CAR-T colorectal", "limit": 1})
    assert [hit["id"] for hit in found.json()["hits"]] == ["SCHEMA-1"]
    _checked(api, "/v1/studies/{study_id}", "DELETE", 204, **one)
    _checked(api, "/v1/studies/{study_id}", "GET", 404, **one)
    _checked(api, "/v1/studies/{study_id}", "DELETE", 404, **one)
    html = _checked(
        api,
        "/v1/extract",
        "POST",
        200,
        query={"format": "html"},
        body={"text": seed},
        media_type="application/json",
    )
    assert html.headers["content-type"][0].startswith("text/html")
    batch = {"records": [{"text": seed, "id": "A"}, {"text": ""}]}
    done = _checked(api, "/v1/extract/batch", "POST", 200, body=batch, media_type="application/json")
    assert (done.json()["extracted"], done.json()["failed"]) == (1, 1)


def test_schema_lists_every_route_with_its_methods(api: Api) -> None:
    with TestClient(api.app) as client:
        doc = client.get("/openapi.json").json()
    assert {path: set(ops) for path, ops in doc["paths"].items()} == ROUTES
    assert doc == OPENAPI  # what the generated requests were made from


@pytest.mark.parametrize("path", ["/v1/search", "/v1/outcomes/search", "/v1/extract/batch"])
def test_schema_non_utf8_json_body_is_a_documented_422(api: Api, path: str) -> None:
    # Schemathesis found these: FastAPI answered an undocumented 400 "There was an error parsing the body".
    with TestClient(api.app) as client:
        response = client.post(path, content=b"\xad\xe9\x95", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "utf-8" in response.json()["detail"].lower()


@pytest.mark.parametrize("path", ["/v1/extract", "/v1/studies"])
def test_schema_malformed_multipart_body_is_a_documented_422(api: Api, path: str) -> None:
    # Schemathesis found these: request.form() answered an undocumented 400 "Invalid multipart data.".
    with TestClient(api.app) as client:
        response = client.post(
            path,
            content=b"--b\r\nTrue--b--\r\n",
            headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        )
    assert response.status_code == 422
    assert "multipart" in response.json()["detail"].lower()
