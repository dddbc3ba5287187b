"""The classifier API: predict, predict_many, explain, train validation, hostile inputs, threads."""

import json
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import vnfeedback
from vnfeedback import DataError, ParameterError, TextTypeError, VnfeedbackWarning

TASKS = {"complaint_type": "multilabel", "product_area": "single", "intent": "single"}

SAMPLES = [
    "Mạng 4G chập chờn, gọi tổng đài chờ 20 phút",
    "mang yeu qua ko vao dc fb",
    "Cảm ơn nhân viên đã hỗ trợ nhiệt tình",
    "bị trừ 15k vô lý",
    "",
    "😡😡😡",
    "Cho hỏi gói cước nào rẻ?",
]


def test_prediction_has_every_task_and_every_label_scored(tiny_model):
    p = tiny_model.predict(SAMPLES[0])
    assert set(p.labels) == set(TASKS)
    assert isinstance(p.labels["complaint_type"], list)
    assert isinstance(p.labels["product_area"], str)
    for task, labels in tiny_model.labels.items():
        assert set(p.scores[task]) == set(labels)
        assert all(0.0 <= s <= 1.0 for s in p.scores[task].values())
    assert np.isclose(sum(p.scores["intent"].values()), 1.0)


def test_multilabel_labels_are_those_over_their_threshold(tiny_model):
    p = tiny_model.predict(SAMPLES[0])
    model = tiny_model.models_["complaint_type"]
    over = {
        label
        for k, label in enumerate(model.labels)
        if p.scores["complaint_type"][label] >= model.thresholds[k]
    }
    assert set(p.labels["complaint_type"]) == over


def test_to_dict_is_json_serialisable(tiny_model):
    d = tiny_model.predict(SAMPLES[0]).to_dict()
    assert json.loads(json.dumps(d, ensure_ascii=False)) == d


def test_batch_predictions_read_like_plain_ones(tiny_model):
    """predict_many fills the score dicts only when read: every way of reading them must agree."""
    import dataclasses
    import pickle

    from vnfeedback import Prediction

    many = tiny_model.predict_many(SAMPLES)
    for p in many:
        for task in TASKS:  # before the dicts exist, from the probability rows
            assert p.max_score(task) == max(p.scores[task].values())
    for p in tiny_model.predict_many(SAMPLES):
        plain = Prediction(
            p.labels, {t: dict(s) for t, s in p.scores.items()}, p.needs_review, p.review_reasons
        )
        assert p == plain and repr(p) == repr(plain)
        assert p.scores is p.scores  # built once
        assert dataclasses.asdict(p) == dataclasses.asdict(plain)
        assert dataclasses.replace(p, needs_review=True).scores == plain.scores
        assert p.max_score("intent") == max(p.scores["intent"].values())
    fresh = tiny_model.predict_many(SAMPLES[:2])
    assert pickle.loads(pickle.dumps(fresh)) == tiny_model.predict_many(SAMPLES[:2])
    assert pickle.loads(pickle.dumps(fresh[0])).scores == tiny_model.predict(SAMPLES[0]).scores
    with pytest.raises(AttributeError, match="cannot assign"):
        fresh[0].labels = {}
    # the dataclass's generated hash failed inside, on a dict field: say what is unhashable
    with pytest.raises(TypeError, match="unhashable type: 'Prediction'"):
        hash(fresh[0])
    with pytest.raises(ParameterError, match="task must be one of"):
        fresh[1].max_score("no_such_task")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        fresh[1].nothing  # noqa: B018


def test_predict_many_matches_predict(tiny_model):
    many = tiny_model.predict_many(SAMPLES + SAMPLES[:2], batch_size=3)
    assert many == [tiny_model.predict(t) for t in SAMPLES + SAMPLES[:2]]


def test_predict_many_makes_no_cyclic_garbage(tiny_model):
    """predict_many pauses the cyclic collector on the claim that predictions hold no cycles."""
    import gc

    texts = [f"{t} {i}" for i in range(300) for t in SAMPLES]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        predictions = tiny_model.predict_many(texts, batch_size=500)
        [p.to_dict() for p in predictions]  # the lazy scores too
        del predictions
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()


def test_predict_many_pauses_the_collector_and_restores_it(tiny_model, monkeypatch):
    import gc

    seen = []
    real = tiny_model._predict_batch

    def spy(batch):
        seen.append(gc.isenabled())
        if batch[0] == "fail":
            raise RuntimeError("boom")
        return real(batch)

    monkeypatch.setattr(tiny_model, "_predict_batch", spy)
    many = [f"mạng yếu {i}" for i in range(gc.get_threshold()[0])]
    assert gc.isenabled()
    tiny_model.predict_many(many, batch_size=300)
    assert seen == [False, False, False] and gc.isenabled()
    seen.clear()
    tiny_model.predict(SAMPLES[0])  # a short call leaves it alone
    assert seen == [True] and gc.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        tiny_model.predict_many(["fail", *many])
    assert gc.isenabled()  # back on after an error
    gc.disable()
    try:  # off before: stays off
        tiny_model.predict_many(many)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _columns_from_predictions(model, texts):
    predictions = model.predict_many(texts)
    columns = {}
    for task in model.tasks:
        columns[task] = [p.labels[task] for p in predictions]
        columns[f"{task}_score"] = [round(p.max_score(task), 4) for p in predictions]
    columns["needs_review"] = [p.needs_review for p in predictions]
    return columns


