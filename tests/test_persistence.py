"""Model directories: round trip, atomic save, and refusing corrupt, tampered or pickled files."""

import hashlib
import io
import json
import shutil

import numpy as np
import pytest

import vnfeedback
from vnfeedback import ModelFileError
from vnfeedback.persistence import FORMAT_VERSION, load_model

TEXTS = ["Mạng 4G chập chờn, gọi tổng đài chờ 20 phút", "mang yeu qua", "cảm ơn nhà mạng", "", "bị trừ 15k"]


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    path = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, path)
    return path


def rewrite_config(path, **changes):
    config = json.loads((path / "model.json").read_text(encoding="utf-8"))
    config.update(changes)
    (path / "model.json").write_text(json.dumps(config), encoding="utf-8")


def test_round_trip_predicts_identically(tiny_model, tiny_model_dir):
    loaded = vnfeedback.load(tiny_model_dir)
    assert loaded.predict_many(TEXTS) == tiny_model.predict_many(TEXTS)
    assert loaded.labels == tiny_model.labels
    assert loaded.tasks == tiny_model.tasks
    assert loaded.card == json.loads(json.dumps(tiny_model.card))
    assert loaded.explain(TEXTS[0], task="intent") == tiny_model.explain(TEXTS[0], task="intent")


def test_model_directory_holds_only_json_and_npz(tiny_model_dir):
    names = sorted(p.name for p in tiny_model_dir.iterdir())
    assert names == ["arrays.npz", "card.json", "model.json", "vocabulary.json"]


def test_save_replaces_an_existing_model_atomically(tiny_model, model_copy):
    before = set(model_copy.parent.iterdir())
    tiny_model.save(model_copy)
    assert set(model_copy.parent.iterdir()) == before  # no temporary directory left behind
    assert vnfeedback.load(model_copy).predict(TEXTS[0]) == tiny_model.predict(TEXTS[0])


def test_failed_save_leaves_the_old_model_intact(tiny_model, model_copy, monkeypatch):
    original = (model_copy / "arrays.npz").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save(model_copy)
    assert (model_copy / "arrays.npz").read_bytes() == original


def test_save_refuses_to_replace_a_directory_that_is_not_a_model(tiny_model, tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFileError, match="not a vnfeedback model directory"):
        tiny_model.save(tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match=r"no model directory at .*vnfeedback.load\(\)"):
        vnfeedback.load(tmp_path / "nowhere")


def test_missing_file_is_named(model_copy):
    (model_copy / "vocabulary.json").unlink()
    with pytest.raises(ModelFileError, match=r"vocabulary.json is missing"):
        load_model(model_copy)


