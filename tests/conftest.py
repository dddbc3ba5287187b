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


def _fork_while_held(lock, child) -> int:
    """Fork while another thread holds ``lock``; the child runs ``child()`` (True: exit 0) under a
    20 s alarm, so a child that hangs on the inherited lock dies instead. Returns the wait status."""
    import os
    import signal
    import threading

    held, release = threading.Event(), threading.Event()

    def hold():
        with lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)
            os._exit(0 if child() else 3)
        return os.waitpid(pid, 0)[1]
    finally:
        release.set()
        thread.join()


@pytest.fixture
def fork_while_held():
    return _fork_while_held