@pytest.mark.slow
def test_batch_columns_equal_what_the_predictions_say():
    # the batch job's columns come from arrays, without Prediction objects: they must agree with them
    import csv
    from pathlib import Path

    model = vnfeedback.load()
    root = Path(__file__).resolve().parent.parent
    with open(root / "examples" / "sample_archive.csv", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    with open(root / "data" / "telecom" / "test.jsonl", encoding="utf-8") as handle:
        texts += [json.loads(line)["text"] for line in handle]
    texts += ["...", "😡😡", "", "ok", texts[0], texts[5].upper(), *texts[:50]]  # no words; repeats
    columns = model._predict_columns(texts, batch_size=700)
    assert columns == _columns_from_predictions(model, texts)
    tasks = ["complaint_type", "product_area", "intent"]
    assert list(columns) == [name for task in tasks for name in (task, f"{task}_score")] + ["needs_review"]
    assert 0 < sum(columns["needs_review"]) < len(texts)  # both kinds are there to compare
    assert any(len(labels) > 1 for labels in columns["complaint_type"])


def test_one_product_for_all_tasks_equals_each_task_alone(tiny_model):
    X, _ = tiny_model.features_.transform_flagged(SAMPLES)

    def probas():
        return tiny_model._probas(tiny_model.features_.scores_flagged(SAMPLES, tiny_model._coef_blocks())[0])

    together = probas()
    for task, model in tiny_model.models_.items():
        assert np.array_equal(together[task], model.proba(X))  # to the last bit
    model = tiny_model.models_["intent"]
    saved = model.coef
    try:  # coefficients replaced after the first product: the blocks follow them
        model.coef = np.asfortranarray(-saved)
        assert np.array_equal(probas()["intent"], model.proba(X))
    finally:
        model.coef = saved
    assert np.array_equal(probas()["intent"], together["intent"])


def test_a_model_holds_its_coefficients_once_and_predicts_from_them_in_place(tiny_model, tiny_model_dir):
    """Every task's ``coef`` is a view of one stacked array, which the C loop reads in place: no
    copy of all the weights is made at the first batch (48 MB for the bundled model), in a trained,
    a loaded or an unpickled model (what a worker process gets)."""
    import pickle

    n_features = len(tiny_model.features_.feature_names_)
    n_outputs = sum(len(m.labels) for m in tiny_model.models_.values())
    expected = tiny_model.predict_many(SAMPLES)
    for model in (tiny_model, vnfeedback.load(tiny_model_dir), pickle.loads(pickle.dumps(tiny_model))):
        (block,) = model._coef_blocks()
        assert block.flags.c_contiguous and block.dtype == np.float64
        assert block.shape == (n_features, n_outputs)
        for task in model.models_.values():
            assert np.shares_memory(block, task.coef)
        assert model.predict_many(SAMPLES) == expected


def test_predictions_are_the_same_with_and_without_the_c_loop(tiny_model, monkeypatch):
    from vnfeedback import features

    texts = SAMPLES + [t + " nhưng cước vẫn bị trừ" for t in SAMPLES]
    with_c = tiny_model.predict_many(texts)
    monkeypatch.setattr(features, "_speedups", None)
    tiny_model.features_._reader = None  # built for the C loop
    try:
        assert tiny_model.predict_many(texts) == with_c  # scores compared to the last bit
    finally:
        tiny_model.features_._reader = None


@pytest.mark.parametrize("text", ["", "   \n\t ", "😡😡😡", "123 456", "https://abc.vn"])
def test_text_with_nothing_to_read_needs_review(tiny_model, text):
    p = tiny_model.predict(text)
    assert p.needs_review
    assert any("nothing to read" in r for r in p.review_reasons)


def test_review_reasons_name_the_task_the_number_and_the_labels(tiny_model):
    # each reason follows the rule of the module docstring, with the numbers that broke it
    import re

    reasons = [
        r
        for p in tiny_model.predict_many([f"{t} {i}" for i in range(20) for t in SAMPLES])
        for r in p.review_reasons
    ]
    single = [r for r in reasons if "top probability" in r]
    multi = [r for r in reasons if "of the threshold" in r]
    assert single and multi
    assert all(re.fullmatch(r"(product_area|intent): top probability 0\.\d\d < 0\.5", r) for r in single)
    labels = "|".join(tiny_model.labels["complaint_type"])
    assert all(
        re.fullmatch(rf"complaint_type: ({labels})(, ({labels}))* within 0\.1 of the threshold", r)
        for r in multi
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "text must be str, got NoneType.*fillna"),
        (42, "text must be str, got int"),
        (b"mang yeu", "got bytes; decode it first"),
    ],
)
def test_non_text_raises_a_type_error_saying_how_to_fix_it(tiny_model, value, message):
    with pytest.raises(TextTypeError, match=message):
        tiny_model.predict(value)
    assert issubclass(TextTypeError, TypeError)


