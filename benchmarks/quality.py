"""vnfeedback's defaults against peers, on public Vietnamese feedback corpora (official test splits).

Systems, all trained on the same train split and scored once on the test split:

- ``vnfeedback``: ``vnfeedback.train`` with default settings (what a user gets);
- ``naive``: TF-IDF word 1-2-grams + char_wb 2-5-grams, ``LinearSVC(C=0.5)``, no Vietnamese
  processing (one-vs-rest for multi-label);
- ``fasttext``: fastText supervised (``fasttext-wheel``), word bigrams, 25 epochs, 200k hash buckets
  (the default 2M buckets make a ~0.8 GB model per task); ``-loss ova`` for
  multi-label (threshold 0.5);
- ``underthesea_core``: the Rust TF-IDF + linear SVM ``TextClassifier`` behind underthesea's own
  ``classify`` (one binary classifier per label for multi-label).

Each (system, corpus) pair runs in its own process so its peak RSS is its own.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import datasets, report

SYSTEMS = ("vnfeedback", "naive", "fasttext", "underthesea_core")


def corpora(root: Path) -> dict[str, dict]:
    """Corpus -> train/test rows and tasks."""
    bank_train, bank_test = datasets.bank(root, "train"), datasets.bank(root, "test")
    return {
        "UIT-VSFC": {
            "train": datasets.vsfc(root, "train"),
            "test": datasets.vsfc(root, "test"),
            "tasks": {"sentiment": "single", "topic": "single"},
        },
        "UIT-ViSFD": {
            "train": datasets.visfd(root, "train"),
            "test": datasets.visfd(root, "test"),
            "tasks": {"aspects": "multilabel"},
        },
        "UTS2017_Bank": {
            "train": bank_train,
            "test": bank_test,
            "tasks": {"first_aspect": "single", "aspects": "multilabel", "polarity": "single"},
        },
    }


# --- scoring -----------------------------------------------------------------------------------


def score_single(true: list[str], pred: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": accuracy_score(true, pred),
        "weighted_f1": f1_score(true, pred, average="weighted", zero_division=0),
        "macro_f1": f1_score(true, pred, average="macro", zero_division=0),
    }


def score_multi(true: list[list[str]], pred: list[list[str]], labels: list[str]) -> dict:
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer(classes=labels).fit([labels])
    with np.errstate(all="ignore"):
        Y, P = binarizer.transform(true), binarizer.transform([[p for p in x if p in labels] for x in pred])
    return {
        "micro_f1": f1_score(Y, P, average="micro", zero_division=0),
        "macro_f1": f1_score(Y, P, average="macro", zero_division=0),
    }


# --- the systems: fit(rows, tasks, directory) -> predict(texts) -> {task: predictions} ------------


def fit_vnfeedback(rows, tasks, directory):
    import vnfeedback

    model = vnfeedback.train(rows, tasks=tasks)
    model.save(directory / "model")

    def predict(texts):
        predictions = model.predict_many(texts)
        return {task: [p.labels[task] for p in predictions] for task in tasks}

    return predict


def fit_naive(rows, tasks, directory):
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    texts = [r["text"] for r in rows]
    models = {}
    for task, kind in tasks.items():
        features = FeatureUnion(
            [
                ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
            ]
        )
        if kind == "single":
            pipeline = make_pipeline(features, LinearSVC(C=0.5)).fit(texts, [r[task] for r in rows])
            models[task] = (pipeline, None)
        else:
            binarizer = MultiLabelBinarizer().fit([r[task] for r in rows])
            pipeline = make_pipeline(features, OneVsRestClassifier(LinearSVC(C=0.5)))
            pipeline.fit(texts, binarizer.transform([r[task] for r in rows]))
            models[task] = (pipeline, binarizer)
    # our own file: to measure its size on disk, and for the speed test's fresh processes
    joblib.dump(models, directory / "naive.joblib")
    return _naive_predictor(models)


def _naive_predictor(models):
    def predict(texts):
        out = {}
        for task, (pipeline, binarizer) in models.items():
            predicted = pipeline.predict(texts)
            out[task] = (
                list(predicted)
                if binarizer is None
                else [list(x) for x in binarizer.inverse_transform(predicted)]
            )
        return out

    return predict


def fit_fasttext(rows, tasks, directory):
    import fasttext

    def clean(text):
        return " ".join(text.lower().split())

    models = {}
    for task, kind in tasks.items():
        path = directory / f"{task}.train.txt"
        with open(path, "w", encoding="utf-8") as handle:
            for r in rows:
                labels = r[task] if kind == "multilabel" else [r[task]]
                prefix = " ".join(f"__label__{label}" for label in labels) or "__label__NONE"
                handle.write(f"{prefix} {clean(r['text'])}\n")
        options = {
            "epoch": 25,
            "lr": 0.5,
            "wordNgrams": 2,
            "dim": 100,
            "bucket": 200_000,
            "verbose": 0,
            "thread": 1,
            "seed": 0,
        }
        if kind == "multilabel":
            options["loss"] = "ova"
        model = fasttext.train_supervised(input=str(path), **options)
        model.save_model(str(directory / f"{task}.bin"))
        models[task] = (model, kind)

    def predict(texts):
        out = {}
        for task, (model, kind) in models.items():
            lines = [clean(t) for t in texts]
            if kind == "single":
                out[task] = [(_ft_predict(model, x, 1, 0.0)[0] or [""])[0] for x in lines]
            else:
                out[task] = [
                    [label for label in _ft_predict(model, x, -1, 0.5)[0] if label != "NONE"] for x in lines
                ]
        return out

    return predict


def _ft_predict(model, line, k, threshold):
    """fastText's predict without its numpy-2-incompatible wrapper."""
    pairs = model.f.predict(line, k, threshold, "strict")
    return [label.replace("__label__", "") for _, label in pairs], [p for p, _ in pairs]


