"""Spark: classify_dataframe on a real local[2] SparkSession gives what the local CLI gives."""

import os
import sys

import pytest

from .test_batch import archive_rows, write_csv

if os.environ.get("VNFEEDBACK_REQUIRE_SPARK") != "1":
    pytest.importorskip("pyspark", reason="install vnfeedback[spark] to run the Spark tests")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers must run this interpreter (pyarrow, vnfeedback)
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # local[2,3]: two cores, and a failed task is tried up to 3 times (as on a cluster)
    session = (
        SparkSession.builder.master("local[2,3]")
        .appName("vnfeedback-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_gives_the_same_rows_and_labels_as_the_cli(spark, tiny_model_dir, tmp_path):
    from vnfeedback.batch import classify_file
    from vnfeedback.spark import classify_dataframe

    rows = archive_rows(120)
    rows[7]["text"] = None
    write_csv(tmp_path / "in.csv", [dict(r, text=r["text"] or "") for r in rows])
    classify_file(str(tmp_path / "in.csv"), str(tmp_path / "local.jsonl"), model_dir=str(tiny_model_dir))

    df = spark.createDataFrame(
        rows, schema="id string, date string, channel string, text string"
    ).repartition(3)
    classify_dataframe(df, str(tiny_model_dir), text_col="text").write.mode("overwrite").parquet(
        str(tmp_path / "out")
    )
    result = {r["id"]: r for r in (x.asDict() for x in spark.read.parquet(str(tmp_path / "out")).collect())}

    import json

    local = {
        r["id"]: r
        for r in map(json.loads, (tmp_path / "local.jsonl").read_text(encoding="utf-8").splitlines())
    }
    assert sorted(result) == sorted(r["id"] for r in rows)  # every row once: none lost, none duplicated
    for key, row in result.items():
        if key == rows[7]["id"]:
            assert row["error"] == "missing 'text'" and row["complaint_type"] == []
            continue
        assert list(row["complaint_type"]) == local[key]["complaint_type"]
        assert row["intent"] == local[key]["intent"] and row["product_area"] == local[key]["product_area"]
        assert abs(row["intent_score"] - local[key]["intent_score"]) < 1e-9
        assert row["channel"] == "fanpage"


def test_missing_text_column_is_refused_on_the_driver(spark, tiny_model_dir):
    from vnfeedback import DataError
    from vnfeedback.spark import classify_dataframe

    df = spark.createDataFrame([("1", "mạng yếu")], schema="id string, comment string")
    with pytest.raises(DataError, match="no column 'text' in the DataFrame"):
        classify_dataframe(df, str(tiny_model_dir))


def test_rows_survive_task_retries(spark, tiny_model_dir, tmp_path):
    """A task that fails once is retried by Spark; the pure function gives each row exactly once."""
    from vnfeedback.spark import classify_dataframe

    rows = archive_rows(60)
    df = spark.createDataFrame(
        rows, schema="id string, date string, channel string, text string"
    ).repartition(4)
    marker = tmp_path / "failed-once"

    def fail_once(batches):
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("injected failure")
        yield from batches

    flaky = df.mapInPandas(fail_once, schema=df.schema)
    ids = [r["id"] for r in classify_dataframe(flaky, str(tiny_model_dir)).collect()]
    assert marker.exists()
    assert sorted(ids) == sorted(r["id"] for r in rows)