def test_predict_many_names_the_bad_position(tiny_model):
    with pytest.raises(TextTypeError, match=r"texts\[1\] must be str"):
        tiny_model.predict_many(["ok", None])


def test_predict_many_refuses_a_dict(tiny_model):
    with pytest.raises(TextTypeError, match=r"got a dict; pass list\(d.values\(\)\)"):
        tiny_model.predict_many({"a": "mạng yếu"})


def test_predict_many_refuses_a_single_string(tiny_model):
    with pytest.raises(TextTypeError, match="for one text use predict"):
        tiny_model.predict_many("mạng yếu")


def test_predict_many_refuses_a_dataframe_and_a_non_iterable(tiny_model):
    pd = pytest.importorskip("pandas")
    # iterating a DataFrame gives its column names: one prediction, for the word "text"
    with pytest.raises(TextTypeError, match=r"got a DataFrame; pass its text column, e.g. df\['text'\]"):
        tiny_model.predict_many(pd.DataFrame({"text": ["mạng yếu", "cước cao"]}))
    assert len(tiny_model.predict_many(pd.Series(["mạng yếu", "cước cao"]))) == 2
    for value in (None, 5):
        with pytest.raises(TextTypeError, match=f"got {type(value).__name__}"):
            tiny_model.predict_many(value)


def test_numpy_whole_numbers_are_whole_numbers_and_bools_are_not(tiny_model):
    texts = SAMPLES * 3
    assert tiny_model.predict_many(texts, batch_size=np.int64(2)) == tiny_model.predict_many(texts)
    for bad in ({"batch_size": True}, {"n_jobs": True}, {"batch_size": 2.0}):
        with pytest.raises(ParameterError, match="whole number"):
            tiny_model.predict_many(texts, **bad)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.explain("mạng yếu", task=["intent"]), r"task must be one of .* got \['intent'\]"),
        (lambda m: m.explain("mạng yếu", task="intent", label=["complaint"]), r"label must be one of"),
        (lambda m: m.predict("mạng yếu").max_score("nosuch"), r"task must be one of .* got 'nosuch'"),
    ],
)
def test_explain_and_max_score_name_a_bad_task_or_label(tiny_model, call, message):
    with pytest.raises(ParameterError, match=message):
        call(tiny_model)


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (
            lambda rows: [{0: r["text"], 1: r["intent"]} for r in rows],
            {},
            r"column names must be text, got \[0, 1\]",
        ),
        (lambda rows: rows, {"tasks": {0: "single"}}, r"a task is named by its column, as text; got 0"),
        (lambda rows: rows, {"tasks": TASKS, "random_state": None}, r"random_state must be a whole number"),
        (lambda rows: rows, {"tasks": TASKS, "random_state": "x"}, r"random_state must be a whole number"),
        (
            lambda rows: [dict(r, complaint_type=["a|b"]) if i < 9 else r for i, r in enumerate(rows)],
            {"tasks": TASKS},
            r"label\(s\) \['a\|b'\] contain '\|'",
        ),
    ],
)
def test_training_refuses_what_it_cannot_name_or_write(small_rows, rows, options, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        with pytest.raises((DataError, ParameterError), match=message):
            vnfeedback.train(rows(small_rows), n_folds=2, **options)


def test_lazy_scores_read_by_two_threads_at_once(tiny_model):
    # thread B misses `scores`, thread A builds them and lets go of the batch, then B's __getattr__
    # runs: it found no batch and raised AttributeError (3 in 120,000 reads with four threads)
    [p, same] = tiny_model.predict_many([SAMPLES[0], SAMPLES[0] + " "])
    expected = same.scores
    p.__dict__["scores"] = expected  # what thread A does, in its order
    p.__dict__.pop("_batch")
    assert type(p).__getattr__(p, "scores") == expected  # what thread B then runs
    with pytest.raises(AttributeError, match="no attribute 'other'"):
        type(p).__getattr__(p, "other")


def test_a_child_forked_while_a_thread_reads_does_not_hang(tiny_model, fork_while_held):
    # the reader's lock, held by another thread of the parent at the fork, stayed held in the child
    import os

    expected = [p.labels for p in tiny_model.predict_many(SAMPLES)]  # builds the reader
    reader = tiny_model.features_._reader
    status = fork_while_held(
        reader.lock, lambda: [p.labels for p in tiny_model.predict_many(SAMPLES)] == expected
    )
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert tiny_model.features_._reader is reader  # the parent keeps its reader


def test_million_character_text_is_classified(tiny_model):
    p = tiny_model.predict("mạng yếu quá " * 80_000)  # ~1,000,000 characters
    assert "network_quality" in p.scores["complaint_type"]


def test_lone_surrogate_and_control_characters_do_not_crash(tiny_model):
    p = tiny_model.predict("mạng\ud800 yếu\x00 quá")
    assert p.labels["intent"] in tiny_model.labels["intent"]


def test_eight_threads_agree_with_one(tiny_model):
    texts = [f"{t} {i}" for i in range(40) for t in SAMPLES]
    expected = tiny_model.predict_many(texts)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(tiny_model.predict, texts))
    assert got == expected