def fit_underthesea_core(rows, tasks, directory):
    from underthesea_core import TextClassifier

    texts = [r["text"] for r in rows]
    models = {}
    for task, kind in tasks.items():
        if kind == "single":
            model = TextClassifier()
            model.fit(texts, [r[task] for r in rows])
            model.save(str(directory / f"{task}.bin"))
            models[task] = (kind, model)
        else:
            labels = sorted({label for r in rows for label in r[task]})
            per_label = {}
            for label in labels:
                model = TextClassifier()
                model.fit(texts, ["yes" if label in r[task] else "no" for r in rows])
                model.save(str(directory / f"{task}.{label}.bin"))
                per_label[label] = model
            models[task] = (kind, per_label)

    def predict(texts):
        out = {}
        for task, (kind, model) in models.items():
            if kind == "single":
                out[task] = list(model.predict_batch(texts))
            else:
                votes = {label: m.predict_batch(texts) for label, m in model.items()}
                out[task] = [
                    [label for label in votes if votes[label][i] == "yes"] for i in range(len(texts))
                ]
        return out

    return predict


FITTERS = {
    "vnfeedback": fit_vnfeedback,
    "naive": fit_naive,
    "fasttext": fit_fasttext,
    "underthesea_core": fit_underthesea_core,
}


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".txt"))


