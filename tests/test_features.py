"""Feature extraction: the views, accent-stripped matching, per-view normalisation, restore."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnfeedback import features, normalize
from vnfeedback.errors import ParameterError
from vnfeedback.features import MAX_TEXT_CHARS, FeatureExtractor

TEXTS = [
    "Mạng yếu quá",
    "mang yeu qua",
    "Gọi tổng đài không được",
    "không phải mạng yếu mà bị trừ tiền",
    "wifi nhà chậm quá",
    "tổng đài chờ lâu quá",
]


def fitted(**params):
    return FeatureExtractor(min_df=1, **params).fit(TEXTS)


def test_accented_and_unaccented_texts_share_the_stripped_view():
    fe = fitted()
    X = fe.transform(["Mạng yếu quá", "mang yeu qua"])
    stripped = np.array([name.startswith("s|") for name in fe.feature_names_])
    a, b = X.toarray()[:, stripped]
    assert np.allclose(a, b) and a.any()


def test_each_view_is_unit_length():
    fe = fitted(concepts=True, negation=True)
    X = fe.transform(["Gọi tổng đài không được, mạng yếu"]).toarray()[0]
    for view in range(5):
        block = X[fe.view_of_column_ == view]
        assert block.any() and np.isclose(np.linalg.norm(block), 1.0)


def test_negation_view_marks_the_denied_problem():
    fe = fitted(negation=True)
    analysis = fe.analyze("không phải mạng yếu mà bị trừ tiền")
    assert "n|neg_mạng" in analysis.features


def test_turning_a_view_off_removes_its_columns():
    fe = fitted(char_ngrams=(0, 0), negation=False)
    assert not any(name[0] in "cn" for name in fe.feature_names_)
    assert not any(name[0] == "n" for name in fitted().feature_names_)  # off by default


def test_restore_gives_identical_features():
    fe = fitted()
    again = FeatureExtractor(min_df=1).restore(fe.feature_names_, fe.idf_)
    a, b = fe.transform(TEXTS), again.transform(TEXTS)
    assert (a != b).nnz == 0


def test_fit_is_deterministic():
    assert fitted().feature_names_ == fitted().feature_names_


def test_text_without_words_has_no_words():
    fe = fitted()
    assert not fe.analyze("😡 123 !!!").has_words
    assert fe.analyze("mạng lag").has_words


def test_very_long_text_is_cut_to_the_documented_limit():
    fe = fitted()
    analysis = fe.analyze("mạng yếu " * 500_000)
    assert len(analysis.features) < MAX_TEXT_CHARS * 10


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tokenizer": "jieba"}, "tokenizer must be one of"),
        ({"word_ngrams": (3, 1)}, "word_ngrams must be a pair"),
        ({"min_df": 0}, "min_df must be"),
        ({"max_features": -5}, "max_features must be"),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ParameterError, match=message):
        FeatureExtractor(**params).fit(TEXTS)


def test_concepts_meet_across_wordings_and_missing_diacritics():
    fe = fitted(concepts=True)
    for text in ("mất tín hiệu cả ngày", "song yeu qua", "SÓNG YẾU"):
        assert "k|network" in fe.analyze(text).features, text
    assert "k|network" not in fe.analyze("cảm ơn nhân viên").features


def test_concept_phrase_may_belong_to_several_concepts():
    fe = fitted(concepts=True)
    features = fe.analyze("hết dung lượng rồi").features
    assert {"k|promotion", "k|mobile_data"} <= set(features)


def test_concepts_are_off_unless_asked_for():
    for fe in (fitted(), fitted(concepts=False)):
        assert not any(f.startswith("k|") for f in fe.analyze("sóng yếu").features)


def test_fast_prediction_path_equals_the_plain_transform():
    fe = FeatureExtractor(min_df=1)
    trained = fe.fit_transform(TEXTS)
    fast, flags = fe.transform_flagged([*TEXTS, "😡", "mạng yếu mới"])
    plain = fe.transform([*TEXTS, "😡", "mạng yếu mới"])
    assert (fast != plain).nnz == 0 and np.array_equal(fast.data, plain.data)
    assert (fast[: len(TEXTS)] != trained).nnz == 0
    assert flags == [True] * len(TEXTS) + [False, True]


# --- the batch path (``_BatchReader``) against the text-by-text reference -----------------------

ROOT = Path(__file__).resolve().parent.parent


def real_texts() -> list[str]:
    rows = (ROOT / "data" / "telecom" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in rows]


def same_matrix(a, b) -> bool:
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)  # to the last bit
    )


#: Feature settings the fast paths are held to the reference under.
READER_PARAMS = [
    {},
    {"concepts": True},
    {"negation": True},
    {"negation": True, "concepts": True},
    {"word_ngrams": (2, 3), "stripped_ngrams": (0, 0)},
    {"char_ngrams": (0, 0), "word_ngrams": (1, 1)},
    {"char_ngrams": (1, 4), "stripped_ngrams": (1, 3)},
]

#: Short lists of comments made of the letters, marks and signs that trip the readers up.
ANY_COMMENTS = st.lists(
    st.text(alphabet=st.sampled_from(list("mạngyếuquákhôngphải tổđài,.?!:)15k😡\n")), max_size=60),
    min_size=1,
    max_size=6,
)


@pytest.mark.parametrize("params", READER_PARAMS)
def test_batch_path_equals_the_reference_on_real_comments(params):
    texts = real_texts()
    fe = FeatureExtractor(**params).fit(texts[:2000])
    held_out = texts[2000:]  # words and n-grams the vocabulary has never seen, too
    fast, flags = fe.transform_flagged(held_out)
    assert fe._reader is not None  # the batch path ran
    assert same_matrix(fast, fe.transform(held_out))
    assert flags == [fe.analyze(t).has_words for t in held_out]


@settings(max_examples=150, deadline=None)
@given(ANY_COMMENTS)
def test_batch_path_equals_the_reference_on_any_text(texts):
    fe = fitted(concepts=True)
    fast, flags = fe.transform_flagged(texts)
    assert same_matrix(fast, fe.transform(texts))
    assert flags == [fe.analyze(t).has_words for t in texts]


def reference_char_grams(token: str, low: int, high: int) -> tuple[str, ...]:
    """Character n-grams as first written: the padded token's windows, shortest first."""
    padded = f" {token} "
    grams = []
    for n in range(low, high + 1):
        if n > len(padded):
            break
        grams.extend("c|" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return tuple(grams)


CHAR_GRAM_SIZES = [(1, 1), (1, 4), (2, 5), (3, 3), (2, 200)]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("mạngyếu15k😡")), max_size=70), st.sampled_from(CHAR_GRAM_SIZES))
def test_char_grams_are_every_window_of_the_padded_token(token, sizes):
    assert features._char_grams(token, *sizes) == reference_char_grams(token, *sizes)