def test_explain_returns_readable_ngrams_with_signed_weights(tiny_model):
    items = tiny_model.explain(
        "mạng yếu quá, gọi tổng đài không ai nghe", task="complaint_type", label="network_quality", top=5
    )
    assert 0 < len(items) <= 5
    assert all({"feature", "view", "weight"} <= set(i) for i in items)
    weights = [abs(i["weight"]) for i in items]
    assert weights == sorted(weights, reverse=True)
    assert not any("|" in i["feature"] for i in items)  # readable, without the view prefix
    assert {i["view"] for i in items} <= {
        "words",
        "accent-stripped syllables",
        "characters",
        "negated words",
        "concepts",
    }


def test_explain_rejects_unknown_task_and_label(tiny_model):
    with pytest.raises(ParameterError, match="task must be one of"):
        tiny_model.explain("mạng yếu", task="mood")
    with pytest.raises(ParameterError, match="label must be one of"):
        tiny_model.explain("mạng yếu", task="intent", label="network_quality")


def test_training_is_deterministic(small_rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        a = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, random_state=3)
        b = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, random_state=3)
    for task in TASKS:
        assert np.array_equal(a.models_[task].coef, b.models_[task].coef)
        assert np.array_equal(a.models_[task].thresholds, b.models_[task].thresholds)


def test_card_records_data_hash_size_and_cv_metrics(tiny_model, small_rows):
    card = tiny_model.card
    assert card["training_data"]["rows"] == len(small_rows)
    assert len(card["training_data"]["sha256"]) == 64
    assert card["training_data"]["label_counts"]["intent"]["complaint"] == sum(
        r["intent"] == "complaint" for r in small_rows
    )
    assert set(card["cv_metrics"]["tasks"]) == set(TASKS)
    assert "scikit-learn" in card["library_versions"]


