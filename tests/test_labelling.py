"""The labelling loop: suggest what to label next, write it to fill in, audit labelled rows."""

import copy
import csv
import random
import warnings

import numpy as np
import pytest

from vnfeedback import DataError, ParameterError, Prediction, VnfeedbackWarning
from vnfeedback.labelling import (
    _multilabel_suspects,
    _sample,
    _single_suspects,
    audit,
    suggest,
    write_audit,
    write_suggestions,
)
from vnfeedback.normalize import normalize

TASKS = {"complaint_type": "multilabel", "product_area": "single", "intent": "single"}

ARCHIVE = [
    "Mạng 4G chập chờn, gọi tổng đài chờ 20 phút",
    "mạng 4g chập chờn, gọi tổng đài chờ 20 phút",  # the same once normalised
    "MẠNG 4G CHẬP CHỜN,   gọi tổng đài chờ 20 phút",  # the same once normalised
    "mang yeu qua ko vao dc fb",
    "Cảm ơn nhân viên đã hỗ trợ nhiệt tình",
    "bị trừ 15k vô lý",
    "Cho hỏi gói cước nào rẻ?",
    "wifi nhà mất kết nối suốt từ tối qua",
    "Truyền hình cứ giật lag, xem bóng đá không nổi",
    "Ví điện tử chuyển tiền bị treo, tiền đã trừ mà chưa tới",
    "Sim bị khóa một chiều dù đã chuẩn hóa thông tin",
    "Nhân viên lắp mạng hẹn mãi không đến",
    "ok",
    "Tin nhắn rác quảng cáo vay tiền suốt ngày",
    "Đề nghị thêm gói cước cho sinh viên",
    "gia hạn gói ST90 mà không được cộng data",
]


def uncertainty_of(model, prediction):
    """The rule of the module docstring, restated: the largest per-task uncertainty."""
    values = []
    for task, task_model in model.models_.items():
        p = np.array([prediction.scores[task][label] for label in task_model.labels])
        if task_model.kind == "single":
            values.append(1 - p.max())
        else:
            t = np.asarray(task_model.thresholds)
            values.append(1 - np.min(np.where(p >= t, (p - t) / (1 - t), (t - p) / t)))
    return max(values)


# --- suggest -----------------------------------------------------------------------------------


def test_suggest_returns_at_most_n_rows_with_distinct_normalised_texts(tiny_model):
    rows = [{"id": f"C{i}", "text": text} for i, text in enumerate(ARCHIVE)]
    for n in (3, 100):
        suggestions = suggest(rows, tiny_model, n=n, id_column="id")
        assert 0 < len(suggestions) <= min(n, len(ARCHIVE) - 2)
        normalised = [normalize(s["text"]) for s in suggestions]
        assert len(set(normalised)) == len(normalised)
        for s in suggestions:
            assert rows[s["row"]] == {"id": s["id"], "text": s["text"]}
            assert set(s["predicted"]) == set(TASKS)
            assert isinstance(s["predicted"]["complaint_type"], list)
            assert s["why"].split(":")[0] in TASKS
            assert 0.0 <= s["uncertainty"] <= 1.0


def test_suggest_puts_the_most_uncertain_comment_first(tiny_model):
    distinct = list(dict.fromkeys(ARCHIVE[:1] + ARCHIVE[3:]))
    expected = [uncertainty_of(tiny_model, p) for p in tiny_model.predict_many(distinct)]
    suggestions = suggest([{"text": t} for t in distinct], tiny_model, n=3)
    assert suggestions[0]["text"] == distinct[int(np.argmax(expected))]
    for s in suggestions:
        assert s["uncertainty"] == pytest.approx(expected[distinct.index(s["text"])], abs=1e-4)


def test_suggest_drops_rows_without_text(tiny_model):
    rows = [
        {"text": None},
        {"text": ""},
        {"text": "   "},
        {"text": 42},
        {"text": "mạng yếu quá"},
        {"other": 1},
    ]
    suggestions = suggest(rows, tiny_model, n=10)
    assert [s["row"] for s in suggestions] == [4]


