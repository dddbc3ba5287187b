"""Evaluation on labelled data whose labels the model may not know.

Non-regression for a silent failure: ``vnfeedback evaluate`` (and ``model.evaluate``) scored rows
whose label was a typo ("complant"), a number, a null or an unknown multilabel id as model errors,
exited 0 and said nothing, so a typo in a label file quietly lowered the scores. Such rows are now
left out of that task's metrics, named in a ``VnfeedbackWarning`` and listed in the report.
"""

from __future__ import annotations

import json
import warnings

import pytest

import vnfeedback
from vnfeedback.cli import main
from vnfeedback.errors import DataError, VnfeedbackWarning
from vnfeedback.evaluation import evaluate_model

from .conftest import TASKS

# rows 0-2 get a bad intent, row 3 a bad complaint_type, row 4 no product_area
BAD_INTENT = {0: "complant", 1: "complant", 2: 7}


def _with_bad_labels(rows: list[dict]) -> list[dict]:
    out = [dict(row) for row in rows]
    for i, value in BAD_INTENT.items():
        out[i]["intent"] = value
    out[3]["complaint_type"] = ["network_quality", "zzz"]
    out[4]["product_area"] = None
    return out


def _metrics(task_metrics: dict) -> dict:
    """A task's metrics without the keys that describe left-out rows."""
    return {k: v for k, v in task_metrics.items() if k not in ("unknown_labels", "no_label", "left_out")}


def _evaluate_with_warning(model, rows) -> tuple[dict, str]:
    with pytest.warns(VnfeedbackWarning) as record:
        report = model.evaluate(rows)
    assert len(record) == 1
    return report, str(record[0].message)


def test_unknown_single_label_values_warn_with_their_counts_and_the_models_labels(tiny_model, small_rows):
    _, message = _evaluate_with_warning(tiny_model, _with_bad_labels(small_rows))
    assert "'intent': 'complant' (2 rows, did you mean 'complaint'?), '7' (1 row)" in message
    assert "check the spelling against the model's labels" in message
    assert str(tiny_model.labels["intent"]) in message
    assert "\n" not in message  # one line on the terminal


def test_unknown_multilabel_values_warn_with_their_counts(tiny_model, small_rows):
    rows = [dict(row) for row in small_rows]
    rows[3]["complaint_type"] = ["network_quality", "zzz"]
    rows[5]["complaint_type"] = "zzz|billing"  # the CSV spelling of a multilabel cell
    _, message = _evaluate_with_warning(tiny_model, rows)
    assert "'complaint_type': 'zzz' (2 rows)" in message
    assert str(tiny_model.labels["complaint_type"]) in message
    assert "intent" not in message and "network_quality'" not in message.split("Fix:")[0]


def test_a_single_label_row_without_label_is_named_with_the_fix(tiny_model, small_rows):
    # a null single-label value used to be counted as an error under the unknown label "";
    # a null multilabel value is a row to which no label applies, scored as before
    rows = [dict(row) for row in small_rows]
    rows[4]["product_area"] = None
    rows[6]["product_area"] = "  "
    rows[7]["complaint_type"] = None
    report, message = _evaluate_with_warning(tiny_model, rows)
    assert "'product_area': no label (2 rows)" in message
    assert "label or drop the rows with no label" in message
    assert report["unknown_labels"] == {"product_area": {"labels": {}, "no_label": 2, "left_out": 2}}
    assert report["tasks"]["complaint_type"]["n"] == len(rows)


def test_clean_labels_give_no_warning_and_an_empty_unknown_list(tiny_model, small_rows):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        report = tiny_model.evaluate(small_rows)
    assert [w for w in record if issubclass(w.category, VnfeedbackWarning)] == []
    assert report["unknown_labels"] == {}
    for metrics in report["tasks"].values():
        assert metrics["n"] == len(small_rows)
        assert "left_out" not in metrics and "unknown_labels" not in metrics


def test_report_lists_unknown_labels_per_task(tiny_model, small_rows):
    report, _ = _evaluate_with_warning(tiny_model, _with_bad_labels(small_rows))
    assert report["unknown_labels"] == {
        "complaint_type": {"labels": {"zzz": 1}, "no_label": 0, "left_out": 1},
        "product_area": {"labels": {}, "no_label": 1, "left_out": 1},
        "intent": {"labels": {"complant": 2, "7": 1}, "no_label": 0, "left_out": 3},
    }
    intent = report["tasks"]["intent"]
    assert (intent["unknown_labels"], intent["no_label"], intent["left_out"]) == (
        {"complant": 2, "7": 1},
        0,
        3,
    )
    assert report["tasks"]["complaint_type"]["unknown_labels"] == {"zzz": 1}
    assert json.loads(json.dumps(report)) == report  # still what --json prints


