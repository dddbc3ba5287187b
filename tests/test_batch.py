"""Batch classification of archive files: formats, bad rows, atomic output, resume, workers."""

import csv
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from vnfeedback import DataError, ParameterError, batch
from vnfeedback.batch import classify_file

COMMENTS = [
    "Mạng 4G chập chờn, gọi tổng đài chờ 20 phút",
    "mang yeu qua ko vao dc fb",
    "Cảm ơn nhân viên đã hỗ trợ nhiệt tình",
    "bị trừ 15k vô lý",
    "Cho hỏi gói cước nào rẻ?",
    "wifi nhà mất kết nối suốt",
    "",
]


def archive_rows(n=60):
    return [
        {
            "id": f"C{i:05d}",
            "date": f"2026-01-{1 + i % 28:02d}",
            "channel": "fanpage",
            "text": COMMENTS[i % len(COMMENTS)] + ("" if i % 3 else f" lần {i}"),
        }
        for i in range(n)
    ]


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def killed_run(monkeypatch, source, output, at_chunk, **options):
    """Run classify_file and interrupt it as its chunk number ``at_chunk`` (from 1) starts."""
    real, calls = batch._classify_values, {"n": 0}

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_chunk:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(batch, "_classify_values", crash)
        with pytest.raises(KeyboardInterrupt):
            classify_file(str(source), str(output), **options)


def test_csv_keeps_every_column_and_row_order_and_adds_labels(tiny_model_dir, tmp_path):
    rows = archive_rows()
    write_csv(tmp_path / "in.csv", rows)
    summary = classify_file(
        str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir), chunk_size=7
    )
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as handle:
        out = list(csv.DictReader(handle))
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert all(o["text"] == r["text"] and o["date"] == r["date"] for o, r in zip(out, rows, strict=False))
    assert {
        "complaint_type",
        "complaint_type_score",
        "product_area",
        "intent",
        "needs_review",
        "error",
    } <= set(out[0])
    assert summary.rows == len(rows) and not summary.skipped
    import vnfeedback

    model = vnfeedback.load(tiny_model_dir)
    expected = model.predict(rows[0]["text"])
    assert out[0]["complaint_type"] == "|".join(expected.labels["complaint_type"])
    assert out[0]["intent"] == expected.labels["intent"]


def test_jsonl_writes_multilabel_as_lists_and_keeps_extra_keys(tiny_model_dir, tmp_path):
    rows = archive_rows(20)
    rows[5]["note"] = "only here"
    write_jsonl(tmp_path / "in.jsonl", rows)
    classify_file(
        str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), model_dir=str(tiny_model_dir), chunk_size=6
    )
    out = read_jsonl(tmp_path / "out.jsonl")
    assert len(out) == 20 and out[5]["note"] == "only here"
    assert all(isinstance(r["complaint_type"], list) for r in out)


