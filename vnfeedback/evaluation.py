"""Metrics per task and per label: precision, recall, F1, support, confusion matrices.

``single`` tasks report accuracy, macro and weighted F1 and a confusion matrix; ``multilabel`` tasks
report micro and macro F1, the exact-match ratio and per-label error counts. Labels in the data that
the model does not know are counted as errors and listed under ``unknown_labels``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError
from .tables import parse_multilabel, read_records

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


def evaluate_model(model: FeedbackClassifier, data: Any) -> dict[str, Any]:
    """Evaluate a fitted model on labelled data (path, DataFrame or iterable of dicts).

    Returns
    -------
    dict
        ``{"n": rows, "needs_review_share": float, "tasks": {task: metrics}}``; tasks missing from
        the data are left out.

    Raises
    ------
    DataError
        If the text column or every task column is missing, or a text is not a str.
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
    }
    for task in present:
        task_model = model.models_[task]
        labels = task_model.labels
        index = {label: k for k, label in enumerate(labels)}
        proba = np.array([[p.scores[task][label] for label in labels] for p in predictions])
        unknown: dict[str, int] = {}
        if task_model.kind == "single":
            y = np.full(len(rows), -1)
            for i, row in enumerate(rows):
                value = str(row.get(task) or "").strip()
                if value in index:
                    y[i] = index[value]
                else:
                    unknown[value] = unknown.get(value, 0) + 1
        else:
            y = np.zeros((len(rows), len(labels)), dtype=np.int8)
            for i, row in enumerate(rows):
                for value in parse_multilabel(row.get(task)):
                    if value in index:
                        y[i, index[value]] = 1
                    else:
                        unknown[value] = unknown.get(value, 0) + 1
        metrics = metrics_from_proba(task_model, y, proba, predicted=[p.labels[task] for p in predictions])
        if unknown:
            metrics["unknown_labels"] = unknown
        report["tasks"][task] = metrics
    return report
