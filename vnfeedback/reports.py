"""Evaluation reports a product-policy team can look at: one self-contained HTML file plus JSON.

``evaluation_report(model, data, output)`` scores a model on labelled data and draws:

- per task and per label precision, recall, F1 and support;
- confusion matrices (single-label tasks) and false-positive / false-negative counts per label
  (multi-label tasks);
- a reliability diagram per task with its expected calibration error (ECE: the support-weighted mean
  gap between confidence and accuracy over ten equal-width confidence bins; for a single-label task
  the confidence is the top probability, for a multi-label task every label's probability is a
  yes/no forecast);
- coverage against precision: rows sorted by the model's confidence (the lowest, over tasks, of
  the top probability or the distance of a label from its threshold), and the share of fully correct
  rows among the most confident ones, with the needs-review rule's operating point marked;
- the most confused label pairs, with example comments;
- with ``baseline=``, the same metrics for a second model side by side, and a verdict: the candidate
  is promoted only when it is at least as good on every task's headline metric (macro-F1) and better
  on one.

With ``cv=k`` the data are treated as training data: the model's recipe (its parameters) is
cross-validated on them with k folds stratified on the single-label tasks and each row's rarest
multi-label label, and the out-of-fold predictions are what gets reported.

Figures are matplotlib PNGs embedded as ``data:`` URIs: the HTML has no external resource.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, ParameterError, VnfeedbackWarning
from .evaluation import (
    _caller_stacklevel,
    _task_targets,
    _unknown_details,
    label_matrix,
    labelled_texts,
    metrics_from_proba,
)
from .tables import parse_multilabel, parse_single, read_records, write_atomic

__all__ = ["evaluation_report", "expected_calibration_error"]

BINS = 10


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = BINS
) -> tuple[float, list]:
    """ECE over equal-width bins, and the (mean confidence, accuracy, count) of each non-empty bin.

    Example
    -------
    >>> expected_calibration_error(np.array([0.9, 0.8, 0.3]), np.array([1, 1, 0]))[0]  # doctest: +SKIP
    0.2
    """
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, gap = [], 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            mean_conf, accuracy, count = (
                float(confidence[mask].mean()),
                float(correct[mask].mean()),
                int(mask.sum()),
            )
            table.append((mean_conf, accuracy, count))
            gap += count * abs(mean_conf - accuracy)
    return (gap / len(confidence) if len(confidence) else 0.0), table


def _figure_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ParameterError("HTML reports need matplotlib: pip install 'vnfeedback[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- what is reported --------------------------------------------------------------------------


def _targets(model, rows: list[dict]) -> dict[str, np.ndarray]:
    targets = {}
    for task, task_model in model.models_.items():
        if task not in rows[0]:
            continue
        index = {label: k for k, label in enumerate(task_model.labels)}
        if task_model.kind == "single":
            targets[task] = np.array([index.get(parse_single(r.get(task)) or "", -1) for r in rows])
        else:
            y = np.zeros((len(rows), len(task_model.labels)), dtype=np.int8)
            for i, r in enumerate(rows):
                for label in parse_multilabel(r.get(task)):
                    if label in index:
                        y[i, index[label]] = 1
            targets[task] = y
    if not targets:
        raise DataError(
            f"none of the model's tasks {list(model.models_)} is a column of the data ({sorted(rows[0])})"
        )
    return targets


def _probabilities(model, texts: list[str]) -> tuple[dict[str, np.ndarray], list]:
    predictions = model.predict_many(texts)
    probas = {
        task: np.array([[p.scores[task][label] for label in m.labels] for p in predictions])
        for task, m in model.models_.items()
    }
    return probas, predictions


def _cross_validated(model, rows: list[dict], texts: list[str], folds: int):
    """Out-of-fold predictions of the model's recipe on ``rows``."""
    from sklearn.model_selection import StratifiedKFold

    from .classifier import FeedbackClassifier

    tasks = model.tasks
    keys = []
    counts = Counter(
        label
        for r in rows
        for t, k in tasks.items()
        if k == "multilabel"
        for label in parse_multilabel(r.get(t))
    )
    for r in rows:
        parts = [str(r.get(t)) for t, k in tasks.items() if k == "single"]
        multi = [label for t, k in tasks.items() if k == "multilabel" for label in parse_multilabel(r.get(t))]
        parts.append(min(multi, key=counts.get) if multi else "-")
        keys.append("|".join(parts))
    frequency = Counter(keys)
    keys = [k if frequency[k] >= folds else "rare" for k in keys]
    params = model.get_params()
    params["tasks"] = tasks
    order = np.arange(len(rows))
    probas = {task: np.zeros((len(rows), len(m.labels))) for task, m in model.models_.items()}
    predictions: list = [None] * len(rows)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=params.get("random_state", 0))
    for train, test in splitter.split(order, keys):
        fold_model = FeedbackClassifier(**params).fit([rows[i] for i in train])
        fold_probas, fold_predictions = _probabilities(fold_model, [texts[i] for i in test])
        for task in probas:
            labels = fold_model.models_[task].labels
            columns = [
                labels.index(label) if label in labels else None for label in model.models_[task].labels
            ]
            for out_col, in_col in enumerate(columns):
                if in_col is not None:
                    probas[task][test, out_col] = fold_probas[task][:, in_col]
        for i, p in zip(test, fold_predictions, strict=True):
            predictions[i] = p
    return probas, predictions