def test_parquet_round_trip_keeps_types(tiny_model_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = archive_rows(30)
    for i, r in enumerate(rows):
        r["stars"] = i % 5
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    classify_file(
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out.parquet"),
        model_dir=str(tiny_model_dir),
        chunk_size=8,
    )
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 30
    assert table.schema.field("stars").type == pa.int64()
    assert table.schema.field("complaint_type").type == pa.list_(pa.string())
    assert table.column("id").to_pylist() == [r["id"] for r in rows]


def test_each_readable_row_gets_its_own_prediction_and_the_counts_match():
    import vnfeedback

    model = vnfeedback.load()  # the bundled model: some comments have no complaint type
    rows = [{"text": f"{t} {i}"} for i, t in enumerate(COMMENTS * 3)]
    rows[1]["text"], rows[4]["text"], rows[9] = None, 17, {"__error__": "line 10: not valid JSON (x)"}
    added = batch.classify_rows(model, rows, "text")
    readable = [i for i in range(len(rows)) if i not in (1, 4, 9)]
    predictions = model.predict_many([rows[i]["text"] for i in readable])
    for i, p in zip(readable, predictions, strict=True):
        assert added[i]["error"] == "" and added[i]["needs_review"] == p.needs_review
        for task in model.tasks:
            assert added[i][task] == p.labels[task]
            assert added[i][f"{task}_score"] == round(max(p.scores[task].values()), 4)
    assert [added[i]["error"] for i in (1, 4, 9)] == [
        "missing 'text'",
        "'text' is int, not text",
        rows[9]["__error__"],
    ]
    assert all(added[i]["needs_review"] and added[i]["intent"] == "" for i in (1, 4, 9))
    columns = {name: [a[name] for a in added] for name in added[0]}
    stats = batch._chunk_stats(columns, model.tasks)
    assert stats["rows"] == len(rows) and stats["needs_review"] == sum(p.needs_review for p in predictions)
    assert stats["skipped"] == {"missing 'text'": 1, "'text' is int, not text": 1, "line 10": 1}
    chosen = [p.labels["complaint_type"] for p in predictions]
    assert stats["labels"]["complaint_type"]["(none)"] == sum(not c for c in chosen) > 0
    assert sum(stats["labels"]["intent"].values()) == len(predictions)


@pytest.mark.parametrize("explain", [0, 2])
def test_parquet_columns_pass_through_as_arrow_exactly_as_rows_would(
    tiny_model_dir, tmp_path, monkeypatch, explain
):
    """Parquet to Parquet never makes rows; its parts equal those of the row path, types included."""
    pa = pytest.importorskip("pyarrow")
    import datetime

    import pyarrow.parquet as pq

    rows = archive_rows(40)
    for i, r in enumerate(rows):
        r["stars"] = None if i % 7 == 0 else i % 5
        r["at"] = datetime.datetime(2026, 1, 1 + i % 28, 8, i % 60)
        r["tags"] = [f"t{i % 3}"] * (i % 3)
        r["ok"] = i % 2 == 0
    rows[3]["text"] = None
    rows[5]["text"] = "x" * (batch.MAX_FIELD_CHARS + 1)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    real = batch._read_chunks
    outputs, summaries = [], []
    for as_rows in (False, True):
        if as_rows:
            monkeypatch.setattr(batch, "_read_chunks", lambda *a: map(batch._rows_of, real(*a)))
        out = tmp_path / f"out{as_rows}.parquet"
        summary = classify_file(
            str(tmp_path / "in.parquet"),
            str(out),
            model_dir=str(tiny_model_dir),
            chunk_size=8,
            explain=explain,
        )
        summaries.append(summary.state())
        outputs.append(pq.read_table(out))
    assert outputs[0].schema.equals(outputs[1].schema, check_metadata=True)
    assert outputs[0].equals(outputs[1])
    assert summaries[0] == summaries[1] and summaries[0]["rows"] == 40
    assert outputs[0].column("error").to_pylist()[3:6] == [
        "missing 'text'",
        "",
        "text longer than 1,000,000 characters",
    ]
    assert outputs[0].column("at").to_pylist() == [r["at"] for r in rows]


def test_nested_json_values_go_into_parquet_as_json_text(tiny_model_dir, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = archive_rows(12)
    for i, r in enumerate(rows):
        r["meta"] = {"stars": i, "tags": ["a", "b"]} if i % 2 else "plain"
    write_jsonl(tmp_path / "in.jsonl", rows)
    classify_file(
        str(tmp_path / "in.jsonl"), str(tmp_path / "out.parquet"), model_dir=str(tiny_model_dir), chunk_size=5
    )
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    assert table.column("meta").to_pylist() == [
        json.dumps(r["meta"], ensure_ascii=False) if i % 2 else "plain" for i, r in enumerate(rows)
    ]
    assert table.column("complaint_type").to_pylist()[0] is not None


def test_gzip_input_and_output(tiny_model_dir, tmp_path):
    rows = archive_rows(15)
    with gzip.open(tmp_path / "in.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    classify_file(str(tmp_path / "in.jsonl.gz"), str(tmp_path / "out.csv.gz"), model_dir=str(tiny_model_dir))
    with gzip.open(tmp_path / "out.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        assert [r["id"] for r in csv.DictReader(handle)] == [r["id"] for r in rows]


def test_bad_rows_are_written_with_a_reason_never_dropped(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "MAX_FIELD_CHARS", 100)
    lines = [
        json.dumps({"id": "ok", "text": "mạng yếu"}, ensure_ascii=False),
        "{this is not json",
        json.dumps({"id": "num", "text": 42}),
        json.dumps({"id": "none", "text": None}),
        json.dumps({"id": "nokey"}),
        json.dumps({"id": "big", "text": "a" * 101}),
        json.dumps({"id": "last", "text": "cảm ơn"}, ensure_ascii=False),
    ]
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    raw += b'{"id": "bytes", "text": "m\xe1\xba\xa1ng \xff\xfe y\xe1\xba\xbfu"}\n'
    (tmp_path / "in.jsonl").write_bytes(raw)
    summary = classify_file(
        str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), model_dir=str(tiny_model_dir), chunk_size=3
    )
    out = read_jsonl(tmp_path / "out.jsonl")
    assert len(out) == 8
    errors = [r["error"] for r in out]
    assert errors[0] == "" and errors[6] == ""
    assert errors[1].startswith("line 2: not valid JSON")
    assert "int, not text" in errors[2]
    assert errors[3] == errors[4] == "missing 'text'"
    assert "longer than 100" in errors[5]
    assert "undecodable bytes" in errors[7] and "\ufffd" in out[7]["text"]
    assert all(r["complaint_type"] == [] and r["intent"] == "" for r in out if r["error"])
    assert sum(summary.skipped.values()) == 6


def test_missing_text_column_is_a_one_line_error(tiny_model_dir, tmp_path):
    write_csv(tmp_path / "in.csv", [{"id": "1", "comment": "mạng yếu"}])
    with pytest.raises(
        DataError, match=r"no column 'text' in .*columns are \['id', 'comment'\]; use --text-column"
    ):
        classify_file(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir))
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"chunk_size": 0}, ParameterError, "chunk_size must be"),
        ({"jobs": 0}, ParameterError, "jobs must be"),
        ({"output_format": "xlsx"}, DataError, "format must be one of"),
    ],
)
def test_bad_options_are_named(tiny_model_dir, tmp_path, kwargs, error, message):
    write_csv(tmp_path / "in.csv", archive_rows(3))
    with pytest.raises(error, match=message):
        classify_file(
            str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir), **kwargs
        )


