"""The command line, through main(argv): exit codes, one-line errors, the four subcommands."""

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


def test_import_and_help_stay_light():
    code = (
        "import sys, vnfeedback, vnfeedback.cli\n"
        "heavy = [m for m in ('numpy', 'scipy', 'sklearn', 'underthesea') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