def test_tasks_are_inferred_with_a_warning(small_rows):
    rows = [
        {"text": r["text"], "complaint_type": r["complaint_type"], "intent": r["intent"]} for r in small_rows
    ]
    with pytest.warns(vnfeedback.VnfeedbackWarning, match="tasks inferred"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fewer than", category=vnfeedback.VnfeedbackWarning)
            model = vnfeedback.train(rows, n_folds=2)
    assert model.tasks == {"complaint_type": "multilabel", "intent": "single"}


@pytest.mark.parametrize(
    ("mutate", "tasks", "message"),
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "text"} for r in rows], TASKS, "missing column"),
        (
            lambda rows: [dict(r, text="") if i == 3 else r for i, r in enumerate(rows)],
            TASKS,
            r"empty or non-text 'text' \(rows \[3\]",
        ),
        (
            lambda rows: [dict(r, intent=None) if i in (1, 2) else r for i, r in enumerate(rows)],
            TASKS,
            r"'intent' is single-label but 2 row\(s\) have no label \(rows \[1, 2\]",
        ),
        (
            # a bool or a fraction is not a missing label: the error names the values
            lambda rows: [
                dict(r, intent=[True, 1.5][i - 4]) if i in (4, 5) else r for i, r in enumerate(rows)
            ],
            TASKS,
            r"'intent': 2 row\(s\) hold a value that is not a label \(row 4: True, row 5: 1.5\)",
        ),
        (
            # in a multi-label cell too: True once became a label "True"
            lambda rows: [
                dict(r, complaint_type=[True, ["billing", 0.5], {"a": 1}][i - 4]) if i in (4, 5, 6) else r
                for i, r in enumerate(rows)
            ],
            TASKS,
            r"'complaint_type': 3 row\(s\) hold a value that is not a label \(row 4: True, "
            r"row 5: \['billing', 0.5\], row 6: \{'a': 1\}\); a multi-label value is a list",
        ),
        (lambda rows: [dict(r, intent="complaint") for r in rows], TASKS, "one class only"),
        (
            lambda rows: [
                dict(r, intent="praise") if i == 0 else dict(r, intent="complaint")
                for i, r in enumerate(rows)
            ],
            TASKS,
            "fewer than 2 examples",
        ),
        (lambda rows: rows, {"intent": "multiclass"}, "kind is one of"),
        (lambda rows: rows[:3], TASKS, r"at least 4 rows, got 3"),
    ],
)
def test_bad_training_data_gets_a_clear_error(small_rows, mutate, tasks, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        with pytest.raises((DataError, ParameterError), match=message):
            vnfeedback.train(mutate(small_rows), tasks=tasks, n_folds=2)


def test_whole_number_floats_are_the_labels_of_their_integers(small_rows):
    # pandas turns a column of 0/1/2 labels with one missing value into 0.0/1.0/2.0: every row was
    # "no label" to training
    codes = {label: k for k, label in enumerate(sorted({r["intent"] for r in small_rows}))}
    as_ints = [dict(row, intent=codes[row["intent"]]) for row in small_rows]
    as_floats = [dict(row, intent=float(codes[row["intent"]])) for row in small_rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        by_int = vnfeedback.train(as_ints, tasks={"intent": "single"}, n_folds=2)
        by_float = vnfeedback.train(as_floats, tasks={"intent": "single"}, n_folds=2)
    assert (
        by_float.models_["intent"].labels
        == by_int.models_["intent"].labels
        == [str(k) for k in sorted(codes.values())]
    )
    texts = [row["text"] for row in small_rows]
    assert [p.labels for p in by_float.predict_many(texts)] == [p.labels for p in by_int.predict_many(texts)]


def test_pandas_missing_values_in_dict_rows_are_no_label(small_rows):
    # rows built by hand from pandas values kept pd.NA, which became a label "<NA>"
    pd = pytest.importorskip("pandas")
    missing = [pd.NA, pd.NaT, np.float32("nan"), None]
    rows = [
        dict(row, complaint_type=missing[i % 4]) if not row["complaint_type"] else row
        for i, row in enumerate(small_rows)
    ]
    assert any(not row["complaint_type"] for row in small_rows)  # there are rows to change
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(rows, tasks={"complaint_type": "multilabel"}, n_folds=2)
    assert model.labels["complaint_type"] == sorted({c for row in small_rows for c in row["complaint_type"]})


def test_rare_label_gives_a_warning_naming_it(small_rows):
    with pytest.warns(vnfeedback.VnfeedbackWarning, match="'product_area'.*fewer than 10"):
        vnfeedback.train(small_rows, tasks={"product_area": "single"}, n_folds=2)


def test_unknown_train_option_is_an_error_not_ignored(small_rows):
    with pytest.raises(ParameterError, match=r"unknown option\(s\) \['tokeniser'\]"):
        vnfeedback.train(small_rows, tasks=TASKS, tokeniser="underthesea")


def test_train_reads_csv_with_pipe_separated_labels(small_rows, tmp_path):
    import csv

    path = tmp_path / "data.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "complaint_type", "intent"])
        writer.writeheader()
        for r in small_rows:
            writer.writerow(
                {"text": r["text"], "complaint_type": "|".join(r["complaint_type"]), "intent": r["intent"]}
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(path, tasks={"complaint_type": "multilabel", "intent": "single"}, n_folds=2)
    counts = model.card["training_data"]["label_counts"]["complaint_type"]
    assert counts["customer_service"] == sum("customer_service" in r["complaint_type"] for r in small_rows)


def test_train_reads_a_dataframe_and_parquet(small_rows, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(small_rows)
    frame.to_parquet(tmp_path / "data.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        a = vnfeedback.train(frame, tasks=TASKS, n_folds=2)
        b = vnfeedback.train(tmp_path / "data.parquet", tasks=TASKS, n_folds=2)
    assert a.card["training_data"]["sha256"] == b.card["training_data"]["sha256"]


def test_evaluate_reports_per_label_metrics(tiny_model, small_rows):
    report = tiny_model.evaluate(small_rows)
    assert report["n"] == len(small_rows)
    single = report["tasks"]["intent"]
    assert set(single["per_label"]) == set(tiny_model.labels["intent"])
    matrix = np.array(single["confusion"]["rows_true_cols_pred"])
    assert matrix.sum() == len(small_rows)
    assert np.isclose(single["accuracy"], np.trace(matrix) / matrix.sum(), atol=1e-4)
    multi = report["tasks"]["complaint_type"]
    assert 0 <= multi["micro_f1"] <= 1
    support = sum(v["support"] for v in multi["per_label"].values())
    assert support == sum(len(r["complaint_type"]) for r in small_rows)


def test_evaluate_counts_unknown_labels(tiny_model, small_rows):
    rows = [dict(small_rows[0], intent="anger"), *small_rows[1:]]
    with pytest.warns(vnfeedback.VnfeedbackWarning, match="'anger' \\(1 row"):
        report = tiny_model.evaluate(rows)
    assert report["tasks"]["intent"]["unknown_labels"] == {"anger": 1}


# the tiny model predicts only complaint and question, so the rule is stated on those two
RULES = {"complaint_type": {"none_when": {"intent": ["question"]}, "some_when": {"intent": ["complaint"]}}}


def test_label_rules_keep_tasks_consistent(small_rows, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=RULES)
        unruled = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2)
    texts = SAMPLES + [r["text"] for r in small_rows]
    predictions = model.predict_many(texts)
    intents = {p.labels["intent"] for p in predictions}
    assert {"complaint", "question"} <= intents
    assert [p.scores for p in predictions] == [p.scores for p in unruled.predict_many(texts)]
    for p in predictions:
        if p.labels["intent"] == "question":
            assert p.labels["complaint_type"] == []
        if p.labels["intent"] == "complaint":
            assert p.labels["complaint_type"]
    model.save(tmp_path / "m")
    assert vnfeedback.load(tmp_path / "m").predict_many(texts) == predictions


def _ruled_probas(model, intent_rows, ct_rows):
    """Probabilities for decide(): intent {label: p} and complaint_type {label: p} per row (others 0
    and 0.001), product_area uniform."""
    probas = {}
    for task, given, rest in (("intent", intent_rows, 0.0), ("complaint_type", ct_rows, 0.001)):
        names = model.models_[task].labels
        probas[task] = np.array([[row.get(name, rest) for name in names] for row in given])
    k = len(model.models_["product_area"].labels)
    probas["product_area"] = np.full((len(intent_rows), k), 1 / k)
    return probas


def test_label_rules_weigh_both_tasks_where_they_disagree(small_rows):
    # intent once decided alone: a complaint type at 0.999 was dropped because intent leaned 0.55
    # towards a label that has no complaint type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=RULES)
    assert model.rules_weight == 0.5
    label = model.models_["complaint_type"].labels[0]
    probas = _ruled_probas(
        model,
        [
            {"question": 0.55, "complaint": 0.45},  # a sure complaint type outweighs a slight lean
            {"question": 0.999, "complaint": 0.001},  # a sure intent keeps its label
            {"complaint": 0.55, "question": 0.45},  # no complaint type at all: not a complaint
            {"complaint": 0.9, "question": 0.1},  # agreeing tasks are left alone
        ],
        [{label: 0.999}, {label: 0.999}, {}, {label: 0.999}],
    )
    labels = model.decide(probas)
    assert labels["intent"] == ["complaint", "question", "question", "complaint"]
    assert labels["complaint_type"] == [[label], [], [], [label]]
    reasons = [p.review_reasons for p in model._predictions(probas, [True] * 4)]
    overruled = [
        "intent: most probable" in " ".join(r) and "overruled by the label rules" in " ".join(r)
        for r in reasons
    ]
    assert overruled == [True, False, True, False]

    model.rules_weight = 0  # the condition task decides alone, as before the option
    labels = model.decide(probas)
    assert labels["intent"] == ["question", "question", "complaint", "complaint"]
    assert labels["complaint_type"] == [[], [], [model.models_["complaint_type"].labels[0]], [label]]
    assert not any("overruled" in " ".join(p.review_reasons) for p in model._predictions(probas, [True] * 4))


def test_rules_weight_changes_only_rows_where_the_tasks_disagree(small_rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=RULES)
    rng = np.random.default_rng(0)
    probas = {}
    for task, m in model.models_.items():
        p = rng.dirichlet(np.ones(len(m.labels)) * 0.5, size=2000)
        probas[task] = p if m.kind == "single" else rng.random((2000, len(m.labels))) ** 3
    weighed = model.decide(probas)
    model.rules_weight = 0.0
    alone = model.decide(probas)
    intents = model.models_["intent"].labels
    top = [intents[k] for k in probas["intent"].argmax(axis=1)]
    assert alone["intent"] == top
    ct = model.models_["complaint_type"]
    passed = (probas["complaint_type"] >= ct.thresholds).any(axis=1)
    conflict = [
        (i == "question" and p) or (i == "complaint" and not p) for i, p in zip(top, passed, strict=True)
    ]
    changed = [a != b for a, b in zip(weighed["intent"], alone["intent"], strict=True)]
    assert any(changed)
    assert all(c for c, ch in zip(conflict, changed, strict=True) if ch)


def _weighed_by_hand(model, probas, i):
    """The module docstring's rule for text ``i``, written out: the condition label with the best
    log p + w * cost (every rule's cost added)."""
    import math

    def logit(x):
        x = min(max(x, 1e-9), 1 - 1e-9)
        return math.log(x / (1 - x))

    intent = model.models_["intent"].labels
    scores = [math.log(max(probas["intent"][i][k], 1e-300)) for k in range(len(intent))]
    for target, rule in model.label_rules.items():
        p, thresholds = probas[target][i], model.models_[target].thresholds
        margins = [logit(p[k]) - logit(thresholds[k]) for k in range(len(p))]
        passing = [k for k in range(len(p)) if p[k] >= thresholds[k]]
        emptying = -sum(margins[k] for k in passing)
        forcing = 0.0 if passing else min(margins[max(range(len(p)), key=lambda k: p[k])], 0.0)
        for kind, cost in (("none_when", emptying), ("some_when", forcing)):
            for label in rule.get(kind, {}).get("intent", []):
                scores[intent.index(label)] += model.rules_weight * cost
    return max(range(len(scores)), key=lambda k: scores[k])


def test_rules_weight_matches_the_rule_written_out(small_rows):
    # the decision takes a shortcut (only texts whose most probable label a rule overrules are
    # weighed); it must give what the rule itself gives, label thresholds unequal included
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=RULES)
    model.models_["complaint_type"].thresholds = np.linspace(
        0.2, 0.8, len(model.models_["complaint_type"].labels)
    )
    rng = np.random.default_rng(3)
    for weight in (0.3, 1.0, 4.0):
        model.rules_weight = weight
        probas = {
            task: rng.dirichlet(np.ones(len(m.labels)), size=400)
            if m.kind == "single"
            else rng.random((400, len(m.labels))) ** 2
            for task, m in model.models_.items()
        }
        given = model._weigh_rules(probas)["intent"].tolist()
        assert given == [_weighed_by_hand(model, probas, i) for i in range(400)]
        assert given != probas["intent"].argmax(axis=1).tolist()  # some texts were weighed


@pytest.mark.parametrize("weight", [-0.1, True, float("nan"), "0.5", None, 101])
def test_a_bad_rules_weight_is_named(small_rows, weight):
    with pytest.raises(ParameterError, match=r"rules_weight must be a number in \[0, 100\], got"):
        vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=RULES, rules_weight=weight)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"intent": {"none_when": {"intent": ["praise"]}}}, "must be a multilabel task"),
        ({"complaint_type": {"never_when": {}}}, "takes 'none_when' and/or 'some_when'"),
        ({"complaint_type": {"none_when": {"intent": ["joy"]}}}, r"has no label\(s\) \['joy'\]"),
        (
            {"complaint_type": {"none_when": {"intent": ["praise"]}, "some_when": {"intent": ["praise"]}}},
            "in both none_when and some_when",
        ),
    ],
)
def test_bad_label_rules_are_named(small_rows, rules, message):
    with pytest.raises(ParameterError, match=message):
        vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=rules)


