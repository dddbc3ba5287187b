"""The bundled telecom model on its own test split and on two sets written apart from the corpus.

The test split (``data/telecom/test.jsonl``) comes from the same writers as the training split. The
sample archive (``examples/sample_archive_labels.jsonl``) and the outside set
(``data/telecom/outside.jsonl``, four more writers in voices the corpus lacks, never trained on) were
written separately, in other styles, and are the better guess of how the model does on comments it
was not built around.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import vnfeedback
from vnfeedback import features, tokenize
from vnfeedback.normalize import strip_accents

from . import report
from .corpus import BATCHES, TASKS, _labels, _macro_f1, label_rules, load, writing_batch

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"complaint_type": 0.88, "product_area": 0.88, "intent": 0.85}  # macro-F1 on the test split


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def learning_curve(held_out: list[list[dict]], options: dict) -> list:
    """Macro-F1 per task on each set of ``held_out`` when the bundled model's recipe (``options`` on
    top of the label rules) is trained on 1/4 ... 4/4 of the training split: how much more written
    data could be expected to give."""
    import random
    import warnings

    rows, rules = load("train"), label_rules()
    curve = []
    for quarter in (1, 2, 3, 4):
        part = random.Random(0).sample(rows, len(rows) * quarter // 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
            model = vnfeedback.train(part, tasks=TASKS, label_rules=rules, random_state=0, **options)
        scores = [model.evaluate(rows_)["tasks"] for rows_ in held_out]
        curve.append((len(part), {t: tuple(on[t]["macro_f1"] for on in scores) for t in TASKS}))
    return curve


def unseen_writers(options: dict) -> dict[str, float]:
    """5-fold cross-validation of the bundled recipe with each writer's comments kept in one fold
    (``cv_groups="writer"``): macro-F1 per task on writers the folds never trained on."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(
            load("train"),
            tasks=TASKS,
            label_rules=label_rules(),
            random_state=0,
            cv_groups="writer",
            **options,
        )
    return {task: m["macro_f1"] for task, m in model.card["cv_metrics"]["tasks"].items()}


