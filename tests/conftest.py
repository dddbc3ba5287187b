"""Shared fixtures: small real-looking Vietnamese feedback and a tiny model trained on it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import vnfeedback

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
TASKS = {"complaint_type": "multilabel", "product_area": "single", "intent": "single"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def small_rows() -> list[dict]:
    return read_jsonl(FIXTURES / "feedback_small.jsonl")


@pytest.fixture(scope="session")
def tiny_model(small_rows):
    """A model trained on the 40-row fixture: fast, and enough to test the machinery."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)  # labels with < 10 examples
        return vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, random_state=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny"
    tiny_model.save(path)
    return path
