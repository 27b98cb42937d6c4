"""The service's settings: one class, read from ``TRIALSIFT_*`` environment variables (or a ``.env`` file).

>>> Settings(data_dir="out/data", write_key="s3cret").max_batch   # doctest: +SKIP
100
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.store import IndexKind


class EncoderName(StrEnum):
    #: The packaged all-MiniLM-L6-v2 (the default; what every bundled index is built with).
    MINILM = "minilm"
    #: Deterministic hashed bag of words: no model, for tests and quick local trials only.
    HASHING = "hashing"


class Settings(BaseSettings):
    """Everything the service can be told. Each field is the env var ``TRIALSIFT_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TRIALSIFT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("out/data"), description="Where the SQLite store and the index live.")
    encoder: EncoderName = Field(EncoderName.MINILM, description="The embedding model.")
    index_kind: IndexKind = Field(IndexKind.AUTO, description="FAISS index kind: auto, exact or ivf.")
    index: Path | None = Field(
        None,
        description="Serve this prebuilt index read-only instead of the store's (e.g. one built by "
        "`trialsift index build --backend ray`, its lists memory-mapped); writes answer 409.",
    )

    max_body_bytes: int = Field(5_000_000, gt=0, description="Largest request body accepted (413 above).")
    max_batch: int = Field(100, gt=0, description="Most records in one /v1/extract/batch request.")
    max_text_chars: int = Field(200_000, gt=0, description="Longest study text (all its fields together).")
    max_results: int = Field(1000, gt=0, description="Deepest result reachable by paging (offset + limit).")
    max_query_chars: int = Field(2000, gt=0, description="Longest search query.")

    write_key: SecretStr | None = Field(None, description="Bearer key for POST/DELETE /v1/studies.")
    read_key: SecretStr | None = Field(None, description="Bearer key for reads; unset: reads are open.")
    cors_origins: list[str] = Field(default_factory=list, description='e.g. ["https://app.example"].')

    threads: int = Field(1, gt=0, description="Threads per worker for torch and FAISS single queries.")
    concurrency: int = Field(
        2,
        gt=0,
        description="Requests one worker computes at once (search, extract, ingest); more wait their turn "
        "without taking a thread. Two lets a worker that got most connections use both cores.",
    )
    snapshot_every: int = Field(200, gt=0, description="Save the index after this many writes.")
    access_log: bool = Field(True, description="One JSON line per request on the trialsift.access logger.")

    @field_validator("write_key", "read_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # TRIALSIFT_WRITE_KEY= (empty) in a .env file means "no key", not "the empty key".
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def db_path(self) -> Path:
        return self.data_dir / "trialsift.db"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"