@pytest.mark.parametrize(
    ("feature", "readable"),
    [
        ("w|mạng yếu", "mạng yếu"),
        ("s|mang yeu", "mang yeu"),
        ("c|ang", "…ang…"),
        ("c| mang", "mang…"),
        ("c|ang ", "…ang"),
        ("c| mang ", "mang"),
        ("n|neg_mạng", "neg_mạng"),
        ("k|network", "concept: network"),
    ],
)
def test_explained_features_read_as_words(feature, readable):
    from vnfeedback.classifier import _readable

    assert _readable(feature) == readable


def _counts(true: list[set], given: list[set], label: str) -> tuple[int, int, int]:
    tp = sum(label in t and label in g for t, g in zip(true, given, strict=True))
    fp = sum(label not in t and label in g for t, g in zip(true, given, strict=True))
    fn = sum(label in t and label not in g for t, g in zip(true, given, strict=True))
    return tp, fp, fn


def test_evaluate_scores_the_labels_predict_gives_after_label_rules(small_rows):
    # evaluate() once scored multilabel tasks from thresholds alone, so a model with label rules
    # reported metrics of labels no user ever saw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, label_rules=RULES)
    rows = small_rows + [dict(row, text=text) for row, text in zip(small_rows, SAMPLES, strict=False)]
    predictions = model.predict_many([r["text"] for r in rows])
    given = [set(p.labels["complaint_type"]) for p in predictions]
    task = model.models_["complaint_type"]
    by_threshold = [
        {
            label
            for label, t in zip(task.labels, task.thresholds, strict=True)
            if p.scores["complaint_type"][label] >= t
        }
        for p in predictions
    ]
    assert given != by_threshold  # the rules changed some labels, so the test can tell the two apart
    true = [set(r["complaint_type"]) for r in rows]
    report = model.evaluate(rows)["tasks"]["complaint_type"]["per_label"]
    for label, metrics in report.items():
        tp, fp, fn = _counts(true, given, label)
        assert (metrics["false_positives"], metrics["false_negatives"], metrics["support"]) == (
            fp,
            fn,
            tp + fn,
        )


