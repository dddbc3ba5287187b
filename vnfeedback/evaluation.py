"""Metrics per task and per label: precision, recall, F1, support, confusion matrices.

``single`` tasks report accuracy, macro and weighted F1 and a confusion matrix; ``multilabel`` tasks
report micro and macro F1, the exact-match ratio and per-label error counts.

A row whose label for a task is one the model does not know (a typo such as ``"complant"``, a number
the model was not trained on, or, for a single-label task, no label at all) is left out of that
task's metrics, not counted as an error: the model could never have given that label, so counting it
would measure the label file rather than the model. ``evaluate_model`` warns naming those labels and
lists them in its report. A multilabel row with no label is an ordinary row (no label applies), as in
training.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError, VnfeedbackWarning
from .tables import not_a_label, parse_multilabel, parse_single, read_records

if TYPE_CHECKING:
    from .classifier import FeedbackClassifier
    from .models import TaskModel

__all__ = ["evaluate_model", "label_matrix", "labelled_texts", "metrics_from_proba"]


def _per_label(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, labels: list[str]) -> dict[str, dict]:
    out = {}
    for k, label in enumerate(labels):
        precision = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 0.0
        recall = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(tp[k] + fn[k]),
            "false_positives": int(fp[k]),
            "false_negatives": int(fn[k]),
        }
    return out


def label_matrix(chosen: list[list[str]], labels: list[str]) -> np.ndarray:
    """Multilabel predictions (a list of label ids per text) as a boolean matrix, columns in ``labels`` order."""
    index = {label: k for k, label in enumerate(labels)}
    matrix = np.zeros((len(chosen), len(labels)), dtype=bool)
    for i, given in enumerate(chosen):
        matrix[i, [index[label] for label in given]] = True
    return matrix


def metrics_from_proba(
    model: TaskModel,
    y: np.ndarray,
    proba: np.ndarray,
    *,
    predicted: list | None = None,
    summary_only: bool = False,
) -> dict[str, Any]:
    """Metrics of one task from true targets and predicted probabilities.

    ``y`` holds class indices (single; -1 for a label the model does not know) or a 0/1 matrix
    (multilabel). ``predicted`` are the labels the classifier actually gave (``Prediction.labels``
    of this task, after its label rules); without it they are read off ``proba`` (argmax, or the
    thresholds), which is only right for a model without label rules.
    """
    labels = model.labels
    n_labels = len(labels)
    index = {label: k for k, label in enumerate(labels)}
    if model.kind == "single":
        pred = proba.argmax(axis=1) if predicted is None else np.array([index[p] for p in predicted])
        tp = np.array([np.sum((pred == k) & (y == k)) for k in range(n_labels)])
        fp = np.array([np.sum((pred == k) & (y != k)) for k in range(n_labels)])
        fn = np.array([np.sum((pred != k) & (y == k)) for k in range(n_labels)])
        per_label = _per_label(tp, fp, fn, labels)
        support = np.array([per_label[label]["support"] for label in labels], dtype=float)
        f1 = np.array([per_label[label]["f1"] for label in labels])
        result = {
            "kind": "single",
            "n": len(y),
            "accuracy": round(float(np.mean(pred == y)), 4),
            "macro_f1": round(float(f1.mean()), 4),
            "weighted_f1": round(float((f1 * support).sum() / support.sum()) if support.sum() else 0.0, 4),
        }
        if not summary_only:
            known = y >= 0
            matrix = np.zeros((n_labels, n_labels), dtype=int)
            np.add.at(matrix, (y[known], pred[known]), 1)
            result["per_label"] = per_label
            result["confusion"] = {"labels": list(labels), "rows_true_cols_pred": matrix.tolist()}
        return result
    pred = proba >= model.thresholds if predicted is None else label_matrix(predicted, labels)
    Y = y.astype(bool)
    tp = (pred & Y).sum(axis=0)
    fp = (pred & ~Y).sum(axis=0)
    fn = (~pred & Y).sum(axis=0)
    per_label = _per_label(tp, fp, fn, labels)
    micro_den = 2 * tp.sum() + fp.sum() + fn.sum()
    result = {
        "kind": "multilabel",
        "n": len(Y),
        "micro_f1": round(float(2 * tp.sum() / micro_den) if micro_den else 0.0, 4),
        "macro_f1": round(float(np.mean([per_label[label]["f1"] for label in labels])), 4),
        "exact_match": round(float(np.mean((pred == Y).all(axis=1))), 4),
    }
    if not summary_only:
        result["per_label"] = per_label
    return result


def labelled_texts(rows: list[dict[str, Any]], column: str) -> list[str]:
    """The text of every row; a row whose text is missing or not a str is an error naming it."""
    texts = []
    for i, row in enumerate(rows):
        value = row.get(column)
        if not isinstance(value, str):
            raise DataError(f"row {i}: {column!r} is {type(value).__name__}, not text; drop or fill it")
        texts.append(value)
    return texts


def _task_targets(rows: list[dict[str, Any]], task: str, task_model: TaskModel):
    """Targets of one task, which rows can be scored, and what the others hold.

    Returns ``(y, scored, unknown, no_label)``: ``y`` as ``metrics_from_proba`` takes it, for every
    row; ``scored`` a boolean mask of the rows whose labels the model knows; ``unknown`` the unknown
    label values with the number of rows holding each; ``no_label`` the number of rows of a
    single-label task without a label.
    """
    labels = task_model.labels
    index = {label: k for k, label in enumerate(labels)}
    scored = np.ones(len(rows), dtype=bool)
    unknown: dict[str, int] = {}
    no_label = 0
    if task_model.kind == "single":
        y = np.full(len(rows), -1)
        for i, row in enumerate(rows):
            value = parse_single(row.get(task))
            if value in index:
                y[i] = index[value]
                continue
            scored[i] = False
            if not_a_label(row.get(task)):  # True, 1.5, a list: named as it is, not "no label"
                value = repr(row.get(task))
            if value is None:
                no_label += 1
            else:
                unknown[value] = unknown.get(value, 0) + 1
        return y, scored, unknown, no_label
    y = np.zeros((len(rows), len(labels)), dtype=np.int8)
    for i, row in enumerate(rows):
        values = parse_multilabel(row.get(task))
        strange = sorted({value for value in values if value not in index})
        if strange:
            scored[i] = False
            for value in strange:
                unknown[value] = unknown.get(value, 0) + 1
            continue
        y[i, [index[value] for value in values]] = 1
    return y, scored, unknown, no_label


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _unknown_details(unknown: dict[str, dict[str, Any]], model: FeedbackClassifier, n_rows: int) -> str:
    """One line naming, per task, the unknown labels with their row counts, and the fix."""
    parts = []
    for task, found in unknown.items():
        labels = model.models_[task].labels
        values = []
        for value, n in found["labels"].items():
            close = difflib.get_close_matches(value, labels, n=1)
            values.append(f"{value!r} ({_rows(n)}{f', did you mean {close[0]!r}?' if close else ''})")
        if found["no_label"]:
            values.append(f"no label ({_rows(found['no_label'])})")
        unscored = " (no row left to score: the task is not reported)" if found["left_out"] == n_rows else ""
        parts.append(f"{task!r}{unscored}: " + ", ".join(values))
    known = "; ".join(f"{task!r} {model.models_[task].labels}" for task in unknown)
    fix = f"check the spelling against the model's labels: {known}"
    if any(found["no_label"] for found in unknown.values()):
        fix += "; label or drop the rows with no label"
    return "; ".join(parts) + f". Fix: {fix}"


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package, so a warning points at the
    user's call whether it came through ``model.evaluate``, the CLI or ``evaluate_model``."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def evaluate_model(model: FeedbackClassifier, data: Any) -> dict[str, Any]:
    """Evaluate a fitted model on labelled data (path, DataFrame or iterable of dicts).

    A row whose label for a task is one the model does not know, or a row of a single-label task
    without a label, is left out of that task's metrics (and only that task's): the task's ``n``
    counts the rows scored. A multilabel row is left out when any of its labels is unknown; a
    multilabel row with no label is scored as "no label applies". Leaving rows out gives a
    ``VnfeedbackWarning`` naming the labels, their row counts and the model's labels.

    Returns
    -------
    dict
        ``{"n": rows, "needs_review_share": float, "tasks": {task: metrics},
        "unknown_labels": {task: {"labels": {label: rows}, "no_label": rows, "left_out": rows}}}``;
        tasks missing from the data are left out of ``tasks``, and so is a task none of whose rows
        can be scored. A task with rows left out also carries ``unknown_labels`` (``{label: rows}``),
        ``no_label`` (single-label tasks) and ``left_out`` in its metrics. ``unknown_labels`` is
        empty when every label is known.

    Raises
    ------
    DataError
        If the text column or every task column is missing, a text is not a str, or no row of any
        task has a label the model knows.

    Warns
    -----
    VnfeedbackWarning
        If some rows are left out for unknown or missing labels.

    Example
    -------
    >>> report = model.evaluate("labelled.jsonl")  # one row: "mạng yếu quá", intent "complant"
    VnfeedbackWarning: rows left out of a task's metrics, ...: 'intent': 'complant' (1 row, did you
    mean 'complaint'?). Fix: check the spelling against the model's labels: 'intent' ['complaint', ...]
    >>> report["unknown_labels"]["intent"]
    {'labels': {'complant': 1}, 'no_label': 0, 'left_out': 1}
    """
    rows = read_records(data)
    if not rows:
        raise DataError("no rows to evaluate")
    column = model.text_column_
    if column not in rows[0]:
        raise DataError(f"missing text column {column!r}; the data has {sorted(rows[0])}")
    present = [task for task in model.models_ if task in rows[0]]
    if not present:
        raise DataError(
            f"none of the model's tasks {list(model.models_)} is a column of the data ({sorted(rows[0])})"
        )
    texts = labelled_texts(rows, column)
    predictions = model.predict_many(texts)
    report: dict[str, Any] = {
        "n": len(rows),
        "needs_review_share": round(float(np.mean([p.needs_review for p in predictions])), 4),
        "tasks": {},
        "unknown_labels": {},
    }
    for task in present:
        task_model = model.models_[task]
        labels = task_model.labels
        y, scored, unknown, no_label = _task_targets(rows, task, task_model)
        left_out = int((~scored).sum())
        if left_out:
            report["unknown_labels"][task] = {
                "labels": dict(unknown),
                "no_label": no_label,
                "left_out": left_out,
            }
        if not scored.any():
            continue
        proba = np.array([[p.scores[task][label] for label in labels] for p in predictions])
        predicted = [p.labels[task] for p, keep in zip(predictions, scored, strict=True) if keep]
        metrics = metrics_from_proba(task_model, y[scored], proba[scored], predicted=predicted)
        if left_out:
            metrics["unknown_labels"] = unknown
            if task_model.kind == "single":
                metrics["no_label"] = no_label
            metrics["left_out"] = left_out
        report["tasks"][task] = metrics
    if not report["tasks"]:
        raise DataError(
            "no row has a label the model knows, nothing to score: "
            + _unknown_details(report["unknown_labels"], model, len(rows))
        )
    if report["unknown_labels"]:
        warnings.warn(
            "rows left out of a task's metrics, their label unknown to the model or missing: "
            + _unknown_details(report["unknown_labels"], model, len(rows)),
            VnfeedbackWarning,
            stacklevel=_caller_stacklevel(),
        )
    return report
