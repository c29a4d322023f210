"""Loads an event log into the engine's ``events`` table: the one DuckDB-specific step. The
SQL files in ``sql/`` read only ``events`` (its columns are listed in docs/audit-sql.md), so
on a warehouse they run on a view of the same columns over the warehouse's event table.

JSON Lines files are read with a fixed schema (unknown fields are skipped, fields of the wrong
type read as NULL); a line that is not a JSON object becomes a row of NULLs, counted by
:func:`count_unreadable` and located by ``malformed``. Parquet files are read by column name,
missing columns as NULL. Nothing here interprets a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import event_schema as schema
from .sources import SourceFile

if TYPE_CHECKING:
    import duckdb

__all__ = ["Unreadable", "blank_rows", "count_unreadable", "load_events", "sql_list", "sql_text"]

#: Record field -> ``events`` column, for the text fields (read as VARCHAR, '' as NULL).
_TEXT = {
    schema.EVENT: "event",
    schema.TIMESTAMP: "ts",
    schema.EXPERIMENT_KEY: "experiment_key",
    schema.RUN_ID: "run_id",
    schema.FLAG_KEY: "flag_key",
    schema.ASSIGNMENT_UNIT: "assignment_unit",
    schema.UNIT_ID: "unit_id",
    schema.REASON: "reason",
    schema.METRIC: "metric",
    schema.METRIC_UNIT: "metric_unit",
    schema.METRIC_DIRECTION: "metric_direction",
    schema.GUARDRAIL_NAME: "guardrail",
    "conversationId": "conversation_id",
    "userId": "user_id",
    "accountId": "account_id",
    "workflowId": "workflow_id",
    "requestId": "request_id",
}
_VARIANT_FIELDS = (schema.VARIATION, schema.VARIATION_ID)
_SUPPRESSED = "suppressed"
_SEGMENT_COLUMN = "__segment"


@dataclass(frozen=True)
class Unreadable:
    """Lines of one JSON Lines file that are not JSON objects: invalid (bad JSON, not UTF-8)
    and valid JSON of another kind (an array, a string...)."""

    rows: int
    invalid: int
    not_objects: int

    @property
    def total(self) -> int:
        return self.invalid + self.not_objects


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_text(v) for v in values) + "]"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_events(
    con: duckdb.DuckDBPyConnection, files: Sequence[SourceFile], segment_by: str | None
) -> None:
    """Create ``events`` from ``files`` (JSON Lines and Parquet may be mixed): a table, or a
    view when every file is Parquet."""
    selects = []
    for gzipped in (False, True):
        group = [f for f in files if f.kind == "json" and f.gzip == gzipped]
        if group:
            selects.append(_json_select(group, gzipped, segment_by))
    parquet = [f for f in files if f.kind == "parquet"]
    if parquet:
        selects.append(_parquet_select(con, parquet, segment_by))
    # JSON is parsed once into a table; Parquet is columnar already, so a view reads only the
    # columns each step needs and nothing is copied.
    kind = "VIEW" if len(parquet) == len(files) else "TABLE"
    con.execute(f"CREATE OR REPLACE {kind} events AS\n" + "\nUNION ALL\n".join(selects))


def _json_select(files: Sequence[SourceFile], gzipped: bool, segment_by: str | None) -> str:
    types = dict.fromkeys([*_TEXT, *_VARIANT_FIELDS], "VARCHAR")
    types[schema.VALUE] = "DOUBLE"
    types[_SUPPRESSED] = "BIGINT"
    segment = "NULL"
    if segment_by is not None:
        types[schema.ATTRIBUTES] = "JSON"
        if segment_by not in types:
            types[segment_by] = "VARCHAR"
        top = f"nullif(CAST({_identifier(segment_by)} AS VARCHAR), '')"
        segment = f"coalesce({top}, {_identifier(schema.ATTRIBUTES)} ->> {sql_text(segment_by)})"
    columns = "{" + ", ".join(f"{sql_text(k)}: {sql_text(v)}" for k, v in types.items()) + "}"
    source = (
        f"read_json({sql_list([str(f.readable) for f in files])}, "
        f"format = 'newline_delimited', ignore_errors = true, "
        f"compression = {sql_text('gzip' if gzipped else 'none')}, columns = {columns})"
    )
    return _select(
        {k: f"nullif({_identifier(k)}, '')" for k in [*_TEXT, *_VARIANT_FIELDS]},
        value=f"CASE WHEN isfinite({_identifier(schema.VALUE)}) "
        f"THEN {_identifier(schema.VALUE)} END",
        suppressed=_identifier(_SUPPRESSED),
        segment=segment,
        source=source,
    )


def _parquet_select(
    con: duckdb.DuckDBPyConnection, files: Sequence[SourceFile], segment_by: str | None
) -> str:
    source = f"read_parquet({sql_list([str(f.readable) for f in files])}, union_by_name = true)"
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    present = {str(row[0]): str(row[1]) for row in described}

    def text(name: str) -> str:
        kind = present.get(name)
        if kind is None:
            return "NULL"
        column = _identifier(name)
        if kind.startswith("TIMESTAMP"):
            # Written back as the producers write it: ISO-8601 UTC with milliseconds.
            utc = f"timezone('UTC', {column})" if "TIME ZONE" in kind else column
            return f"strftime({utc}, '%Y-%m-%dT%H:%M:%S.%gZ')"
        return f"nullif(CAST({column} AS VARCHAR), '')"

    def number(name: str, sql_type: str) -> str:
        if name not in present:
            return "NULL"
        return f"TRY_CAST({_identifier(name)} AS {sql_type})"

    value = number(schema.VALUE, "DOUBLE")
    segment = "NULL"
    if segment_by is not None:
        segment = f"coalesce({text(segment_by)}, {_attribute(present, segment_by)})"
    return _select(
        {k: text(k) for k in [*_TEXT, *_VARIANT_FIELDS]},
        value=f"CASE WHEN isfinite({value}) THEN {value} END",
        suppressed=number(_SUPPRESSED, "BIGINT"),
        segment=segment,
        source=source,
    )


def _attribute(present: Mapping[str, str], field: str) -> str:
    """The segment field inside ``attributes``, by how the Parquet file stores it."""
    kind = present.get(schema.ATTRIBUTES, "")
    column = _identifier(schema.ATTRIBUTES)
    if kind.startswith("STRUCT") and (f"{field} " in kind or f'"{field}" ' in kind):
        return f"CAST(struct_extract({column}, {sql_text(field)}) AS VARCHAR)"
    if kind.startswith("MAP"):
        return f"CAST(element_at({column}, {sql_text(field)})[1] AS VARCHAR)"
    if kind in ("VARCHAR", "JSON"):
        return f"CAST({column} AS JSON) ->> {sql_text(field)}"
    return "NULL"


def _select(
    text: Mapping[str, str], *, value: str, suppressed: str, segment: str, source: str
) -> str:
    variant = ", ".join(text[k] for k in _VARIANT_FIELDS)
    columns = [f"{text[field]} AS {column}" for field, column in _TEXT.items()]
    columns += [
        f"coalesce({variant}) AS variant",
        f"{value} AS value",
        f"{suppressed} AS suppressed",
        f"{segment} AS segment",
    ]
    return "SELECT\n    " + ",\n    ".join(columns) + f"\nFROM {source}"


def blank_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Rows of ``events`` without any field the audit reads: unreadable lines, and objects
    with none of the fields. Only when there are some does :func:`count_unreadable` (a
    second pass over the JSON) need to run."""
    row = con.execute(
        "SELECT count(*) FROM events WHERE event IS NULL AND experiment_key IS NULL "
        "AND unit_id IS NULL AND value IS NULL AND guardrail IS NULL AND metric IS NULL"
    ).fetchone()
    return int(row[0]) if row else 0


def count_unreadable(
    con: duckdb.DuckDBPyConnection, files: Sequence[SourceFile]
) -> dict[str, Unreadable]:
    """Per JSON Lines file (by the path the engine read), its lines that are not objects."""
    result: dict[str, Unreadable] = {}
    for gzipped in (False, True):
        group = [str(f.readable) for f in files if f.kind == "json" and f.gzip == gzipped]
        if not group:
            continue
        rows = con.execute(
            f"""
            SELECT
                filename,
                count(*),
                sum(CASE WHEN json IS NULL THEN 1 ELSE 0 END),
                sum(CASE WHEN json IS NOT NULL AND json_type(json) <> 'OBJECT'
                         THEN 1 ELSE 0 END)
            FROM read_ndjson_objects({sql_list(group)}, ignore_errors = true,
                                     filename = true,
                                     compression = {sql_text("gzip" if gzipped else "none")})
            GROUP BY filename
            """
        ).fetchall()
        for name, total, invalid, not_objects in rows:
            result[str(name)] = Unreadable(int(total), int(invalid or 0), int(not_objects or 0))
    return result