def test_accent_stripped_copies_are_learned_but_never_scored(small_rows, tmp_path):
    from vnfeedback.normalize import strip_accents

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        plain = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, augment_stripped=True)
    with_diacritics = sum(strip_accents(r["text"]) != r["text"] for r in small_rows)
    assert 0 < with_diacritics < len(small_rows)
    card = model.card
    assert card["training_data"]["accent_stripped_copies"] == with_diacritics
    assert plain.card["training_data"]["accent_stripped_copies"] == 0
    # cross-validation scored the original comments only
    intent = card["cv_metrics"]["tasks"]["intent"]
    assert sum(label["support"] for label in intent["per_label"].values()) == len(small_rows)
    assert intent["per_label"]["complaint"]["support"] == sum(r["intent"] == "complaint" for r in small_rows)
    # the copies taught the word view the stripped spellings the originals lack
    stripped_only = {name for name in model.features_.vocabulary_ if name.startswith("w|")} - set(
        plain.features_.vocabulary_
    )
    assert any(name[2:] == strip_accents(name[2:]) for name in stripped_only)
    model.save(tmp_path / "m")
    assert vnfeedback.load(tmp_path / "m").get_params()["augment_stripped"] is True
    with pytest.raises(ParameterError, match="augment_stripped must be True or False, got 'yes'"):
        vnfeedback.train(small_rows, tasks=TASKS, augment_stripped="yes")


