"""The telecom data files: the sets the bundled model is judged on apart from the corpus stay apart."""

import pytest

import vnfeedback

from .conftest import ROOT, read_jsonl

TELECOM = ROOT / "data" / "telecom"
APART = {
    "outside set": TELECOM / "outside.jsonl",
    "sample archive": ROOT / "examples" / "sample_archive_labels.jsonl",
}


def _key(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("name", sorted(APART))
def test_a_set_written_apart_shares_no_comment_with_the_corpus(name):
    corpus = {_key(r["text"]) for split in ("train", "test") for r in read_jsonl(TELECOM / f"{split}.jsonl")}
    rows = read_jsonl(APART[name])
    shared = [r for r in rows if _key(r["text"]) in corpus]
    # a few comments of up to four syllables ("hay", "up", "Nhân viên dễ thương") recur, as in any
    # archive; nothing longer
    assert rows and len(shared) <= 0.02 * len(rows), (
        f"{name}: {[r['id'] for r in shared][:10]} also in the corpus"
    )
    assert all(len(r["text"].split()) <= 4 for r in shared), f"{name}: {[r['text'] for r in shared]}"


def test_the_outside_set_uses_the_bundled_labels_and_rule_1():
    model = vnfeedback.load()
    labels = {task: set(m.labels) for task, m in model.models_.items()}
    rows = read_jsonl(APART["outside set"])
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r["complaint_type"]) <= labels["complaint_type"], r["id"]
        assert r["product_area"] in labels["product_area"] and r["intent"] in labels["intent"], r["id"]
        # rule 1: a complaint has a type, praise and other have none
        assert bool(r["complaint_type"]) or r["intent"] != "complaint", r["id"]
        assert not r["complaint_type"] or r["intent"] not in ("praise", "other"), r["id"]
        assert set(r["annotations"]) == {"writer", "blind"}, r["id"]