def run_one(system: str, corpus: dict, queue) -> None:
    """Train, time and score one system on one corpus (runs in its own process)."""
    try:
        directory = Path(tempfile.mkdtemp(prefix=f"bench-{system}-"))
        started = time.perf_counter()
        predict = FITTERS[system](corpus["train"], corpus["tasks"], directory)
        train_seconds = time.perf_counter() - started
        texts = [r["text"] for r in corpus["test"]]
        started = time.perf_counter()
        predicted = predict(texts)
        predict_seconds = time.perf_counter() - started
        metrics = {}
        for task, kind in corpus["tasks"].items():
            true = [r[task] for r in corpus["test"]]
            if kind == "single":
                metrics[task] = score_single(true, predicted[task])
            else:
                labels = sorted({label for r in corpus["train"] for label in r[task]})
                metrics[task] = score_multi(true, predicted[task], labels)
        result = {
            "metrics": metrics,
            "train_seconds": train_seconds,
            "predictions_per_second": len(texts) / predict_seconds,
            "size_bytes": _size(directory),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        shutil.rmtree(directory, ignore_errors=True)
        queue.put(result)
    except Exception as exc:  # a peer that is missing or fails is reported, not fatal
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def run(*, data_dir: str | None, systems: tuple[str, ...] = SYSTEMS) -> dict:
    root = datasets.data_dir(data_dir)
    context = multiprocessing.get_context("fork")
    results: dict[str, dict[str, dict]] = {}
    for corpus_name, corpus in corpora(root).items():
        for system in systems:
            queue = context.Queue()
            process = context.Process(target=run_one, args=(system, corpus, queue))
            process.start()
            result = queue.get()
            process.join()
            results.setdefault(corpus_name, {})[system] = result
            print(
                f"{corpus_name:13s} {system:17s} "
                f"{result.get('error') or {t: {k: round(v, 4) for k, v in m.items()} for t, m in result['metrics'].items()}}",
                flush=True,
            )
    results["_speed"] = speed_against_naive(corpora(root)["UIT-VSFC"])
    bank_test = datasets.bank(root, "test")
    results["_bank_test_support"] = dict(Counter(row["first_aspect"] for row in bank_test).most_common())
    write_report(results)
    return results


def first_pass(system: str, directory: Path) -> float:
    """Seconds of the first prediction over ``directory/texts.json`` by a model just loaded in this
    process: the bundled telecom model (``vnfeedback``), or the naive reference ``speed_against_naive``
    saved in ``directory``. Run in a fresh process (``python -m benchmarks.quality --first-pass``)."""
    import json

    texts = json.loads((directory / "texts.json").read_text(encoding="utf-8"))
    if system == "naive":
        import joblib

        predict = _naive_predictor(joblib.load(directory / "naive.joblib"))  # written by this run
    else:
        import vnfeedback

        predict = vnfeedback.load().predict_many
    started = time.perf_counter()
    predict(texts)
    return time.perf_counter() - started


def _fresh_first_pass(system: str, directory: Path) -> float:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--first-pass", system, str(directory)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def speed_against_naive(corpus: dict) -> dict:
    """The issue's speed target: the bundled telecom model (three tasks) against the naive reference
    (one task), both predicting the same real comments in one process, in the same run.

    The first pass is that of a freshly started process that has just loaded the model (what a
    short job sees: the bundled model fills its per-process caches then), timed for each system
    in five fresh processes, alternating, and the median taken. Later passes are the steady state
    of a long archive job, in this process. The naive reference has no caches.
    """
    import json

    import vnfeedback
    from vnfeedback import features

    directory = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    naive = fit_naive(corpus["train"], {"sentiment": "single"}, directory)
    texts = [r["text"] for r in corpus["test"]] + [r["text"] for r in corpus["train"]]
    (directory / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")

    def rate(predict) -> float:
        started = time.perf_counter()
        predict(texts)
        return len(texts) / (time.perf_counter() - started)

    runs: dict[str, list[float]] = {"naive": [], "vnfeedback": []}
    for _ in range(5):
        for system in runs:
            runs[system].append(_fresh_first_pass(system, directory))
    naive_first = len(texts) / float(np.median(runs["naive"]))
    ours_first = len(texts) / float(np.median(runs["vnfeedback"]))
    model = vnfeedback.load()
    model.predict_many(texts)  # the caches filled, as after the first pass
    # steady state: the best of three alternating passes each, so that a noisy moment on the machine
    # does not decide the ratio
    ours_second = naive_second = 0.0
    for _ in range(3):
        ours_second = max(ours_second, rate(model.predict_many))
        naive_second = max(naive_second, rate(naive))
    # the steady state without the C loop (what an install without a C compiler runs); not its
    # first pass, which would find the module-level caches warm
    numpy_second = None
    if features._speedups is not None:
        speedups, features._speedups = features._speedups, None
        try:
            model.features_._reader = None  # its tables were built for the C loop
            rate(model.predict_many)
            numpy_second = max(rate(model.predict_many) for _ in range(3))
        finally:
            features._speedups = speedups
            model.features_._reader = None
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "c_extension": features._speedups is not None,
        "numpy_path_second_pass_per_second": numpy_second,
        "texts": len(texts),
        "first_pass_seconds": runs,
        "naive_one_task_per_second": naive_first,
        "bundled_three_tasks_per_second": ours_first,
        "ratio": ours_first / naive_first,
        "naive_second_pass_per_second": naive_second,
        "bundled_second_pass_per_second": ours_second,
        "ratio_second_pass": ours_second / naive_second,
    }


HEADLINE = [  # (corpus, task, metric, published best classical, published neural, target)
    ("UIT-VSFC", "sentiment", "weighted_f1", "MaxEnt 87.94", "BiLSTM 92.0", 92.0),
    ("UIT-VSFC", "topic", "weighted_f1", "MaxEnt 84.03", "BiLSTM 89.6", 89.6),
    ("UIT-ViSFD", "aspects", "micro_f1", "—", "BiLSTM+fastText 84.48", 86.0),
    ("UTS2017_Bank", "first_aspect", "macro_f1", "36.18 (re-split)", "—", 50.0),
]


def write_report(results: dict) -> None:
    def value(corpus, system, task, metric):
        r = results.get(corpus, {}).get(system, {})
        return f"{r['metrics'][task][metric] * 100:.1f}" if "metrics" in r else "n/a"

    rows = []
    for corpus, task, metric, classical, neural, target in HEADLINE:
        ours = value(corpus, "vnfeedback", task, metric)
        met = "yes" if ours != "n/a" and float(ours) >= target else "no"
        rows.append(
            [
                f"{corpus} {task} ({metric.replace('_', ' ')})",
                classical,
                neural,
                *[value(corpus, s, task, metric) for s in SYSTEMS],
                f"≥ {target}",
                met,
            ]
        )
    body = report.table(
        ["corpus, task (metric)", "published classical", "published neural", *SYSTEMS, "target", "met"], rows
    )
    detail = []
    for corpus, systems in results.items():
        if corpus.startswith("_"):
            continue
        for system, r in systems.items():
            if "error" in r:
                detail.append([corpus, system, r["error"], "", "", "", ""])
                continue
            scores = "; ".join(
                f"{task}: "
                + ", ".join(
                    f"{k.replace('_f1', '-F1').replace('accuracy', 'acc')} {v * 100:.1f}"
                    for k, v in m.items()
                )
                for task, m in r["metrics"].items()
            )
            detail.append(
                [
                    corpus,
                    system,
                    scores,
                    f"{r['train_seconds']:.1f}",
                    f"{r['predictions_per_second']:,.0f}",
                    f"{r['size_bytes'] / 1e6:.1f}",
                    f"{r['peak_rss_mb']:,.0f}",
                ]
            )
    body += (
        "\n\nAll scores on the official test split (UTS2017_Bank: `first_aspect` is the first label of each "
        "line as a single-label task, as in underthesea's report; `polarity` is that label's polarity)."
    )
    support = results.get("_bank_test_support")
    if support:
        smallest, small = min(support.values()), sum(n < 10 for n in support.values())
        body += (
            f" How far to trust UTS2017_Bank `first_aspect` macro-F1: it averages the F1 of the "
            f"{len(support)} labels of the test split (and of any other label a system predicts), {small} of "
            f"them with fewer than 10 test comments, the smallest with {smallest}; finding one comment of "
            f"that label raises its F1 from 0 to {2 / (smallest + 1):.2f}, the macro-F1 by up to "
            f"{200 / (smallest + 1) / len(support):.1f} points."
        )
    body += "\n\n"
    body += report.table(
        [
            "corpus",
            "system",
            "test scores",
            "train s",
            "predictions/s (batch, 1 process)",
            "model MB",
            "peak RSS MB",
        ],
        detail,
    )
    speed = results.get("_speed")
    if speed:
        body += (
            f"\n\nSpeed target (batch, one process, same run, {speed['texts']:,} UIT-VSFC comments): in a "
            f"freshly started process that has just loaded it (median of five such processes each, "
            f"alternating), the bundled telecom model predicts three tasks at "
            f"{speed['bundled_three_tasks_per_second']:,.0f} comments/s, the naive reference one task at "
            f"{speed['naive_one_task_per_second']:,.0f}/s: ratio {speed['ratio']:.2f}x (target ≥ 4x). "
            f"Later passes over the same comments (caches filled, "
            f"the steady state of a long archive job; best of three each): {speed['bundled_second_pass_per_second']:,.0f} vs "
            f"{speed['naive_second_pass_per_second']:,.0f}/s, ratio {speed['ratio_second_pass']:.2f}x."
            + (
                " The same later passes without the C loop (what an install without a C compiler runs): "
                f"{speed['numpy_path_second_pass_per_second']:,.0f}/s, "
                f"{speed['numpy_path_second_pass_per_second'] / speed['naive_second_pass_per_second']:.2f}x."
                if speed.get("numpy_path_second_pass_per_second")
                else " (Measured without the C loop: this install has no built extension.)"
            )
        )
    report.write(
        "quality", "Accuracy and speed on public Vietnamese feedback corpora", body, {"results": results}
    )


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:2] == ["--first-pass"]:  # one fresh process of ``speed_against_naive``
        print(first_pass(sys.argv[2], Path(sys.argv[3])))
    else:
        run(data_dir=os.environ.get("VNFEEDBACK_DATASETS"))