def test_suggest_counts_near_duplicates_once(tiny_model):
    # punctuation survives normalisation but not the features: the two are one comment
    texts = ["mạng yếu quá", "mạng yếu quá!!!", "bị trừ 15k vô lý", "Cho hỏi gói cước nào rẻ?"]
    suggestions = suggest([{"text": t} for t in texts], tiny_model, n=10)
    chosen = {s["text"] for s in suggestions}
    assert len(chosen & {"mạng yếu quá", "mạng yếu quá!!!"}) == 1
    assert {"bị trừ 15k vô lý", "Cho hỏi gói cước nào rẻ?"} <= chosen


class StubModel:
    """The tiny model's features with one task whose top probability per text the test chooses."""

    def __init__(self, model, top):
        self.features_ = model.features_
        self.models_ = {"intent": model.models_["intent"]}
        self.top = top

    def predict_many(self, texts):
        labels = self.models_["intent"].labels
        out = []
        for text in texts:
            top = self.top[text]
            scores = {
                label: top if label == "complaint" else (1 - top) / (len(labels) - 1) for label in labels
            }
            out.append(Prediction({"intent": "complaint"}, {"intent": scores}, False))
        return out


@pytest.mark.parametrize("near_duplicate", [0.9, 1.0])
def test_suggest_prefers_different_comments_to_near_identical_ones(tiny_model, near_duplicate):
    places = ["quận 1", "Thủ Đức", "Hà Đông", "Cầu Giấy", "Bình Thạnh", "Gò Vấp", "Long Biên", "Ba Đình"]
    similar = [f"Mạng yếu quá ở {place}" for place in places]
    different = [
        "Bị trừ tiền vô lý trong tài khoản chính",
        "Nhân viên tổng đài thái độ cộc lốc",
        "Cho hỏi lắp wifi ở chung cư cần giấy tờ gì",
    ]
    certain = ["Cảm ơn nhân viên đã hỗ trợ nhiệt tình", "Chúc mừng năm mới cả nhà"]
    top = {text: 0.30 + 0.001 * k for k, text in enumerate(similar)}  # the most uncertain
    top |= {text: 0.50 for text in different}
    top |= {text: 0.99 for text in certain}
    model = StubModel(tiny_model, top)
    rows = [{"text": t} for t in similar + certain + different]

    suggestions = suggest(rows, model, n=4, near_duplicate=near_duplicate)

    assert suggestions[0]["text"] == similar[0]
    assert {s["text"] for s in suggestions[1:]} == set(different)
    assert suggestions[0]["uncertainty"] == pytest.approx(0.70)
    assert suggestions[0]["why"].startswith("intent: complaint 0.30 vs ")


def test_suggest_chooses_among_the_pool_factor_times_n_most_uncertain(tiny_model):
    similar = [f"Mạng yếu quá ở {place}" for place in ["quận 1", "Thủ Đức", "Hà Đông", "Cầu Giấy"]]
    different = ["Bị trừ tiền vô lý trong tài khoản chính", "Nhân viên tổng đài thái độ cộc lốc"]
    top = {text: 0.30 for text in similar} | {text: 0.50 for text in different}
    rows = [{"text": t} for t in similar + different]
    model = StubModel(tiny_model, top)
    narrow = suggest(rows, model, n=2, pool_factor=1, near_duplicate=1.0)
    wide = suggest(rows, model, n=2, pool_factor=3, near_duplicate=1.0)
    assert [s["text"] for s in narrow] == similar[:2]  # the pool holds the two most uncertain only
    assert [s["text"] for s in wide] == [similar[0], different[0]]


def test_suggest_samples_at_most_max_rows_from_a_file(tiny_model, tmp_path):
    path = tmp_path / "archive.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i in range(60):
            writer.writerow([f"C{i:03d}", f"{ARCHIVE[i % len(ARCHIVE)]} lần thứ {chr(97 + i % 26)}{i // 26}"])
    first = suggest(path, tiny_model, n=100, max_rows=10, id_column="id", near_duplicate=1.0)
    again = suggest(str(path), tiny_model, n=100, max_rows=10, id_column="id", near_duplicate=1.0)
    assert first == again
    assert 0 < len(first) <= 10
    assert all(s["id"] == f"C{s['row']:03d}" for s in first)
    assert max(s["row"] for s in first) >= 10  # a sample of the whole file, not its head