def test_rows_with_unknown_labels_are_left_out_of_that_task_only(tiny_model, small_rows):
    rows = _with_bad_labels(small_rows)
    report, _ = _evaluate_with_warning(tiny_model, rows)
    clean = tiny_model.evaluate(small_rows)["tasks"]
    left_out = {"intent": set(BAD_INTENT), "complaint_type": {3}, "product_area": {4}}
    for task, skipped in left_out.items():
        kept = [row for i, row in enumerate(small_rows) if i not in skipped]
        expected = tiny_model.evaluate([{"text": r["text"], task: r[task]} for r in kept])["tasks"][task]
        got = report["tasks"][task]
        assert got["n"] == len(small_rows) - len(skipped)
        assert _metrics(got) == expected  # single-label and multilabel alike
        assert got != clean[task]  # the left-out rows did count before, so the test can tell
    matrix = report["tasks"]["intent"]["confusion"]["rows_true_cols_pred"]
    assert sum(map(sum, matrix)) == report["tasks"]["intent"]["n"]


def test_a_task_with_no_known_label_is_not_reported(tiny_model, small_rows):
    rows = [dict(row, intent="khiếu nại") for row in small_rows]
    with pytest.warns(
        VnfeedbackWarning, match=r"'intent' \(no row left to score: the task is not reported\)"
    ):
        report = tiny_model.evaluate(rows)
    assert set(report["tasks"]) == {"complaint_type", "product_area"}
    assert report["unknown_labels"]["intent"]["labels"] == {"khiếu nại": len(rows)}


def test_no_known_label_in_any_task_is_an_error_naming_them(tiny_model, small_rows):
    rows = [{"text": row["text"], "intent": "khiếu nại"} for row in small_rows]
    with pytest.raises(
        DataError, match=r"no row has a label the model knows.*'intent'.*'khiếu nại' \(40 rows"
    ):
        evaluate_model(tiny_model, rows)


def test_integer_labels_are_read_as_training_reads_them(small_rows):
    # evaluation once read a label 0 as a missing label (``value or ""``), so a model trained on
    # 0/1/2 labels counted every 0 as an unknown label
    codes = {label: k for k, label in enumerate(sorted({r["intent"] for r in small_rows}))}
    rows = [dict(row, intent=codes[row["intent"]]) for row in small_rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VnfeedbackWarning)  # labels with < 10 examples
        model = vnfeedback.train(rows, tasks={"intent": "single"}, n_folds=2, random_state=0)
    report = model.evaluate(rows)
    assert "unknown_labels" not in report["tasks"]["intent"]  # was {"": 26}: every "complaint" (0)
    assert report["unknown_labels"] == {}
    assert report["tasks"]["intent"]["n"] == len(rows)
    from vnfeedback.reports import _targets  # the HTML report's targets had the same ``or ""``

    assert (_targets(model, rows)["intent"] == [codes[r["intent"]] for r in small_rows]).all()


def test_a_value_that_is_not_a_label_is_named_not_called_missing(tiny_model, small_rows):
    rows = [dict(row) for row in small_rows]
    rows[0]["intent"], rows[1]["intent"], rows[2]["intent"] = True, 2.5, 2.0
    report, message = _evaluate_with_warning(tiny_model, rows)
    assert report["unknown_labels"]["intent"] == {
        "labels": {"True": 1, "2.5": 1, "2": 1},
        "no_label": 0,
        "left_out": 3,
    }
    assert "'True' (1 row)" in message


def test_the_warning_points_at_the_users_call(tiny_model, small_rows):
    rows = _with_bad_labels(small_rows)
    for evaluate in (tiny_model.evaluate, lambda data: evaluate_model(tiny_model, data)):
        with pytest.warns(VnfeedbackWarning) as record:
            evaluate(rows)
        assert record[0].filename == __file__


def test_cli_evaluate_warns_once_and_still_prints_the_scores(tiny_model_dir, small_rows, tmp_path, capsys):
    path = tmp_path / "labelled.jsonl"
    path.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in _with_bad_labels(small_rows)),
        encoding="utf-8",
    )
    with pytest.warns(VnfeedbackWarning) as record:
        code = main(["evaluate", str(path), "--model", str(tiny_model_dir), "--json"])
    assert code == 0
    assert len(record) == 1 and "'complant' (2 rows" in str(record[0].message)
    assert "\n" not in str(record[0].message)
    report = json.loads(capsys.readouterr().out)
    assert report["unknown_labels"]["intent"]["left_out"] == 3
    assert set(TASKS) == set(report["tasks"])
