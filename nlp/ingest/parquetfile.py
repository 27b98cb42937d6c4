"""Registry records in Parquet: one study per row, as API v2 columns or as one column of JSON text.

Two shapes are read, told apart by the schema:

* **columns**: the API v2 record's top-level keys as columns (``protocolSection`` a struct, …), as
  ``pyarrow.Table.from_pylist(records)`` or ``pandas.DataFrame(records).to_parquet()`` write them. Arrow gives
  every struct all the fields any row has, so fields a record lacked come back as nulls; they are dropped
  before the record is read, as if absent.
* **JSON text**: one string column (or a string column named ``json``, ``record``, ``study`` or ``raw``)
  holding one record per row, as a JSON Lines file would.

A row's number (1-based) stands in for the line number in errors and origins.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, Final

from nlp.errors import RecordError
from nlp.ingest.jsonfile import JsonLine, _study
from nlp.study import Study

MAGIC: Final = b"PAR1"
TEXT_COLUMNS: Final = ("json", "record", "study", "raw")
BATCH_ROWS: Final = 1024


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    return value


def _text_column(schema: Any) -> str | None:
    import pyarrow as pa

    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if "protocolSection" in schema.names:
        return None
    named = [name for name in TEXT_COLUMNS if name in strings]
    if named:
        return named[0]
    return strings[0] if len(schema.names) == 1 and strings else None


def read_parquet(data: bytes, source: str, defer: bool) -> Iterator[Study | RecordError | JsonLine]:
    """The records of a Parquet file's bytes, row by row (JSON text rows deferred when ``defer``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as err:
        yield RecordError(source, None, f"not a readable Parquet file: {err}")
        return
    text = _text_column(schema)
    if text is None and "protocolSection" not in schema.names:
        yield RecordError(
            source,
            None,
            "a Parquet file of studies needs API v2 columns (protocolSection, …) or one column of JSON "
            f"records (named {', '.join(TEXT_COLUMNS)}, or the only column); found {', '.join(schema.names)}",
        )
        return
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[text] if text else None):
            if text is not None:
                for value in batch.column(0).to_pylist():
                    row += 1
                    if value is None:
                        yield RecordError(source, row, "empty record (null)")
                        continue
                    line = JsonLine(source, row, value, several=False)
                    yield from [line] if defer else line.parse()
            else:
                for record in batch.to_pylist():
                    row += 1
                    yield _study(_drop_nulls(record), source, row, several=False)
    except (pa.ArrowException, OSError) as err:
        yield RecordError(source, row + 1, f"cannot read the Parquet file past row {row}: {err}")
