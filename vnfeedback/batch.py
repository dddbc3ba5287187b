"""Batch classification of archives: chunked reading and writing, worker processes, resume.

``classify_file`` streams an archive (CSV, JSON Lines, Parquet; ``.gz`` for the text formats) in
chunks, classifies each chunk (identical texts once), and writes every input row, in order, with one
column per task, ``<task>_score``, ``needs_review`` and ``error``. Memory stays flat: at most a few
chunks are held at once.

Guarantees:

- No row is lost or duplicated. A row that cannot be classified (undecodable bytes, missing or
  non-text value, a field over ``MAX_FIELD_CHARS``, a JSON line that does not parse) is written with
  empty labels and the reason in ``error``, and counted in the summary.
- The output appears only when complete: chunks are written as numbered part files beside it, then
  joined into a temporary file that is renamed over OUTPUT.
- ``resume=True`` continues a killed run from its last completed chunk: the checkpoint beside the
  output records the input's size and modification time, the options and the model, and a mismatch
  starts afresh (with a warning) instead of mixing two runs. The final file is byte-identical to an
  uninterrupted run.
- ``jobs=N`` classifies chunks in N worker processes (joblib/loky), each loading the model once;
  results are identical to ``jobs=1``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError, ParameterError
from .tables import check_header, check_text_file, table_format

__all__ = ["classify_file", "classify_rows", "read_chunks", "BatchSummary", "MAX_FIELD_CHARS"]

log = logging.getLogger("vnfeedback.batch")

#: A text longer than this is not classified (written with an error): no comment is that long.
MAX_FIELD_CHARS = 1_000_000
CHECKPOINT_VERSION = 2  # 2: parts carry the late columns of their chunk


@dataclass
class BatchSummary:
    """What a batch run did: counts, speed, label distribution, rows skipped and why."""

    rows: int = 0
    seconds: float = 0.0
    needs_review: int = 0
    skipped: Counter = field(default_factory=Counter)
    labels: dict[str, Counter] = field(default_factory=dict)
    resumed_chunks: int = 0

    def add(self, stats: dict[str, Any]) -> None:
        """Add one chunk's counts (from ``_chunk_stats``) or a checkpoint's."""
        self.rows += stats.get("rows", 0)
        self.needs_review += stats.get("needs_review", 0)
        self.skipped.update(stats.get("skipped", {}))
        for task, counts in stats.get("labels", {}).items():
            self.labels.setdefault(task, Counter()).update(counts)

    def state(self) -> dict[str, Any]:
        """The counts, for a checkpoint."""
        return {
            "rows": self.rows,
            "needs_review": self.needs_review,
            "skipped": dict(self.skipped),
            "labels": {task: dict(counts) for task, counts in self.labels.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds else None,
            "needs_review_share": round(self.needs_review / self.rows, 4) if self.rows else 0.0,
            "skipped": dict(self.skipped),
            "labels": {task: dict(counts.most_common()) for task, counts in self.labels.items()},
            "resumed_chunks": self.resumed_chunks,
        }

    def render(self) -> str:
        data = self.to_dict()
        lines = [
            f"rows: {data['rows']:,} in {data['seconds']:.1f} s "
            f"({data['rows_per_second'] or 0:,.0f} rows/s)"
            + (f", {self.resumed_chunks} chunk(s) taken from the checkpoint" if self.resumed_chunks else ""),
            f"needs review: {data['needs_review_share']:.1%}",
        ]
        for task, counts in data["labels"].items():
            total = sum(counts.values()) or 1
            top = ", ".join(f"{label} {n / total:.0%}" for label, n in list(counts.items())[:8])
            lines.append(f"{task}: {top}")
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in self.skipped.most_common())
        lines.append(f"rows not classified: {skipped}" + (f" ({reasons})" if skipped else ""))
        return "\n".join(lines)


# --- reading -----------------------------------------------------------------------------------


def _open_text_in(path: str) -> io.TextIOBase:
    """A CSV / JSON Lines input as text: UTF-8, a leading byte-order mark dropped (Excel's "CSV
    UTF-8" writes one), undecodable bytes kept as surrogates for the row-level check."""
    if path == "-":
        raw = sys.stdin.buffer
    else:
        check_text_file(path)
        raw = gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def read_chunks(path: str, fmt: str, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows in chunks; a row that cannot be read becomes ``{"__error__": reason, ...}``."""
    for chunk in _read_chunks(path, fmt, chunk_size):
        yield _rows_of(chunk)


def _read_chunks(path: str, fmt: str, chunk_size: int) -> Iterator[Any]:
    """``read_chunks``, but a Parquet chunk stays an Arrow record batch (``_rows_of`` makes it rows):
    with ``--jobs N`` the workers make the rows, and a record batch pickles far cheaper than its rows,
    so the dispatching process leaves more of the machine to the workers. A file that cannot be read
    to its end (a truncated .gz, a damaged or mislabelled Parquet file) raises a ``DataError``."""
    try:
        yield from _read_chunks_of(path, fmt, chunk_size)
    except (EOFError, OSError) as exc:
        raise DataError(f"{path}: could not be read to the end ({exc}); nothing was written") from None
    except Exception as exc:
        if type(exc).__module__.startswith("pyarrow"):  # ArrowInvalid: not Parquet, or damaged
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        raise


def _read_chunks_of(path: str, fmt: str, chunk_size: int) -> Iterator[Any]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if path != "-":
            yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
            return
        # Parquet keeps its index at the end of the file, which a pipe cannot seek to: stdin is
        # spooled to a temporary file first (disk, not memory)
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
            spool.seek(0)
            yield from pq.ParquetFile(spool).iter_batches(batch_size=chunk_size)
        return
    csv.field_size_limit(2**31 - 1)
    with _open_text_in(path) as handle:
        chunk: list[dict[str, Any]] = []
        if fmt == "csv":
            # strict: a quote opened and not closed where the field ends is an error, not a field
            # that silently swallows the lines (rows) that follow
            reader = csv.DictReader(handle, strict=True)
            start = 1  # the line the next record starts on
            try:
                check_header(path, reader.fieldnames)
                for row in reader:
                    start = reader.line_num + 1
                    if None in row:  # more fields than the header
                        extra = row.pop(None)
                        row["__error__"] = (
                            f"line {reader.line_num}: {len(extra)} field(s) more than the header"
                        )
                    chunk.append(row)
                    if len(chunk) >= chunk_size:
                        yield chunk
                        chunk = []
            except csv.Error as exc:
                raise DataError(
                    f"{path}: the record starting on line {start} is not valid CSV ({exc}); a field that "
                    f"starts with a quote must end with one (and double any quote inside it)"
                ) from None
        else:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        row = {
                            "__error__": f"line {number}: a JSON {type(row).__name__}, not an object",
                            "__raw__": line.rstrip("\n"),
                        }
                except json.JSONDecodeError as exc:
                    row = {
                        "__error__": f"line {number}: not valid JSON ({exc.msg})",
                        "__raw__": line.rstrip("\n"),
                    }
                chunk.append(row)
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def _rows_of(chunk: Any) -> list[dict[str, Any]]:
    return chunk if isinstance(chunk, list) else chunk.to_pylist()


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _repair(value: Any) -> Any:
    """Undecodable bytes (read as surrogates) become U+FFFD so the row can still be written."""
    if isinstance(value, str) and _has_surrogates(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


# --- classification (runs in the workers) ------------------------------------------------------

_worker_models: dict[str, Any] = {}


def _model_for(model_dir: str | None) -> Any:
    key = model_dir or ""
    if key not in _worker_models:
        import vnfeedback

        _worker_models[key] = vnfeedback.load(model_dir)
    return _worker_models[key]


def _chunk_stats(added: dict[str, list], tasks: dict[str, str]) -> dict[str, Any]:
    """Counts of one classified chunk (its added columns): rows, needing review, skipped by reason,
    labels per task."""
    errors = added["error"]
    skipped = Counter(e.split(":")[0] if e.startswith("line ") else e for e in errors if e)
    good = [i for i, e in enumerate(errors) if not e] if skipped else range(len(errors))
    labels = {}
    for task, kind in tasks.items():
        values = [added[task][i] for i in good] if skipped else added[task]
        if kind == "multilabel":
            counts = Counter(label for chosen in values for label in chosen)
            empty = sum(1 for chosen in values if not chosen)
            if empty:
                counts["(none)"] += empty
        else:
            counts = Counter(values)
        labels[task] = counts
    needs_review = sum(1 for i in good if added["needs_review"][i])
    return {"rows": len(errors), "needs_review": needs_review, "skipped": skipped, "labels": labels}


def _run_chunk(model_dir, chunk, text_column, explain, writer, part, header):
    """Classify one chunk; write its part file (atomically) or, for stdout, return its rows."""
    model = _model_for(model_dir)
    if part is not None and writer.fmt == "parquet" and not isinstance(chunk, list):
        # Parquet to Parquet: the input's columns go through as Arrow arrays, never as rows
        names = chunk.schema.names
        values = chunk.column(text_column).to_pylist() if text_column in names else [None] * len(chunk)
        added = _classify_values(model, values, [None] * len(values), text_column, explain)
        rows, late = None, []
    else:
        chunk = _rows_of(chunk)
        values = [row.get(text_column) for row in chunk]
        added = _classify_values(model, values, [row.get("__error__") for row in chunk], text_column, explain)
        late = writer.late_columns(chunk)
        columns = writer.columns_with(late) if late and part is not None else None
        rows = writer.rows(chunk, added, columns)
    stats = _chunk_stats(added, writer.tasks)
    if part is None:
        if late:  # the header has gone out already: say what the stream leaves out
            stats["late_columns"] = late
        return rows, stats
    temporary = part.with_suffix(".tmp")
    if rows is None:
        writer.write_arrow(temporary, chunk, added)
    else:
        if columns is not None:  # the join reads a part's own columns from here (before the part exists)
            _write_part_columns(part, columns)
        writer.write(temporary, rows, header=header, columns=columns)
    os.replace(temporary, part)
    return None, stats


def _part_columns_path(part: Path) -> Path:
    return part.with_name(part.name + ".columns.json")


def _write_part_columns(part: Path, columns: list[str]) -> None:
    path = _part_columns_path(part)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(columns, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


def _reason(error: str | None, value: Any, text_column: str) -> str | None:
    """Why a row's text cannot be classified (None: it can)."""
    if error is not None:
        return error
    if value is None or (isinstance(value, float) and value != value):
        return f"missing {text_column!r}"
    if not isinstance(value, str):
        return f"{text_column!r} is {type(value).__name__}, not text"
    if _has_surrogates(value):
        return "undecodable bytes (not UTF-8)"
    if len(value) > MAX_FIELD_CHARS:
        return f"text longer than {MAX_FIELD_CHARS:,} characters"
    return None


def _classify_values(
    model: Any, values: list[Any], errors: list[str | None], text_column: str, explain: int = 0
) -> dict[str, list]:
    """The added columns of a chunk, column by column (``classify_rows`` gives them row by row):
    each row's text value and the reason it could not be read (None if it could)."""
    tasks = model.tasks
    reasons = [_reason(e, v, text_column) for e, v in zip(errors, values, strict=True)]
    ok = [i for i, r in enumerate(reasons) if r is None]
    texts = [values[i] for i in ok]
    if explain:
        predictions = model.predict_many(texts)
        found: dict[str, list] = {}
        for task in tasks:
            found[task] = [p.labels[task] for p in predictions]
            found[f"{task}_score"] = [round(p.max_score(task), 4) for p in predictions]
        found["needs_review"] = [p.needs_review for p in predictions]
        found["error"] = [""] * len(texts)
        found["explanation"] = [
            _explanation(model, text, p, explain) for text, p in zip(texts, predictions, strict=True)
        ]
    else:  # the same columns straight from the batch's arrays, with no Prediction objects
        found = model._predict_columns(texts)
        found["error"] = [""] * len(texts)
    if len(ok) == len(values):
        return found
    added: dict[str, list] = {}  # the rows that could not be read, filled in around the others
    for task, kind in tasks.items():
        added[task] = [[] if kind == "multilabel" else "" for _ in values]
        added[f"{task}_score"] = [None] * len(values)
    added["needs_review"] = [True] * len(values)
    added["error"] = reasons
    if explain:
        added["explanation"] = [""] * len(values)
    for name, column in found.items():
        target = added[name]
        for i, value in zip(ok, column, strict=True):
            target[i] = value
    return added


def classify_rows(
    model: Any, rows: list[dict[str, Any]], text_column: str, explain: int = 0
) -> list[dict[str, Any]]:
    """The added columns for each row (pure: the same rows give the same columns, so retries are safe).

    A row that cannot be classified gets empty labels, ``needs_review=True`` and the reason in ``error``.
    """
    values = [row.get(text_column) for row in rows]
    added = _classify_values(model, values, [row.get("__error__") for row in rows], text_column, explain)
    names = list(added)
    return [dict(zip(names, row, strict=True)) for row in zip(*added.values(), strict=True)]


def _explanation(model: Any, text: str, prediction: Any, top: int) -> str:
    parts = []
    for task, chosen in prediction.labels.items():
        labels = chosen if isinstance(chosen, list) else [chosen]
        for label in labels[:2]:
            items = model.explain(text, task=task, label=label, top=top)
            words = ", ".join(f"{i['feature']} ({i['weight']:+.2f})" for i in items if i["weight"] > 0)
            parts.append(f"{task}={label}: {words}")
    return "; ".join(parts)


# --- writing -----------------------------------------------------------------------------------


def _json_line(row: dict) -> str:
    """A row as one line of strict JSON. NaN and +-Infinity (which Python's reader accepts, and
    which ``1e400`` or a Parquet float column gives) are not JSON: they are written as null."""
    try:
        return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:
        return json.dumps(_finite(row), ensure_ascii=False, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _csv_value(value: Any) -> Any:
    if isinstance(value, list):  # labels: "a|b"; any other list (numbers, nulls) as JSON
        if all(isinstance(v, str) for v in value):
            return "|".join(value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return value


class _PartWriter:
    """Writes one chunk to one part file in the output format."""

    def __init__(self, fmt: str, tasks: dict[str, str], explain: bool) -> None:
        self.fmt = fmt
        self.tasks = tasks
        self.explain = explain
        self.columns: list[str] | None = None
        self.schema = None
        self.input_types: dict[str, Any] = {}
        self._added: frozenset[str] | None = None

    def added_columns(self) -> list[str]:
        cols = []
        for task in self.tasks:
            cols += [task, f"{task}_score"]
        cols += ["needs_review", "error"] + (["explanation"] if self.explain else [])
        return cols

    def set_columns(self, input_columns: list[str]) -> None:
        added = self.added_columns()
        clash = [c for c in input_columns if c in added]
        if clash:
            raise DataError(
                f"the input already has column(s) {clash} that classify adds; rename them or "
                f"classify the original archive"
            )
        self.columns = [c for c in input_columns if not c.startswith("__")] + added

    def late_columns(self, chunk: list[dict[str, Any]]) -> list[str]:
        """Keys of this chunk's rows that the first chunk's rows did not have (JSON Lines rows may
        differ), in the order they first appear; CSV and Parquet give them columns of their own."""
        if self.fmt == "jsonl":
            return []
        known = set(self.columns)
        late = {k: None for row in chunk for k in row if k not in known and not k.startswith("__")}
        return list(late)

    def columns_with(self, late: list[str]) -> list[str]:
        """The output columns of a part whose rows bring ``late`` keys: the input's, those, then the
        added ones."""
        added = self.added_columns()
        return self.columns[: len(self.columns) - len(added)] + late + added

    def rows(
        self, chunk: list[dict[str, Any]], added: dict[str, list], columns: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Output rows: the input's columns, then the added ones (``_classify_values``). JSON Lines
        keeps every key of every row (rows may differ); CSV and Parquet use the columns of the first
        chunk, or ``columns`` (``columns_with``) for a chunk that brings keys of its own."""
        out = []
        names = list(added)
        columns = columns or self.columns
        for row, values in zip(chunk, zip(*added.values(), strict=True), strict=True):
            extra = dict(zip(names, values, strict=True))
            if self.fmt == "jsonl":
                merged = {k: _repair(v) for k, v in row.items() if not k.startswith("__")}
                if "__raw__" in row:
                    merged["_raw"] = _repair(row["__raw__"])
            else:
                merged = {c: _repair(row.get(c)) for c in columns if c not in extra}
            merged.update(extra)
            out.append(merged if self.fmt == "jsonl" else {c: merged.get(c) for c in columns})
        return out

    def write(
        self, path: Path, rows: list[dict[str, Any]], header: bool, columns: list[str] | None = None
    ) -> None:
        columns = columns or self.columns
        if self.fmt == "csv":
            with open(path, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                if header:
                    writer.writerow(columns)
                for row in rows:
                    writer.writerow([_csv_value(row[c]) for c in columns])
        elif self.fmt == "jsonl":
            with open(path, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(_json_line(row))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = self._schema(columns)
            if any(not self._typed(c) for c in columns):  # else every value goes in as it is
                rows = [self._parquet_row(r) for r in rows]
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)

    def write_arrow(self, path: Path, batch: Any, added: dict[str, list]) -> None:
        """A Parquet part from an Arrow record batch of Parquet input and the added columns: what
        ``write(path, rows(batch.to_pylist(), added))`` writes, without making rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._schema()
        names = batch.schema.names
        arrays = []
        for field_ in schema:
            if field_.name in added:
                arrays.append(pa.array(added[field_.name], type=field_.type))
            elif field_.name in names:
                arrays.append(batch.column(field_.name).cast(field_.type))
            else:
                arrays.append(pa.nulls(len(batch), field_.type))
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)

    def _typed(self, column: str) -> bool:
        """Whether the column's values go into Parquet as they are: an added column, or one whose
        type the Parquet input gave."""
        # the added columns by name: an input column such as "nps_score" is not one of them
        if self._added is None:
            self._added = frozenset(self.added_columns())
        return column in self._added or bool(self.input_types.get(column))

    def _parquet_row(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for column, value in row.items():
            if self._typed(column) or value is None or isinstance(value, str):
                out[column] = value
            else:  # a nested value from JSON Lines, say, in a string column
                out[column] = json.dumps(value, ensure_ascii=False)
        return out

    def set_input_schema(self, schema: Any) -> None:
        self.input_types = {name: schema.field(name).type for name in schema.names}

    def _schema(self, columns: list[str] | None = None):
        import pyarrow as pa

        if columns is not None and columns != self.columns:  # a part with late columns (strings)
            base = self._schema()
            return pa.schema(
                [base.field(c) if c in base.names else pa.field(c, pa.string()) for c in columns]
            )
        if self.schema is None:
            fields = []
            added = set(self.added_columns())
            for column in self.columns:
                if column not in added:
                    fields.append(pa.field(column, self.input_types.get(column, pa.string())))
            for task, kind in self.tasks.items():
                fields.append(pa.field(task, pa.list_(pa.string()) if kind == "multilabel" else pa.string()))
                fields.append(pa.field(f"{task}_score", pa.float64()))
            fields += [pa.field("needs_review", pa.bool_()), pa.field("error", pa.string())]
            if self.explain:
                fields.append(pa.field("explanation", pa.string()))
            self.schema = pa.schema(fields)
        return self.schema


def _join_parts(parts: list[Path], target: Path, writer: _PartWriter, *, compress: bool) -> None:
    """The part files joined into ``target``. Parts whose rows brought keys the first chunk lacked
    (``_run_chunk`` wrote their columns beside them) widen the output: every late key becomes a
    column, between the input's columns and the added ones, empty in the rows without it."""
    own = {}
    for part in parts:
        if _part_columns_path(part).exists():
            own[part] = json.loads(_part_columns_path(part).read_text(encoding="utf-8"))
    added = writer.added_columns()
    late = {c: None for columns in own.values() for c in columns[: len(columns) - len(added)]}
    columns = writer.columns_with([c for c in late if c not in writer.columns])
    if writer.fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = writer._schema(columns) if own else None
        out = None
        try:
            for part in parts:
                table = pq.read_table(part)
                if schema is not None and table.schema.names != schema.names:
                    present = set(table.schema.names)
                    arrays = [
                        table.column(f.name) if f.name in present else pa.nulls(len(table), f.type)
                        for f in schema
                    ]
                    table = pa.Table.from_arrays(arrays, schema=schema)
                if out is None:
                    out = pq.ParquetWriter(target, table.schema)
                out.write_table(table)
        finally:
            if out is not None:
                out.close()
        return
    with open(target, "wb") as raw:
        # mtime=0 keeps a .gz output byte-identical between a resumed and an uninterrupted run
        out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
        try:
            if not own:
                for part in parts:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out)
            else:  # CSV with late columns: every row rewritten under the widened header
                text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
                rows_out = csv.writer(text)
                rows_out.writerow(columns)
                for k, part in enumerate(parts):
                    names = own.get(part, writer.columns)
                    with open(part, encoding="utf-8", newline="") as handle:
                        records = csv.reader(handle)
                        if k == 0:
                            next(records, None)  # the first part's header
                        for record in records:
                            row = dict(zip(names, record, strict=True))
                            rows_out.writerow([row.get(c, "") for c in columns])
                text.detach()
        finally:
            if compress:
                out.close()


# --- the job -----------------------------------------------------------------------------------


def _fingerprint(input_path: str, model_dir: str | None, options: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    stat = os.stat(input_path)
    digest.update(
        json.dumps(
            [os.path.abspath(input_path), stat.st_size, stat.st_mtime_ns],
        ).encode()
    )
    model_json = Path(model_dir) / "model.json" if model_dir else None
    if model_json is None:
        from .persistence import bundled_model_path

        model_json = bundled_model_path() / "model.json"
    digest.update(model_json.read_bytes())
    digest.update(json.dumps(options, sort_keys=True).encode())
    return digest.hexdigest()


def classify_file(
    input_path: str,
    output_path: str,
    *,
    model_dir: str | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_size: int = 5000,
    jobs: int = 1,
    resume: bool = False,
    explain: int = 0,
    progress: bool | None = None,
) -> BatchSummary:
    """Classify an archive file into an output file (see the module docstring for guarantees).

    Parameters
    ----------
    input_path, output_path : str
        Paths, or ``"-"`` for stdin/stdout (then name the format; no resume on stdout).
    model_dir : str, optional
        A saved model directory; the bundled model by default.
    text_column : str
    id_column : str, optional
        A column that must be present (an error up front otherwise); it is kept like any column.
    input_format, output_format : {"csv", "jsonl", "parquet"}, optional
        Default: from the extension.
    chunk_size : int
        Rows per chunk (memory vs. overhead).
    jobs : int
        Worker processes.
    resume : bool
        Continue from the checkpoint of a killed run.
    explain : int
        Add an ``explanation`` column with this many top n-grams per label (0: none).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    BatchSummary
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ParameterError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs must be a whole number >= 1, got {jobs!r}")
    cpus = os.cpu_count() or 1
    if jobs > cpus:  # each worker is CPU-bound: more of them than CPUs only adds processes
        log.warning("jobs=%d is more than the %d CPU(s) of this machine: using %d", jobs, cpus, cpus)
        jobs = cpus
    in_fmt = table_format(input_path, input_format) if input_path != "-" or input_format else "jsonl"
    out_fmt = table_format(output_path, output_format) if output_path != "-" or output_format else in_fmt
    if input_path != "-" and not os.path.isfile(input_path):
        raise DataError(f"no such input file: {input_path!r}")
    if output_path != "-" and os.path.isdir(output_path):
        raise ParameterError(f"the output {output_path!r} is a directory; give a file name")
    if output_path == "-" and resume:
        raise ParameterError("--resume needs an output file, not stdout")
    if output_path == "-" and out_fmt == "parquet":
        raise ParameterError("Parquet cannot be streamed to stdout; give an output file")
    if (
        input_path != "-"
        and output_path != "-"
        and os.path.abspath(input_path) == os.path.abspath(output_path)
    ):
        raise ParameterError("the output must not overwrite the input; choose another output path")
    if model_dir is not None and not os.path.isdir(model_dir):
        from .errors import ModelFileError

        raise ModelFileError(f"no model directory at {model_dir!r}")

    model = _model_for(model_dir)  # fail early on a bad model, before any output is made
    tasks = model.tasks
    writer = _PartWriter(out_fmt, tasks, bool(explain))
    if in_fmt == "parquet" and input_path != "-":
        import pyarrow.parquet as pq

        try:
            schema = pq.ParquetFile(input_path).schema_arrow
        except Exception as exc:  # ArrowInvalid: not Parquet (a CSV named .parquet), or truncated
            raise DataError(f"{input_path}: not a readable Parquet file ({exc})") from None
        writer.set_input_schema(schema)
        if text_column not in schema.names:
            raise DataError(
                f"no column {text_column!r} in {input_path}; columns are {schema.names}; use --text-column"
            )

    summary = BatchSummary(labels={task: Counter() for task in tasks})
    started = time.perf_counter()
    to_stdout = output_path == "-"
    parts_dir = None if to_stdout else Path(f"{output_path}.parts")
    checkpoint_path = None if to_stdout else Path(f"{output_path}.checkpoint.json")
    options = {
        "text_column": text_column,
        "in": in_fmt,
        "out": out_fmt,
        "chunk_size": chunk_size,
        "explain": explain,
        "version": CHECKPOINT_VERSION,
    }
    done_chunks = 0
    if not to_stdout:
        fingerprint = _fingerprint(input_path, model_dir, options) if input_path != "-" else None
        if resume and fingerprint and checkpoint_path.exists():
            try:
                state = json.loads(checkpoint_path.read_text())
            except (OSError, json.JSONDecodeError):
                state = {}
            done = int(state.get("done_chunks", 0))
            missing = [k for k in range(done) if not (parts_dir / f"part-{k:06d}.{out_fmt}").is_file()]
            if state.get("fingerprint") != fingerprint:
                log.warning("the checkpoint belongs to another input, model or options: starting afresh")
            elif missing:
                log.warning(
                    "%d part file(s) the checkpoint counts are gone from %s (first: part %d): starting afresh",
                    len(missing),
                    parts_dir,
                    missing[0],
                )
            else:
                done_chunks = done
                summary.add(state.get("summary", {}))
                summary.resumed_chunks = done_chunks
        elif resume:
            log.warning("no checkpoint to resume from at %s: starting from the beginning", checkpoint_path)
        if done_chunks == 0:
            shutil.rmtree(parts_dir, ignore_errors=True)
        parts_dir.mkdir(parents=True, exist_ok=True)

    bar = None
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        from tqdm import tqdm

        total = None
        if in_fmt == "parquet" and input_path != "-":
            import pyarrow.parquet as pq

            total = pq.ParquetFile(input_path).metadata.num_rows
        bar = tqdm(total=total, unit="rows", file=sys.stderr, initial=summary.rows)

    chunks = _read_chunks(input_path, in_fmt, chunk_size)
    first: Any = None

    def remaining() -> Iterator[tuple[int, Any]]:
        nonlocal first
        for index, chunk in enumerate(chunks):
            if first is None:
                first = chunk
                if isinstance(chunk, list):
                    columns = list(dict.fromkeys(c for row in chunk for c in row))
                    readable = any("__error__" not in row for row in chunk)
                else:  # an Arrow record batch: its schema names the columns and their types
                    columns, readable = chunk.schema.names, True
                    if not writer.input_types:  # Parquet from stdin: its schema is known only now
                        writer.set_input_schema(chunk.schema)
                for name, option in ((text_column, "--text-column"), (id_column, "--id-column")):
                    if (
                        readable
                        and name is not None
                        and name not in columns
                        and name not in writer.input_types
                    ):
                        shown = [c for c in columns if not c.startswith("__")]
                        separator = next((c for c in ";\t|" if any(c in n for n in shown)), None)
                        hint = (
                            f" (the header seems to separate fields with {separator!r}: save the file "
                            "with commas)"
                            if separator and in_fmt == "csv"
                            else ""
                        )
                        raise DataError(
                            f"no column {name!r} in {input_path}; columns are {shown}; use {option}{hint}"
                        )
                if writer.columns is None:
                    writer.set_columns(list(writer.input_types) or columns)
            if index < done_chunks:
                continue
            yield index, chunk

    out_stream, warned = None, set()
    if to_stdout:
        out_stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        # The worker classifies a chunk and writes its part file itself, so with --jobs N the main
        # process only reads and dispatches; only the chunk's counts come back (rows too for stdout).
        def job(index: int, chunk: Any):
            part = None if to_stdout else parts_dir / f"part-{index:06d}.{out_fmt}"
            return _run_chunk, (model_dir, chunk, text_column, explain, writer, part, index == 0)

        if jobs == 1:
            results = ((i, len(c), _run_chunk(*job(i, c)[1])) for i, c in remaining())
        else:
            from joblib import Parallel, delayed

            # joblib keeps at most pre_dispatch chunks in flight, so memory stays flat
            indexed: list[tuple[int, int]] = []

            def tasks_iter():
                for i, c in remaining():
                    indexed.append((i, len(c)))
                    function, arguments = job(i, c)
                    yield delayed(function)(*arguments)

            parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator", pre_dispatch="2*n_jobs")
            results = ((*indexed[k], out) for k, out in enumerate(parallel(tasks_iter())))
        for index, size, (rows, stats) in results:
            summary.add(stats)
            if to_stdout:
                _write_stream(out_stream, writer, rows, header=index == 0)
                dropped = [c for c in stats.get("late_columns", ()) if c not in warned]
                if dropped:
                    warned.update(dropped)
                    log.warning(
                        "rows from row %d on have key(s) %s that the first %d rows lacked; the %s header "
                        "is out already, so standard output leaves them out: write to a file, or JSON Lines, "
                        "to keep them",
                        index * chunk_size + 1,
                        dropped,
                        chunk_size,
                        out_fmt.upper(),
                    )
            else:
                state = {"fingerprint": fingerprint, "done_chunks": index + 1, "summary": summary.state()}
                temporary_state = checkpoint_path.with_suffix(".tmp")
                temporary_state.write_text(json.dumps(state))
                os.replace(temporary_state, checkpoint_path)
            if bar is not None:
                bar.update(size)
    finally:
        if bar is not None:
            bar.close()
        if out_stream is not None:
            out_stream.flush()
            out_stream.detach()

    source = "stdin" if input_path == "-" else input_path
    if to_stdout and summary.rows == 0:
        raise DataError(f"{source} holds no rows; nothing was written")
    if not to_stdout:
        parts = sorted(parts_dir.glob(f"part-*.{out_fmt}"))
        if not parts:
            shutil.rmtree(parts_dir, ignore_errors=True)
            checkpoint_path.unlink(missing_ok=True)
            raise DataError(f"{source} holds no rows; nothing was written")
        temporary_out = Path(f"{output_path}.tmp")
        _join_parts(parts, temporary_out, writer, compress=output_path.lower().endswith(".gz"))
        os.replace(temporary_out, output_path)
        shutil.rmtree(parts_dir, ignore_errors=True)
        checkpoint_path.unlink(missing_ok=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _write_stream(
    stream: io.TextIOBase, writer: _PartWriter, rows: list[dict[str, Any]], header: bool
) -> None:
    if writer.fmt == "csv":
        out = csv.writer(stream)
        if header:
            out.writerow(writer.columns)
        for row in rows:
            out.writerow([_csv_value(row[c]) for c in writer.columns])
    else:
        for row in rows:
            stream.write(_json_line(row))
    stream.flush()
