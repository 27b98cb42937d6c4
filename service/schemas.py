"""Request and response models of the HTTP API (they are its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from index.trial_index import SearchMode

# -- extraction output: the spec's JSON -----------------------------------------------------------------


class SpanOut(BaseModel):
    """Where a value came from: character offsets into one field's own text."""

    field: str = Field(examples=["time_frame"])
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str = Field(examples=["horizon:28 days"])


class OutcomeOut(BaseModel):
    """One outcome measure and what was extracted from it."""

    role: str = Field(examples=["primary"])
    measure: str
    description: str
    time_frame: str
    endpoints: list[str] = Field(examples=[["adverse_events"]])
    category: str = Field(examples=["safety"])
    abbreviations: dict[str, str]
    timing: dict[str, Any] | None = Field(
        description="points (days), cycles, horizon_days, interval, anchor and anchor_text; null when the "
        "time frame gives no time"
    )
    criteria: list[str] = Field(examples=[["RECIST 1.1"]])
    spans: list[SpanOut]


class StudyExtraction(BaseModel):
    """The extraction spec's object for one study."""

    id: str = Field(examples=["NCT01234567"])
    source_format: str
    outcomes: list[OutcomeOut]
    design: dict[str, Any] = Field(
        description="phases, escalation, dlt_window_days, dlt_rule, enrollment, cohort_size, criteria, "
        "dose_group_count and spans"
    )
    dose_groups: list[dict[str, Any]]
    registry_enrollment: int | None
    errors: list[str]


# -- extraction input --------------------------------------------------------------------------------------


class ExtractRequest(BaseModel):
    """One study: ``text`` (seed layout or protocol text) or ``record`` (a ClinicalTrials.gov API v2
    study)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="Seed-layout record or plain protocol text.")
    record: dict[str, Any] | None = Field(None, description="A registry record (API v2 study object).")
    id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The study's id for `text` input (default: the NCT id the text names).",
    )

    @model_validator(mode="after")
    def _one_input(self) -> ExtractRequest:
        if (self.text is None) == (self.record is None):
            raise ValueError("give exactly one of `text` or `record`")
        if self.record is not None and self.id is not None:
            raise ValueError("`id` goes with `text`; a record carries its own id")
        return self


class BatchRequest(BaseModel):
    """Studies to extract. Each item is an API v2 study object, ``{"text": ..., "id": ...}``, or a string of
    text."""

    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any] | str] = Field(min_length=1)


class BatchItem(BaseModel):
    index: int = Field(ge=0, description="The item's position in `records`.")
    ok: bool
    id: str | None = None
    extraction: StudyExtraction | None = None
    error: str | None = Field(None, description="Why this record could not be read (when not ok).")


class BatchResponse(BaseModel):
    extracted: int
    failed: int
    results: list[BatchItem]


# -- studies -----------------------------------------------------------------------------------------------


class IngestResponse(BaseModel):
    id: str
    created: bool = Field(description="false when a study with this id was replaced")
    extraction: StudyExtraction


class StudyOut(BaseModel):
    id: str
    source_format: str
    created_at: str
    updated_at: str
    source: Any = Field(description="The input as given: a registry record or {text, id}; null for files.")
    study: dict[str, Any] = Field(description="The study as read (title, conditions, outcomes …).")
    extraction: StudyExtraction


# -- search ------------------------------------------------------------------------------------------------


class Filters(BaseModel):
    """Filters on extracted fields; set ones must all hold. Lists mean "any of"."""

    model_config = ConfigDict(extra="forbid")

    phase: list[str] = Field(default_factory=list, examples=[["1", "2"]])
    condition: str | None = Field(None, examples=["myeloma"])
    intervention: str | None = None
    escalation: list[str] = Field(default_factory=list, examples=[["3+3"]])
    criteria: list[str] = Field(default_factory=list, examples=[["RECIST 1.1"]])
    endpoint: list[str] = Field(default_factory=list, examples=[["objective_response_rate"]])
    category: list[str] = Field(default_factory=list, examples=[["efficacy"]])
    role: list[str] = Field(default_factory=list, examples=[["primary"]])
    time_point: str | None = Field(
        None, description="Days: N, LOW..HIGH, ..HIGH or LOW..", examples=["60..120"]
    )
    horizon: str | None = Field(None, description="Days, as time_point.", examples=["..28"])


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, examples=["objective response rate 3 months after CAR-T infusion"])
    mode: SearchMode = SearchMode.HYBRID
    limit: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0)
    filters: Filters = Field(default_factory=Filters)


class TrialHitOut(BaseModel):
    id: str
    score: float
    title: str
    phases: list[str]
    conditions: list[str]
    reasons: dict[str, Any]


class OutcomeHitOut(BaseModel):
    id: str
    outcome: int = Field(description="The outcome's position in the study's extraction `outcomes`.")
    score: float
    role: str
    measure: str
    endpoints: list[str]
    category: str
    horizon_days: float | None
    reasons: dict[str, Any]


class SimilarHitOut(BaseModel):
    id: str
    score: float
    title: str
    reasons: dict[str, Any]


class Page(BaseModel):
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null when this is the last.")


class SearchResponse(Page):
    query: str
    mode: SearchMode
    filters: dict[str, Any]
    hits: list[TrialHitOut]


class OutcomeSearchResponse(Page):
    query: str
    mode: SearchMode
    filters: dict[str, Any]
    hits: list[OutcomeHitOut]


class SimilarResponse(Page):
    id: str
    filters: dict[str, Any]
    hits: list[SimilarHitOut]


# -- health and errors -------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "loading"]
    studies: int | None = None
    model: str | None = None
    store_seq: int | None = None


class ErrorOut(BaseModel):
    detail: str = Field(description="What was wrong, and where.")