@pytest.mark.parametrize("length", [61, 62, 63, 64, 200])
@pytest.mark.parametrize("sizes", CHAR_GRAM_SIZES)
def test_char_grams_of_long_tokens(length, sizes):
    # padded tokens past 64 characters take slices that are not cached: held to the same reference
    token = ("mạngyếu" * 40)[:length]
    assert features._char_grams(token, *sizes) == reference_char_grams(token, *sizes)


def test_batch_path_reads_a_saved_vocabulary_whose_syllables_hold_a_bar():
    # the reader drops the view codes of all n-gram names at once, which must not also take a
    # "|" from inside a syllable: no text gives one, so such an n-gram is never found
    fe = fitted()
    names = [*fe.feature_names_, "w|aw|b yếu", "s|xs|y qua"]
    fresh = FeatureExtractor(min_df=1).restore(names, np.ones(len(names)))
    texts = ["ab yếu", "aw|b yếu", "xy qua", "mạng yếu quá"]
    fast, _ = fresh.transform_flagged(texts)
    assert fresh._reader is not None  # the batch path ran
    assert same_matrix(fast, fresh.transform(texts))
    assert fast[:, names.index("w|aw|b yếu")].nnz == 0 and fast[:, names.index("s|xs|y qua")].nnz == 0


def test_batch_path_result_does_not_depend_on_the_batch():
    fe = FeatureExtractor().fit(real_texts()[:1000])
    texts = real_texts()[1000:1300]
    whole, _ = fe.transform_flagged(texts)
    fresh = FeatureExtractor().restore(fe.feature_names_, fe.idf_)  # new ids, other order
    one_by_one = [fresh.transform_flagged([t])[0] for t in reversed(texts)][::-1]
    for row, single in zip(whole, one_by_one, strict=True):
        assert same_matrix(row, single)


