"""The HTTP API through FastAPI's TestClient: every route, exact statuses and exact ``detail`` strings."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from index.documents import StudyEntry
from nlp.pipeline import Extractor
from service.app import create_app
from service.engine import Engine
from service.settings import Settings
from tests.service.conftest import (
    AUTH,
    FRESH_SAMPLE,
    SHARED_SAMPLE,
    TH_CART,
    ClientFactory,
    make_settings,
    sample_records,
    seed_text,
)

SEED = seed_text()
#: Characters of the IM96 seed text: what max_text_chars counts for text input (the text as sent).
SEED_CHARS = 3119
SHARED_STUDIES = SHARED_SAMPLE + 2
LOADING = "the service is still loading; retry when GET /readyz answers 200"
NOT_JSON_TYPES = (
    "is not accepted: send application/json "
    '({"text": ...} or {"record": ...}), text/plain, or multipart/form-data with a `file`'
)
WRITE_NEEDS_KEY = "writes need the API key: send `Authorization: Bearer <key>`"
READ_NEEDS_KEY = "this server needs an API key for reads: send `Authorization: Bearer <key>`"
NO_WRITE_KEY = "writes are disabled on this server: it has no write key (TRIALSIFT_WRITE_KEY)"
#: A sample record that is in neither the shared nor a fresh store (a distinctive trial).
VR_RECORD_INDEX = 41
VR_ID = "NCT04092803"
VR_QUERY = "virtual reality distraction lumbar puncture"


def nct_id(rec: dict[str, Any]) -> str:
    return str(rec["protocolSection"]["identificationModule"]["nctId"])


FRESH_IDS = {*(nct_id(r) for r in sample_records(FRESH_SAMPLE)), "IM96"}


def record(i: int) -> dict[str, Any]:
    return sample_records(VR_RECORD_INDEX + 1)[i]


def outcome_measures(rec: dict[str, Any]) -> list[str]:
    module = rec["protocolSection"]["outcomesModule"]
    keys = ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes")
    return [o["measure"] for key in keys for o in module.get(key, [])]


def hit_ids(response: Any) -> list[str]:
    return hit_ids_of(response.json())


def hit_ids_of(body: dict[str, Any]) -> list[str]:
    return [h["id"] for h in body["hits"]]


# -- POST /v1/extract ----------------------------------------------------------------------------------------


def test_api_extract_seed_text_gives_the_spec_json(client: TestClient) -> None:
    r = client.post("/v1/extract", json={"text": SEED})
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["source_format"]) == ("text", "seed")
    assert len(body["outcomes"]) == 11
    first = body["outcomes"][0]
    assert first["measure"] == "Incidence of Treatment Related adverse events (AEs)"
    assert first["endpoints"] == ["adverse_events"]
    assert first["timing"]["horizon_days"] == 28.0
    assert first["spans"][0] == {
        "field": "measure",
        "start": 13,
        "end": 45,
        "label": "endpoint:adverse_events",
    }
    assert first["measure"][13:45] == "Treatment Related adverse events"


def test_api_extract_text_takes_the_given_id(client: TestClient) -> None:
    r = client.post("/v1/extract", json={"text": SEED, "id": "IM96"})
    assert (r.status_code, r.json()["id"], len(r.json()["outcomes"])) == (200, "IM96", 11)


def test_api_extract_api_v2_record(client: TestClient) -> None:
    rec = record(0)
    r = client.post("/v1/extract", json={"record": rec})
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["source_format"]) == ("NCT02663973", "apiv2")
    assert [o["measure"] for o in body["outcomes"]] == outcome_measures(rec)
    assert [o["role"] for o in body["outcomes"]] == ["primary"] + ["secondary"] * 10
    assert body["registry_enrollment"] == 3000


@pytest.mark.parametrize(("query", "expected_id"), [("?id=MYID", "MYID"), ("", "text")])
def test_api_extract_plain_text_body(client: TestClient, query: str, expected_id: str) -> None:
    r = client.post(
        f"/v1/extract{query}", content=SEED.encode(), headers={"content-type": "text/plain; charset=utf-8"}
    )
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["source_format"], len(r.json()["outcomes"])) == (expected_id, "seed", 11)


@pytest.mark.parametrize(
    ("filename", "content", "expected_id", "n_outcomes"),
    [
        ("IM96.txt", SEED.encode(), "IM96", 11),
        ("one.json", json.dumps(record(0)).encode(), "NCT02663973", 11),
        ("one.jsonl.gz", gzip.compress(json.dumps(record(0)).encode() + b"\n"), "NCT02663973", 11),
    ],
)
def test_api_extract_file_upload(
    client: TestClient, filename: str, content: bytes, expected_id: str, n_outcomes: int
) -> None:
    r = client.post("/v1/extract", files={"file": (filename, content)})
    assert r.status_code == 200
    assert (r.json()["id"], len(r.json()["outcomes"])) == (expected_id, n_outcomes)


def test_api_extract_html_highlights_spans(client: TestClient) -> None:
    r = client.post("/v1/extract?format=html", json={"text": SEED, "id": "IM96"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert (
        "<h1>IM96: Clinical Study of IM96 CAR-T Cell Therapy in Patients With Advanced Colorectal Cancer</h1>"
        in (r.text)
    )
    assert 'href="#">adverse_events</a>' in r.text


TWO_STUDIES = (json.dumps(record(0)) + "\n" + json.dumps(record(1)) + "\n").encode()


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        pytest.param(
            {"json": {"text": "x", "record": {}}},
            422,
            "body: give exactly one of `text` or `record`",
            id="text-and-record",
        ),
        pytest.param({"json": {}}, 422, "body: give exactly one of `text` or `record`", id="neither"),
        pytest.param(
            {"json": {"text": "x", "foo": 1}},
            422,
            "body.foo: Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            {"json": {"record": record(0), "id": "A"}},
            422,
            "body: `id` goes with `text`; a record carries its own id",
            id="id-with-record",
        ),
        pytest.param(
            {"json": {"text": "x", "id": ""}},
            422,
            "body.id: String should have at least 1 character",
            id="empty-id",
        ),
        pytest.param(
            {"json": ["x"]},
            422,
            "body: Input should be a valid dictionary or instance of ExtractRequest",
            id="json-array",
        ),
        pytest.param(
            {"content": b"{bad", "headers": {"content-type": "application/json"}},
            422,
            "body is not valid JSON "
            "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
            id="invalid-json",
        ),
        pytest.param({"json": {"text": "  \n"}}, 422, "`text` is empty", id="blank-text"),
        pytest.param(
            {"content": b"\xff\xfe", "headers": {"content-type": "text/plain"}},
            422,
            "body is not UTF-8 text",
            id="not-utf8",
        ),
        pytest.param(
            {"content": b"<x/>", "headers": {"content-type": "application/xml"}},
            415,
            f"content type 'application/xml' {NOT_JSON_TYPES}",
            id="xml",
        ),
        pytest.param(
            {"content": b"abc"}, 415, f"content type '(none)' {NOT_JSON_TYPES}", id="no-content-type"
        ),
        pytest.param(
            {"files": {"file": ("x.txt", b"")}}, 422, "uploaded file 'x.txt' is empty", id="empty-file"
        ),
        pytest.param(
            {"files": {"other": ("x.txt", b"abc")}},
            422,
            "multipart body has no file field named `file`",
            id="no-file-field",
        ),
        pytest.param(
            {"files": {"file": ("two.jsonl", TWO_STUDIES)}},
            422,
            "file 'two.jsonl' holds 2 studies; this endpoint takes one: send several to "
            "POST /v1/extract/batch, or annotate files with `trialsift annotate`",
            id="two-studies",
        ),
        pytest.param(
            {"files": {"file": ("bad.jsonl", b"{oops\n")}},
            422,
            "bad.jsonl:1: not valid JSON: "
            "Expecting property name enclosed in double quotes (line 1, column 2)",
            id="unreadable-file",
        ),
        pytest.param(
            {"json": {"record": {"foo": 1}}},
            422,
            '`record`: not an API v2 study: no "protocolSection" (keys found: foo)',
            id="record-not-apiv2",
        ),
        pytest.param(
            {"json": {"record": {"protocolSection": 1}}},
            422,
            '`record`: "protocolSection" is a number, expected an object',
            id="record-section-not-object",
        ),
    ],
)
def test_api_extract_refuses_bad_bodies(
    client: TestClient, kwargs: dict[str, Any], status: int, detail: str
) -> None:
    r = client.post("/v1/extract", **kwargs)
    assert (r.status_code, r.json()) == (status, {"detail": detail})


def test_api_extract_refuses_unknown_format(client: TestClient) -> None:
    r = client.post("/v1/extract?format=xml", json={"text": SEED})
    assert (r.status_code, r.json()) == (422, {"detail": "query.format: Input should be 'json' or 'html'"})


@pytest.mark.parametrize(("limit", "status"), [(SEED_CHARS, 200), (SEED_CHARS - 1, 422)])
def test_api_extract_text_length_limit(make_client: ClientFactory, limit: int, status: int) -> None:
    r = make_client(max_text_chars=limit).post("/v1/extract", json={"text": SEED, "id": "IM96"})
    assert r.status_code == status
    if status == 422:
        assert r.json() == {
            "detail": f"body: study 'IM96' has {SEED_CHARS:,} characters of text; the limit is {limit:,} "
            "(TRIALSIFT_MAX_TEXT_CHARS)"
        }


# -- body size limit -----------------------------------------------------------------------------------------

BODY_LIMIT = 1000


def _query_body(size: int) -> bytes:
    body = b'{"query": "' + b"a" * (size - 13) + b'"}'
    assert len(body) == size
    return body


@pytest.mark.parametrize(("size", "status"), [(BODY_LIMIT, 200), (BODY_LIMIT + 1, 413)])
def test_api_body_limit_with_content_length(make_client: ClientFactory, size: int, status: int) -> None:
    c = make_client(max_body_bytes=BODY_LIMIT)
    r = c.post("/v1/search", content=_query_body(size), headers={"content-type": "application/json"})
    assert r.status_code == status
    if status == 413:
        assert r.json() == {
            "detail": "request body is 1,001 bytes; the limit is 1,000 bytes (TRIALSIFT_MAX_BODY_BYTES)"
        }


def _chunked(head: bytes, tail: bytes) -> Callable[[], Iterator[bytes]]:
    """A body without Content-Length (sent chunked): 2,000 bytes between ``head`` and ``tail``."""

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(20):
            yield b"a" * 100
        yield tail

    return body


_MULTIPART = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        pytest.param("/v1/extract", "application/json", _chunked(b'{"text": "', b'"}'), id="extract-json"),
        pytest.param("/v1/extract", "text/plain", _chunked(b"x", b"x"), id="extract-text"),
        pytest.param(
            "/v1/extract",
            "multipart/form-data; boundary=XyZ",
            _chunked(_MULTIPART, b"\r\n--XyZ--\r\n"),
            id="upload",
        ),
        pytest.param("/v1/studies", "text/plain", _chunked(b"x", b"x"), id="ingest"),
        pytest.param(
            "/v1/extract/batch",
            "application/json",
            _chunked(b'{"records": ["', b'"]}'),
            id="batch",
        ),
        pytest.param(
            "/v1/search",
            "application/json",
            _chunked(b'{"query": "', b'"}'),
            id="search",
        ),
        pytest.param(
            "/v1/outcomes/search",
            "application/json",
            _chunked(b'{"query": "', b'"}'),
            id="outcomes",
        ),
    ],
)
def test_api_body_limit_without_content_length(
    make_client: ClientFactory, path: str, content_type: str, body: Callable[[], Iterator[bytes]]
) -> None:
    c = make_client(max_body_bytes=BODY_LIMIT)
    r = c.post(path, content=body(), headers={"content-type": content_type, **AUTH})
    assert "content-length" not in r.request.headers
    assert (r.status_code, r.json()) == (
        413,
        {"detail": "request body is over the limit; the limit is 1,000 bytes (TRIALSIFT_MAX_BODY_BYTES)"},
    )


# -- POST /v1/extract/batch ----------------------------------------------------------------------------------


def test_api_batch_reports_errors_in_place(client: TestClient) -> None:
    records: list[Any] = [
        SEED,
        {"text": 1},
        {"text": SEED, "id": "IM96"},
        {"foo": 1},
        record(0),
        {"text": "x", "bar": 2},
        {"text": "y", "id": ""},
    ]
    r = client.post("/v1/extract/batch", json={"records": records})
    assert r.status_code == 200
    body = r.json()
    assert (body["extracted"], body["failed"]) == (3, 4)
    got = [(x["index"], x["ok"], x["id"], x["error"]) for x in body["results"]]
    assert got == [
        (0, True, "text", None),
        (1, False, None, "records[1].text: expected a string, got int"),
        (2, True, "IM96", None),
        (3, False, None, 'records[3]: not an API v2 study: no "protocolSection" (keys found: foo)'),
        (4, True, "NCT02663973", None),
        (5, False, None, "records[5]: unknown key(s) bar; a text item has `text` and `id`"),
        (6, False, None, "records[6].id: expected a non-empty string"),
    ]
    assert [len(x["extraction"]["outcomes"]) for x in body["results"] if x["ok"]] == [11, 11, 11]
    assert all(x["extraction"] is None for x in body["results"] if not x["ok"])


@pytest.mark.parametrize("item", [{"text": "  "}, "  "], ids=["object", "string"])
def test_api_batch_blank_text_error_names_the_record(client: TestClient, item: Any) -> None:
    r = client.post("/v1/extract/batch", json={"records": [SEED, item]})
    assert r.json()["results"][1]["error"].startswith("records[1]")


def test_api_batch_text_length_limit_per_record(make_client: ClientFactory) -> None:
    c = make_client(max_text_chars=SEED_CHARS - 1)
    r = c.post("/v1/extract/batch", json={"records": [SEED, "short text"]})
    body = r.json()
    assert (r.status_code, body["extracted"], body["failed"]) == (200, 1, 1)
    assert body["results"][0]["error"] == (
        f"records[0]: study 'text' has {SEED_CHARS:,} characters of text; the limit is {SEED_CHARS - 1:,} "
        "(TRIALSIFT_MAX_TEXT_CHARS)"
    )


def test_api_text_length_counts_the_text_once(make_client: ClientFactory) -> None:
    r = make_client(max_text_chars=200).post("/v1/extract", json={"text": "a" * 150})
    assert r.status_code == 200


@pytest.mark.parametrize(("n", "status"), [(2, 200), (3, 422)])
def test_api_batch_size_limit(make_client: ClientFactory, n: int, status: int) -> None:
    r = make_client(max_batch=2).post("/v1/extract/batch", json={"records": ["some text"] * n})
    assert r.status_code == status
    if status == 422:
        assert r.json() == {"detail": "body.records: 3 records; at most 2 per request (TRIALSIFT_MAX_BATCH)"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"records": []}, "body.records: List should have at least 1 item after validation, not 0"),
        (
            {"records": [5]},
            "body.records[0].dict[str,any]: Input should be a valid dictionary; "
            "body.records[0].str: Input should be a valid string",
        ),
        ({"records": ["x"], "more": 1}, "body.more: Extra inputs are not permitted"),
        ({}, "body.records: Field required"),
    ],
)
def test_api_batch_refuses_bad_bodies(client: TestClient, body: dict[str, Any], detail: str) -> None:
    r = client.post("/v1/extract/batch", json=body)
    assert (r.status_code, r.json()) == (422, {"detail": detail})


def test_api_batch_invalid_json(client: TestClient) -> None:
    r = client.post(
        "/v1/extract/batch", content=b'{"records": [', headers={"content-type": "application/json"}
    )
    assert (r.status_code, r.json()) == (
        422,
        {"detail": "body: not valid JSON at character 13 (Expecting value)"},
    )


# -- /v1/studies: auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, WRITE_NEEDS_KEY),
        ({"Authorization": "Bearer nope"}, "API key not accepted for writes"),
        ({"Authorization": "Basic w"}, WRITE_NEEDS_KEY),
    ],
    ids=["no-key", "wrong-key", "not-bearer"],
)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_api_writes_need_the_write_key(
    fresh_client: TestClient, fresh_engine: Engine, method: str, headers: dict[str, str], detail: str
) -> None:
    if method == "POST":
        r = fresh_client.post("/v1/studies", json={"text": SEED, "id": "NEW"}, headers=headers)
    else:
        r = fresh_client.delete("/v1/studies/IM96", headers=headers)
    assert (r.status_code, r.json()) == (401, {"detail": detail})
    assert r.headers["www-authenticate"] == "Bearer"
    assert set(fresh_engine.store.ids()) == FRESH_IDS


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_api_writes_refused_without_a_write_key(make_client: ClientFactory, method: str) -> None:
    c = make_client(write_key=None)
    if method == "POST":
        r = c.post("/v1/studies", json={"text": SEED, "id": "NEW"}, headers=AUTH)
    else:
        r = c.delete("/v1/studies/IM96", headers=AUTH)
    assert (r.status_code, r.json()) == (403, {"detail": NO_WRITE_KEY})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"text": SEED}},
        {"content": SEED.encode(), "headers": {"content-type": "text/plain"}},
    ],
    ids=["json", "text-plain"],
)
def test_api_ingest_text_needs_an_id(fresh_client: TestClient, kwargs: dict[str, Any]) -> None:
    headers = {**kwargs.pop("headers", {}), **AUTH}
    r = fresh_client.post("/v1/studies", headers=headers, **kwargs)
    assert (r.status_code, r.json()) == (
        422,
        {"detail": "`text` names no NCT id: give the study's id in `id`"},
    )


# -- /v1/studies: the life of a study ------------------------------------------------------------------------


def test_api_study_lifecycle(fresh_client: TestClient) -> None:
    rec = record(VR_RECORD_INDEX)
    n_stored = FRESH_SAMPLE + 1

    r = fresh_client.post("/v1/studies", json={"record": rec}, headers=AUTH)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v1/studies/{VR_ID}"
    assert (r.json()["id"], r.json()["created"]) == (VR_ID, True)
    assert [o["measure"] for o in r.json()["extraction"]["outcomes"]] == outcome_measures(rec)
    extraction = r.json()["extraction"]

    got = fresh_client.get(f"/v1/studies/{VR_ID}")
    assert got.status_code == 200
    stored = got.json()
    assert (stored["id"], stored["source_format"], stored["source"]) == (VR_ID, "apiv2", rec)
    assert stored["extraction"] == extraction
    assert stored["study"]["title"] == rec["protocolSection"]["identificationModule"]["briefTitle"]

    # Searchable at once, in every mode.
    for mode in ("hybrid", "lexical", "dense"):
        hits = hit_ids(fresh_client.get("/v1/search", params={"q": VR_QUERY, "mode": mode}))
        assert hits[0] == VR_ID, mode
    assert fresh_client.get("/readyz").json()["studies"] == n_stored + 1

    again = fresh_client.post("/v1/studies", json={"record": rec}, headers=AUTH)
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert again.headers["location"] == f"/v1/studies/{VR_ID}"
    assert fresh_client.get(f"/v1/studies/{VR_ID}").json()["created_at"] == stored["created_at"]
    assert fresh_client.get("/readyz").json()["studies"] == n_stored + 1
    assert hit_ids(fresh_client.get("/v1/search", params={"q": VR_QUERY, "mode": "lexical"})) == [VR_ID]

    deleted = fresh_client.delete(f"/v1/studies/{VR_ID}", headers=AUTH)
    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = {"detail": f"study '{VR_ID}' is not stored"}
    for r in (
        fresh_client.get(f"/v1/studies/{VR_ID}"),
        fresh_client.delete(f"/v1/studies/{VR_ID}", headers=AUTH),
        fresh_client.get(f"/v1/studies/{VR_ID}/similar"),
    ):
        assert (r.status_code, r.json()) == (404, gone)
    assert hit_ids(fresh_client.get("/v1/search", params={"q": VR_QUERY, "mode": "lexical"})) == []
    assert fresh_client.get("/readyz").json()["studies"] == n_stored


@pytest.mark.parametrize(
    ("kwargs", "expected_id", "expected_source"),
    [
        ({"json": {"text": SEED, "id": "IM96-B"}}, "IM96-B", {"text": SEED, "id": "IM96-B"}),
        (
            {
                "params": {"id": "PLAIN-1"},
                "content": SEED.encode(),
                "headers": {"content-type": "text/plain"},
            },
            "PLAIN-1",
            {"text": SEED, "id": "PLAIN-1"},
        ),
        ({"files": {"file": ("TH-CART-027.txt", TH_CART.read_bytes())}}, "TH-CART-027", None),
    ],
    ids=["json-text", "text-plain", "upload"],
)
def test_api_ingest_every_body_kind(
    fresh_client: TestClient, kwargs: dict[str, Any], expected_id: str, expected_source: Any
) -> None:
    headers = {**kwargs.pop("headers", {}), **AUTH}
    r = fresh_client.post("/v1/studies", headers=headers, **kwargs)
    assert (r.status_code, r.headers["location"], r.json()["created"]) == (
        201,
        f"/v1/studies/{expected_id}",
        True,
    )
    stored = fresh_client.get(f"/v1/studies/{expected_id}").json()
    assert (stored["source_format"], stored["source"]) == ("seed", expected_source)
    similar = fresh_client.get(f"/v1/studies/{expected_id}/similar", params={"limit": 100})
    assert similar.status_code == 200
    assert expected_id not in hit_ids(similar)
    assert len(hit_ids(similar)) == FRESH_SAMPLE + 1


# -- read key ------------------------------------------------------------------------------------------------

READS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/search", {"params": {"q": "leukemia"}}),
    ("POST", "/v1/search", {"json": {"query": "leukemia"}}),
    ("POST", "/v1/outcomes/search", {"json": {"query": "overall survival"}}),
    ("GET", "/v1/studies/IM96", {}),
    ("GET", "/v1/studies/IM96/similar", {}),
    ("POST", "/v1/extract", {"json": {"text": "Overall survival"}}),
    ("POST", "/v1/extract/batch", {"json": {"records": ["Overall survival"]}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), READS, ids=[f"{m} {p}" for m, p, _ in READS])
@pytest.mark.parametrize(
    ("key", "status", "detail"),
    [(None, 401, READ_NEEDS_KEY), ("r", 200, None), ("w", 200, None), ("x", 401, "API key not accepted")],
    ids=["no-key", "read-key", "write-key", "wrong-key"],
)
def test_api_read_key(
    make_client: ClientFactory,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    key: str | None,
    status: int,
    detail: str | None,
) -> None:
    c = make_client(read_key="r")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = c.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status
    if detail is not None:
        assert r.json() == {"detail": detail}
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_api_health_needs_no_read_key(make_client: ClientFactory, path: str) -> None:
    assert make_client(read_key="r").get(path).status_code == 200


# -- search --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "mode", "get_filters", "post_filters"),
    [
        ("overall survival", "hybrid", {}, {}),
        ("CAR-T cell therapy", "lexical", {"phase": "1"}, {"phase": ["1"]}),
        ("leukemia", "dense", {"phase": ["2", "3"]}, {"phase": ["2", "3"]}),
        (
            "response rate",
            "hybrid",
            {"endpoint": "objective_response_rate", "horizon": "..365"},
            {"endpoint": ["objective_response_rate"], "horizon": "..365"},
        ),
        (
            "adverse events",
            "hybrid",
            {"category": "safety", "role": "primary", "condition": "leukemia"},
            {"category": ["safety"], "role": ["primary"], "condition": "leukemia"},
        ),
    ],
)
def test_api_search_get_and_post_agree(
    client: TestClient, query: str, mode: str, get_filters: dict[str, Any], post_filters: dict[str, Any]
) -> None:
    got = client.get("/v1/search", params={"q": query, "mode": mode, "limit": 20, **get_filters})
    posted = client.post(
        "/v1/search", json={"query": query, "mode": mode, "limit": 20, "filters": post_filters}
    )
    assert (got.status_code, posted.status_code) == (200, 200)
    assert got.json() == posted.json()
    assert got.json()["hits"]


def _page_ids(
    client: TestClient, kind: str, mode: str, query: str, offset: int, limit: int
) -> tuple[list[Any], Any]:
    if kind == "search":
        r = client.get("/v1/search", params={"q": query, "mode": mode, "offset": offset, "limit": limit})
    elif kind == "outcomes":
        r = client.post(
            "/v1/outcomes/search", json={"query": query, "mode": mode, "offset": offset, "limit": limit}
        )
    else:
        r = client.get(f"/v1/studies/{query}/similar", params={"offset": offset, "limit": limit})
    assert r.status_code == 200
    body = r.json()
    assert (body["offset"], body["limit"]) == (offset, limit)
    return [(h["id"], h.get("outcome")) for h in body["hits"]], body["next_offset"]


@pytest.mark.parametrize(
    ("kind", "mode", "query"),
    [
        ("search", "hybrid", "overall survival"),
        ("search", "lexical", "CAR-T cell therapy leukemia"),
        ("search", "dense", "pain after surgery"),
        ("outcomes", "hybrid", "overall survival"),
        ("outcomes", "lexical", "CAR-T cell therapy leukemia"),
        pytest.param("outcomes", "dense", "pain after surgery"),
        ("similar", "", "IM96"),
    ],
)
def test_api_pages_are_slices_of_one_deeper_search(
    client: TestClient, kind: str, mode: str, query: str
) -> None:
    deep, deep_next = _page_ids(client, kind, mode, query, 0, 15)
    assert (len(deep), deep_next) == (15, 15)
    pages: list[Any] = []
    for offset in (0, 5, 10):
        page, next_offset = _page_ids(client, kind, mode, query, offset, 5)
        assert next_offset == offset + 5
        pages += page
    assert pages == deep


def test_api_search_last_page(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "overall survival", "offset": 40, "limit": 5})
    assert (len(r.json()["hits"]), r.json()["next_offset"]) == (SHARED_STUDIES - 40, None)
    r = client.get("/v1/search", params={"q": "overall survival", "offset": SHARED_STUDIES, "limit": 5})
    assert (r.json()["hits"], r.json()["next_offset"]) == ([], None)


def test_api_search_page_ending_at_the_last_hit_is_the_last(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "overall survival", "offset": SHARED_STUDIES - 5, "limit": 5})
    assert (len(r.json()["hits"]), r.json()["next_offset"]) == (5, None)


def _any_outcome(pred: Callable[[Any], bool]) -> Callable[[StudyEntry], bool]:
    return lambda e: any(pred(o) for o in e.outcomes)


FILTER_CASES: list[tuple[dict[str, Any], Callable[[StudyEntry], bool], int]] = [
    ({"phase": "1"}, lambda e: "PHASE1" in e.phases, 10),
    ({"phase": ["2", "3"]}, lambda e: bool({"PHASE2", "PHASE3"} & set(e.phases)), 19),
    ({"phase": "early1"}, lambda e: "EARLY_PHASE1" in e.phases, 1),
    ({"endpoint": "overall_survival"}, _any_outcome(lambda o: "overall_survival" in o.endpoints), 13),
    ({"horizon": "..28"}, _any_outcome(lambda o: o.horizon_days is not None and o.horizon_days <= 28), 17),
    ({"time_point": "365.25"}, _any_outcome(lambda o: 365.25 in o.points_days), 13),
    (
        {"category": "safety", "role": "primary"},
        _any_outcome(lambda o: o.category == "safety" and o.role == "primary"),
        19,
    ),
    ({"condition": "leukemia"}, lambda e: any("leukemia" in c.lower() for c in e.conditions + e.keywords), 9),
    ({"intervention": "venetoclax"}, lambda e: any("venetoclax" in i.lower() for i in e.interventions), 3),
    ({"escalation": "modified 3+3"}, lambda e: e.escalation == "modified 3+3", 1),
    ({"criteria": "RECIST 1.1"}, lambda e: "RECIST 1.1" in e.criteria, 5),
]


@pytest.mark.parametrize(("params", "pred", "n"), FILTER_CASES, ids=[str(p) for p, _, _ in FILTER_CASES])
@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_api_search_filters_return_only_matching_studies(
    client: TestClient,
    engine: Engine,
    params: dict[str, Any],
    pred: Callable[[StudyEntry], bool],
    n: int,
    mode: str,
) -> None:
    matching = {i for i in engine.index.ids() if pred(engine.index.get(i))}
    assert len(matching) == n
    r = client.get("/v1/search", params={"q": "response", "mode": mode, "limit": 100, **params})
    assert r.status_code == 200
    hits = set(hit_ids(r))
    if mode == "lexical":  # only studies that have a query word
        assert hits <= matching and hits
    else:
        assert hits == matching


@pytest.mark.parametrize(
    ("filters", "pred"),
    [
        ({"endpoint": ["overall_survival"]}, lambda o: "overall_survival" in o.endpoints),
        ({"horizon": "60..400"}, lambda o: o.horizon_days is not None and 60 <= o.horizon_days <= 400),
        (
            {"category": ["safety"], "role": ["secondary"]},
            lambda o: (o.category, o.role) == ("safety", "secondary"),
        ),
    ],
)
def test_api_outcome_search_filters_hold_for_the_outcome_itself(
    client: TestClient, engine: Engine, filters: dict[str, Any], pred: Callable[[Any], bool]
) -> None:
    r = client.post("/v1/outcomes/search", json={"query": "response", "limit": 100, "filters": filters})
    hits = r.json()["hits"]
    assert r.status_code == 200 and hits
    assert all(pred(engine.index.get(h["id"]).outcomes[h["outcome"]]) for h in hits)
    n_matching = sum(pred(o) for i in engine.index.ids() for o in engine.index.get(i).outcomes)
    assert len(hits) == min(100, n_matching)


BAD_FILTERS: list[tuple[str, Any, str]] = [
    (
        "phase",
        "7",
        "filters: phase '7' is not one of 1, 2, 3, 4, early1, NA (or PHASE1 … as the registry spells)",
    ),
    ("phase", "early2", "filters: phase 'early2': only phase 1 has an early form"),
    (
        "endpoint",
        "nope",
        "filters: endpoint 'nope' is not an endpoint id of the vocabulary (e.g. overall_survival)",
    ),
    (
        "category",
        "x",
        "filters: category 'x' is not one of "
        "efficacy, safety, pharmacokinetics, biomarker, patient_reported, other",
    ),
    ("role", "boss", "filters: role 'boss' is not one of primary, secondary, other"),
    ("horizon", "5..1", "filters: day range 5..1 is empty: the low end is above the high"),
    (
        "time_point",
        "abc",
        "filters: day range 'abc': expected DAYS, LOW..HIGH, ..HIGH or LOW.. (numbers of days)",
    ),
]
_LISTS = {"phase", "endpoint", "category", "role"}


@pytest.mark.parametrize(
    ("name", "value", "detail"), BAD_FILTERS, ids=[f"{n}={v}" for n, v, _ in BAD_FILTERS]
)
@pytest.mark.parametrize(
    "route", ["GET /v1/search", "POST /v1/search", "POST /v1/outcomes/search", "similar"]
)
def test_api_bad_filter_values(client: TestClient, route: str, name: str, value: str, detail: str) -> None:
    if route == "GET /v1/search":
        r = client.get("/v1/search", params={"q": "x", name: value})
    elif route == "similar":
        r = client.get("/v1/studies/IM96/similar", params={name: value})
    else:
        filters = {name: [value] if name in _LISTS else value}
        r = client.post(route.split()[1], json={"query": "x", "filters": filters})
    assert (r.status_code, r.json()) == (422, {"detail": detail})


@pytest.mark.parametrize(
    ("request_kwargs", "detail"),
    [
        ({"params": {"q": "  "}}, "query: is blank"),
        ({"params": {"q": ""}}, "query.q: String should have at least 1 character"),
        ({"params": {}}, "query.q: Field required"),
        (
            {"params": {"q": "x", "mode": "nope"}},
            "query.mode: Input should be 'dense', 'lexical' or 'hybrid'",
        ),
        ({"params": {"q": "x", "limit": 101}}, "query.limit: Input should be less than or equal to 100"),
        ({"params": {"q": "x", "offset": -1}}, "query.offset: Input should be greater than or equal to 0"),
        ({"json": {"query": "x", "filters": {"foo": 1}}}, "body.filters.foo: Extra inputs are not permitted"),
        ({"json": {"query": "x", "limit": 0}}, "body.limit: Input should be greater than or equal to 1"),
        (
            {"json": {"query": "x", "mode": "nope"}},
            "body.mode: Input should be 'dense', 'lexical' or 'hybrid'",
        ),
        ({"json": {"q": "x"}}, "body.query: Field required; body.q: Extra inputs are not permitted"),
    ],
)
def test_api_search_refuses_bad_requests(
    client: TestClient, request_kwargs: dict[str, Any], detail: str
) -> None:
    method = "POST" if "json" in request_kwargs else "GET"
    r = client.request(method, "/v1/search", **request_kwargs)
    assert (r.status_code, r.json()) == (422, {"detail": detail})


@pytest.mark.parametrize(("offset", "status"), [(10, 200), (11, 422)])
@pytest.mark.parametrize("route", ["GET /v1/search", "POST /v1/outcomes/search", "similar"])
def test_api_search_depth_limit(make_client: ClientFactory, route: str, offset: int, status: int) -> None:
    c = make_client(max_results=20)
    if route == "GET /v1/search":
        r = c.get("/v1/search", params={"q": "survival", "offset": offset, "limit": 10})
    elif route == "similar":
        r = c.get("/v1/studies/IM96/similar", params={"offset": offset, "limit": 10})
    else:
        r = c.post("/v1/outcomes/search", json={"query": "survival", "offset": offset, "limit": 10})
    assert r.status_code == status
    if status == 422:
        assert r.json() == {
            "detail": "offset + limit = 21 is past the deepest result served (20, TRIALSIFT_MAX_RESULTS)"
        }
    else:
        assert (len(r.json()["hits"]), r.json()["next_offset"]) == (10, None)


@pytest.mark.parametrize(("length", "status"), [(10, 200), (11, 422)])
def test_api_search_query_length_limit(make_client: ClientFactory, length: int, status: int) -> None:
    c = make_client(max_query_chars=10)
    for r in (
        c.get("/v1/search", params={"q": "a" * length}),
        c.post("/v1/outcomes/search", json={"query": "a" * length}),
    ):
        assert r.status_code == status
        if status == 422:
            assert r.json() == {"detail": "query: 11 characters; the limit is 10 (TRIALSIFT_MAX_QUERY_CHARS)"}


def test_api_search_modes(client: TestClient, engine: Engine) -> None:
    lexical = client.get("/v1/search", params={"q": "venetoclax", "mode": "lexical", "limit": 100}).json()
    assert lexical["mode"] == "lexical"
    with_word = {i for i in engine.index.ids() if "venetoclax" in engine.index.get(i).lexical_text().lower()}
    assert set(hit_ids_of(lexical)) == with_word and len(with_word) == 3
    nonsense = client.get("/v1/search", params={"q": "zzqxv", "mode": "lexical"}).json()
    assert (nonsense["hits"], nonsense["next_offset"]) == ([], None)
    dense = client.get("/v1/search", params={"q": "zzqxv", "mode": "dense"}).json()
    assert (dense["mode"], len(dense["hits"]), dense["next_offset"]) == ("dense", 10, 10)


def test_api_search_echoes_normalised_filters(client: TestClient) -> None:
    r = client.post(
        "/v1/search",
        json={
            "query": "response",
            "filters": {"phase": ["1", "early1"], "horizon": "..28", "time_point": "28"},
        },
    )
    assert r.json()["filters"] == {
        "phases": ["PHASE1", "EARLY_PHASE1"],
        "time_point": {"low": 28.0, "high": 28.0},
        "horizon": {"low": None, "high": 28.0},
    }


# -- /v1/outcomes/search and similar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "mode"),
    [("overall survival", "hybrid"), ("dose limiting toxicity", "dense"), ("pain", "lexical")],
)
def test_api_outcome_hits_point_at_the_extracted_outcome(client: TestClient, query: str, mode: str) -> None:
    hits = client.post("/v1/outcomes/search", json={"query": query, "mode": mode, "limit": 20}).json()["hits"]
    assert len(hits) == 20
    for h in hits:
        outcome = client.get(f"/v1/studies/{h['id']}").json()["extraction"]["outcomes"][h["outcome"]]
        assert (outcome["measure"], outcome["role"], outcome["endpoints"], outcome["category"]) == (
            h["measure"],
            h["role"],
            h["endpoints"],
            h["category"],
        )
        horizon = outcome["timing"]["horizon_days"] if outcome["timing"] else None
        assert horizon == h["horizon_days"]


def test_api_similar_excludes_the_study_itself(client: TestClient) -> None:
    r = client.get("/v1/studies/IM96/similar", params={"limit": 100})
    assert r.status_code == 200
    ids = hit_ids(r)
    assert "IM96" not in ids
    assert sorted(ids) == sorted(set(ids)) and len(ids) == SHARED_STUDIES - 1
    assert (r.json()["id"], r.json()["next_offset"]) == ("IM96", None)


def test_api_similar_filters(client: TestClient, engine: Engine) -> None:
    ids = hit_ids(client.get("/v1/studies/IM96/similar", params={"limit": 100, "phase": "2"}))
    assert set(ids) == {i for i in engine.index.ids() if "PHASE2" in engine.index.get(i).phases} - {"IM96"}


@pytest.mark.parametrize("path", ["/v1/studies/NOPE", "/v1/studies/NOPE/similar"])
def test_api_unknown_study_is_404(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert (r.status_code, r.json()) == (404, {"detail": "study 'NOPE' is not stored"})


def test_api_get_study(client: TestClient) -> None:
    body = client.get("/v1/studies/NCT02663973").json()
    assert (body["id"], body["source_format"], body["source"]) == ("NCT02663973", "apiv2", None)
    assert [o["measure"] for o in body["extraction"]["outcomes"]] == outcome_measures(record(0))


# -- health, docs, middleware --------------------------------------------------------------------------------


def test_api_health(client: TestClient) -> None:
    assert (client.get("/healthz").status_code, client.get("/healthz").json()) == (200, {"status": "ok"})
    r = client.get("/readyz")
    assert (r.status_code, r.json()) == (
        200,
        {
            "status": "ready",
            "studies": SHARED_STUDIES,
            "model": "trialsift/hashing-v1",
            "store_seq": SHARED_STUDIES,
        },
    )


@pytest.fixture
def loading_client(tmp_path: Any, extractor: Extractor) -> Iterator[TestClient]:
    """An app whose engine is not ready (constructed, never opened)."""
    settings: Settings = make_settings(tmp_path)
    engine = Engine(settings, extractor=extractor)
    assert engine.ready is False
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c
    engine.close(save=False)


def test_api_readyz_while_loading(loading_client: TestClient) -> None:
    r = loading_client.get("/readyz")
    assert (r.status_code, r.json()) == (
        503,
        {"status": "loading", "studies": None, "model": None, "store_seq": None},
    )
    assert loading_client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [*READS, ("POST", "/v1/studies", {"json": {"text": SEED, "id": "X"}, "headers": AUTH})],
    ids=[*(f"{m} {p}" for m, p, _ in READS), "POST /v1/studies"],
)
def test_api_routes_answer_503_while_loading(
    loading_client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    r = loading_client.request(method, path, **kwargs)
    assert (r.status_code, r.json()) == (503, {"detail": LOADING})


def test_api_docs_and_openapi(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    schema = client.get("/openapi.json").json()
    assert (schema["info"]["title"], schema["info"]["version"]) == ("trialsift", "1")
    assert sorted(schema["paths"]) == [
        "/healthz",
        "/readyz",
        "/v1/extract",
        "/v1/extract/batch",
        "/v1/outcomes/search",
        "/v1/search",
        "/v1/studies",
        "/v1/studies/{study_id}",
        "/v1/studies/{study_id}/similar",
    ]
    assert sorted(schema["paths"]["/v1/extract"]["post"]["requestBody"]["content"]) == [
        "application/json",
        "multipart/form-data",
        "text/plain",
    ]


def test_api_request_id(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "r" * 100}).headers["x-request-id"] == "r" * 64
    generated = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    # Errors carry it too.
    assert client.get("/nope", headers={"X-Request-ID": "e1"}).headers["x-request-id"] == "e1"


def test_api_access_log(make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    c = make_client(access_log=True)
    with caplog.at_level(logging.INFO, logger="trialsift.access"):
        c.get("/v1/search", params={"q": "pain"}, headers={"X-Request-ID": "log-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "trialsift.access"]
    assert len(lines) == 1
    line = lines[0]
    assert {k: line[k] for k in ("request_id", "method", "path", "query", "status")} == {
        "request_id": "log-1",
        "method": "GET",
        "path": "/v1/search",
        "query": "q=pain",
        "status": 200,
    }


ORIGIN = "https://app.example"


def test_api_cors_preflight(make_client: ClientFactory) -> None:
    c = make_client(cors_origins=[ORIGIN])
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Authorization"}
    ok = c.options("/v1/studies", headers={"Origin": ORIGIN, **pre})
    assert (ok.status_code, ok.headers["access-control-allow-origin"]) == (200, ORIGIN)
    assert ok.headers["access-control-allow-methods"] == "GET, POST, DELETE"
    refused = c.options("/v1/studies", headers={"Origin": "https://evil.example", **pre})
    assert (refused.status_code, refused.text) == (400, "Disallowed CORS origin")
    assert "access-control-allow-origin" not in refused.headers
    simple = c.get("/healthz", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_api_no_cors_by_default(client: TestClient) -> None:
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": ORIGIN}).headers


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [("GET", "/nope", 404, "Not Found"), ("GET", "/v1/extract", 405, "Method Not Allowed")],
)
def test_api_unknown_routes(client: TestClient, method: str, path: str, status: int, detail: str) -> None:
    r = client.request(method, path)
    assert (r.status_code, r.json()) == (status, {"detail": detail})


@pytest.fixture
def failing_client(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[TestClient]:
    """A client whose engine's extraction raises an unexpected error."""

    def boom(studies: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "extract", boom)
    app = create_app(make_settings(settings.data_dir, access_log=True), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.INFO):
        yield c


def test_api_unexpected_error_is_a_500_without_traceback(failing_client: TestClient) -> None:
    r = failing_client.post("/v1/extract", json={"text": "x"}, headers={"X-Request-ID": "rid-1"})
    assert (r.status_code, r.json()) == (500, {"detail": "internal error (request id rid-1)"})


def test_api_unexpected_error_keeps_request_id_and_logs_500(
    failing_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    r = failing_client.post("/v1/extract", json={"text": "x"}, headers={"X-Request-ID": "rid-1"})
    statuses = [json.loads(x.getMessage())["status"] for x in caplog.records if x.name == "trialsift.access"]
    assert (r.headers.get("x-request-id"), statuses) == ("rid-1", [500])
