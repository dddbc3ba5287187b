"""Evaluation reports: what the HTML and JSON say, calibration error, the baseline verdict."""

import json
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from vnfeedback import ParameterError
from vnfeedback.cli import main
from vnfeedback.reports import evaluation_report, expected_calibration_error

from .conftest import ROOT

CORPUS = ROOT / "data" / "telecom" / "train.jsonl"


def test_ece_is_zero_when_confidence_matches_accuracy_and_grows_with_the_gap():
    confidence = np.array([0.95] * 20 + [0.55] * 20)
    correct = np.array([1] * 19 + [0] + [1] * 11 + [0] * 9)
    assert expected_calibration_error(confidence, correct)[0] == pytest.approx(0.0, abs=1e-9)
    overconfident = np.array([0.95] * 20)
    assert expected_calibration_error(overconfident, np.array([1] * 10 + [0] * 10))[0] == pytest.approx(0.45)


def test_report_embeds_every_figure_and_writes_json(tiny_model, small_rows, tmp_path):
    report = evaluation_report(tiny_model, small_rows, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    images = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(images) == 1 + 2 * len(tiny_model.tasks)  # coverage, then two per task
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in page and "https://" not in page
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert saved["tasks"]["intent"]["macro_f1"] == report["tasks"]["intent"]["macro_f1"]
    assert 0 <= saved["tasks"]["complaint_type"]["ece"] <= 1
    curve = saved["coverage_precision"]
    assert curve["coverage"][-1] == 1.0 and curve["precision"][-1] == pytest.approx(
        curve["all_correct_share"]
    )


def test_rows_with_labels_the_model_does_not_know_are_left_out_and_named(tiny_model, small_rows, tmp_path):
    import vnfeedback

    rows = [
        dict(small_rows[0], intent="complant"),
        dict(small_rows[1], complaint_type=["zzz"]),
        *small_rows[2:],
    ]
    with pytest.warns(vnfeedback.VnfeedbackWarning, match=r"2 row\(s\) left out of the report.*'complant'"):
        report = evaluation_report(tiny_model, rows, tmp_path / "report.html")
    clean = evaluation_report(tiny_model, small_rows[2:], tmp_path / "clean.html")
    assert report["n"] == len(small_rows) - 2 and report["tasks"] == clean["tasks"]
    assert report["unknown_labels"]["intent"]["labels"] == {"complant": 1}
    assert report["unknown_labels"]["complaint_type"]["labels"] == {"zzz": 1}


def test_confused_pairs_come_with_real_examples(tiny_model, small_rows, tmp_path):
    flipped = [dict(r, intent="praise") if r["intent"] == "complaint" else r for r in small_rows]
    report = evaluation_report(tiny_model, flipped, tmp_path / "r.html")
    pairs = report["tasks"]["intent"]["confused_pairs"]
    assert pairs and pairs[0]["true"] == "praise"
    texts = {r["text"] for r in small_rows}
    assert all(example in texts for example in pairs[0]["examples"])


def test_baseline_verdict_promotes_only_a_model_that_wins(tiny_model, small_rows, tmp_path):
    same = evaluation_report(tiny_model, small_rows, tmp_path / "same.html", baseline=tiny_model)
    assert same["verdict"] == {"promote": False, "better_tasks": 0, "worse_tasks": 0}


@pytest.mark.slow
def test_cross_validated_report_uses_out_of_fold_predictions(tmp_path):
    import vnfeedback

    from .conftest import TASKS, read_jsonl

    rows = read_jsonl(CORPUS)[:400]
    model = vnfeedback.train(rows, tasks=TASKS, n_folds=2, C_grid=(0.3,))
    fitted = evaluation_report(model, rows, tmp_path / "fit.html")
    crossed = evaluation_report(model, rows, tmp_path / "cv.html", cv=3)
    assert crossed["cv_folds"] == 3 and crossed["n"] == 400
    # predicting its own training data flatters a model; out-of-fold predictions do not
    assert crossed["tasks"]["intent"]["accuracy"] < fitted["tasks"]["intent"]["accuracy"]


def test_bad_cv_is_named(tiny_model, small_rows, tmp_path):
    with pytest.raises(ParameterError, match="cv must be a whole number >= 2, got 1"):
        evaluation_report(tiny_model, small_rows, tmp_path / "r.html", cv=1)


def test_cli_writes_the_report(tiny_model_dir, tmp_path, capsys):
    from pathlib import Path

    data = Path(__file__).parent / "fixtures" / "feedback_small.jsonl"
    code = main(
        [
            "evaluate",
            str(data),
            "--model",
            str(tiny_model_dir),
            "--report",
            str(tmp_path / "r.html"),
            "--baseline",
            str(tiny_model_dir),
        ]
    )
    assert code == 0
    assert (tmp_path / "r.html").exists() and (tmp_path / "r.json").exists()
    assert "do not promote" in capsys.readouterr().out