def test_output_may_not_overwrite_input(tiny_model_dir, tmp_path):
    write_csv(tmp_path / "in.csv", archive_rows(3))
    with pytest.raises(ParameterError, match="must not overwrite the input"):
        classify_file(str(tmp_path / "in.csv"), str(tmp_path / "in.csv"), model_dir=str(tiny_model_dir))


def test_resume_after_a_crash_gives_the_same_file(tiny_model_dir, tmp_path, monkeypatch):
    rows = archive_rows(50)
    write_csv(tmp_path / "in.csv", rows)
    classify_file(
        str(tmp_path / "in.csv"), str(tmp_path / "clean.csv"), model_dir=str(tiny_model_dir), chunk_size=6
    )

    options = {"model_dir": str(tiny_model_dir), "chunk_size": 6}
    killed_run(monkeypatch, tmp_path / "in.csv", tmp_path / "out.csv", 4, **options)
    assert not (tmp_path / "out.csv").exists()  # never a half-written output
    assert json.loads((tmp_path / "out.csv.checkpoint.json").read_text())["done_chunks"] == 3

    summary = classify_file(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), resume=True, **options)
    assert summary.resumed_chunks == 3 and summary.rows == 50
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()
    assert not (tmp_path / "out.csv.checkpoint.json").exists()
    assert not (tmp_path / "out.csv.parts").exists()


def test_resume_with_another_input_starts_afresh(tiny_model_dir, tmp_path, monkeypatch, caplog):
    write_csv(tmp_path / "in.csv", archive_rows(20))
    (tmp_path / "out.csv.checkpoint.json").write_text(json.dumps({"fingerprint": "other", "done_chunks": 2}))
    summary = classify_file(
        str(tmp_path / "in.csv"),
        str(tmp_path / "out.csv"),
        model_dir=str(tiny_model_dir),
        chunk_size=6,
        resume=True,
    )
    assert summary.resumed_chunks == 0 and summary.rows == 20
    assert "starting afresh" in caplog.text


