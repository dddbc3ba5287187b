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

#: Writing batches, told apart by the prefix of ``writer``: the first batch; the second, written on the
#: boundaries a first model confused; the third and fourth, written in voices the corpus lacked; the
#: fifth, against the cues and readings the model still got wrong; the sixth, for wider wording; the
#: seventh, on types mentioned but not complained about; the eighth, in six more voices, all of it
#: training data (see the data card).
BATCHES = {
    "r8-": "eighth batch",
    "r7-": "seventh batch",
    "r6-": "sixth batch",
    "r5-": "fifth batch",
    "r4-": "fourth batch",
    "r3-": "third batch",
    "r2-": "second batch",
    "": "first batch",
}


def writing_batch(row: dict) -> str:
    """The name of the writing batch a corpus row belongs to."""
    writer = row.get("writer", "")
    return next(name for prefix, name in BATCHES.items() if writer.startswith(prefix))


#: The bundled model's tasks; its label rules are ``label_rules()``.
TASKS = {"complaint_type": "multilabel", "product_area": "single", "intent": "single"}


def load(split: str) -> list[dict]:
    """The rows of one file of the corpus (``train``, ``test``, ``review_log``, ...)."""
    path = CORPUS / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def label_rules() -> dict:
    """The label rules the bundled model is trained with (``data/telecom/label_rules.json``)."""
    return json.loads((CORPUS / "label_rules.json").read_text(encoding="utf-8"))


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


FIELDS = ("complaint_type", "product_area", "intent")


def _labels(row: dict, field: str) -> set:
    value = row[field]
    return set(value) if isinstance(value, list) else {value}


