"""Statistics of the project's own telecom corpus (``data/telecom``), quoted by its data card.

Variety is measured, not claimed: the share of comment pairs whose character-3-gram count vectors
have cosine similarity above 0.8 (near-duplicates, a sign of templating), the vocabulary size
(distinct syllables), and the label, channel and style distributions of each split.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from . import report

CORPUS = Path(__file__).resolve().parent.parent / "data" / "telecom"


def load(split: str) -> list[dict]:
    path = CORPUS / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def near_duplicate_share(texts: list[str], threshold: float = 0.8) -> tuple[float, int]:
    """Share (and count) of pairs with char-3-gram cosine similarity above ``threshold``."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    X = normalize(
        CountVectorizer(analyzer="char", ngram_range=(3, 3), lowercase=True)
        .fit_transform(texts)
        .astype(np.float32)
    )
    count, n = 0, X.shape[0]
    for start in range(0, n, 1000):  # blocks keep memory small
        block = (X[start : start + 1000] @ X.T).toarray()
        for i in range(block.shape[0]):
            row = block[i, start + i + 1 :]
            count += int((row > threshold).sum())
    pairs = n * (n - 1) // 2
    return count / pairs, count


def has_diacritics(text: str) -> bool:
    return any(
        ch in "đĐ" or (ord(ch) > 127 and ch.isalpha() and unicodedata.decomposition(ch)) for ch in text
    )


def run() -> None:
    splits = {name: load(name) for name in ("train", "test")}
    rows = splits["train"] + splits["test"]
    texts = [r["text"] for r in rows]
    share, count = near_duplicate_share(texts)
    syllables = Counter(w for t in texts for w in t.lower().split())
    words = [len(t.split()) for t in texts]
    complaints = [r for r in rows if r["intent"] == "complaint"]
    summary = {
        "comments": len(rows),
        "train": len(splits["train"]),
        "test": len(splits["test"]),
        "near_duplicate_pairs": count,
        "near_duplicate_share": share,
        "vocabulary_size": len(syllables),
        "words_per_comment": {
            "mean": round(float(np.mean(words)), 1),
            "median": int(np.median(words)),
            "min": int(min(words)),
            "max": int(max(words)),
        },
        "without_diacritics_share": round(float(np.mean([not has_diacritics(t) for t in texts])), 3),
        "complaints_with_2plus_types": round(
            float(np.mean([len(r["complaint_type"]) > 1 for r in complaints])), 3
        ),
    }
    dist = {}
    for key in ("complaint_type", "product_area", "intent", "channel", "style"):
        counts = Counter()
        for r in rows:
            value = r.get(key)
            counts.update(value if isinstance(value, list) else [value])
        dist[key] = dict(counts.most_common())
    body = report.table(
        ["measure", "value"],
        [
            [
                "comments (train / test)",
                f"{len(rows):,} ({len(splits['train']):,} / {len(splits['test']):,})",
            ],
            [
                "pairs with char-3-gram cosine > 0.8",
                f"{count:,} of {len(rows) * (len(rows) - 1) // 2:,} ({share:.3%})",
            ],
            ["vocabulary (distinct lower-cased tokens)", f"{len(syllables):,}"],
            [
                "words per comment (mean / median / max)",
                f"{summary['words_per_comment']['mean']} / {summary['words_per_comment']['median']} / "
                f"{summary['words_per_comment']['max']}",
            ],
            ["comments without any diacritics", f"{summary['without_diacritics_share']:.1%}"],
            ["complaints with 2+ complaint types", f"{summary['complaints_with_2plus_types']:.1%}"],
        ],
    )
    for key, counts in dist.items():
        body += f"\n\n**{key}**: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    report.write(
        "corpus",
        "The telecom corpus: variety and label distribution",
        body,
        {"summary": summary, "distribution": dist},
    )
    write_review(rows)


def write_review(rows: list[dict]) -> None:
    """Summarise the review: how many rows were re-read and what changed (data/telecom/review_log.jsonl)."""
    log = load("review_log")
    reviewed = sum(bool(r.get("reviewed")) for r in rows)
    changed_rows = len({entry["id"] for entry in log})
    by_field = Counter(entry["field"] for entry in log)
    moves = Counter()
    for entry in log:
        if entry["field"] == "complaint_type":
            for label in sorted(set(entry["after"]) - set(entry["before"])):
                moves[f"complaint_type +{label}"] += 1
            for label in sorted(set(entry["before"]) - set(entry["after"])):
                moves[f"complaint_type -{label}"] += 1
        else:
            moves[f"{entry['field']}: {entry['before']} -> {entry['after']}"] += 1
    fields = ", ".join(f"{field} {n}" for field, n in by_field.most_common())
    body = (
        f"{reviewed:,} of {len(rows):,} comments were flagged by out-of-fold disagreement and re-read; "
        f"{changed_rows:,} of them had a label changed ({fields}). Every change, with its reason, is in "
        f"`data/telecom/review_log.jsonl`.\n\n"
    )
    body += report.table(["most frequent changes", "rows"], [[k, v] for k, v in moves.most_common(12)])
    report.write(
        "review",
        "The telecom corpus: review",
        body,
        {
            "reviewed": reviewed,
            "changed_rows": changed_rows,
            "by_field": dict(by_field),
            "changes": dict(moves),
        },
    )