def test_nb_auto_trains_saves_and_says_what_it_chose(small_rows, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, nb_weighting="auto")
    chosen = model.card["nb_weighting_chosen"]
    assert set(chosen) == set(TASKS)
    for task, labels in chosen.items():
        fitted = model.models_[task]
        assert labels == [label for label, nb in zip(fitted.labels, fitted.nb, strict=True) if nb]
    model.save(tmp_path / "m")
    again = vnfeedback.load(tmp_path / "m")
    assert again.get_params()["nb_weighting"] == "auto"
    assert again.predict_many(SAMPLES) == model.predict_many(SAMPLES)
    with pytest.raises(ParameterError, match="nb_weighting must be True, False or 'auto', got 'yes'"):
        vnfeedback.train(small_rows, tasks=TASKS, nb_weighting="yes")


def test_char_weight_trains_on_a_scaled_character_view_and_folds_it_into_the_coefficients(
    small_rows, tmp_path
):
    from vnfeedback.models import _fit_binary

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks=TASKS, n_folds=2, C_grid=(1.0,), char_weight=0.5)
    features, fitted = model.features_, model.models_["complaint_type"]
    chars = features.view_of_column_ == list(vnfeedback.features.VIEW_NAMES).index("c")
    assert 0 < chars.sum() < len(chars)
    # the SVM of each label learned on the matrix whose character view is scaled by 0.5 ...
    X = features.transform([r["text"] for r in small_rows]).tocsc()
    X[:, np.flatnonzero(chars)] *= 0.5
    for j, label in enumerate(fitted.labels):
        y = np.array([label in r["complaint_type"] for r in small_rows], dtype=int)
        coef, intercept = _fit_binary(X.tocsr(), y, 1.0, random_state=0, class_weight="balanced", nb=False)
        # ... and the model reads the unscaled features with the scale folded into its coefficients
        assert np.allclose(fitted.coef[j], np.where(chars, 0.5, 1.0) * coef, atol=1e-6)
        assert fitted.intercept[j] == pytest.approx(intercept)
    model.save(tmp_path / "m")
    again = vnfeedback.load(tmp_path / "m")
    assert again.get_params()["char_weight"] == 0.5
    assert again.predict_many(SAMPLES) == model.predict_many(SAMPLES)
    for bad in (0, -1, 101, True, "0.5", float("nan")):
        with pytest.raises(ParameterError, match=r"char_weight must be a number in \(0, 100\], got "):
            vnfeedback.train(small_rows, tasks=TASKS, char_weight=bad)


def test_cv_groups_keep_a_group_in_one_fold_and_are_named_when_unusable(small_rows, tmp_path):
    rows = [dict(r, customer=f"c{i % 7}") for i, r in enumerate(small_rows)]
    rows[0]["customer"] = None  # no group: a group of its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(rows, tasks=TASKS, n_folds=3, cv_groups="customer")
    assert "folds never split a 'customer' group" in model.card["cv_metrics"]["note"]
    assert model.get_params()["cv_groups"] == "customer"
    model.save(tmp_path / "m")
    assert vnfeedback.load(tmp_path / "m").get_params()["cv_groups"] == "customer"
    for options, error, message in (
        ({"cv_groups": "nosuch"}, DataError, r"cv_groups: no column 'nosuch' in the data; the columns are"),
        (
            {"cv_groups": "customer", "n_folds": 9},
            DataError,
            r"'customer' has 8 group\(s\), and 9 folds need",
        ),
        ({"cv_groups": 3}, ParameterError, r"cv_groups must be a column name or None, got 3"),
    ):
        with pytest.raises(error, match=message):
            vnfeedback.train(rows, tasks=TASKS, **options)
    rows[1]["customer"] = ["a", "b"]
    with pytest.raises(DataError, match=r"cv_groups: row 1 has \['a', 'b'\] in 'customer'"):
        vnfeedback.train(rows, tasks=TASKS, n_folds=3, cv_groups="customer")


def test_cv_groups_decide_the_folds_of_every_task(small_rows, monkeypatch):
    from vnfeedback import classifier

    rows = [dict(r, customer=f"c{i % 6}") for i, r in enumerate(small_rows)]
    seen = []
    real = classifier.fit_task

    def spy(*args, **kwargs):
        seen.append(kwargs["folds"])
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier, "fit_task", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        vnfeedback.train(rows, tasks=TASKS, n_folds=3, cv_groups="customer")
    assert len(seen) == len(TASKS)
    customers = np.array([r["customer"] for r in rows])
    for folds in seen:
        for train, test in folds:
            assert not set(customers[train]) & set(customers[test])
