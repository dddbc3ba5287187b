"""The benchmark loaders read the public corpora as their READMEs describe (skipped without them)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import datasets

try:
    ROOT = datasets.data_dir()
except datasets.DatasetsMissing as exc:
    pytest.skip(f"public corpora not here: {exc}", allow_module_level=True)


def test_vsfc_splits_have_the_published_sizes_and_labels():
    train, test = datasets.vsfc(ROOT, "train"), datasets.vsfc(ROOT, "test")
    assert (len(train), len(test)) == (11426, 3166)
    assert {r["sentiment"] for r in train} == {"negative", "neutral", "positive"}
    assert {r["topic"] for r in train} == {"lecturer", "training_program", "facility", "others"}


def test_visfd_aspects_drop_polarity_and_keep_others():
    rows = datasets.visfd(ROOT, "train")
    assert len(rows) == 7786
    aspects = {a for r in rows for a in r["aspects"]}
    assert {"BATTERY", "CAMERA", "OTHERS", "SER&ACC"} <= aspects and not any("#" in a for a in aspects)


def test_bank_first_aspect_is_among_the_aspects():
    rows = datasets.bank(ROOT, "train")
    assert len(rows) > 1900
    assert all(r["first_aspect"] in r["aspects"] for r in rows)
    assert {r["polarity"] for r in rows} <= {"positive", "negative", "neutral"}
    assert sum(len(r["aspects"]) > 1 for r in rows) / len(rows) < 0.05