def test_sample_is_uniform_over_positions():
    counts = np.zeros(50)
    trials = 3000
    for seed in range(trials):
        picked = _sample(range(50), 5, random.Random(seed))
        assert [i for i, _ in picked] == sorted(i for i, _ in picked)
        assert all(i == value for i, value in picked)
        counts[[i for i, _ in picked]] += 1
    share = counts / trials  # 5 of 50: each position 0.1
    assert np.all(np.abs(share - 0.1) < 0.03), share
    assert _sample(range(3), 5, random.Random(0)) == [(0, 0), (1, 1), (2, 2)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 0}, r"n must be a whole number >= 1, got 0; ask for at least one"),
        ({"n": 2.5}, r"n must be a whole number >= 1, got 2.5"),
        ({"max_rows": 0}, r"max_rows must be a whole number >= 1, got 0"),
        ({"near_duplicate": 1.5}, r"near_duplicate must be a number in \(0, 1\], got 1.5"),
        (
            {"tasks": ["sentiment"]},
            r"the model has no task\(s\) \['sentiment'\]; its tasks are .*Pass tasks=",
        ),
    ],
)
def test_suggest_refuses_bad_options_saying_how_to_fix_them(tiny_model, options, message):
    with pytest.raises(ParameterError, match=message):
        suggest([{"text": "mạng yếu quá"}], tiny_model, **options)


def test_suggest_names_a_missing_text_or_id_column(tiny_model):
    with pytest.raises(
        DataError, match=r"missing column\(s\) \['comment'\]; the data has \['text'\].*text_column="
    ):
        suggest([{"text": "mạng yếu quá"}], tiny_model, text_column="comment")
    with pytest.raises(DataError, match=r"missing column\(s\) \['ticket'\].*id_column="):
        suggest([{"text": "mạng yếu quá"}], tiny_model, id_column="ticket")
    with pytest.raises(ParameterError, match="model must be a fitted FeedbackClassifier"):
        suggest([{"text": "mạng yếu quá"}], object())


# --- write_suggestions -------------------------------------------------------------------------


def test_write_suggestions_gives_a_csv_to_fill_in_that_round_trips(tiny_model, tmp_path):
    rows = [{"id": f"C{i}", "text": text} for i, text in enumerate(ARCHIVE)]
    suggestions = suggest(rows, tiny_model, n=5, id_column="id")
    path = tmp_path / "labels" / "to_label.csv"
    write_suggestions(suggestions, path, tiny_model.tasks)

    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        read = list(reader)
    assert reader.fieldnames == [
        "id",
        "text",
        "complaint_type_predicted",
        "complaint_type",
        "product_area_predicted",
        "product_area",
        "intent_predicted",
        "intent",
        "uncertainty",
        "why",
    ]
    assert len(read) == len(suggestions)
    for line, s in zip(read, suggestions, strict=True):
        assert (line["id"], line["text"]) == (s["id"], s["text"])
        assert line["complaint_type_predicted"] == "|".join(s["predicted"]["complaint_type"])
        assert line["intent_predicted"] == s["predicted"]["intent"]
        assert line["complaint_type"] == line["product_area"] == line["intent"] == ""
        assert float(line["uncertainty"]) == s["uncertainty"]
    assert [p.name for p in path.parent.iterdir()] == ["to_label.csv"]  # no temporary file left


def test_write_suggestions_uses_the_row_number_without_an_id_and_refuses_unknown_tasks(tiny_model, tmp_path):
    suggestions = suggest([{"text": t} for t in ARCHIVE], tiny_model, n=2)
    path = tmp_path / "to_label.csv"
    write_suggestions(suggestions, path, ["intent"])
    with open(path, encoding="utf-8", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [line["id"] for line in read] == [str(s["row"]) for s in suggestions]
    assert "product_area" not in read[0]
    with pytest.raises(ParameterError, match=r"the suggestions have no task\(s\) \['sentiment'\]"):
        write_suggestions(suggestions, tmp_path / "other.csv", ["intent", "sentiment"])
    assert not (tmp_path / "other.csv").exists()


# --- audit rules, on chosen probabilities ------------------------------------------------------


def test_single_label_rule_flags_a_row_another_class_claims():
    labels = ["complaint", "praise", "question"]
    given = ["complaint", "complaint", "praise", "praise", "praise", "question", "question", "question"]
    p = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.7, 0.2, 0.1],  # complaint: mean 0.8 over its rows
            [0.1, 0.8, 0.1],
            [0.3, 0.6, 0.1],
            [0.45, 0.1, 0.45],  # praise: mean 0.5; complaint 0.45 < 0.8, question 0.45 >= 0.4: suspect
            [0.2, 0.1, 0.7],
            [0.85, 0.05, 0.1],  # question: mean 0.4; complaint 0.85 >= 0.8: suspect
            [0.05, 0.55, 0.4],  # praise 0.55 >= 0.5 and > 0.4: suspect
        ]
    )
    suspects = _single_suspects("intent", labels, given, p)
    assert [(s["row"], s["given"], s["suggested"]) for s in suspects] == [
        (4, "praise", "question"),
        (6, "question", "complaint"),
        (7, "question", "praise"),
    ]
    assert suspects[1]["p_suggested"] == pytest.approx(0.85)
    assert suspects[1]["p_given"] == pytest.approx(0.10)
    assert suspects[1]["margin"] == pytest.approx(0.75)


