"""SQLite storage of one region, with a change log that feeds Realtime and replication.

    REST / auth / storage ──write──► Database ──commit──► _changes (seq, table, type, record, old_record)
                                         │                       │
                                         └──after commit──► listeners: Realtime fan-out, replication shipper

Every write goes through `insert`/`update`/`delete`, inside one transaction that also appends to `_changes`, so
the change log is exactly the committed history in commit order. A replica calls `apply_change` with the
primary's changes, which keeps their sequence numbers (so after promotion, the new primary continues the log).

WAL with synchronous=NORMAL: a committed write survives a process crash or restart (the WAL is in the OS), which
is what "an acknowledged insert survives a restart" needs; only power loss could lose the last commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.refstack.region.schema import TABLES, Column, Table


class DbError(Exception):
    """A database error in PostgREST's terms: a SQLSTATE (or PGRST) code, message, details and hint."""

    def __init__(self, code: str, message: str, details: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint


@dataclass(frozen=True)
class Filter:
    """`column op value`, already parsed; `value` is coerced to the column's type (a list for `in`).

    `like`/`ilike` take SQL patterns (`%` and `_`); the REST layer turns PostgREST's `*` into `%`.
    """

    column: str
    op: Literal["eq", "neq", "gt", "gte", "lt", "lte", "in", "is", "like", "ilike"]
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class Order:
    column: str
    descending: bool = False
    nulls_first: bool | None = None


@dataclass(frozen=True)
class Predicate:
    """A raw SQL condition added by the access rules (row-level security), with its parameters."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Change:
    seq: int
    table: str
    type: Literal["INSERT", "UPDATE", "DELETE"]
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    commit_timestamp: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "table": self.table,
            "type": self.type,
            "record": self.record,
            "old_record": self.old_record,
            "commit_timestamp": self.commit_timestamp,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(
            seq=int(data["seq"]),
            table=str(data["table"]),
            type=data["type"],
            record=data.get("record"),
            old_record=data.get("old_record"),
            commit_timestamp=str(data["commit_timestamp"]),
        )


ChangeListener = Callable[[Change], None]

_SQL_TYPES = {
    "uuid": "TEXT",
    "text": "TEXT",
    "bool": "INTEGER",
    "int": "INTEGER",
    "timestamptz": "TEXT",
    "jsonb": "TEXT",
}
_CONVERTED = frozenset({"bool", "jsonb"})
_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PG_TYPE_NAMES = {
    "uuid": "uuid",
    "text": "text",
    "bool": "bool",
    "int": "int8",
    "timestamptz": "timestamptz",
    "jsonb": "jsonb",
}


def now_iso() -> str:
    """Timestamps are stored as fixed-width UTC ISO strings, so text order is time order."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def pg_type_name(column: Column) -> str:
    return _PG_TYPE_NAMES[column.type]


def coerce(column: Column, value: Any, *, from_text: bool = False) -> Any:
    """Convert a JSON or query-string value to the stored form; DbError 22P02 if it does not fit the type."""
    if value is None:
        return None
    kind = column.type
    try:
        if kind == "uuid":
            return str(uuid.UUID(str(value)))
        if kind == "text":
            if not from_text and not isinstance(value, str):
                raise ValueError
            return str(value)
        if kind == "bool":
            if isinstance(value, bool):
                return int(value)
            if from_text and str(value).lower() in ("true", "false", "t", "f"):
                return int(str(value).lower() in ("true", "t"))
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            number = int(value) if from_text else value
            if not isinstance(number, int) or not -(2**63) <= number < 2**63:
                raise ValueError
            return number
        if kind == "timestamptz":
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC).isoformat(timespec="microseconds")
        # jsonb: anything JSON; from a query string it must parse.
        if from_text:
            return json.dumps(json.loads(str(value)), separators=(",", ":"), allow_nan=False)
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, OverflowError):
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        raise DbError("22P02", f'invalid input syntax for type {pg_type_name(column)}: "{shown}"') from None


def _decode(table: Table, row: sqlite3.Row, columns: Sequence[str]) -> dict[str, Any]:
    out = dict(zip(columns, row, strict=True))
    # Only bool and jsonb columns differ between stored and API form; skip the rest (the read hot path).
    for name in columns:
        kind = table.by_name[name].type
        if kind in _CONVERTED:
            value = out[name]
            if value is not None:
                out[name] = bool(value) if kind == "bool" else json.loads(value)
    return out