def run() -> None:
    model = vnfeedback.load()
    card = model.card
    test = load("test")
    archive = _rows(ROOT / "examples" / "sample_archive_labels.jsonl")
    outside = _rows(ROOT / "data" / "telecom" / "outside.jsonl")
    on_test, on_archive, on_outside = model.evaluate(test), model.evaluate(archive), model.evaluate(outside)
    cv = card["cv_metrics"]["tasks"]
    rows = []
    for task, goal in GOALS.items():
        t, a, o, c = on_test["tasks"][task], on_archive["tasks"][task], on_outside["tasks"][task], cv[task]
        extra = "micro_f1" if t["kind"] == "multilabel" else "accuracy"
        shown = f"{t['macro_f1']:.3f}"
        if t["macro_f1"] < goal <= float(shown):  # three places would round a miss up to the goal
            shown = f"{t['macro_f1']:.4f}"
        rows.append(
            [
                task,
                f"{c['macro_f1']:.3f}",
                shown,
                f"{t[extra]:.3f} ({extra.replace('_', '-')})",
                f"{a['macro_f1']:.3f}",
                f"{o['macro_f1']:.3f}",
                f"≥ {goal}",
                "yes" if t["macro_f1"] >= goal else "no",
            ]
        )
    body = report.table(
        [
            "task",
            "5-fold CV macro-F1 (train)",
            "test macro-F1",
            "test other",
            "sample archive macro-F1",
            "outside set macro-F1",
            "goal (test)",
            "met",
        ],
        rows,
    )
    body += (
        f"\n\nModel `{card.get('name')}` trained on {card['training_data']['rows']:,} comments; test split "
        f"{on_test['n']:,} comments, sample archive {on_archive['n']:,}, outside set {on_outside['n']:,}. "
        f"Needs review: {on_test['needs_review_share']:.1%} of the test split, "
        f"{on_archive['needs_review_share']:.1%} of the archive, {on_outside['needs_review_share']:.1%} of the "
        "outside set."
    )
    # the outside set's two annotations (its writer's, and a blind annotator's before adjudication):
    # how far a model can be expected to agree with its final labels
    agree = {
        t: _macro_f1(
            [_labels(r["annotations"]["writer"], t) for r in outside],
            [_labels(r["annotations"]["blind"], t) for r in outside],
        )
        for t in GOALS
    }
    outside_writers = len({r["writer"] for r in outside})
    body += (
        f" The outside set ({outside_writers} writers, never trained on) was labelled by its writers and again blind; "
        "the two annotations agree at macro-F1 "
        + " / ".join(f"{agree[t]:.3f}" for t in GOALS)
        + " (the disagreements were adjudicated)."
    )
    batches = {name: [r for r in test if writing_batch(r) == name] for name in reversed(BATCHES.values())}
    by_batch = {name: model.evaluate(rows_)["tasks"] for name, rows_ in batches.items() if rows_}
    if len(by_batch) > 1:  # the batches were written for different ends (see the data card): say so
        body += "\n\nTest split by writing batch (macro-F1):\n\n"
        body += report.table(
            ["test rows", "comments", *GOALS],
            [
                [name, f"{len(batches[name]):,}", *(f"{scores[t]['macro_f1']:.3f}" for t in GOALS)]
                for name, scores in by_batch.items()
            ],
        )
    # the training options of the bundled model's command, from its card (the rest are defaults)
    params = card["params"]
    recipe = {
        k: params[k] for k in ("augment_stripped", "nb_weighting", "negation", "char_weight") if k in params
    }
    grouped = unseen_writers(recipe)
    writers = len({r["writer"] for r in load("train")})
    body += (
        f'\n\nCross-validation that keeps each writer\'s comments in one fold (`cv_groups="writer"`, '
        f"{writers} writers) scores every comment with a model that never read its writer; macro-F1, "
        "shuffled folds (the card's) -> folds by writer:\n\n"
    )
    body += report.table(
        ["training split", *GOALS],
        [["5-fold CV", *(f"{cv[t]['macro_f1']:.3f} -> {grouped[t]:.3f}" for t in GOALS)]],
    )
    # comments typed without diacritics (about a third of real ones): the same comments, stripped
    stripped = {
        name: model.evaluate([dict(r, text=strip_accents(r["text"])) for r in rows_])["tasks"]
        for name, rows_ in (("test split", test), ("sample archive", archive), ("outside set", outside))
    }
    written = {
        "test split": on_test["tasks"],
        "sample archive": on_archive["tasks"],
        "outside set": on_outside["tasks"],
    }
    body += "\n\nThe same comments typed without diacritics (every accent stripped), macro-F1 as written -> stripped:\n\n"
    body += report.table(
        ["comments", *GOALS],
        [
            [name, *(f"{written[name][t]['macro_f1']:.3f} -> {scores[t]['macro_f1']:.3f}" for t in GOALS)]
            for name, scores in stripped.items()
        ],
    )
    per_label = []
    for task in GOALS:
        for label, m in on_test["tasks"][task]["per_label"].items():
            arch = on_archive["tasks"][task]["per_label"].get(label, {})
            out = on_outside["tasks"][task]["per_label"].get(label, {})
            per_label.append(
                [
                    task,
                    label,
                    m["precision"],
                    m["recall"],
                    m["f1"],
                    m["support"],
                    arch.get("f1", "n/a"),
                    arch.get("support", 0),
                    out.get("f1", "n/a"),
                    out.get("support", 0),
                ]
            )
    body += "\n\n<details><summary>Per label (test split; sample archive and outside set F1)</summary>\n\n"
    body += report.table(
        [
            "task",
            "label",
            "precision",
            "recall",
            "F1",
            "support",
            "archive F1",
            "archive support",
            "outside F1",
            "outside support",
        ],
        per_label,
    )
    body += "\n\n</details>"

    curve = learning_curve([test, archive, outside], recipe)
    body += (
        "\n\nLearning curve: the same training on a random part of the training split (seed 0), "
        "macro-F1 on the test split / the sample archive / the outside set.\n\n"
    )
    body += report.table(
        ["training comments", *GOALS],
        [[f"{n:,}", *(" / ".join(f"{f1:.3f}" for f1 in scores[t]) for t in GOALS)] for n, scores in curve],
    )

    texts = [r["text"] for r in load("train")] + [r["text"] for r in test]
    tokenize._segment_piece.cache_clear()
    features._char_grams.cache_clear()
    model = vnfeedback.load()  # a fresh copy: its per-process tables start empty
    started = time.perf_counter()
    model.predict_many(texts)
    speed = len(texts) / (time.perf_counter() - started)
    latencies = []
    for text in texts[:2000]:  # one comment per call, as a service does
        started = time.perf_counter()
        model.predict(text)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    median_ms, p99_ms = 1000 * latencies[len(latencies) // 2], 1000 * latencies[int(len(latencies) * 0.99)]
    body += (
        f"\n\nSpeed: `predict_many` on the {len(texts):,} corpus comments, cold caches, one process, "
        f"three tasks: {speed:,.0f} comments/s. `predict` one comment per call (2,000 calls): median "
        f"{median_ms:.2f} ms, 99th percentile {p99_ms:.2f} ms."
    )
    report.write(
        "bundled",
        "The bundled telecom model",
        body,
        {
            "test": on_test,
            "archive": on_archive,
            "cv": cv,
            "cv_by_writer": grouped,
            "comments_per_second": round(speed),
            "learning_curve": curve,
            "test_by_batch": {name: {t: v[t]["macro_f1"] for t in GOALS} for name, v in by_batch.items()},
            "stripped": {name: {t: v[t]["macro_f1"] for t in GOALS} for name, v in stripped.items()},
            "predict_median_ms": round(median_ms, 3),
            "predict_p99_ms": round(p99_ms, 3),
        },
    )