def test_single_label_rule_suggests_the_most_probable_of_several_candidates():
    labels = ["complaint", "praise", "question"]
    given = ["complaint", "complaint", "praise", "praise", "question", "question"]
    p = np.array(
        [
            [0.6, 0.2, 0.2],
            [0.4, 0.3, 0.3],  # complaint: mean 0.5
            [0.1, 0.5, 0.4],
            [0.3, 0.45, 0.25],  # praise: mean 0.475
            [0.1, 0.2, 0.7],
            [0.5, 0.48, 0.02],  # complaint 0.5 >= 0.5 and praise 0.48 >= 0.475: the more probable
        ]
    )
    suspects = _single_suspects("intent", labels, given, p)
    assert [(s["row"], s["suggested"]) for s in suspects] == [(5, "complaint")]


def test_single_label_rule_skips_labels_the_fold_did_not_know():
    p = np.array([[0.9, 0.1], [0.8, np.nan], [0.2, 0.8]])
    assert _single_suspects("intent", ["complaint", "praise"], ["complaint", "praise", "praise"], p) == []


def test_multilabel_rule_suggests_removing_and_adding_labels():
    labels = ["billing", "network_quality"]
    given = [["billing"], ["billing"], ["billing"], ["billing"], ["network_quality"], [], [], []]
    p = np.array(
        [
            [0.8, 0.1],
            [0.6, 0.1],  # billing: mean (0.8 + 0.6 + 0.2 + 0.15) / 4 = 0.4375, half 0.219
            [0.2, 0.1],  # 0.2 < min(0.219, threshold 0.3): remove billing
            [0.15, 0.1],  # 0.15 < 0.219 but its model's threshold is 0.1 (it predicts billing): kept
            [0.1, 0.6],  # network_quality: mean 0.6
            [0.1, 0.65],  # lacks network_quality: 0.65 >= 0.6 and >= 0.3: add it
            [0.1, 0.55],  # 0.55 < the mean 0.6: not flagged
            [0.1, 0.62],  # 0.62 >= 0.6 but below its model's threshold 0.7: not flagged
        ]
    )
    thresholds = np.full(p.shape, 0.3)
    thresholds[3, 0] = 0.1
    thresholds[7, 1] = 0.7
    suspects = _multilabel_suspects("complaint_type", labels, given, p, thresholds)
    assert [(s["row"], s["given"], s["suggested"]) for s in suspects] == [
        (2, ["billing"], []),
        (5, [], ["network_quality"]),
    ]
    removal, addition = suspects
    assert (removal["p_suggested"], removal["p_given"]) == pytest.approx((0.8, 0.2))
    assert removal["margin"] == pytest.approx((0.3 - 0.2) / 0.3)
    assert (addition["p_suggested"], addition["p_given"]) == pytest.approx((0.65, 0.35))
    assert addition["margin"] == pytest.approx((0.65 - 0.3) / 0.7)


def test_multilabel_rule_makes_one_suspect_of_a_rows_changes():
    labels = ["billing", "network_quality"]
    given = [["billing"], ["billing"], ["network_quality"], ["network_quality"], ["billing"]]
    p = np.array([[0.9, 0.1], [0.8, 0.1], [0.1, 0.9], [0.1, 0.7], [0.1, 0.95]])
    suspects = _multilabel_suspects("complaint_type", labels, given, p, np.full(p.shape, 0.3))
    assert len(suspects) == 1
    assert suspects[0]["suggested"] == ["network_quality"]
    assert suspects[0]["p_suggested"] == pytest.approx(0.9 * 0.95)
    assert suspects[0]["p_given"] == pytest.approx(0.1 * 0.05)