@pytest.mark.slow
def test_two_worker_processes_give_the_same_output(tiny_model_dir, tmp_path):
    write_csv(tmp_path / "in.csv", archive_rows(200))
    classify_file(
        str(tmp_path / "in.csv"), str(tmp_path / "one.csv"), model_dir=str(tiny_model_dir), chunk_size=25
    )
    classify_file(
        str(tmp_path / "in.csv"),
        str(tmp_path / "two.csv"),
        model_dir=str(tiny_model_dir),
        chunk_size=25,
        jobs=2,
    )
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


@pytest.mark.slow
def test_parquet_chunks_go_to_the_workers_as_arrow_and_give_the_same_output(tiny_model_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = archive_rows(120)
    rows[7]["text"] = None  # a missing text is reported by the worker that makes the rows
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    tables = []
    for jobs in (1, 2):
        summary = classify_file(
            str(tmp_path / "in.parquet"),
            str(tmp_path / f"out{jobs}.parquet"),
            model_dir=str(tiny_model_dir),
            chunk_size=25,
            jobs=jobs,
        )
        assert summary.rows == 120 and summary.skipped == {"missing 'text'": 1}
        tables.append(pq.read_table(tmp_path / f"out{jobs}.parquet"))
    assert tables[0].equals(tables[1])
    assert tables[1].column("id").to_pylist() == [r["id"] for r in rows]
    with pytest.raises(DataError, match=r"no column 'body'.*'text'.*--text-column"):
        classify_file(
            str(tmp_path / "in.parquet"),
            str(tmp_path / "x.parquet"),
            model_dir=str(tiny_model_dir),
            text_column="body",
            jobs=2,
        )


@pytest.mark.slow
def test_killed_process_resumes_without_losing_or_duplicating_rows(tiny_model_dir, tmp_path):
    rows = archive_rows(3000)
    for i, r in enumerate(rows):
        r["text"] = f"{r['text']} số {i}"  # all distinct: no shortcut through the cache
    write_csv(tmp_path / "in.csv", rows)
    command = [
        sys.executable,
        "-m",
        "vnfeedback",
        "classify",
        str(tmp_path / "in.csv"),
        "-o",
        str(tmp_path / "out.csv"),
        "--model",
        str(tiny_model_dir),
        "--chunk-size",
        "100",
        "--no-progress",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    parts = tmp_path / "out.csv.parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("part-*.csv")) if parts.exists() else []) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "out.csv").exists()
    done = json.loads((tmp_path / "out.csv.checkpoint.json").read_text())["done_chunks"]
    assert 3 <= done < 30
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert "taken from the checkpoint" in finished.stderr
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as handle:
        ids = [r["id"] for r in csv.DictReader(handle)]
    assert ids == [r["id"] for r in rows]
    os.remove(tmp_path / "in.csv")


def test_resume_with_a_lost_part_file_starts_afresh(tiny_model_dir, tmp_path, monkeypatch, caplog):
    write_csv(tmp_path / "in.csv", archive_rows(50))
    options = {"model_dir": str(tiny_model_dir), "chunk_size": 6}
    classify_file(str(tmp_path / "in.csv"), str(tmp_path / "clean.csv"), **options)
    killed_run(monkeypatch, tmp_path / "in.csv", tmp_path / "out.csv", 5, **options)
    (tmp_path / "out.csv.parts" / "part-000002.csv").unlink()  # the checkpoint counts four parts
    summary = classify_file(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), resume=True, **options)
    assert "part file(s) the checkpoint counts are gone" in caplog.text
    assert summary.resumed_chunks == 0 and summary.rows == 50  # the lost rows were classified again
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_excel_csv_with_a_byte_order_mark_reads_its_first_column(tiny_model_dir, tmp_path):
    from vnfeedback.tables import read_records

    rows = [{"text": r["text"], "id": r["id"]} for r in archive_rows(5)]
    write_csv(tmp_path / "plain.csv", rows)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "plain.csv").read_bytes())
    summary = classify_file(
        str(tmp_path / "bom.csv"), str(tmp_path / "out.jsonl"), model_dir=str(tiny_model_dir), id_column="id"
    )
    out = read_jsonl(tmp_path / "out.jsonl")
    assert summary.rows == 5 and [r["text"] for r in out] == [r["text"] for r in rows]
    assert list(out[0])[:2] == ["text", "id"]  # no "\ufefftext"
    assert read_records(tmp_path / "bom.csv") == rows  # train, evaluate and audit read it too


