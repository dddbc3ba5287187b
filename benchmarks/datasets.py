"""Loaders for the public Vietnamese feedback corpora in ``../shared/datasets`` (never copied here).

Each loader returns ``(train_rows, test_rows)`` (and dev where the corpus has one) as lists of dicts
with a ``text`` column and one column per task. The folder is found from ``--data-dir``, the
``VNFEEDBACK_DATASETS`` environment variable, or ``../shared/datasets`` beside the project.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHERE = (
    "The benchmark corpora (UIT-VSFC, UIT-ViSFD, UTS2017_Bank) are not part of this repository. "
    "Put them under ../shared/datasets (see its README for the sources: the UIT NLP Group for UIT-VSFC "
    "and UIT-ViSFD, undertheseanlp/resources for UTS2017_Bank), or point --data-dir / "
    "VNFEEDBACK_DATASETS at a folder that has them."
)


class DatasetsMissing(Exception):
    """The corpora folder or one corpus is not there."""


def data_dir(given: str | None = None) -> Path:
    path = Path(given or os.environ.get("VNFEEDBACK_DATASETS") or ROOT.parent / "shared" / "datasets")
    if not path.is_dir():
        raise DatasetsMissing(f"no datasets folder at {path}. {WHERE}")
    return path


def _need(path: Path) -> Path:
    if not path.exists():
        raise DatasetsMissing(f"missing {path}. {WHERE}")
    return path


def _lines(path: Path) -> list[str]:
    return _need(path).read_text(encoding="utf-8").splitlines()


SENTIMENTS = {"0": "negative", "1": "neutral", "2": "positive"}
TOPICS = {"0": "lecturer", "1": "training_program", "2": "facility", "3": "others"}


def vsfc(root: Path, split: str) -> list[dict]:
    """UIT-VSFC: students' feedback; tasks ``sentiment`` and ``topic`` (single-label)."""
    folder = root / "UIT-VSFC" / split
    texts = _lines(folder / "sents.txt")
    sentiments = _lines(folder / "sentiments.txt")
    topics = _lines(folder / "topics.txt")
    if not len(texts) == len(sentiments) == len(topics):
        raise DatasetsMissing(f"{folder}: sents/sentiments/topics have different lengths")
    return [
        {"text": t, "sentiment": SENTIMENTS[s.strip()], "topic": TOPICS[c.strip()]}
        for t, s, c in zip(texts, sentiments, topics, strict=False)
    ]


_VISFD_LABEL = re.compile(r"\{([^#}]+)(?:#(\w+))?\}")


def visfd(root: Path, split: str) -> list[dict]:
    """UIT-ViSFD: smartphone reviews; task ``aspects`` (multi-label, polarity dropped)."""
    name = {"train": "Train.csv", "dev": "Dev.csv", "test": "Test.csv"}[split]
    rows = []
    with open(_need(root / "UIT-ViSFD" / name), encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            aspects = sorted({m.group(1) for m in _VISFD_LABEL.finditer(row["label"])})
            rows.append({"text": row["comment"], "aspects": aspects})
    return rows


_BANK_LABEL = re.compile(r"__label__(\S+)")


def bank(root: Path, split: str) -> list[dict]:
    """UTS2017_Bank: bank customers' comments; ``aspects`` (multi-label) and ``polarity``.

    ``polarity`` is the polarity of the comment's first aspect label, the document-level label the
    corpus gives (1.5% of lines carry more than one aspect).
    """
    rows = []
    for line in _lines(root / "UTS2017_Bank" / "sentiment_aspect" / f"{split}.txt"):
        labels = _BANK_LABEL.findall(line)
        text = _BANK_LABEL.sub("", line).strip()
        if not labels or not text:
            continue
        aspects = sorted({label.split("#")[0] for label in labels})
        polarity = labels[0].split("#")[1] if "#" in labels[0] else "neutral"
        rows.append(
            {"text": text, "aspects": aspects, "first_aspect": labels[0].split("#")[0], "polarity": polarity}
        )
    return rows