def _known_rows(model, rows: list[dict]) -> tuple[list[dict], dict[str, Any]]:
    """The rows whose every label the model knows, and what the others held (as ``evaluate``
    reports it). The report's tasks share rows (fully correct, coverage), so a row with an unknown
    label for any task is left out of the whole report, with the warning ``evaluate`` gives."""
    keep = np.ones(len(rows), dtype=bool)
    unknown: dict[str, Any] = {}
    for task, task_model in model.models_.items():
        if task not in rows[0]:
            continue
        _, scored, labels, no_label = _task_targets(rows, task, task_model)
        if not scored.all():
            unknown[task] = {"labels": labels, "no_label": no_label, "left_out": int((~scored).sum())}
            keep &= scored
    if not unknown:
        return rows, unknown
    details = _unknown_details(unknown, model, len(rows))
    if not keep.any():
        raise DataError(f"no row has only labels the model knows, nothing to report: {details}")
    warnings.warn(
        f"{int((~keep).sum())} row(s) left out of the report, a label unknown to the model or missing: "
        + details,
        VnfeedbackWarning,
        stacklevel=_caller_stacklevel(),
    )
    return [row for row, k in zip(rows, keep, strict=True) if k], unknown


def _analyse(model, rows: list[dict], texts: list[str], cv: int | None) -> dict[str, Any]:
    targets = _targets(model, rows)
    probas, predictions = _cross_validated(model, rows, texts, cv) if cv else _probabilities(model, texts)
    result: dict[str, Any] = {
        "n": len(rows),
        "tasks": {},
        "needs_review_share": float(np.mean([p.needs_review for p in predictions])),
    }
    correct_all = np.ones(len(rows), dtype=bool)
    confidence_all = np.ones(len(rows))
    for task, y in targets.items():
        task_model = model.models_[task]
        p = probas[task]
        metrics = metrics_from_proba(task_model, y, p, predicted=[q.labels[task] for q in predictions])
        if task_model.kind == "single":
            predicted = p.argmax(axis=1)
            confidence = p.max(axis=1)
            correct = predicted == y
            ece, bins = expected_calibration_error(confidence, correct)
            confusions = Counter(
                (int(a), int(b)) for a, b in zip(y, predicted, strict=True) if a != b and a >= 0
            )
            pairs = []
            for (a, b), n in confusions.most_common(5):
                examples = [texts[i] for i in np.where((y == a) & (predicted == b))[0][:3]]
                pairs.append(
                    {
                        "true": task_model.labels[a],
                        "predicted": task_model.labels[b],
                        "count": n,
                        "examples": examples,
                    }
                )
        else:
            # the labels given, after the label rules
            chosen = label_matrix([q.labels[task] for q in predictions], task_model.labels)
            correct = (chosen == y.astype(bool)).all(axis=1)
            confidence = 0.5 + np.abs(p - task_model.thresholds).min(axis=1)
            ece, bins = expected_calibration_error(p.ravel(), y.ravel())
            missed = Counter()
            for i in np.where(~correct)[0]:
                for a in np.where(y[i] & ~chosen[i])[0]:
                    others = np.where(chosen[i] & ~y[i].astype(bool))[0]
                    for b in others if len(others) else [-1]:
                        missed[(int(a), int(b))] += 1
            pairs = []
            for (a, b), n in missed.most_common(5):
                rows_ = [
                    i
                    for i in np.where(~correct)[0]
                    if y[i, a] and not chosen[i, a] and (b == -1 or (chosen[i, b] and not y[i, b]))
                ][:3]
                pairs.append(
                    {
                        "true": task_model.labels[a],
                        "predicted": task_model.labels[b] if b >= 0 else "(nothing)",
                        "count": n,
                        "examples": [texts[i] for i in rows_],
                    }
                )
        metrics["ece"] = round(float(ece), 4)
        metrics["reliability"] = [[round(c, 4), round(a, 4), n] for c, a, n in bins]
        metrics["confused_pairs"] = pairs
        result["tasks"][task] = metrics
        correct_all &= correct
        confidence_all = np.minimum(confidence_all, confidence)
    order = np.argsort(-confidence_all, kind="stable")
    coverage, precision = [], []
    for k in range(1, 21):
        top = order[: max(1, round(len(order) * k / 20))]
        coverage.append(k / 20)
        precision.append(float(correct_all[top].mean()))
    kept = np.array([not p.needs_review for p in predictions])
    result["coverage_precision"] = {
        "coverage": coverage,
        "precision": precision,
        "rule_coverage": float(kept.mean()),
        "rule_precision": float(correct_all[kept].mean()) if kept.any() else None,
        "all_correct_share": float(correct_all.mean()),
    }
    return result


