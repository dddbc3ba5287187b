"""Reading labelled tables for training and evaluation: paths, DataFrames, iterables of dicts.

Label values are parsed here, once: a multi-label value is a list (JSON Lines, Parquet, Python) or
``"a|b"`` (CSV); an empty list, ``""``, ``None`` or NaN means no label.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import DataError

__all__ = [
    "read_records",
    "parse_single",
    "not_a_label",
    "not_labels",
    "parse_multilabel",
    "infer_tasks",
    "table_format",
    "write_atomic",
    "check_text_file",
    "check_header",
]

FORMATS = ("csv", "jsonl", "parquet")


def table_format(path: str | os.PathLike, output_format: str | None = None) -> str:
    """The table format of a path from its extension (``.csv``, ``.jsonl``, ``.parquet``, ``.gz``)."""
    if output_format is not None:
        if output_format not in FORMATS:
            raise DataError(f"format must be one of {FORMATS}, got {output_format!r}")
        return output_format
    name = str(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in (
        (".csv", "csv"),
        (".tsv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise DataError(
        f"cannot tell the format of {str(path)!r} from its extension; use .csv, .jsonl or .parquet "
        f"(optionally .gz for csv/jsonl), or name the format explicitly"
    )


def check_text_file(path: str | os.PathLike) -> None:
    """Refuse, with the fix, a CSV / JSON Lines file whose first bytes say it is something else:
    Parquet, gzip without ``.gz`` (or ``.gz`` without gzip), UTF-16 or UTF-32 text.

    Raises
    ------
    DataError
    """
    name = str(path)
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(max(os.fstat(handle.fileno()).st_size - 4, 0))
        tail = handle.read(4)
    if name.lower().endswith(".gz"):
        if head[:2] != b"\x1f\x8b":
            raise DataError(f"{name} is named .gz but is not gzip-compressed; remove .gz from its name")
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(4)
        except (OSError, EOFError) as exc:
            raise DataError(f"{name}: the gzip data is damaged ({exc})") from None
    elif head[:2] == b"\x1f\x8b":
        raise DataError(f"{name} is gzip-compressed; add .gz to its name")
    if head == b"PAR1" and (tail == b"PAR1" or name.lower().endswith(".gz")):
        raise DataError(f"{name} is a Parquet file; name it .parquet (or pass the format: parquet)")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(
            f"{name} is UTF-16/UTF-32 text (Excel's 'Unicode Text'); save it as UTF-8 ('CSV UTF-8')"
        )


def check_header(path: str | os.PathLike, names: list[str] | None) -> None:
    """Refuse a CSV header that names a column twice (one of the two would be lost)."""
    twice = sorted({name for name in names or () if names.count(name) > 1})
    if twice:
        raise DataError(f"{path}: the header names column(s) {twice} more than once; rename them")


def _open_text(path: Path):
    check_text_file(path)
    if str(path).lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_path(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise DataError(f"no such file: {str(path)!r}")
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        with _open_text(path) as handle:
            if fmt == "csv":
                dialect = "excel-tab" if ".tsv" in str(path).lower() else "excel"
                reader = csv.DictReader(handle, dialect=dialect, strict=True)
                check_header(path, reader.fieldnames)
                return list(reader)
            rows = []
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}: line {number} is not a JSON object")
                rows.append(row)
            return rows
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install pyarrow") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV ({exc})") from None
    except (EOFError, OSError) as exc:  # a truncated or damaged .gz
        raise DataError(f"{path}: could not be read to the end ({exc})") from None
    except Exception as exc:
        if type(exc).__module__.startswith("pyarrow"):  # ArrowInvalid: not Parquet, or damaged
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        raise


def read_records(data: Any) -> list[dict[str, Any]]:
    """Rows of a labelled table as dicts, from a path, a pandas DataFrame or an iterable of dicts.

    Raises
    ------
    DataError
        For an unknown extension, a missing or unreadable file, or rows that are not mappings.
    """
    if isinstance(data, (str, os.PathLike)):
        return _read_path(Path(data))
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return data.to_dict(orient="records")
    if isinstance(data, Mapping) or isinstance(data, (bytes, bytearray)):
        raise DataError(
            "data must be a path, a pandas DataFrame or an iterable of dicts (one per row), "
            f"got {type(data).__name__}"
        )
    if not isinstance(data, Iterable):
        raise DataError(f"data must be a path, a DataFrame or an iterable of dicts, got {data!r}")
    rows = list(data)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(f"row {i} is a {type(row).__name__}, not a dict of column -> value")
    return [dict(row) for row in rows]


def _is_missing(value: Any) -> bool:
    """None, a float NaN (numpy's too), or pandas' NA/NaT (an iterable of dicts can hold them)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and math.isnan(value)


def parse_single(value: Any) -> str | None:
    """A single-label cell as its label id: a string stripped, a whole number as its digits (a model
    trained on 0/1/2 has labels "0", "1", "2"; so has pandas' 0.0/1.0/2.0, the float column that a
    column of whole numbers with a missing value becomes); None when the row has no label
    (missing, blank) or holds a value of another kind (``not_a_label`` tells these apart)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy's ints too
        return str(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return None


def not_a_label(value: Any) -> bool:
    """Whether a single-label cell holds something that is neither a label nor "no label": a bool,
    a fraction, a list, a dict (``parse_single`` gives None for these too)."""
    if isinstance(value, str) or parse_single(value) is not None:
        return False
    return not _is_missing(value)


def not_labels(value: Any) -> bool:
    """Whether a multi-label cell holds something that is not a list of labels: a bool, a fraction, a
    dict, or a list with such an element (``parse_multilabel`` would turn it into a label "True")."""
    if isinstance(value, str) or _is_missing(value):
        return False
    if hasattr(value, "tolist") and not isinstance(value, numbers.Number):  # a numpy array
        value = value.tolist()
    if isinstance(value, (list, tuple, set)):
        return any(not isinstance(v, str) and not _is_missing(v) and not_a_label(v) for v in value)
    return not_a_label(value)


def parse_multilabel(value: Any) -> list[str]:
    """A multi-label cell as a list of label ids: lists as they are, ``"a|b"`` split, empty -> []."""
    if _is_missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):  # a JSON list written into a CSV cell
            try:
                parsed = json.loads(text)
                if isinstance(parsed, list):
                    return [str(v).strip() for v in parsed if str(v).strip()]
            except json.JSONDecodeError:
                pass
        return [part.strip() for part in text.split("|") if part.strip()]
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple, set)):
        return [str(v).strip() for v in value if not _is_missing(v) and str(v).strip()]
    return [str(value)]


_NOT_TASKS = {
    "id",
    "date",
    "time",
    "datetime",
    "timestamp",
    "created_at",
    "index",
    "channel",
    "source",
    "region",
    "style",
    "split",
    "lang",
    "language",
    "url",
    "author",
    "user",
}


def infer_tasks(rows: list[dict[str, Any]], text_column: str) -> dict[str, str]:
    """Guess the tasks of a table: list-valued columns are multilabel, short categorical ones single.

    Columns named like metadata (id, date, channel, region, ...) and columns with many distinct
    values are left out.
    """
    odd = [c for c in rows[0] if not isinstance(c, str)]
    if odd:
        raise DataError(
            f"column names must be text, got {odd[:5]}; rename the columns (df.columns = df.columns.astype(str))"
        )
    columns = [c for c in rows[0] if c != text_column and c.lower() not in _NOT_TASKS]
    tasks = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if any(isinstance(v, (list, tuple)) or hasattr(v, "tolist") for v in values if not _is_missing(v)):
            tasks[column] = "multilabel"
            continue
        distinct = {v for v in values if isinstance(v, str) and v}
        if distinct and len(distinct) <= 50 and len(distinct) < 0.5 * len(rows):
            tasks[column] = "multilabel" if any("|" in v for v in distinct) else "single"
    return tasks


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a half-written one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
