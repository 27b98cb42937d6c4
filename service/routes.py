"""The HTTP routes: validate, call the engine, shape the response. No extraction or search logic here."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.filters import FilterError, SearchFilters
from index.trial_index import SearchMode
from nlp.errors import RecordError
from nlp.study import Study
from service.engine import Engine, NotFound, ReadOnlyIndex
from service.inputs import (
    InputError,
    check_length,
    describe_errors,
    studies_from_upload,
    study_from_item,
    study_from_record,
    study_from_text,
)
from service.schemas import (
    BatchItem,
    BatchRequest,
    BatchResponse,
    ErrorOut,
    ExtractRequest,
    Filters,
    Health,
    IngestResponse,
    OutcomeSearchResponse,
    Ready,
    SearchRequest,
    SearchResponse,
    SimilarResponse,
    StudyExtraction,
    StudyOut,
)
from service.settings import Settings

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


# -- dependencies ------------------------------------------------------------------------------------------


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine | None = request.app.state.engine
    if engine is None or not engine.ready:
        raise HTTPException(503, "the service is still loading; retry when GET /readyz answers 200")
    return engine


Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def _key_matches(creds: HTTPAuthorizationCredentials | None, *keys: Any) -> bool:
    if creds is None:
        return False
    given = creds.credentials.encode()
    return any(k is not None and hmac.compare_digest(given, k.get_secret_value().encode()) for k in keys)


def require_read(creds: Creds, settings: SettingsDep) -> None:
    """Reads are open unless a read key is set; then the read or the write key is needed."""
    if settings.read_key is None:
        return
    if not _key_matches(creds, settings.read_key, settings.write_key):
        raise HTTPException(
            401,
            "this server needs an API key for reads: send `Authorization: Bearer <key>`"
            if creds is None
            else "API key not accepted",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_write(creds: Creds, settings: SettingsDep) -> None:
    """Writes need the write key; a server without one refuses writes."""
    if settings.write_key is None:
        raise HTTPException(
            403, "writes are disabled on this server: it has no write key (TRIALSIFT_WRITE_KEY)"
        )
    if not _key_matches(creds, settings.write_key):
        raise HTTPException(
            401,
            "writes need the API key: send `Authorization: Bearer <key>`"
            if creds is None
            else "API key not accepted for writes",
            headers={"WWW-Authenticate": "Bearer"},
        )


#: ``?id=`` names a study sent as a text/plain body (it is read from the request in ``_read_study``; declared
#: here so the OpenAPI document lists it).
TextId = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        description="The study's id, for a text/plain body (default: its NCT id)",
    ),
]

Read = Depends(require_read)
Write = Depends(require_write)

# -- request bodies that are JSON or a file ------------------------------------------------------------------

_STUDY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ExtractRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


async def _read_study(
    request: Request, settings: Settings, *, need_id: bool, text_id: str | None = None
) -> tuple[Study, Any]:
    """The one study a request body holds, and the input to keep as its source (None for files)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype == "application/json":
            try:
                obj = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise InputError(f"body is not valid JSON ({err})") from None
            try:
                body = ExtractRequest.model_validate(obj)
            except ValidationError as err:
                raise InputError(_describe_validation("body", err)) from None
            if body.text is not None:
                study = study_from_text(body.text, body.id, need_id=need_id)
                source: Any = {"text": body.text, "id": body.id}
                text_chars: int | None = len(body.text)
            else:
                study = study_from_record(body.record)
                source, text_chars = body.record, None
        elif ctype == "text/plain":
            raw = await request.body()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("body is not UTF-8 text") from None
            study = study_from_text(text, text_id, need_id=need_id)
            source = {"text": text, "id": text_id}
            text_chars = len(text)
        elif ctype == "multipart/form-data":
            study = await _uploaded_study(request)
            source, text_chars = None, None
        else:
            raise HTTPException(
                415,
                f"content type {ctype or '(none)'!r} is not accepted: send application/json "
                '({"text": ...} or {"record": ...}), text/plain, or multipart/form-data with a `file`',
            )
        check_length(study, settings.max_text_chars, "body", text_chars)
    except InputError as err:
        raise HTTPException(422, str(err)) from None
    return study, source