def test_csv_output_writes_lists_of_numbers_and_nulls_as_json(tiny_model_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = {"id": [1, 2], "tags": [[1, 2], []], "names": [["a", None], ["b"]], "text": ["mạng yếu", "cước"]}
    pq.write_table(pa.table(table), tmp_path / "in.parquet")
    classify_file(str(tmp_path / "in.parquet"), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir))
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as handle:
        out = list(csv.DictReader(handle))
    assert [(r["tags"], r["names"]) for r in out] == [("[1, 2]", '["a", null]'), ("", "b")]


def _strict_json(line: str) -> dict:
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_jsonl_output_is_strict_json_when_values_are_not_finite(tiny_model_dir, tmp_path, capsys):
    # 1e400 (read as inf) and NaN were written back as Infinity/NaN, which JSON readers refuse
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": 1, "text": "mạng yếu", "score": 1e400, "parts": [NaN, 2.5], "meta": {"x": -Infinity}}\n'
        '{"id": 2, "text": "cước đắt", "score": 0.5}\n',
        encoding="utf-8",
    )
    classify_file(str(source), str(tmp_path / "out.jsonl"), model_dir=str(tiny_model_dir))
    classify_file(str(source), "-", model_dir=str(tiny_model_dir), output_format="jsonl")
    for text in ((tmp_path / "out.jsonl").read_text(encoding="utf-8"), capsys.readouterr().out):
        rows = [_strict_json(line) for line in text.splitlines()]
        assert [(r["score"], r.get("parts"), r.get("meta")) for r in rows] == [
            (None, [None, 2.5], {"x": None}),
            (0.5, None, None),
        ]
        assert all(r["intent"] for r in rows)


def _gzip_of(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


BROKEN_INPUTS = {  # file name -> (bytes, what the error must say)
    "cut.csv.gz": (
        _gzip_of(b"id,text\n" + "".join(f"{i},mạng yếu {i * 7919 % 10007}\n" for i in range(3000)).encode())[
            :5000
        ],
        "could not be read to the end",
    ),
    "plain.csv.gz": (b"id,text\n1,a\n", "not gzip-compressed; remove .gz"),
    "zipped.csv": (_gzip_of(b"id,text\n1,a\n"), "gzip-compressed; add .gz"),
    "utf16.csv": ("id,text\n1,mạng yếu\n".encode("utf-16"), "save it as UTF-8"),
    "twice.csv": (b"id,text,text\n1,a,b\n", "names column(s) ['text'] more than once"),
    "quote.csv": (b'id,text\n1,ok\n2,"mang ""yeu"" qua, that\n3,x\n4,"ok"\n5,y\n', "starting on line 3"),
    "open.csv": (b'id,text\n1,ok\n2,"mang yeu\n3,x\n', "starting on line 3"),
    "csv.parquet": (b"id,text\n1,a\n", "not a readable Parquet file"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_INPUTS))
def test_damaged_or_mislabelled_inputs_give_a_clear_error(tiny_model_dir, tmp_path, name):
    from vnfeedback.tables import read_records

    data, says = BROKEN_INPUTS[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match=re.escape(says)):
        classify_file(str(tmp_path / name), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir))
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(DataError, match=re.escape(says) if "line" not in says else "not valid CSV"):
        read_records(tmp_path / name)


def test_a_parquet_file_named_csv_is_named_as_such(tiny_model_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["mạng yếu"]}), tmp_path / "really.csv")
    with pytest.raises(DataError, match=r"is a Parquet file; name it \.parquet"):
        classify_file(str(tmp_path / "really.csv"), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir))


def test_more_jobs_than_cpus_are_capped(tiny_model_dir, tmp_path, monkeypatch, caplog):
    write_csv(tmp_path / "in.csv", archive_rows(12))
    monkeypatch.setattr(batch.os, "cpu_count", lambda: 1)
    import joblib

    monkeypatch.setattr(joblib, "Parallel", None)  # one CPU: the in-process path, no worker pool
    summary = classify_file(
        str(tmp_path / "in.csv"),
        str(tmp_path / "out.csv"),
        model_dir=str(tiny_model_dir),
        jobs=999,
        chunk_size=5,
    )
    assert summary.rows == 12 and "jobs=999 is more than the 1 CPU(s)" in caplog.text