def test_tampered_file_fails_its_checksum(model_copy):
    data = bytearray((model_copy / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"arrays.npz does not match the checksum"):
        load_model(model_copy)


def test_truncated_file_fails_its_checksum(model_copy):
    data = (model_copy / "vocabulary.json").read_bytes()
    (model_copy / "vocabulary.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"vocabulary.json does not match"):
        load_model(model_copy)


def test_corrupt_model_json_is_named(model_copy):
    (model_copy / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"model.json is not valid JSON"):
        load_model(model_copy)


def test_newer_format_version_asks_for_an_upgrade(model_copy):
    rewrite_config(model_copy, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ModelFileError, match="upgrade vnfeedback"):
        load_model(model_copy)


def _replace_arrays(path, arrays, allow_pickle=False):
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=allow_pickle, **arrays)
    data = buffer.getvalue()
    (path / "arrays.npz").write_bytes(data)
    config = json.loads((path / "model.json").read_text(encoding="utf-8"))
    config["files"]["arrays.npz"] = hashlib.sha256(data).hexdigest()
    (path / "model.json").write_text(json.dumps(config), encoding="utf-8")


def _arrays(path):
    with np.load(path / "arrays.npz") as npz:
        return {k: npz[k] for k in npz.files}


class Boom:
    """Unpickling this would run code: the loader must never get that far."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_object_array_is_refused_not_executed(model_copy, capsys):
    arrays = _arrays(model_copy)
    arrays["intent/coef"] = np.array([Boom()], dtype=object)
    _replace_arrays(model_copy, arrays, allow_pickle=True)
    with pytest.raises(ModelFileError, match=r"arrays.npz cannot be read as numpy arrays"):
        load_model(model_copy)
    assert "unpickled!" not in capsys.readouterr().out


def test_wrong_shape_is_caught_even_with_a_matching_checksum(model_copy):
    arrays = _arrays(model_copy)
    arrays["intent/coef"] = arrays["intent/coef"][:, :-1]
    _replace_arrays(model_copy, arrays)
    with pytest.raises(
        ModelFileError, match=r"'intent/coef' is float.. of shape .* expected float32/float64"
    ):
        load_model(model_copy)


def test_nan_weights_are_caught(model_copy):
    arrays = _arrays(model_copy)
    arrays["intent/intercept"] = np.full_like(arrays["intent/intercept"], np.nan)
    _replace_arrays(model_copy, arrays)
    with pytest.raises(ModelFileError, match="NaN or inf"):
        load_model(model_copy)


def test_loading_does_not_need_scikit_learn(tiny_model_dir, tmp_path):
    """A saved model predicts with numpy/scipy only, so a scikit-learn upgrade cannot break it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import vnfeedback\n"
        f"m = vnfeedback.load({str(tiny_model_dir)!r})\n"
        "print(m.predict('mạng yếu quá').labels['intent'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in vnfeedback.load(tiny_model_dir).labels["intent"]


def test_unknown_feature_option_in_model_json_is_refused(model_copy):
    config = json.loads((model_copy / "model.json").read_text(encoding="utf-8"))
    config["features"]["stemming"] = True
    (model_copy / "model.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"model.json: bad feature options"):
        load_model(model_copy)


@pytest.mark.parametrize("value", ["x", None, True, 1.5, [0.5], 0, 1])
def test_a_bad_review_threshold_in_model_json_is_named(model_copy, value):
    config = json.loads((model_copy / "model.json").read_text(encoding="utf-8"))
    config["review"]["min_proba"] = value  # a hand edit: float("x") crashed deep inside the loader
    (model_copy / "model.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"review.min_proba must be a number in \(0, 1\), got"):
        load_model(model_copy)


def test_rules_weight_is_saved_and_older_files_keep_their_rules(model_copy, tmp_path):
    model = load_model(model_copy)
    assert model.rules_weight == 0.5  # the tiny model was trained with the default
    model.rules_weight = 0.25
    model.save(tmp_path / "again")
    assert load_model(tmp_path / "again").rules_weight == 0.25
    # a file saved before the option: its label rules let the condition task decide alone, as
    # they did when it was saved
    config = json.loads((model_copy / "model.json").read_text(encoding="utf-8"))
    del config["rules_weight"]
    (model_copy / "model.json").write_text(json.dumps(config), encoding="utf-8")
    assert load_model(model_copy).rules_weight == 0.0


def test_model_saved_before_the_concept_view_loads_without_it(model_copy):
    config = json.loads((model_copy / "model.json").read_text(encoding="utf-8"))
    del config["features"]["concepts"]
    (model_copy / "model.json").write_text(json.dumps(config), encoding="utf-8")
    assert load_model(model_copy).features_.concepts is False


# --- damaged or hostile model directories (a probe of the loader, session 7): each once crashed
# inside numpy/json/pathlib, hung, or loaded and then gave NaN scores or crashed at predict time


def _npz_with(path, name, data):
    """arrays.npz with one member replaced by raw bytes, checksum recomputed."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(path / "arrays.npz") as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.namelist():
            target.writestr(item, data if item == name else source.read(item))
    _set_file(path, "arrays.npz", buffer.getvalue())


def _set_file(path, name, data):
    (path / name).write_bytes(data)
    config = json.loads((path / "model.json").read_text(encoding="utf-8"))
    config["files"][name] = hashlib.sha256(data).hexdigest()
    (path / "model.json").write_text(json.dumps(config), encoding="utf-8")


def _huge_npy_header():
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    header += " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00" * 64


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: _npz_with(d, "intent/C.npy", b"junk"), r"arrays.npz cannot be read|'intent/C' is"),
        (lambda d: _npz_with(d, "intent/C.npy", _huge_npy_header()), r"arrays.npz cannot be read"),
        (
            lambda d: _set_file(d, "arrays.npz", _npy_bytes()),
            r"not an .npz archive",
        ),
        (
            lambda d: _change_array(d, "intent/intercept", lambda a: a.astype(np.longdouble)),
            r"expected float32/float64",
        ),
        (
            lambda d: _change_array(d, "intent/coef", lambda a: a * 0 + 1e30),
            r"'intent/coef' has values outside",
        ),
        (lambda d: _change_array(d, "idf", lambda a: a * 0), r"'idf' has values outside"),
        (
            lambda d: _change_array(d, "intent/thresholds", lambda a: a + 2),
            r"'intent/thresholds' has values outside",
        ),
    ],
)
def test_damaged_arrays_give_a_model_file_error(model_copy, damage, message):
    damage(model_copy)
    with pytest.raises(ModelFileError, match=message):
        load_model(model_copy)


def _npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def _change_array(path, key, change):
    arrays = _arrays(path)
    arrays[key] = change(arrays[key])
    _replace_arrays(path, arrays)


def _edit_config(path, edit):
    config = json.loads((path / "model.json").read_text(encoding="utf-8"))
    edit(config)
    (path / "model.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(format_version=True), r"format_version True is not a version number"),
        (lambda c: c.update(format_version=0), r"format_version 0 is not a version number"),
        (lambda c: c.update(features=[1]), r"'features' is not an object"),
        (lambda c: c.update(review=[1]), r"'review' is not an object"),
        (lambda c: c["features"].update(abbreviations=["a"]), r"bad feature options"),
        (lambda c: c["review"].update(band=0.9), r"review.band must be a number in \[0, 0.5\)"),
        (
            lambda c: c["tasks"]["intent"]["labels"].__setitem__(1, c["tasks"]["intent"]["labels"][0]),
            "malformed",
        ),
        (lambda c: c["tasks"]["intent"]["labels"].__setitem__(1, ""), "malformed"),
        (
            lambda c: c.update(label_rules={"complaint_type": {"none_when": {"nosuch": ["praise"]}}}),
            "'nosuch'",
        ),
        (lambda c: c.update(label_rules={"complaint_type": {"none_when": {"intent": ["zzz"]}}}), r"no label"),
        (
            lambda c: c.update(label_rules={"complaint_type": {"none_when": ["intent"]}}),
            r"must map tasks to lists",
        ),
        (lambda c: c.update(label_rules={"complaint_type": {"always": {}}}), r"takes 'none_when'"),
        (lambda c: c.update(label_rules={"intent": {"none_when": {}}}), r"must be a multilabel task"),
        (lambda c: c.update(rules_weight=-1), r"rules_weight must be a number in \[0, 100\], got -1"),
        (lambda c: c.update(rules_weight=True), r"rules_weight must be a number in \[0, 100\], got True"),
        (lambda c: c.update(rules_weight="0.5"), r"rules_weight must be a number in \[0, 100\], got '0.5'"),
        # training-only options: loaded unchecked once, so a refit failed on them much later
        (
            lambda c: c["params"].update(cv_groups=5),
            r"params: cv_groups must be a column name or None, got 5",
        ),
        (lambda c: c["params"].update(n_folds=1), r"params: n_folds must be a whole number >= 2, got 1"),
        (lambda c: c["params"].update(C_grid=[]), r"params: C_grid must be a non-empty tuple"),
        (
            lambda c: c["params"].update(char_weight=0),
            r"params: char_weight must be a number in \(0, 100\], got 0",
        ),
    ],
)
def test_inconsistent_model_json_gives_a_model_file_error_at_load(model_copy, edit, message):
    _edit_config(model_copy, edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(model_copy)


def test_deeply_nested_json_and_odd_vocabularies_are_refused(model_copy):
    (model_copy / "model.json").write_text('{"format": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(ModelFileError, match=r"model.json is not valid JSON"):
        load_model(model_copy)


@pytest.mark.parametrize(
    ("vocabulary", "message"),
    [
        (lambda v: [v[0], *v[:-1]], "listed twice"),
        (lambda v: [], "no features"),
        # each a name the loader must refuse (the check runs over all names at once)
        *[
            (lambda v, bad=bad: [*v[:-1], bad], "expected a list of feature names like 'w|mạng yếu'")
            for bad in (1, None, ["w|a"], "", "w", "x|mạng", "w:mạng", "ŵ|mạng", "w\u01c0mạng", "|w")
        ],
    ],
)
def test_a_vocabulary_with_a_name_twice_or_none_is_refused(tiny_model_dir, tmp_path, vocabulary, message):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    names = vocabulary(json.loads((copy / "vocabulary.json").read_text(encoding="utf-8")))
    _set_file(copy, "vocabulary.json", json.dumps(names).encode())
    _edit_config(copy, lambda c: c.update(n_features=len(names)))
    with pytest.raises(ModelFileError, match=message):
        load_model(copy)


def test_a_fifo_or_a_device_in_the_model_directory_is_refused_not_read(model_copy):
    import os

    (model_copy / "arrays.npz").unlink()
    os.symlink("/dev/zero", model_copy / "arrays.npz")
    with pytest.raises(ModelFileError, match=r"arrays.npz is not a regular file"):
        load_model(model_copy)
    (model_copy / "model.json").unlink()
    os.mkfifo(model_copy / "model.json")  # reading it would wait for a writer for ever
    with pytest.raises(ModelFileError, match=r"model.json is not a regular file"):
        load_model(model_copy)


@pytest.mark.parametrize("path", [123, b"models", ["x"], ""])
def test_a_path_that_is_not_a_directory_name_is_refused(path):
    with pytest.raises(ModelFileError, match="a model is a directory path"):
        vnfeedback.load(path)


def test_saving_onto_a_file_or_under_one_is_refused_by_name(tiny_model, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match=r"'.*file' is a file; a model is saved as a directory"):
        tiny_model.save(tmp_path / "file")
    with pytest.raises(ModelFileError, match=r"cannot make the directory .*: a file is in the way"):
        tiny_model.save(tmp_path / "file" / "model")
    assert (tmp_path / "file").read_text() == "x"


# --- the batch reader's tables, saved with the model (session 12): a loaded model takes them
# instead of deriving them from the ~180,000 feature names before its first batch


def _reader_fields(reader):
    """Everything a fresh ``_BatchReader`` holds, as plain comparable values."""
    fields = {
        "syllable": list(reader.syllable.items()),
        "stripped": list(reader.stripped.items()),
        "raw": list(reader.raw.items()),
        "long_phrases": reader.long_phrases,
    }
    for name in (
        "to_stripped",
        "flags",
        "negated",
        "row_offsets",
        "row_columns",
        "raw_offsets",
        "raw_syllables",
    ):
        fields[name] = getattr(reader, name).view().tolist()
    lookups = [(f"ngram {view}{n}", lookup) for view, n, lookup in reader.ngrams]
    lookups += [(f"phrase {n}", lookup) for n, lookup in sorted(reader.phrases.items())]
    for name, lookup in [*lookups, ("long_starts", reader.long_starts)]:
        counts = None if lookup.counts is None else lookup.counts.tolist()
        fields[name] = (lookup.keys.tolist(), lookup.values.tolist(), lookup.first.tolist(), counts)
    return fields


def _assert_same_reader(model):
    from vnfeedback.features import _BatchReader

    x = model.features_
    assert x._reader_state is not None  # the file held the tables
    adopted, derived = _reader_fields(_BatchReader(x, x._reader_state)), _reader_fields(_BatchReader(x))
    assert adopted.keys() == derived.keys()
    for name in derived:
        assert adopted[name] == derived[name], name


def test_the_bundled_models_saved_reader_tables_equal_derived_ones():
    """Fails when the reader derives its tables differently from what the bundled model's file holds
    without ``READER_STATE_VERSION`` being raised (then every loaded model would read text wrongly)."""
    _assert_same_reader(vnfeedback.load())


@pytest.mark.parametrize(
    "options",
    [
        {"negation": True, "concepts": True},
        {"word_ngrams": (1, 2), "stripped_ngrams": (2, 3), "char_ngrams": (0, 0)},
    ],
)
def test_saved_reader_tables_round_trip_with_other_feature_options(small_rows, tmp_path, options):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vnfeedback.VnfeedbackWarning)
        model = vnfeedback.train(small_rows, tasks={"intent": "single"}, n_folds=2, random_state=0, **options)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    _assert_same_reader(loaded)
    texts = [r["text"] for r in small_rows] + TEXTS
    assert loaded.predict_many(texts) == model.predict_many(texts)


def _drop_reader_tables(path):
    arrays = {k: v for k, v in _arrays(path).items() if not k.startswith("reader/")}
    _replace_arrays(path, arrays)


@pytest.mark.parametrize(
    "change",
    [
        _drop_reader_tables,  # a file saved before the tables were
        lambda p: _change_array(p, "reader/version", lambda v: v + 1),  # another layout
    ],
)
def test_a_file_without_usable_reader_tables_derives_them_and_predicts_the_same(
    tiny_model, model_copy, change
):
    change(model_copy)
    loaded = load_model(model_copy)
    assert loaded.features_._reader_state is None
    assert loaded.predict_many(TEXTS) == tiny_model.predict_many(TEXTS)


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ("reader/row_columns", lambda v: v + 10**9, r"'row_columns' has values outside \[0, \d+\)"),
        ("reader/w2_columns", lambda v: -v - 1, r"'w2_columns' has values outside"),
        ("reader/w2_keys", lambda v: v[:-1], r"'w2_keys' and 'w2_columns' differ in length"),
        ("reader/flags", lambda v: v[:-1], r"'flags' has \d+ values, not one per syllable"),
        ("reader/row_lengths", lambda v: v + 1, r"'row_lengths' and 'row_columns' disagree"),
        (
            "reader/to_stripped",
            lambda v: v.astype(np.float64),
            r"'to_stripped' is missing or not a 1-d int64",
        ),
        ("reader/syllables", lambda v: np.append(v, np.uint8(0xFF)), r"'syllables' is not UTF-8 text"),
        ("reader/stripped", lambda v: np.concatenate([v, v]), r"'stripped' does not hold distinct strings"),
    ],
)
def test_damaged_reader_tables_give_a_model_file_error(model_copy, key, change, message):
    _change_array(model_copy, key, change)
    with pytest.raises(ModelFileError, match=message):
        load_model(model_copy)


def test_a_model_with_more_syllables_than_a_reader_keeps_is_saved_without_its_tables(
    tiny_model, tmp_path, monkeypatch
):
    """Its tables would be refused at load: the file must not hold them, and the model must load."""
    from vnfeedback import features

    monkeypatch.setattr(features, "_MAX_IDS", 5)
    tiny_model.save(tmp_path / "m")
    assert not [key for key in _arrays(tmp_path / "m") if key.startswith("reader/")]
    monkeypatch.undo()
    loaded = load_model(tmp_path / "m")
    assert loaded.features_._reader_state is None
    assert loaded.predict_many(TEXTS) == tiny_model.predict_many(TEXTS)


def test_a_missing_reader_table_is_named(model_copy):
    arrays = _arrays(model_copy)
    del arrays["reader/negated"]
    _replace_arrays(model_copy, arrays)
    with pytest.raises(
        ModelFileError, match=r"arrays.npz: reader table 'negated' is missing.*re-save the model"
    ):
        load_model(model_copy)


def test_resaving_a_loaded_model_keeps_its_weights_float32(tiny_model_dir, tmp_path):
    """A loaded model holds its weights as float64 (exactly): saving it again once doubled the file."""
    load_model(tiny_model_dir).save(tmp_path / "again")
    before, after = _arrays(tiny_model_dir), _arrays(tmp_path / "again")
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].dtype == after[key].dtype, key
        assert np.array_equal(before[key], after[key]), key
    assert before["intent/coef"].dtype == np.float32