def _macro_f1(reference: list[set], other: list[set]) -> float:
    """Macro-F1 of ``other`` against ``reference`` over the labels either uses."""
    labels = set().union(*reference, *other)
    scores = []
    for label in sorted(labels):
        tp = sum(label in a and label in b for a, b in zip(reference, other, strict=True))
        fp = sum(label not in a and label in b for a, b in zip(reference, other, strict=True))
        fn = sum(label in a and label not in b for a, b in zip(reference, other, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def first_annotation(rows: list[dict], log: list[dict]) -> dict[str, dict]:
    """Each row's labels before round 2 (the final labels with round 2's changes undone)."""
    first = {r["id"]: {f: r[f] for f in FIELDS} for r in rows}
    for entry in reversed(log):  # undo round 3, then round 2: the earliest "before" is what remains
        if entry.get("round", 1) >= 2 and entry["id"] in first:
            first[entry["id"]][entry["field"]] = entry["before"]
    return first


def _kappa(a: list[bool], b: list[bool]) -> tuple[float, float]:
    """Share of agreement and Cohen's kappa of two yes/no annotations."""
    n = len(a)
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / n
    p_a, p_b = sum(a) / n, sum(b) / n
    expected = p_a * p_b + (1 - p_a) * (1 - p_b)
    return agree, (agree - expected) / (1 - expected)


def reread_summary(
    reread: list[dict], final: dict[str, dict], log: list[dict], first: dict, second: dict
) -> tuple[str, dict]:
    """Round 3: the targeted re-read of customer_service by two blind readers per comment."""
    n = len(reread)
    agree, kappa = _kappa([r["reader_a"] for r in reread], [r["reader_b"] for r in reread])
    before = [r["id"] for r in reread if r["id"] in second]
    agree2, kappa2 = _kappa(
        ["customer_service" in first[i]["complaint_type"] for i in before],
        ["customer_service" in second[i]["complaint_type"] for i in before],
    )
    controls = [r for r in reread if r["control"]]
    control_yes = sum(r["reader_a"] and r["reader_b"] for r in controls)
    changed = [e for e in log if e.get("round") == 3]
    added = sum("customer_service" in e["after"] for e in changed)
    kept = [
        r["id"]
        for r in reread
        if r["reader_a"] == r["reader_b"]
        and r["reader_a"] != ("customer_service" in final[r["id"]]["complaint_type"])
    ]
    text = (
        f"**Round 3 (customer_service re-read under rule A13).** {n - len(controls):,} comments that mention "
        "support (hotline, staff, stores, technicians, complaints made) or carried customer_service in "
        f"either annotation, and {len(controls)} other complaints, questions and suggestions as a control, "
        "were read by two readers each, blind to every label, deciding only whether the comment complains "
        f"about customer service under rule A13. The readers agreed on {agree:.1%} (Cohen's kappa "
        f"{kappa:.3f}; on the same comments the first and the blind second annotation had agreed on customer_service "
        f"{agree2:.1%}, kappa {kappa2:.3f}); {control_yes} of the {len(controls)} controls were found to carry it by both. Where "
        f"both readers disagreed with the label, it was changed: {len(changed)} rows ({added} added, "
        f"{len(changed) - added} removed); {len(kept)} were left as they were because removing "
        "customer_service would leave a complaint without a type.\n\n"
    )
    return text, {
        "rows": n,
        "agreement": agree,
        "kappa": kappa,
        "round2_agreement": agree2,
        "round2_kappa": kappa2,
        "changed": len(changed),
        "kept": kept,
    }


def write_review(rows: list[dict]) -> None:
    """Summarise both review rounds (data/telecom/review_log.jsonl) and the agreement between the
    first annotation and the blind second one (data/telecom/second_annotation.jsonl)."""
    log = load("review_log")
    archive_path = CORPUS.parent.parent / "examples" / "sample_archive_labels.jsonl"
    archive = [
        json.loads(line) for line in archive_path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    second = {r["id"]: r for r in load("second_annotation")}
    split_of = {r["id"]: r["split"] for r in second.values()}
    everything = rows + archive
    first = first_annotation(everything, log)
    first_batch = [r for r in rows if writing_batch(r) == "first batch"]  # round 1 read these
    later = {r["id"]: writing_batch(r) for r in rows if writing_batch(r) != "first batch"}
    reviewed = sum(bool(r.get("reviewed")) for r in first_batch)
    body = ""
    for round_, title in (
        (1, "Round 1 (flagged rows re-read)"),
        (2, "Round 2 (blind second annotation, adjudicated)"),
    ):
        entries = [e for e in log if e.get("round", 1) == round_]
        by_field = Counter(e["field"] for e in entries)
        fields = ", ".join(f"{field} {n}" for field, n in by_field.most_common())
        body += f"**{title}.** "
        if round_ == 1:
            body += (
                f"{reviewed:,} of the first batch's {len(first_batch):,} comments were flagged by out-of-fold "
                "disagreement and re-read; "
            )
        else:
            disagreed = sum(
                any(_labels(first[i], f) != _labels(second[i], f) for f in FIELDS) for i in second
            )
            body += (
                f"All {len(second):,} comments (train, test and the sample archive; for the later batches, "
                "the writers' own labels are the first annotation) were labelled again by "
                f"annotators who saw only the text and the standard; the {disagreed:,} where the two "
                "annotations differed were settled by adjudicators who saw both, unmarked and in random order; "
            )
        body += f"{len({e['id'] for e in entries}):,} rows had a label changed ({fields}).\n\n"
    final = {r["id"]: r for r in everything}
    round3, round3_json = reread_summary(load("customer_service_reread"), final, log, first, second)
    body += round3
    agreement = []
    parts = [
        (
            f"{part}, first batch" if part != "archive" else part,
            [i for i in second if split_of[i] == part and i not in later],
        )
        for part in ("train", "test", "archive")
    ]
    for name in reversed(BATCHES.values()):
        ids = [i for i in second if later.get(i) == name]
        if ids:
            where = " and ".join(sorted({split_of[i] for i in ids}, reverse=True))  # "train and test"
            parts.append((f"{name} ({where})", ids))
    for part, ids in parts:
        row = [part, f"{len(ids):,}"]
        for field in FIELDS:
            first_labels = [_labels(first[i], field) for i in ids]
            row.append(f"{_macro_f1(first_labels, [_labels(second[i], field) for i in ids]):.3f}")
        row.append(
            f"{sum(_labels(first[i], 'complaint_type') == _labels(second[i], 'complaint_type') for i in ids) / len(ids):.1%}"
        )
        row.append(
            f"{sum(all(_labels(final[i], f) == _labels(first[i], f) for f in FIELDS) for i in ids) / len(ids):.1%}"
        )
        agreement.append(row)
    body += (
        "Agreement between the first annotation and the blind second one (macro-F1 of one against the "
        "other; the ceiling a model can be expected to approach):\n\n"
    )
    body += report.table(
        [
            "split",
            "comments",
            "complaint_type",
            "product_area",
            "intent",
            "same complaint-type set",
            "final = first, all tasks",
        ],
        agreement,
    )
    moves = Counter()
    for entry in log:
        if entry["field"] == "complaint_type":
            for label in sorted(set(entry["after"]) - set(entry["before"])):
                moves[f"complaint_type +{label}"] += 1
            for label in sorted(set(entry["before"]) - set(entry["after"])):
                moves[f"complaint_type -{label}"] += 1
        else:
            moves[f"{entry['field']}: {entry['before']} -> {entry['after']}"] += 1
    body += (
        "\n\nEvery change, with its round and reason, is in `data/telecom/review_log.jsonl`; the second "
        "annotation itself is in `data/telecom/second_annotation.jsonl`.\n\n"
    )
    body += report.table(
        ["most frequent changes, all rounds", "rows"], [[k, v] for k, v in moves.most_common(12)]
    )
    report.write(
        "review",
        "The telecom corpus: review and agreement",
        body,
        {
            "reviewed_round1": reviewed,
            "changed_rows": {
                str(r): len({e["id"] for e in log if e.get("round", 1) == r}) for r in (1, 2, 3)
            },
            "round3": round3_json,
            "agreement": agreement,
            "changes": dict(moves),
        },
    )
