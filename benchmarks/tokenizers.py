"""Syllable n-grams (the default) against underthesea word segmentation, on real corpora.

For each tokenizer: train ``vnfeedback.train`` with default settings on UIT-VSFC (sentiment and
topic in one model) and UIT-ViSFD (aspects, multi-label), score the official test splits, and time
``predict_many`` on real comments with cold caches.
"""

from __future__ import annotations

import time

import vnfeedback
from vnfeedback import features, tokenize

from . import datasets, report

TOKENIZERS = ("syllable", "underthesea")


def _cold_caches() -> None:
    tokenize._segment_piece.cache_clear()
    features._char_grams.cache_clear()


def run(*, data_dir: str | None, speed_texts: int) -> None:
    root = datasets.data_dir(data_dir)
    vsfc_train, vsfc_test = datasets.vsfc(root, "train"), datasets.vsfc(root, "test")
    visfd_train, visfd_test = datasets.visfd(root, "train"), datasets.visfd(root, "test")
    pool = [r["text"] for r in vsfc_train + datasets.vsfc(root, "dev") + vsfc_test]
    pool += [r["text"] for r in visfd_train + visfd_test]
    speed_pool = list(dict.fromkeys(pool))[:speed_texts]

    rows, data = [], {}
    for tokenizer in TOKENIZERS:
        _cold_caches()
        started = time.perf_counter()
        vsfc_model = vnfeedback.train(
            vsfc_train, tasks={"sentiment": "single", "topic": "single"}, tokenizer=tokenizer
        )
        vsfc_seconds = time.perf_counter() - started
        vsfc_metrics = vsfc_model.evaluate(vsfc_test)["tasks"]
        _cold_caches()
        visfd_model = vnfeedback.train(visfd_train, tasks={"aspects": "multilabel"}, tokenizer=tokenizer)
        visfd_metrics = visfd_model.evaluate(visfd_test)["tasks"]["aspects"]
        _cold_caches()
        started = time.perf_counter()
        vsfc_model.predict_many(speed_pool)
        speed = len(speed_pool) / (time.perf_counter() - started)
        data[tokenizer] = {
            "vsfc_sentiment": vsfc_metrics["sentiment"],
            "vsfc_topic": vsfc_metrics["topic"],
            "visfd_aspects": {k: v for k, v in visfd_metrics.items() if k != "per_label"},
            "vsfc_train_seconds": round(vsfc_seconds, 1),
            "comments_per_second": round(speed),
            "speed_texts": len(speed_pool),
        }
        rows.append(
            [
                tokenizer,
                vsfc_metrics["sentiment"]["weighted_f1"] * 100,
                vsfc_metrics["sentiment"]["macro_f1"] * 100,
                vsfc_metrics["topic"]["weighted_f1"] * 100,
                vsfc_metrics["topic"]["macro_f1"] * 100,
                visfd_metrics["micro_f1"] * 100,
                visfd_metrics["macro_f1"] * 100,
                round(vsfc_seconds, 1),
                f"{speed:,.0f}",
            ]
        )
    ratio = data["syllable"]["comments_per_second"] / data["underthesea"]["comments_per_second"]
    body = report.table(
        [
            "tokenizer",
            "VSFC sentiment wF1",
            "VSFC sentiment mF1",
            "VSFC topic wF1",
            "VSFC topic mF1",
            "ViSFD aspects micro-F1",
            "ViSFD aspects macro-F1",
            "VSFC train s",
            "predict_many comments/s",
        ],
        rows,
    )
    body += (
        f"\n\nTest splits, default `vnfeedback.train` settings except the tokenizer. Speed: "
        f"`predict_many` on {len(speed_pool):,} distinct real comments (UIT-VSFC + UIT-ViSFD) with cold "
        f"caches, one process, two tasks. The syllable path is {ratio:.1f}x faster."
    )
    report.write("tokenizers", "Tokenizers: syllable n-grams vs underthesea word segmentation", body, data)
