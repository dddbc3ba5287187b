"""The command line, through main(argv): exit codes, one-line errors, the four subcommands."""

import csv
import json
import subprocess
import sys

import pytest

from vnfeedback.cli import main

from .test_batch import archive_rows, write_csv


def test_classify_writes_output_and_a_summary(tiny_model_dir, tmp_path, capsys):
    write_csv(tmp_path / "in.csv", archive_rows(12))
    code = main(
        [
            "classify",
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "out.jsonl"),
            "--model",
            str(tiny_model_dir),
            "--no-progress",
        ]
    )
    assert code == 0
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 12
    err = capsys.readouterr().err
    assert "rows: 12" in err and "needs review:" in err and "rows not classified: 0" in err


def test_classify_explain_adds_the_ngrams(tiny_model_dir, tmp_path):
    write_csv(tmp_path / "in.csv", archive_rows(3))
    assert (
        main(
            [
                "classify",
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "out.jsonl"),
                "--model",
                str(tiny_model_dir),
                "--explain",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "intent=" in rows[0]["explanation"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["classify", "nope.csv", "-o", "out.csv"], "DataError: no such input file: 'nope.csv'"),
        (["classify", "in.txt", "-o", "out.csv"], "DataError: cannot tell the format of 'in.txt'"),
        (["classify", "in.csv", "-o", "out.csv", "--model", "nowhere"], "ModelFileError: no model directory"),
        (["classify", "in.csv", "-o", "out.csv", "--id-column", "uid"], "DataError: no column 'uid'"),
        (["train", "in.csv", "-o", "m", "--task", "intent"], "ParameterError: --task takes NAME:single"),
        (["evaluate", "in.csv", "--model", "nowhere"], "ModelFileError: no model directory"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(tiny_model_dir, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", archive_rows(3))
    (tmp_path / "in.txt").write_text("x")
    if "--model" not in argv and argv[0] == "classify":
        argv = [*argv, "--model", str(tiny_model_dir)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "mạng yếu", "--top", "0"], "argument --top: must be a whole number >= 1, got '0'"),
        (
            ["classify", "in.csv", "--explain", "0"],
            "argument --explain: must be a whole number >= 1, got '0'",
        ),
        (["classify", "in.csv", "--jobs", "two"], "argument --jobs: must be a whole number >= 1, got 'two'"),
        (["classify", "in.csv", "--chunk-size", "-5"], "argument --chunk-size: must be a whole number >= 1"),
        (["train", "in.csv", "-o", "m", "--cv", "1"], "argument --cv: must be a whole number >= 2, got '1'"),
        (["evaluate", "in.csv", "--cv", "1"], "argument --cv: must be a whole number >= 2, got '1'"),
        (["audit", "in.csv", "--cv", "0"], "argument --cv: must be a whole number >= 2, got '0'"),
        (["suggest", "in.csv", "-n", "0"], "argument -n: must be a whole number >= 1, got '0'"),
    ],
)
def test_bad_numbers_are_refused_by_option_name_before_any_output(
    tmp_path, monkeypatch, capsys, argv, message
):
    # explain --top 0 printed the labels, then an error about the Python parameter "top"
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", archive_rows(3))
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_train_evaluate_explain_round_trip(tmp_path, capsys):
    from pathlib import Path

    data = Path(__file__).parent / "fixtures" / "feedback_small.jsonl"
    with pytest.warns(Warning):
        code = main(
            [
                "train",
                str(data),
                "-o",
                str(tmp_path / "m"),
                "--task",
                "intent:single",
                "--task",
                "complaint_type:multilabel",
                "--cv",
                "2",
                "--test",
                str(data),
                "--name",
                "tiny",
            ]
        )
    assert code == 0
    card = json.loads((tmp_path / "m" / "card.json").read_text(encoding="utf-8"))
    assert card["name"] == "tiny" and "test_metrics" in card
    capsys.readouterr()
    assert main(["evaluate", str(data), "--model", str(tmp_path / "m"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["tasks"]) == {"intent", "complaint_type"}
    assert main(["explain", "mạng yếu quá", "--model", str(tmp_path / "m"), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "intent = " in out


def test_stdin_to_stdout(tiny_model_dir):
    lines = "".join(
        json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
        for i, t in enumerate(["mạng yếu", "cảm ơn"])
    )
    done = subprocess.run(
        [sys.executable, "-m", "vnfeedback", "classify", "-", "--model", str(tiny_model_dir)],
        input=lines.encode("utf-8"),
        capture_output=True,
        check=True,
    )
    rows = [json.loads(x) for x in done.stdout.decode("utf-8").splitlines()]
    assert [r["id"] for r in rows] == [0, 1] and "intent" in rows[0]


def test_parquet_from_stdin_keeps_rows_and_types(tiny_model_dir, tmp_path):
    """A pipe cannot seek to the Parquet footer: this crashed inside pyarrow ("Illegal seek")."""
    pa = pytest.importorskip("pyarrow")
    import io

    import pyarrow.parquet as pq

    rows = [{"id": i, "text": t} for i, t in enumerate(["mạng yếu", None, "cảm ơn"])]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    command = [sys.executable, "-m", "vnfeedback", "classify", "-", "--format", "parquet"]
    command += ["-o", str(tmp_path / "out.parquet"), "--model", str(tiny_model_dir), "--no-progress"]
    subprocess.run(command, input=buffer.getvalue(), capture_output=True, check=True)
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column("id").to_pylist() == [0, 1, 2] and out.schema.field("id").type == pa.int64()
    assert out.column("error").to_pylist() == ["", "missing 'text'", ""]
    wrong = subprocess.run([*command, "--text-column", "body"], input=buffer.getvalue(), capture_output=True)
    assert wrong.returncode != 0 and b"no column 'body'" in wrong.stderr


def test_import_and_help_stay_light():
    code = (
        "import sys, vnfeedback, vnfeedback.cli\n"
        "heavy = [m for m in ('numpy', 'scipy', 'sklearn', 'underthesea') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_report_suggest_and_audit_commands(tiny_model_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from pathlib import Path

    rows = archive_rows(80)
    write_csv(tmp_path / "in.csv", rows)
    model = ["--model", str(tiny_model_dir)]
    assert (
        main(["classify", str(tmp_path / "in.csv"), "-o", str(tmp_path / "c.jsonl"), "--no-progress", *model])
        == 0
    )
    assert (
        main(["report", str(tmp_path / "c.jsonl"), "-o", str(tmp_path / "t.html"), "--by", "week", *model])
        == 0
    )
    assert (tmp_path / "t.html").exists() and (tmp_path / "t.json").exists()
    span = ["--since", "2026-01-08", "--until", "2026-01-14"]
    assert main(["report", str(tmp_path / "c.jsonl"), "-o", str(tmp_path / "w.html"), *span, *model]) == 0
    week = json.loads((tmp_path / "w.json").read_text(encoding="utf-8"))
    assert week["rows"] == sum(8 <= 1 + r % 28 <= 14 for r in range(80))
    assert week["outside_span"] == {"rows": 80 - week["rows"], "since": "2026-01-08", "until": "2026-01-14"}
    assert (
        main(
            [
                "suggest",
                str(tmp_path / "in.csv"),
                "-n",
                "5",
                "-o",
                str(tmp_path / "s.csv"),
                "--id-column",
                "id",
                *model,
            ]
        )
        == 0
    )
    with open(tmp_path / "s.csv", encoding="utf-8", newline="") as handle:
        suggested = list(csv.DictReader(handle))
    assert 0 < len(suggested) <= 5 and suggested[0]["intent"] == ""
    data = Path(__file__).parent / "fixtures" / "feedback_small.jsonl"
    with pytest.warns(Warning):
        assert (
            main(["audit", str(data), "-o", str(tmp_path / "a.csv"), "--task", "intent:single", "--cv", "2"])
            == 0
        )
    assert (tmp_path / "a.csv").exists()
    assert "to label written" in capsys.readouterr().err


def test_report_with_an_unknown_period_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["report", "x.jsonl", "--by", "day"])
    assert raised.value.code == 2


def _train_small(directory, *options) -> dict:
    """``vnfeedback train`` on the small fixture (intent only, 2 folds) with ``options``; its card."""
    from pathlib import Path

    data = Path(__file__).parent / "fixtures" / "feedback_small.jsonl"
    with pytest.warns(Warning):  # labels with few examples
        code = main(
            ["train", str(data), "-o", str(directory), "--task", "intent:single", "--cv", "2", *options]
        )
    assert code == 0
    return json.loads((directory / "card.json").read_text(encoding="utf-8"))


def test_train_can_learn_from_accent_stripped_copies(tmp_path):
    card = _train_small(tmp_path / "m", "--augment-stripped")
    assert card["params"]["augment_stripped"] is True
    assert card["training_data"]["accent_stripped_copies"] > 0
    assert card["params"]["negation"] is False  # the default since the ablations found it costs


def test_train_can_add_the_negation_view(tmp_path):
    _train_small(tmp_path / "m", "--negation")
    assert (
        json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))["features"]["negation"]
        is True
    )
    names = json.loads((tmp_path / "m" / "vocabulary.json").read_text(encoding="utf-8"))
    assert any(name.startswith("n|neg_") for name in names)


def test_train_takes_the_nb_weighting(tmp_path):
    card = _train_small(tmp_path / "m", "--nb-weighting", "auto")
    assert card["params"]["nb_weighting"] == "auto" and set(card["nb_weighting_chosen"]) == {"intent"}
    card = _train_small(tmp_path / "n")  # the defaults
    assert card["params"]["nb_weighting"] is False and "nb_weighting_chosen" not in card
    assert card["params"]["char_weight"] == 1.0


def test_train_takes_the_char_weight(tmp_path):
    assert _train_small(tmp_path / "m", "--char-weight", "0.5")["params"]["char_weight"] == 0.5


def test_train_takes_the_rules_weight(tmp_path, capsys):
    from pathlib import Path

    data = Path(__file__).parent / "fixtures" / "feedback_small.jsonl"
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps({"complaint_type": {"none_when": {"intent": ["question"]}}}), encoding="utf-8"
    )
    base = ["train", str(data), "--task", "intent:single", "--task", "complaint_type:multilabel", "--cv", "2",
            "--rules", str(rules)]  # fmt: skip
    with pytest.warns(Warning):
        assert main([*base, "-o", str(tmp_path / "m"), "--rules-weight", "0"]) == 0
    assert json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))["rules_weight"] == 0.0
    assert main([*base, "-o", str(tmp_path / "bad"), "--rules-weight", "-1"]) != 0
    assert "rules_weight must be a number in [0, 100], got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_train_keeps_cv_groups_together(tmp_path, capsys):
    from pathlib import Path

    rows = (
        (Path(__file__).parent / "fixtures" / "feedback_small.jsonl").read_text(encoding="utf-8").splitlines()
    )
    data = tmp_path / "grouped.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(dict(json.loads(r), branch=f"b{i % 5}"), ensure_ascii=False)
            for i, r in enumerate(rows)
        ),
        encoding="utf-8",
    )
    base = ["train", str(data), "--task", "intent:single", "--cv", "2"]
    with pytest.warns(Warning):
        assert main([*base, "-o", str(tmp_path / "m"), "--cv-groups", "branch"]) == 0
    card = json.loads((tmp_path / "m" / "card.json").read_text(encoding="utf-8"))
    assert card["params"]["cv_groups"] == "branch"
    assert "never split a 'branch' group" in card["cv_metrics"]["note"]
    assert main([*base, "-o", str(tmp_path / "bad"), "--cv-groups", "region"]) != 0
    assert "cv_groups: no column 'region' in the data" in capsys.readouterr().err


@pytest.mark.parametrize("built", [True, False])
def test_version_says_whether_batch_prediction_runs_in_c(built, capsys, monkeypatch):
    from vnfeedback import __version__, features

    if not built:
        monkeypatch.setattr(features, "_speedups", None)
    elif features._speedups is None:
        pytest.skip("the C extension is not built here")
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith(f"vnfeedback {__version__} (")
    assert ("in C)" in out) is built and ("not built" in out) is not built


def test_warnings_print_as_one_line_like_errors(tiny_model_dir, small_rows, tmp_path):
    rows = [dict(small_rows[0], intent="complant"), *small_rows[1:]]
    (tmp_path / "labelled.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    command = [sys.executable, "-m", "vnfeedback", "evaluate", str(tmp_path / "labelled.jsonl")]
    done = subprocess.run(
        [*command, "--model", str(tiny_model_dir)], capture_output=True, text=True, check=True
    )
    assert done.stderr.startswith("VnfeedbackWarning: rows left out") and done.stderr.count("\n") == 1
    assert "'complant' (1 row" in done.stderr