async def _uploaded_study(request: Request) -> Study:
    try:
        form = await request.form()
    except StarletteHTTPException as err:
        if err.status_code != 400:  # the body-size limit's 413 goes out as it is
            raise
        # Starlette's 400 for a malformed multipart body: 422 with the reason, as for any unreadable body.
        raise InputError(f"multipart body could not be read: {err.detail}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InputError("multipart body has no file field named `file`")
    name = upload.filename or "upload"
    data = await upload.read()
    items = await run_in_threadpool(studies_from_upload, data, name)
    errors = [item for item in items if isinstance(item, RecordError)]
    if errors:
        raise InputError("; ".join(str(e) for e in errors[:5]))
    if len(items) != 1:
        raise InputError(
            f"file {name!r} holds {len(items)} studies; this endpoint takes one: send several to "
            "POST /v1/extract/batch, or annotate files with `trialsift annotate`"
        )
    study = items[0]
    assert isinstance(study, Study)
    return study


def _describe_validation(prefix: str, err: ValidationError) -> str:
    return describe_errors([{**e, "loc": (prefix, *e["loc"])} for e in err.errors()])


# -- extraction ----------------------------------------------------------------------------------------------


@router.post(
    "/v1/extract",
    response_model=StudyExtraction,
    tags=["extraction"],
    openapi_extra=_STUDY_BODY,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **_errors(401, 413, 415, 422, 503),
    },
)
async def extract(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    _: None = Read,
    format: Annotated[
        Literal["json", "html"], Query(description="html: the text with highlighted spans")
    ] = "json",
    id: TextId = None,
) -> Any:
    """Extract one study: JSON `{"text": ...}` (seed layout or protocol text), `{"record": {...}}` (an API v2
    study), plain text, or a file upload (any format `trialsift annotate` reads) → the spec's JSON."""
    study, _source = await _read_study(request, settings, need_id=False, text_id=id)
    if format == "html":
        from nlp.render import render_study_html

        return HTMLResponse(await run_in_threadpool(render_study_html, study, engine.extractor))
    [result] = await run_in_threadpool(engine.extract, [study])
    return result


@router.post(
    "/v1/extract/batch",
    response_model=BatchResponse,
    tags=["extraction"],
    responses=_errors(401, 413, 422, 503),
)
def extract_batch(body: BatchRequest, engine: EngineDep, settings: SettingsDep, _: None = Read) -> Any:
    """Extract many studies; a record that cannot be read gets its error in place, the others are still
    extracted."""
    if len(body.records) > settings.max_batch:
        raise HTTPException(
            422,
            f"body.records: {len(body.records)} records; at most {settings.max_batch} per request "
            "(TRIALSIFT_MAX_BATCH)",
        )
    results: list[BatchItem | None] = []
    good: list[tuple[int, Study]] = []
    for i, item in enumerate(body.records):
        try:
            study, text_chars = study_from_item(item, f"records[{i}]")
            check_length(study, settings.max_text_chars, f"records[{i}]", text_chars)
        except InputError as err:
            results.append(BatchItem(index=i, ok=False, error=str(err)))
            continue
        results.append(None)
        good.append((i, study))
    for (i, study), extraction in zip(good, engine.extract([s for _, s in good]), strict=True):
        results[i] = BatchItem(
            index=i, ok=True, id=study.id, extraction=StudyExtraction.model_validate(extraction)
        )
    done = [r for r in results if r is not None]
    return BatchResponse(extracted=len(good), failed=len(done) - len(good), results=done)


# -- studies -------------------------------------------------------------------------------------------------