# --- audit, end to end -------------------------------------------------------------------------

FLIPPED_TO_PRAISE = (0, 4, 8)  # complaints whose intent is changed to praise
AUDIT_OPTIONS = {"tasks": TASKS, "n_folds": 3, "C_grid": (1.0,)}


@pytest.fixture(scope="module")
def flipped_rows(small_rows):
    rows = copy.deepcopy(small_rows)
    for i in FLIPPED_TO_PRAISE:
        assert rows[i]["intent"] == "complaint"
        rows[i]["intent"] = "praise"
    rows[2]["complaint_type"] = ["network_quality", "billing"]  # a dropped call is not billing
    for i, row in enumerate(rows):
        row["id"] = f"R{i:02d}"
    return rows


@pytest.fixture(scope="module")
def flipped_audit(flipped_rows):
    with pytest.warns(VnfeedbackWarning, match="too few examples for every fold"):
        return audit(flipped_rows, **AUDIT_OPTIONS)


@pytest.mark.slow
def test_audit_finds_a_flipped_label_and_suggests_the_original(flipped_audit, flipped_rows):
    found = [
        s
        for s in flipped_audit
        if s["row"] in FLIPPED_TO_PRAISE and s["task"] == "intent" and s["suggested"] == "complaint"
    ]
    assert found
    for s in found:
        assert s["given"] == "praise"
        assert s["p_suggested"] > s["p_given"]
        assert s["id"] == flipped_rows[s["row"]]["id"]
        assert s["text"] == flipped_rows[s["row"]]["text"]
    margins = [s["margin"] for s in flipped_audit]
    assert margins == sorted(margins, reverse=True)
    assert {s["task"] for s in flipped_audit} <= set(TASKS)


@pytest.mark.slow
def test_audit_does_not_flag_those_rows_when_their_labels_are_right(small_rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VnfeedbackWarning)
        clean = audit(small_rows, **AUDIT_OPTIONS)
    assert not [s for s in clean if s["row"] in FLIPPED_TO_PRAISE and s["task"] == "intent"]


@pytest.mark.slow
def test_write_audit_writes_every_suspect(flipped_audit, tmp_path):
    path = tmp_path / "suspects.csv"
    write_audit(flipped_audit, path)
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        read = list(reader)
    assert reader.fieldnames[:4] == ["row", "id", "text", "task"]
    assert len(read) == len(flipped_audit)
    for line, s in zip(read, flipped_audit, strict=True):
        assert int(line["row"]) == s["row"]
        expected = "|".join(s["suggested"]) if isinstance(s["suggested"], list) else s["suggested"]
        assert line["suggested"] == expected
        assert float(line["margin"]) == s["margin"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"n_folds": 1}, ParameterError, r"n_folds must be a whole number >= 2, got 1"),
        ({"C": 1.0}, ParameterError, r"unknown train option\(s\) \['C'\] for audit\(\); allowed: "),
        ({"tasks": {"intent": "multiclass"}}, ParameterError, r"task kinds must be 'single' or 'multilabel'"),
        ({"tasks": {"sentiment": "single"}}, DataError, r"missing column\(s\) \['sentiment'\].*tasks="),
        ({"text_column": "comment"}, DataError, r"missing column\(s\) \['comment'\].*text_column="),
        ({"n_folds": 20}, DataError, r"n_folds=20 needs at least 60 rows, got 40; pass a smaller n_folds"),
    ],
)
def test_audit_refuses_bad_input_saying_how_to_fix_it(small_rows, options, error, message):
    with pytest.raises(error, match=message):
        audit(small_rows, **{"tasks": TASKS, **options})


def test_audit_names_rows_without_a_label(small_rows):
    rows = copy.deepcopy(small_rows)
    rows[3]["intent"] = ""
    with pytest.raises(
        DataError, match=r"'intent' is single-label but 1 row\(s\) have no label \(rows \[3\]\)"
    ):
        audit(rows, tasks=TASKS)