# --- drawing -----------------------------------------------------------------------------------


def _confusion_figure(plt, metrics: dict, title: str) -> str:
    labels = metrics["confusion"]["labels"]
    matrix = np.array(metrics["confusion"]["rows_true_cols_pred"])
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 0.8 + 0.55 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > matrix.max() / 2 else "black",
        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    return _figure_uri(fig)


def _errors_figure(plt, metrics: dict, title: str) -> str:
    labels = list(metrics["per_label"])
    fp = [metrics["per_label"][label]["false_positives"] for label in labels]
    fn = [metrics["per_label"][label]["false_negatives"] for label in labels]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.32 * len(labels)))
    y = np.arange(len(labels))
    ax.barh(y - 0.2, fp, height=0.4, label="false positives", color="#d9822b")
    ax.barh(y + 0.2, fn, height=0.4, label="false negatives", color="#2b6cb0")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _figure_uri(fig)


def _reliability_figure(plt, metrics: dict, title: str) -> str:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
    if metrics["reliability"]:
        conf, acc, _count = zip(*metrics["reliability"], strict=True)
        ax.plot(conf, acc, "o-", color="#2b6cb0")
        for c, a, n in metrics["reliability"]:
            ax.annotate(str(n), (c, a), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("observed accuracy")
    ax.set_title(f"{title} (ECE {metrics['ece']:.3f})", fontsize=10)
    return _figure_uri(fig)


def _coverage_figure(plt, curve: dict) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(curve["coverage"], curve["precision"], "-", color="#2b6cb0", label="most confident first")
    if curve["rule_precision"] is not None:
        ax.plot(
            [curve["rule_coverage"]],
            [curve["rule_precision"]],
            "o",
            color="#d9822b",
            label="needs-review rule: the rows it lets through",
        )
    ax.set_xlabel("coverage (share of rows accepted without review)")
    ax.set_ylabel("share fully correct")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    return _figure_uri(fig)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _headline(metrics: dict) -> float:
    return metrics["macro_f1"]


STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#1a202c;padding:0 1em}h1{font-size:1.6em}h2{border-bottom:1px solid #cbd5e0;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}td,th{border:1px solid #e2e8f0;padding:.25em .6em;
text-align:left}th{background:#edf2f7}.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.win{color:#276749;font-weight:bold}.lose{color:#9b2c2c;font-weight:bold}.note{color:#4a5568;font-size:.9em}
blockquote{margin:.2em 0 .2em 1em;color:#2d3748;font-size:.9em}"""


def evaluation_report(
    model: Any,
    data: Any,
    output: str | os.PathLike,
    *,
    baseline: Any = None,
    cv: int | None = None,
    title: str = "vnfeedback evaluation",
) -> dict[str, Any]:
    """Write an HTML evaluation report (and ``<stem>.json`` beside it); return the metrics.

    Parameters
    ----------
    model : FeedbackClassifier
    data : path, DataFrame or iterable of dicts
        Labelled comments with the model's text column and task columns.
    output : path
        The HTML file to write.
    baseline : FeedbackClassifier, optional
        A second model (e.g. the one in production) scored on the same data, side by side.
    cv : int, optional
        Cross-validate the model's recipe on ``data`` with this many folds instead of scoring the
        fitted model (for training data).
    title : str

    Returns
    -------
    dict
        The metrics written to the JSON file.

    Example
    -------
    >>> evaluation_report(vnfeedback.load(), "data/telecom/test.jsonl", "report.html")  # doctest: +SKIP
    """
    plt = _pyplot()
    if cv is not None and (not isinstance(cv, int) or cv < 2):
        raise ParameterError(f"cv must be a whole number >= 2, got {cv!r}")
    rows = read_records(data)
    if not rows:
        raise DataError("no rows to evaluate")
    column = model.text_column_
    rows, unknown = _known_rows(model, rows)
    texts = labelled_texts(rows, column)
    report = {
        "title": title,
        "model": model.card.get("name"),
        "cv_folds": cv,
        **_analyse(model, rows, texts, cv),
        "unknown_labels": unknown,
    }
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Model <b>{html.escape(str(report['model']))}</b> on {report['n']:,} labelled "
        f"comments{f', {cv}-fold cross-validation of its recipe' if cv else ''}. Needs review: "
        f"{report['needs_review_share']:.1%}.</p>",
    ]
    summary = []
    for task, m in report["tasks"].items():
        other = f"accuracy {m['accuracy']:.3f}" if m["kind"] == "single" else f"micro-F1 {m['micro_f1']:.3f}"
        summary.append([task, m["kind"], f"{m['macro_f1']:.3f}", other, f"{m['ece']:.3f}"])
    sections.append("<h2>Summary</h2>" + _table(["task", "kind", "macro-F1", "", "ECE"], summary))

    if baseline is not None:
        base = _analyse(baseline, rows, texts, None)
        report["baseline"] = {"model": baseline.card.get("name"), **base}
        comparison, better, worse = [], 0, 0
        for task, m in report["tasks"].items():
            if task not in base["tasks"]:
                continue
            ours, theirs = _headline(m), _headline(base["tasks"][task])
            better += ours > theirs + 1e-9
            worse += ours < theirs - 1e-9
            comparison.append([task, f"{theirs:.3f}", f"{ours:.3f}", f"{ours - theirs:+.3f}"])
        promote = better > 0 and worse == 0
        report["verdict"] = {"promote": promote, "better_tasks": better, "worse_tasks": worse}
        verdict = (
            f"<p class='win'>Promote: at least as good on every task and better on {better}.</p>"
            if promote
            else f"<p class='lose'>Do not promote: worse on {worse} task(s), better on {better}.</p>"
        )
        sections.append(
            "<h2>Against the baseline</h2>"
            + _table(["task", "baseline macro-F1", "this model", "change"], comparison)
            + verdict
        )

    sections.append(
        "<h2>Coverage against precision</h2><div class='figs'><img alt='coverage against precision' "
        f"src='{_coverage_figure(plt, report['coverage_precision'])}'></div>"
    )
    curve = report["coverage_precision"]
    if curve["rule_precision"] is not None:
        sections.append(
            f"<p class='note'>The needs-review rule lets {curve['rule_coverage']:.1%} of rows through "
            f"without review; {curve['rule_precision']:.1%} of those are right on every task "
            f"(all rows: {curve['all_correct_share']:.1%}).</p>"
        )
    for task, m in report["tasks"].items():
        figures = [_reliability_figure(plt, m, f"{task}: reliability")]
        if m["kind"] == "single":
            figures.insert(0, _confusion_figure(plt, m, f"{task}: confusion"))
        else:
            figures.insert(0, _errors_figure(plt, m, f"{task}: errors per label"))
        labels = [
            [
                label,
                v["precision"],
                v["recall"],
                v["f1"],
                v["support"],
                v["false_positives"],
                v["false_negatives"],
            ]
            for label, v in m["per_label"].items()
        ]
        pairs = "".join(
            f"<p><b>{html.escape(p['true'])}</b> taken for <b>{html.escape(p['predicted'])}</b> ({p['count']}×)</p>"
            + "".join(f"<blockquote>{html.escape(t[:300])}</blockquote>" for t in p["examples"])
            for p in m["confused_pairs"]
        )
        sections.append(
            f"<h2>{html.escape(task)}</h2><div class='figs'>"
            + "".join(f"<img alt='{html.escape(task)} figure' src='{uri}'>" for uri in figures)
            + "</div>"
            + _table(
                ["label", "precision", "recall", "F1", "support", "false positives", "false negatives"],
                labels,
            )
            + "<h3>Most confused</h3>"
            + (pairs or "<p class='note'>No errors.</p>")
        )
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page.encode("utf-8"))
    write_atomic(path.with_suffix(".json"), json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8"))
    return report