def _constraint_name(table: Table, cols: Sequence[str], suffix: str) -> str:
    return f"{table.name}_{'_'.join(cols)}_{suffix}"


class Database:
    """One region's data. Single-threaded: call it from the server's event loop only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        target = str(path) if path is not None else ":memory:"
        self._conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=OFF")
        self._listeners: list[ChangeListener] = []
        self.read_only = False
        """A replica before promotion: writes from clients are refused (SQLSTATE 25006)."""
        self._create_schema()
        self.last_seq = self._max_seq()

    # -- schema -----------------------------------------------------------------------------------------------
    def _create_schema(self) -> None:
        statements = [
            "CREATE TABLE IF NOT EXISTS _changes (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, type TEXT NOT NULL,"
            " record TEXT, old_record TEXT, ts TEXT NOT NULL)"
        ]
        for table in TABLES.values():
            cols = [f'"{c.name}" {_SQL_TYPES[c.type]}{"" if c.nullable else " NOT NULL"}' for c in table.columns]
            cols.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
            cols += [f"UNIQUE ({', '.join(u)})" for u in table.unique]
            statements.append(f'CREATE TABLE IF NOT EXISTS "{table.name}" ({", ".join(cols)})')
            for index in table.indexes:
                name = _constraint_name(table, index, "idx")
                statements.append(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table.name}" ({", ".join(index)})')
        for sql in statements:
            self._conn.execute(sql)

    def close(self) -> None:
        self._conn.close()

    def _max_seq(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM _changes").fetchone()[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; on any error, roll back and take back the sequence numbers it used."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            self.last_seq = self._max_seq()
            raise

    # -- listeners ----------------------------------------------------------------------------------------------
    def listen(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def _notify(self, changes: Iterable[Change]) -> None:
        for change in changes:
            for listener in self._listeners:
                listener(change)

    # -- reads --------------------------------------------------------------------------------------------------
    @staticmethod
    def table(name: str) -> Table:
        try:
            return TABLES[name]
        except KeyError:
            raise DbError(
                "PGRST205",
                f"Could not find the table 'public.{name}' in the schema cache",
                hint=None,
            ) from None

    def _where(self, table: Table, filters: Sequence[Filter], predicate: Predicate | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for f in filters:
            col = f'"{f.column}"'
            if f.op in _OPS:
                clause = f"{col} {_OPS[f.op]} ?"
                params.append(f.value)
            elif f.op == "in":
                clause = f"{col} IN ({', '.join('?' * len(f.value))})" if f.value else "0"
                params.extend(f.value)
            elif f.op == "is":
                clause = f"{col} IS ?"
                params.append(f.value)
            elif f.op == "like":
                clause = f"{col} GLOB ?"  # case-sensitive like Postgres LIKE
                params.append(_like_to_glob(str(f.value)))
            else:  # ilike
                clause = f"{col} LIKE ? ESCAPE '\\'"
                params.append(str(f.value))
            clauses.append(f"NOT ({clause})" if f.negate else clause)
        if predicate is not None:
            clauses.append(f"({predicate.sql})")
            params.extend(predicate.params)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _tail(
        self,
        table: Table,
        filters: Sequence[Filter],
        order: Sequence[Order],
        limit: int | None,
        offset: int,
        predicate: Predicate | None,
    ) -> tuple[str, list[Any], str, list[Any]]:
        """FROM … WHERE … ORDER BY … LIMIT: (sql, params) with and without the ORDER/LIMIT part (for counting)."""
        where, params = self._where(table, filters, predicate)
        order_sql = ""
        if order:
            parts = []
            for o in order:
                direction = "DESC" if o.descending else "ASC"
                # Postgres puts NULLs last ascending and first descending; SQLite the opposite unless told.
                nulls_first = o.nulls_first if o.nulls_first is not None else o.descending
                parts.append(f'"{o.column}" {direction} NULLS {"FIRST" if nulls_first else "LAST"}')
            order_sql = " ORDER BY " + ", ".join(parts)
        page = ""
        page_params: list[Any] = []
        if limit is not None or offset:
            page = " LIMIT ? OFFSET ?"
            page_params = [limit if limit is not None else -1, offset]
        base = f' FROM "{table.name}"{where}'
        return base + order_sql + page, [*params, *page_params], base, params

    def _count(self, base: str, params: list[Any]) -> int:
        return int(self._conn.execute(f"SELECT COUNT(*){base}", params).fetchone()[0])

    def select(
        self,
        table_name: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Sequence[Filter] = (),
        order: Sequence[Order] = (),
        limit: int | None = None,
        offset: int = 0,
        count: bool = False,
        predicate: Predicate | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        table = self.table(table_name)
        names = list(columns) if columns else [c.name for c in table.columns]
        tail, params, base, base_params = self._tail(table, filters, order, limit, offset, predicate)
        cols_sql = ", ".join(f'"{n}"' for n in names)
        rows = self._conn.execute(f"SELECT {cols_sql}{tail}", params).fetchall()
        total = self._count(base, base_params) if count else None
        return [_decode(table, r, names) for r in rows], total

    def select_json(
        self,
        table_name: str,
        *,
        columns: Sequence[str] | None = None,
        aliases: dict[str, str] | None = None,
        filters: Sequence[Filter] = (),
        order: Sequence[Order] = (),
        limit: int | None = None,
        offset: int = 0,
        count: bool = False,
        predicate: Predicate | None = None,
    ) -> tuple[list[str], int | None]:
        """`select`, but each row comes back as JSON object text built by SQLite (keys renamed by `aliases`).

        The read hot path: building the JSON in C skips decoding rows into dicts and `json.dumps`, which were
        most of the cost of a 50-message history page.
        """
        table = self.table(table_name)
        names = list(columns) if columns else [c.name for c in table.columns]
        aliases = aliases or {}
        pairs: list[str] = []
        for name in names:
            kind = table.by_name[name].type
            if kind == "bool":
                value = f"""json(CASE WHEN "{name}" IS NULL THEN NULL WHEN "{name}" THEN 'true' ELSE 'false' END)"""
            elif kind == "jsonb":
                value = f'json("{name}")'
            else:
                value = f'"{name}"'
            pairs.append(f"?, {value}")
        keys = [aliases.get(n, n) for n in names]
        tail, params, base, base_params = self._tail(table, filters, order, limit, offset, predicate)
        rows = self._conn.execute(f"SELECT json_object({', '.join(pairs)}){tail}", [*keys, *params]).fetchall()
        total = self._count(base, base_params) if count else None
        return [r[0] for r in rows], total

    def get(self, table_name: str, **key: Any) -> dict[str, Any] | None:
        table = self.table(table_name)
        rows, _ = self.select(
            table_name, filters=[Filter(k, "eq", coerce(table.by_name[k], v)) for k, v in key.items()], limit=1
        )
        return rows[0] if rows else None

    # -- writes -------------------------------------------------------------------------------------------------
    def _check_writable(self, internal: bool) -> None:
        if self.read_only and not internal:
            raise DbError(
                "25006",
                "cannot execute INSERT/UPDATE/DELETE in a read-only transaction",
                hint="This region is a read replica; write to the primary or promote this replica.",
            )

    def _prepare_row(self, table: Table, row: dict[str, Any]) -> dict[str, Any]:
        unknown = [k for k in row if k not in table.by_name]
        if unknown:
            raise DbError("PGRST204", f"Could not find the '{unknown[0]}' column of '{table.name}' in the schema cache")
        out: dict[str, Any] = {}
        stamp = now_iso()
        for column in table.columns:
            if column.name in row:
                out[column.name] = coerce(column, row[column.name])
            elif column.default == "uuid":
                out[column.name] = str(uuid.uuid4())
            elif column.default == "now":
                out[column.name] = stamp
            else:
                out[column.name] = coerce(column, column.default)
            if out[column.name] is None and not column.nullable:
                raise DbError(
                    "23502",
                    f'null value in column "{column.name}" of relation "{table.name}" violates not-null constraint',
                )
        return out

    def _integrity_error(self, table: Table, exc: sqlite3.IntegrityError, row: dict[str, Any]) -> DbError:
        text = str(exc)
        for cols in (table.primary_key, *table.unique):
            joined = ", ".join(f"{table.name}.{c}" for c in cols)
            if joined in text:
                suffix = "pkey" if cols == table.primary_key else "key"
                values = ", ".join(str(row.get(c)) for c in cols)
                return DbError(
                    "23505",
                    f'duplicate key value violates unique constraint "{_constraint_name(table, cols, suffix)}"',
                    details=f"Key ({', '.join(cols)})=({values}) already exists.",
                )
        return DbError("23000", "integrity constraint violated")

    def insert(
        self,
        table_name: str,
        rows: Sequence[dict[str, Any]],
        *,
        on_conflict: Literal["merge", "ignore"] | None = None,
        conflict_columns: Sequence[str] | None = None,
        check: Callable[[dict[str, Any]], bool] | None = None,
        internal: bool = False,
        log: bool = True,
    ) -> list[dict[str, Any]]:
        """Insert rows in one transaction; `check` is the RLS WITH CHECK (False → 42501 for that row).

        `log=False` (with `internal=True`) writes a row local to this region: no change-log entry, no listeners,
        so a replica can keep its own auth sessions without disturbing the replicated sequence.
        """
        self._check_writable(internal)
        table = self.table(table_name)
        prepared = [self._prepare_row(table, dict(r)) for r in rows]
        if check is not None:
            for row in prepared:
                if not check(_decode_plain(table, row)):
                    raise _rls_violation(table.name)
        target = tuple(conflict_columns) if conflict_columns else table.primary_key
        names = [c.name for c in table.columns]
        cols_sql = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" * len(names))
        out: list[dict[str, Any]] = []
        changes: list[Change] = []
        with self._transaction():
            for row in prepared:
                old = None
                if on_conflict is not None:
                    old_rows, _ = self.select(table.name, filters=[Filter(c, "eq", row[c]) for c in target], limit=1)
                    old = old_rows[0] if old_rows else None
                    if old is not None and on_conflict == "ignore":
                        continue
                try:
                    if old is not None:
                        sets = ", ".join(f'"{n}" = ?' for n in names if n not in target)
                        self._conn.execute(
                            f'UPDATE "{table.name}" SET {sets} WHERE ' + " AND ".join(f'"{c}" = ?' for c in target),
                            [row[n] for n in names if n not in target] + [row[c] for c in target],
                        )
                    else:
                        self._conn.execute(
                            f'INSERT INTO "{table.name}" ({cols_sql}) VALUES ({marks})', [row[n] for n in names]
                        )
                except sqlite3.IntegrityError as exc:
                    raise self._integrity_error(table, exc, row) from None
                record = _decode_plain(table, row)
                out.append(record)
                if log:
                    changes.append(self._log(table, "UPDATE" if old is not None else "INSERT", record, old))
        self._notify(changes)
        return out

    def update(
        self,
        table_name: str,
        values: dict[str, Any],
        *,
        filters: Sequence[Filter] = (),
        predicate: Predicate | None = None,
        check: Callable[[dict[str, Any]], bool] | None = None,
        internal: bool = False,
        log: bool = True,
    ) -> list[dict[str, Any]]:
        self._check_writable(internal)
        table = self.table(table_name)
        unknown = [k for k in values if k not in table.by_name]
        if unknown:
            raise DbError("PGRST204", f"Could not find the '{unknown[0]}' column of '{table.name}' in the schema cache")
        coerced = {k: coerce(table.by_name[k], v) for k, v in values.items()}
        for name, value in coerced.items():
            if value is None and not table.by_name[name].nullable:
                raise DbError(
                    "23502", f'null value in column "{name}" of relation "{table.name}" violates not-null constraint'
                )
        if "updated_at" in table.by_name and "updated_at" not in coerced:
            coerced["updated_at"] = now_iso()
        out: list[dict[str, Any]] = []
        changes: list[Change] = []
        with self._transaction():
            old_rows, _ = self.select(table.name, filters=filters, predicate=predicate)
            for old in old_rows:
                new_plain = {k: coerce(table.by_name[k], v) for k, v in old.items()}
                new_plain.update(coerced)
                record = _decode_plain(table, new_plain)
                if check is not None and not check(record):
                    raise _rls_violation(table.name)
                sets = ", ".join(f'"{n}" = ?' for n in coerced)
                key = table.primary_key
                try:
                    self._conn.execute(
                        f'UPDATE "{table.name}" SET {sets} WHERE ' + " AND ".join(f'"{c}" = ?' for c in key),
                        [*coerced.values(), *(new_plain_key(old, table, c) for c in key)],
                    )
                except sqlite3.IntegrityError as exc:
                    raise self._integrity_error(table, exc, new_plain) from None
                out.append(record)
                if log:
                    changes.append(self._log(table, "UPDATE", record, old))
        self._notify(changes)
        return out

    def delete(
        self,
        table_name: str,
        *,
        filters: Sequence[Filter] = (),
        predicate: Predicate | None = None,
        internal: bool = False,
        log: bool = True,
    ) -> list[dict[str, Any]]:
        self._check_writable(internal)
        table = self.table(table_name)
        changes: list[Change] = []
        with self._transaction():
            old_rows, _ = self.select(table.name, filters=filters, predicate=predicate)
            key = table.primary_key
            for old in old_rows:
                self._conn.execute(
                    f'DELETE FROM "{table.name}" WHERE ' + " AND ".join(f'"{c}" = ?' for c in key),
                    [new_plain_key(old, table, c) for c in key],
                )
                if log:
                    changes.append(self._log(table, "DELETE", None, old))
        self._notify(changes)
        return old_rows

    # -- change log ---------------------------------------------------------------------------------------------
    def _log(
        self,
        table: Table,
        kind: Literal["INSERT", "UPDATE", "DELETE"],
        record: dict[str, Any] | None,
        old: dict[str, Any] | None,
        *,
        seq: int | None = None,
        ts: str | None = None,
    ) -> Change:
        self.last_seq = seq if seq is not None else self.last_seq + 1
        stamp = ts or now_iso()
        self._conn.execute(
            "INSERT INTO _changes (seq, tbl, type, record, old_record, ts) VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.last_seq,
                table.name,
                kind,
                json.dumps(record) if record is not None else None,
                json.dumps(old) if old is not None else None,
                stamp,
            ),
        )
        return Change(self.last_seq, table.name, kind, record, old, stamp)

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        rows = self._conn.execute(
            "SELECT seq, tbl, type, record, old_record, ts FROM _changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [
            Change(
                int(r["seq"]),
                r["tbl"],
                r["type"],
                json.loads(r["record"]) if r["record"] is not None else None,
                json.loads(r["old_record"]) if r["old_record"] is not None else None,
                r["ts"],
            )
            for r in rows
        ]

    def apply_change(self, change: Change) -> None:
        """Apply a change shipped from the primary, keeping its sequence number (replica side)."""
        if change.seq <= self.last_seq:
            return  # already applied: shipping is at-least-once, applying is idempotent
        table = self.table(change.table)
        names = [c.name for c in table.columns]
        with self._transaction():
            source = change.record if change.record is not None else change.old_record
            assert source is not None
            key = table.primary_key
            self._conn.execute(
                f'DELETE FROM "{table.name}" WHERE ' + " AND ".join(f'"{c}" = ?' for c in key),
                [coerce(table.by_name[c], source[c]) for c in key],
            )
            if change.record is not None:
                row = {n: coerce(table.by_name[n], change.record.get(n)) for n in names}
                marks = ", ".join("?" * len(names))
                self._conn.execute(
                    f'INSERT OR REPLACE INTO "{table.name}" ({", ".join(names)}) VALUES ({marks})',
                    [row[n] for n in names],
                )
            applied = self._log(
                table, change.type, change.record, change.old_record, seq=change.seq, ts=change.commit_timestamp
            )
        self._notify([applied])


def new_plain_key(row: dict[str, Any], table: Table, column: str) -> Any:
    return coerce(table.by_name[column], row[column])


def _decode_plain(table: Table, stored: dict[str, Any]) -> dict[str, Any]:
    """Stored form (ints for bools, JSON text) back to API values."""
    out: dict[str, Any] = {}
    for column in table.columns:
        value = stored.get(column.name)
        if value is not None:
            if column.type == "bool":
                value = bool(value)
            elif column.type == "jsonb":
                value = json.loads(value)
        out[column.name] = value
    return out


def _like_to_glob(pattern: str) -> str:
    return pattern.replace("[", "[[]").replace("?", "[?]").replace("*", "[*]").replace("%", "*").replace("_", "?")


def _rls_violation(table: str) -> DbError:
    return DbError("42501", f'new row violates row-level security policy for table "{table}"')
