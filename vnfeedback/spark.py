"""Classify a Spark DataFrame on a cluster: ``classify_dataframe(df, model_dir, text_col="text")``.

Install with ``pip install "vnfeedback[spark]"`` (and have vnfeedback installed on the executors, or
ship it with ``spark.sparkContext.addPyFile``). The model directory's files are broadcast once; each
executor process loads the model once and keeps it in this module's cache (a cache in a closure or in
``__main__`` would be rebuilt for every task). The function given to ``mapInPandas`` is pure (the
same rows always give the same columns), so Spark's task retries cannot duplicate or change a row;
write the result with ``mode("overwrite")`` so a rerun replaces rather than appends.

Example
-------
>>> df = spark.read.parquet("archive.parquet")                          # doctest: +SKIP
>>> out = classify_dataframe(df, "models/telecom-v1", text_col="text")    # doctest: +SKIP
>>> out.write.mode("overwrite").parquet("classified.parquet")            # doctest: +SKIP

The result has every input column plus, per task, ``<task>`` (string, or array of strings for a
multi-label task) and ``<task>_score`` (double), then ``needs_review`` (boolean) and ``error``
(string, empty unless the row could not be classified) — the same as ``vnfeedback classify``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

from .errors import DataError

__all__ = ["classify_dataframe", "output_schema"]

_executor_models: dict[str, Any] = {}  # model key -> loaded model, one per executor process


def _read_model_files(model_dir: str | None) -> dict[str, bytes]:
    from .persistence import bundled_model_path, load_model

    path = bundled_model_path() if model_dir is None else model_dir
    load_model(path)  # fail on the driver, with a clear error, before any task starts
    return {
        name: open(os.path.join(path, name), "rb").read()
        for name in sorted(os.listdir(path))
        if not name.startswith(".")
    }


def _model_from_files(files: dict[str, bytes]) -> Any:
    key = hashlib.sha256(files["model.json"]).hexdigest()
    if key not in _executor_models:
        from .persistence import load_model

        directory = tempfile.mkdtemp(prefix="vnfeedback-model-")
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as handle:
                handle.write(data)
        _executor_models[key] = load_model(directory)
    return _executor_models[key]


def output_schema(input_schema: Any, tasks: dict[str, str], explain: bool = False) -> Any:
    """The Spark schema of the result: the input's fields, then the added columns."""
    from pyspark.sql import types as T

    fields = list(input_schema.fields)
    taken = {f.name for f in fields}
    for task, kind in tasks.items():
        for name in (task, f"{task}_score"):
            if name in taken:
                raise DataError(
                    f"the DataFrame already has a column {name!r} that classification adds; rename it"
                )
        fields.append(
            T.StructField(task, T.ArrayType(T.StringType()) if kind == "multilabel" else T.StringType())
        )
        fields.append(T.StructField(f"{task}_score", T.DoubleType()))
    fields += [T.StructField("needs_review", T.BooleanType()), T.StructField("error", T.StringType())]
    if explain:
        fields.append(T.StructField("explanation", T.StringType()))
    return T.StructType(fields)


def classify_dataframe(
    df: Any, model_dir: str | None = None, *, text_col: str = "text", explain: int = 0
) -> Any:
    """Add the model's labels to every row of a Spark DataFrame (lazily, with ``mapInPandas``).

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    model_dir : str, optional
        A model directory readable on the driver; the bundled model by default.
    text_col : str
        The column holding the comment.
    explain : int
        Add an ``explanation`` column with this many n-grams per label (0: none).

    Returns
    -------
    pyspark.sql.DataFrame
        The same rows and columns plus the added ones (see the module docstring).

    Raises
    ------
    DataError
        If ``text_col`` is not a column of ``df``.
    ModelFileError
        If the model directory is missing or damaged (checked on the driver).
    """
    if text_col not in df.columns:
        raise DataError(f"no column {text_col!r} in the DataFrame; columns are {df.columns}; pass text_col=")
    files = _read_model_files(model_dir)
    tasks = _model_from_files(files).tasks
    schema = output_schema(df.schema, tasks, bool(explain))
    shipped = df.sparkSession.sparkContext.broadcast(files)
    columns = [f.name for f in schema.fields]

    def classify_batches(batches):
        import pandas as pd

        from vnfeedback.batch import _classify_values
        from vnfeedback.spark import _model_from_files

        model = _model_from_files(shipped.value)
        for frame in batches:
            values = frame[text_col].tolist() if text_col in frame.columns else [None] * len(frame)
            added = _classify_values(model, values, [None] * len(values), text_col, explain)
            out = frame.copy()
            for name in columns[len(frame.columns) :]:
                out[name] = added[name]
            yield pd.DataFrame(out, columns=columns)

    return df.mapInPandas(classify_batches, schema=schema)