@router.post(
    "/v1/studies",
    response_model=IngestResponse,
    status_code=201,
    tags=["studies"],
    openapi_extra=_STUDY_BODY,
    responses={
        200: {"model": IngestResponse, "description": "Replaced"},
        **_errors(401, 403, 409, 413, 415, 422, 503),
    },
)
async def ingest(
    request: Request,
    response: Response,
    engine: EngineDep,
    settings: SettingsDep,
    _: None = Write,
    id: TextId = None,
) -> Any:
    """Store, extract and index a study (same bodies as /v1/extract); searchable when this returns. A study
    with the same id is replaced (200)."""
    study, source = await _read_study(request, settings, need_id=True, text_id=id)
    try:
        [done] = await run_in_threadpool(engine.ingest, [(study, source)])
    except ReadOnlyIndex as err:
        raise HTTPException(409, str(err)) from None
    response.status_code = 201 if done.created else 200
    response.headers["Location"] = f"/v1/studies/{done.id}"
    return IngestResponse(id=done.id, created=done.created, extraction=done.extraction)


@router.get(
    "/v1/studies/{study_id}", response_model=StudyOut, tags=["studies"], responses=_errors(401, 404, 503)
)
def get_study(study_id: str, engine: EngineDep, _: None = Read) -> Any:
    """A stored study: its input, the study as read, and its extraction."""
    try:
        s = engine.get(study_id)
    except NotFound as err:
        raise HTTPException(404, str(err)) from None
    return StudyOut(
        id=s.id,
        source_format=s.source_format,
        created_at=s.created_at,
        updated_at=s.updated_at,
        source=s.source,
        study=s.study,
        extraction=s.extraction,
    )


@router.delete(
    "/v1/studies/{study_id}", status_code=204, tags=["studies"], responses=_errors(401, 403, 404, 409, 503)
)
def delete_study(study_id: str, engine: EngineDep, _: None = Write) -> Response:
    """Remove a study from the store and the index."""
    try:
        engine.delete(study_id)
    except NotFound as err:
        raise HTTPException(404, str(err)) from None
    except ReadOnlyIndex as err:
        raise HTTPException(409, str(err)) from None
    return Response(status_code=204)


# -- search --------------------------------------------------------------------------------------------------


def _filters(f: Filters) -> SearchFilters:
    try:
        return SearchFilters.from_options(f)
    except FilterError as err:
        raise HTTPException(422, f"filters: {err}") from None


def _depth(offset: int, limit: int, settings: Settings) -> int:
    """How deep to search for a page: one past its end (to tell whether another page follows)."""
    k = offset + limit
    if k > settings.max_results:
        raise HTTPException(
            422,
            f"offset + limit = {k} is past the deepest result served ({settings.max_results}, "
            "TRIALSIFT_MAX_RESULTS)",
        )
    return min(k + 1, settings.max_results)


def _check_query(query: str, settings: Settings) -> str:
    if not query.strip():
        raise HTTPException(422, "query: is blank")
    if len(query) > settings.max_query_chars:
        raise HTTPException(
            422,
            f"query: {len(query):,} characters; the limit is {settings.max_query_chars:,} "
            "(TRIALSIFT_MAX_QUERY_CHARS)",
        )
    return query


def _page(offset: int, limit: int, found: int) -> dict[str, Any]:
    more = found > offset + limit
    return {"offset": offset, "limit": limit, "next_offset": offset + limit if more else None}


def _search_page(
    body: SearchRequest,
    settings: Settings,
    run: Callable[[str, SearchMode, int, SearchFilters], Sequence[Any]],
) -> dict[str, Any]:
    """One page of a search: validate, search one past the page's end, cut the page (hits as plain dicts:
    FastAPI validates the response once, against the route's model)."""
    query = _check_query(body.query, settings)
    filters = _filters(body.filters)
    hits = run(query, body.mode, _depth(body.offset, body.limit, settings), filters)
    return {
        "query": query,
        "mode": body.mode,
        "filters": filters.describe(),
        "hits": [asdict(h) for h in hits[body.offset : body.offset + body.limit]],
        **_page(body.offset, body.limit, len(hits)),
    }