def test_empty_input_to_stdout_and_a_directory_as_output_are_refused(tiny_model_dir, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="holds no rows"):
        classify_file(str(tmp_path / "empty.csv"), "-", model_dir=str(tiny_model_dir), output_format="jsonl")
    write_csv(tmp_path / "in.csv", archive_rows(3))
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(ParameterError, match="is a directory"):
        classify_file(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), model_dir=str(tiny_model_dir))


def _rows_with_late_keys(n=30):
    rows = archive_rows(n)
    rows[9]["rating"] = 4  # keys the first chunk (rows 0-7) does not have
    rows[20]["extra"] = {"a": 1}
    rows[21]["rating"] = 2
    return rows


@pytest.mark.parametrize("out_name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_keys_first_seen_after_the_first_chunk_get_their_own_columns(tiny_model_dir, tmp_path, out_name):
    rows = _rows_with_late_keys()
    write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / out_name
    summary = classify_file(str(tmp_path / "in.jsonl"), str(out), model_dir=str(tiny_model_dir), chunk_size=8)
    assert summary.rows == 30
    if out_name.endswith(".parquet"):
        pq = pytest.importorskip("pyarrow.parquet")
        table = pq.read_table(out)
        names, got = table.schema.names, table.to_pylist()
        empty = None
    else:
        with gzip.open(out, "rt") if out_name.endswith(".gz") else open(out) as handle:
            reader = csv.DictReader(handle)
            names, got = reader.fieldnames, list(reader)
        empty = ""
    assert names[:6] == ["id", "date", "channel", "text", "rating", "extra"]
    assert names[6] == "complaint_type" and names[-1] == "error"
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["rating"] for r in got] == [str(r["rating"]) if "rating" in r else empty for r in rows]
    assert got[20]["extra"] == '{"a": 1}' and got[19]["extra"] == empty


@pytest.mark.slow
def test_late_keys_survive_workers_and_a_resume(tiny_model_dir, tmp_path, monkeypatch):
    write_jsonl(tmp_path / "in.jsonl", _rows_with_late_keys())
    options = {"model_dir": str(tiny_model_dir), "chunk_size": 8}
    classify_file(str(tmp_path / "in.jsonl"), str(tmp_path / "clean.csv"), **options)
    killed_run(monkeypatch, tmp_path / "in.jsonl", tmp_path / "out.csv", 4, **options)
    classify_file(str(tmp_path / "in.jsonl"), str(tmp_path / "out.csv"), resume=True, **options)
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()
    assert b",rating,extra," in (tmp_path / "clean.csv").read_bytes().splitlines()[0]
    classify_file(str(tmp_path / "in.jsonl"), str(tmp_path / "two.csv"), jobs=2, **options)
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()


def test_late_keys_on_standard_output_are_named_in_a_warning(tiny_model_dir, tmp_path, capsys, caplog):
    write_jsonl(tmp_path / "in.jsonl", _rows_with_late_keys())
    classify_file(
        str(tmp_path / "in.jsonl"), "-", model_dir=str(tiny_model_dir), chunk_size=8, output_format="csv"
    )
    assert len(capsys.readouterr().out.splitlines()) == 31
    assert "rows from row 9 on have key(s) ['rating']" in caplog.text
    assert "rows from row 17 on have key(s) ['extra']" in caplog.text


def test_an_input_column_named_like_a_score_goes_into_parquet(tiny_model_dir, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [dict(r, nps_score=i) for i, r in enumerate(archive_rows(5))]
    write_jsonl(tmp_path / "in.jsonl", rows)  # crashed: "_score" columns were taken for added ones
    classify_file(str(tmp_path / "in.jsonl"), str(tmp_path / "out.parquet"), model_dir=str(tiny_model_dir))
    assert pq.read_table(tmp_path / "out.parquet").column("nps_score").to_pylist() == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