def test_text_holding_the_batch_separator_falls_back_to_the_reference(monkeypatch):
    fe = fitted()
    texts = ["mạng yếu \ue000 quá", "tổng đài"]
    fast, flags = fe.transform_flagged(texts)
    assert same_matrix(fast, fe.transform(texts)) and flags == [True, True]
    calls = []
    monkeypatch.setattr(features, "prepare_many", lambda t: calls.append(t) or normalize.prepare_many(t))
    coef = random_coef(fe)
    scores, flags = fe.scores_flagged(texts, coef)
    assert np.array_equal(scores, reference_scores(fe, texts, coef)) and flags == [True, True]
    assert len(calls) == 1  # the batch is prepared once, also when it falls back


def test_full_reader_starts_afresh(monkeypatch):
    fe = fitted()
    fe.transform_flagged(TEXTS)
    first = fe._reader
    monkeypatch.setattr(features, "_MAX_IDS", 1)
    fast, _ = fe.transform_flagged(TEXTS)
    assert fe._reader is not first
    assert same_matrix(fast, fe.transform(TEXTS))


def test_extractor_pickles_after_the_batch_path():
    fe = fitted()
    fe.transform_flagged(TEXTS)
    copy = pickle.loads(pickle.dumps(fe))  # the reader holds a lock; it is rebuilt on first use
    assert same_matrix(copy.transform_flagged(TEXTS)[0], fe.transform(TEXTS))


def test_batch_with_more_new_syllables_than_ids_pack_falls_back_to_the_reference(monkeypatch):
    fe = fitted()
    monkeypatch.setattr(features, "_ID_LIMIT", len(fe._batch_reader().syllable) + 3)
    texts = [*TEXTS, "cước phí hóa đơn tăng vọt bất thường"]  # more than three new syllables
    fast, flags = fe.transform_flagged(texts)
    assert fe._reader is None  # it starts afresh on the next batch
    assert same_matrix(fast, fe.transform(texts)) and flags == [fe.analyze(t).has_words for t in texts]


# --- the C loop (``_speedups``) against ``transform(texts) @ coef`` --------------------------------


def random_coef(fe, n_outputs=7, seed=0):
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(rng.normal(size=(len(fe.feature_names_), n_outputs)))


def reference_scores(fe, texts, coef):
    return np.asarray(fe.transform(texts) @ coef)


needs_c = pytest.mark.skipif(features._speedups is None, reason="the C extension is not built")


def test_c_extension_is_built_where_required():
    if os.environ.get("VNFEEDBACK_REQUIRE_SPEEDUPS") == "1":
        assert features._speedups is not None, "the install built no C extension (is a C compiler there?)"


@needs_c
@pytest.mark.parametrize("params", READER_PARAMS)
def test_c_scores_equal_the_reference_to_the_last_bit_on_real_comments(params):
    texts = real_texts()
    fe = FeatureExtractor(**params).fit(texts[:2000])
    held_out = texts[2000:]
    coef = random_coef(fe)
    scores, flags = fe.scores_flagged(held_out, coef)
    assert fe._reader is not None  # the batch path ran
    assert np.array_equal(scores, reference_scores(fe, held_out, coef))
    assert flags == [fe.analyze(t).has_words for t in held_out]


@needs_c
@settings(max_examples=150, deadline=None)
@given(ANY_COMMENTS)
def test_c_scores_equal_the_reference_on_any_text(texts):
    fe = fitted(concepts=True)
    coef = random_coef(fe, n_outputs=3)
    scores, flags = fe.scores_flagged(texts, coef)
    assert np.array_equal(scores, reference_scores(fe, texts, coef))
    assert flags == [fe.analyze(t).has_words for t in texts]


@needs_c
def test_c_scores_of_a_long_repetitive_text_use_the_whole_tf_table():
    fe = fitted()
    texts = ["quá " * 5000, "a" * MAX_TEXT_CHARS, "mạng yếu"]
    coef = random_coef(fe)
    scores, _ = fe.scores_flagged(texts, coef)
    assert np.array_equal(scores, reference_scores(fe, texts, coef))