class _FilterQuery:
    """The filters as query parameters (GET requests)."""

    def __init__(
        self,
        phase: Annotated[list[str], Query(description="1, 2, 3, 4, early1, NA; repeat for any of")] = [],  # noqa: B006
        condition: str | None = None,
        intervention: str | None = None,
        escalation: Annotated[list[str], Query()] = [],  # noqa: B006
        criteria: Annotated[list[str], Query()] = [],  # noqa: B006
        endpoint: Annotated[list[str], Query()] = [],  # noqa: B006
        category: Annotated[list[str], Query()] = [],  # noqa: B006
        role: Annotated[list[str], Query()] = [],  # noqa: B006
        time_point: Annotated[str | None, Query(description="days: N, LOW..HIGH, ..HIGH, LOW..")] = None,
        horizon: Annotated[str | None, Query(description="days, as time_point")] = None,
    ) -> None:
        self.filters = Filters(
            phase=phase,
            condition=condition,
            intervention=intervention,
            escalation=escalation,
            criteria=criteria,
            endpoint=endpoint,
            category=category,
            role=role,
            time_point=time_point,
            horizon=horizon,
        )


FilterQuery = Annotated[_FilterQuery, Depends()]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/v1/search", response_model=SearchResponse, tags=["search"], responses=_errors(401, 422, 503))
def search_get(
    engine: EngineDep,
    settings: SettingsDep,
    fq: FilterQuery,
    q: Annotated[str, Query(min_length=1, description="free text")],
    _: None = Read,
    mode: SearchMode = SearchMode.HYBRID,
    limit: Limit = 10,
    offset: Offset = 0,
) -> Any:
    """Trials best matching free text (dense, BM25, or both fused), filtered on extracted fields, paged."""
    body = SearchRequest(query=q, mode=mode, limit=limit, offset=offset, filters=fq.filters)
    return _search_page(body, settings, engine.search)


@router.post(
    "/v1/search", response_model=SearchResponse, tags=["search"], responses=_errors(401, 413, 422, 503)
)
def search_post(body: SearchRequest, engine: EngineDep, settings: SettingsDep, _: None = Read) -> Any:
    """As GET /v1/search, with the query and filters in a JSON body."""
    return _search_page(body, settings, engine.search)


@router.post(
    "/v1/outcomes/search",
    response_model=OutcomeSearchResponse,
    tags=["search"],
    responses=_errors(401, 413, 422, 503),
)
def search_outcomes(body: SearchRequest, engine: EngineDep, settings: SettingsDep, _: None = Read) -> Any:
    """Single outcome measures best matching free text; outcome filters must hold for the outcome itself."""
    return _search_page(body, settings, engine.search_outcomes)


@router.get(
    "/v1/studies/{study_id}/similar",
    response_model=SimilarResponse,
    tags=["search"],
    responses=_errors(401, 404, 422, 503),
)
def similar(
    study_id: str,
    engine: EngineDep,
    settings: SettingsDep,
    fq: FilterQuery,
    _: None = Read,
    limit: Limit = 10,
    offset: Offset = 0,
) -> Any:
    """Trials like a stored one, each with why (shared conditions, interventions, endpoints, field scores)."""
    filters = _filters(fq.filters)
    k = _depth(offset, limit, settings)
    try:
        hits = engine.similar(study_id, k, filters)
    except NotFound as err:
        raise HTTPException(404, str(err)) from None
    return {
        "id": study_id,
        "filters": filters.describe(),
        "hits": [asdict(h) for h in hits[offset : offset + limit]],
        **_page(offset, limit, len(hits)),
    }


# -- health --------------------------------------------------------------------------------------------------


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Any:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, tags=["health"], responses={503: {"model": Ready}})
async def readyz(request: Request, response: Response) -> Any:
    """Models and index are loaded and the service answers queries."""
    engine: Engine | None = request.app.state.engine
    if engine is None or not engine.ready:
        response.status_code = 503
        return Ready(status="loading")
    # No lock: this runs on the event loop, and two counters read mid-write are still a fair answer.
    return Ready(
        status="ready", studies=len(engine.index), model=engine.encoder.model_id, store_seq=engine.applied_seq
    )