@needs_c
def test_c_loop_refuses_inconsistent_arrays_instead_of_reading_past_them():
    fe = fitted()
    coef = random_coef(fe)
    reader = fe._batch_reader()
    indptr, rows, _ = reader.entries(features.prepare_many(TEXTS))
    tables = (reader.row_offsets.view(), reader.row_columns.view(), features._tf_table(), fe.idf_)
    views = (fe.view_of_column_, len(features.VIEW_NAMES))
    out = np.zeros((len(TEXTS), coef.shape[1]))
    bad_rows = rows.copy()
    bad_rows[0] = 10**9
    with pytest.raises(IndexError, match="out of range"):
        features._speedups.scores(indptr, bad_rows, *tables, *views, (coef,), out)
    with pytest.raises(ValueError, match="out must hold"):
        features._speedups.scores(indptr, rows, *tables, *views, (coef,), out[:-1])
    with pytest.raises(TypeError, match="bytes"):
        features._speedups.scores(indptr.astype(np.int32), rows, *tables, *views, (coef,), out)
    with pytest.raises(ValueError, match="a coef block is not n_columns x n_outputs"):
        features._speedups.scores(indptr, rows, *tables, *views, (coef, coef[:-1]), out)
    for blocks in (coef, (), (coef,) * 65):
        with pytest.raises(TypeError, match="a tuple of 1 to 64 arrays"):
            features._speedups.scores(indptr, rows, *tables, *views, blocks, out)


@needs_c
def test_hash_table_finds_every_key_and_nothing_else():
    rng = np.random.default_rng(1)
    keys = np.unique(rng.integers(0, 1 << 62, size=5000))
    slots = np.empty(1 << 14, dtype=np.int64)
    features._speedups.hash_build(keys, slots)
    queries = np.concatenate([keys[::-1], keys + 1, [-5, 0]])
    at = np.empty(len(queries), dtype=np.int64)
    features._speedups.hash_find(keys, slots, queries, at)
    expected = np.searchsorted(keys, queries)
    expected[(expected == len(keys)) | (keys[np.minimum(expected, len(keys) - 1)] != queries)] = -1
    assert np.array_equal(at, expected) and (at[: len(keys)] >= 0).all()
    with pytest.raises(ValueError, match="power of two"):
        features._speedups.hash_build(keys, np.empty(len(keys) * 2 + 1, dtype=np.int64))
    with pytest.raises(ValueError, match="distinct"):
        features._speedups.hash_build(np.array([7, 7]), np.empty(4, dtype=np.int64))
    with pytest.raises(ValueError, match="one value per query"):
        features._speedups.hash_find(keys, slots, queries, at[:-1])


def test_scores_take_coefficients_in_any_layout_and_float_type():
    fe = fitted()
    coef = random_coef(fe)
    expected, _ = fe.scores_flagged(TEXTS, coef)
    assert np.array_equal(fe.scores_flagged(TEXTS, np.asfortranarray(coef))[0], expected)
    as_float32 = coef.astype(np.float32)
    assert np.array_equal(
        fe.scores_flagged(TEXTS, as_float32)[0], fe.scores_flagged(TEXTS, as_float32.astype(np.float64))[0]
    )
    # in blocks side by side (a model's tasks), each in any layout: the same scores, bit for bit
    blocks = [coef[:, :1], np.asfortranarray(coef[:, 1:3]), coef[:, 3:]]
    assert coef.shape[1] > 3
    assert np.array_equal(fe.scores_flagged(TEXTS, blocks)[0], expected)


def test_numpy_path_gives_the_same_scores_without_the_c_extension(monkeypatch):
    texts = real_texts()
    fe = FeatureExtractor().fit(texts[:1000])
    coef = random_coef(fe)
    with_c, flags = fe.scores_flagged(texts[1000:1500], coef)
    monkeypatch.setattr(features, "_speedups", None)
    fe._reader = None  # its hash tables were built with the extension
    without, plain_flags = fe.scores_flagged(texts[1000:1500], coef)
    assert fe._reader.ngrams[0][2].slots is None  # the numpy lookups ran
    assert np.array_equal(with_c, without) and flags == plain_flags
