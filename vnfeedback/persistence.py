"""Model directories: JSON and ``.npz`` only, written atomically, checked on load, never unpickled.

A model directory holds::

    model.json        format, version, feature options, tasks and labels, review rule, and the
                      SHA-256 of each file below (so a changed or truncated file is caught)
    vocabulary.json   the feature names, in column order
    arrays.npz        idf and, per task, coefficients, intercepts, calibration and thresholds;
                      ``reader/*``: the batch reader's tables (``features._BatchReader.export``),
                      which a loaded model takes instead of deriving them from the feature names
    card.json         the model card: training data size and hash, label counts, metrics, versions

``np.load(..., allow_pickle=False)`` reads the arrays: an object array in the file is refused,
not executed. Shapes, dtypes and finiteness are checked against ``model.json``; any problem gives a
``ModelFileError`` that names the file and how to fix it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from importlib import resources
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .classifier import _plain_rules, _side_by_side, _weight
from .errors import ModelFileError, ParameterError
from .features import VIEW_NAMES, FeatureExtractor, _BatchReader, reader_state
from .models import TASK_KINDS, TaskModel

__all__ = ["save_model", "load_model", "bundled_model_path", "FORMAT", "FORMAT_VERSION"]

FORMAT = "vnfeedback-model"
FORMAT_VERSION = 1
_FILES = ("vocabulary.json", "arrays.npz", "card.json")
_ARRAY_NAMES = ("coef", "intercept", "calib_coef", "calib_intercept", "thresholds", "C")
# What a trained model's numbers can be (the bundled model's weights are below 6, its idf from 1 to
# 10): far larger weights or a vanishing idf give NaN or infinite scores, so a file with them is
# damaged, not a model.
_LARGEST = 1e6
_SMALLEST_IDF = 1e-3
DEFAULT_MODEL = "telecom-v1"


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Where the bundled model ``name`` is: ``vnfeedback/_bundled/<name>`` when installed (setup.cfg
    maps the top-level ``models/`` folder there), or ``models/<name>`` in a source checkout."""
    installed = Path(str(resources.files("vnfeedback").joinpath("_bundled", name)))
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parent.parent / "models" / name
    return checkout if checkout.is_dir() else installed


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=False).encode("utf-8")


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` to directory ``path`` atomically (temporary directory, then rename).

    An existing model directory at ``path`` is replaced only once the new one is complete.
    """
    model._check_fitted()
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ModelFileError(
            f"{str(target)!r} is a file; a model is saved as a directory: choose another path"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ModelFileError(
            f"cannot make the directory {str(target.parent)!r}: a file is in the way; choose another path"
        ) from None
    features: FeatureExtractor = model.features_
    arrays = {"idf": features.idf_}
    for task, task_model in model.models_.items():
        for name in _ARRAY_NAMES:
            arrays[f"{task}/{name}"] = getattr(task_model, name)
        # training rounds the weights to float32, and a loaded model widens them (exactly) to
        # float64: store them narrow again, so that re-saving a model does not double its file
        narrow = task_model.coef.astype(np.float32)
        if np.array_equal(narrow, task_model.coef):
            arrays[f"{task}/coef"] = narrow
    # the batch reader's tables, so that a loaded model need not derive them from the feature names
    # (an older vnfeedback ignores them; a newer layout is derived again)
    if features._batchable():
        state = _BatchReader(features).export()
        for name, value in (state or {}).items():
            arrays[f"reader/{name}"] = value
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    payloads = {
        "vocabulary.json": _json_bytes(features.feature_names_),
        "arrays.npz": buffer.getvalue(),
        "card.json": _json_bytes(model.card_),
    }
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vnfeedback_version": __version__,
        "text_column": model.text_column_,
        "features": features.get_params(),
        "n_features": len(features.feature_names_),
        "tasks": {task: {"kind": m.kind, "labels": m.labels} for task, m in model.models_.items()},
        "review": {"min_proba": model.review_min_proba, "band": model.review_band},
        "label_rules": _plain_rules(model.label_rules),
        "rules_weight": float(model.rules_weight),
        "params": model.card_.get("params", {}),
        "files": {name: _sha256(data) for name, data in payloads.items()},
    }
    payloads["model.json"] = _json_bytes(config)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o777 & ~umask)  # mkdtemp makes it private; a model directory is not
    try:
        for name, data in payloads.items():
            with open(temporary / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if target.exists():
            if not (target / "model.json").exists() and any(target.iterdir()):
                raise ModelFileError(
                    f"{str(target)!r} exists and is not a vnfeedback model directory; refusing to "
                    f"replace it: choose another path or remove it"
                )
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.rename(target, old / "model")
            os.rename(temporary, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _read(directory: Path, name: str) -> bytes:
    try:
        if not stat.S_ISREG(os.stat(directory / name).st_mode):  # a FIFO would hang, /dev/zero never end
            raise ModelFileError(f"{directory / name} is not a regular file; the model directory is damaged")
        return (directory / name).read_bytes()
    except FileNotFoundError:
        raise ModelFileError(
            f"{directory / name} is missing; the model directory is incomplete: copy it again or re-save it"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"{directory / name} cannot be read: {exc.strerror}") from None


def _parse_json(directory: Path, name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{directory / name} is not valid JSON ({exc}); the file is corrupt") from None


def _feature_names(names: list) -> bool:
    """Whether every item is a string like "w|mạng yếu": a view code, a bar, then anything. Checked
    with loops that run in C (a generator over the ~180,000 names was a quarter of a load)."""
    if not names:
        return True
    if set(map(type, names)) != {str} or min(map(len, names)) < 2:
        return False
    return set(map(itemgetter(0), names)) <= set(VIEW_NAMES) and set(map(itemgetter(1), names)) == {"|"}


def _check(condition: bool, directory: Path, name: str, what: str) -> None:
    if not condition:
        raise ModelFileError(f"{directory / name}: {what}; the model files are inconsistent or tampered with")


def load_model(path: str | os.PathLike) -> Any:
    """Read a model directory written by ``save_model``; never executes code from the files.

    Raises
    ------
    ModelFileError
        Missing directory or file, bad JSON, checksum mismatch, wrong shapes or dtypes, a newer
        format version.
    """
    from .classifier import FeedbackClassifier

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ModelFileError(
            f"a model is a directory path (str or os.PathLike), got {path!r}; "
            f"call vnfeedback.load() for the bundled model"
        )
    directory = Path(path)
    if not directory.is_dir():
        raise ModelFileError(
            f"no model directory at {str(directory)!r}; pass a directory written by model.save(), "
            f"or call vnfeedback.load() for the bundled model"
        )
    config = _parse_json(directory, "model.json", _read(directory, "model.json"))
    _check(
        isinstance(config, dict) and config.get("format") == FORMAT,
        directory,
        "model.json",
        f"not a {FORMAT} file",
    )
    version = config.get("format_version")
    _check(
        isinstance(version, int) and not isinstance(version, bool) and version >= 1,
        directory,
        "model.json",
        f"format_version {version!r} is not a version number",
    )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{directory / 'model.json'}: format version {version!r} is newer than this vnfeedback "
            f"({__version__}) reads ({FORMAT_VERSION}); upgrade vnfeedback"
        )
    files = config.get("files")
    _check(
        isinstance(files, dict) and set(files) == set(_FILES),
        directory,
        "model.json",
        "the list of files is wrong",
    )
    raw = {}
    for name in _FILES:
        data = _read(directory, name)
        if _sha256(data) != files[name]:
            raise ModelFileError(
                f"{directory / name} does not match the checksum in model.json: the file was "
                f"changed or truncated after saving; restore it or re-save the model"
            )
        raw[name] = data
    vocabulary = _parse_json(directory, "vocabulary.json", raw["vocabulary.json"])
    card = _parse_json(directory, "card.json", raw["card.json"])
    _check(
        isinstance(vocabulary, list) and _feature_names(vocabulary),
        directory,
        "vocabulary.json",
        "expected a list of feature names like 'w|mạng yếu'",
    )
    n_features = len(vocabulary)
    _check(n_features > 0, directory, "vocabulary.json", "no features")
    _check(
        config.get("n_features") == n_features,
        directory,
        "vocabulary.json",
        f"{n_features} features, model.json says {config.get('n_features')!r}",
    )
    try:
        npz = np.load(io.BytesIO(raw["arrays.npz"]), allow_pickle=False)
        _check(isinstance(npz, np.lib.npyio.NpzFile), directory, "arrays.npz", "not an .npz archive")
        with npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, MemoryError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{directory / 'arrays.npz'} cannot be read as numpy arrays ({exc})") from None

    def array(key: str, shape: tuple[int, ...], low: float = -_LARGEST, high: float = _LARGEST) -> np.ndarray:
        _check(key in arrays, directory, "arrays.npz", f"array {key!r} is missing")
        value = arrays[key]
        _check(
            isinstance(value, np.ndarray)
            and value.dtype in (np.float32, np.float64)
            and value.shape == shape,
            directory,
            "arrays.npz",
            f"array {key!r} is {getattr(value, 'dtype', type(value).__name__)} of shape "
            f"{getattr(value, 'shape', '?')}, expected float32/float64 {shape}",
        )
        _check(bool(np.isfinite(value).all()), directory, "arrays.npz", f"array {key!r} has NaN or inf")
        _check(
            bool(((value >= low) & (value <= high)).all()),
            directory,
            "arrays.npz",
            f"array {key!r} has values outside [{low:g}, {high:g}] (from {value.min():g} to {value.max():g})",
        )
        return value

    tasks = config.get("tasks")
    _check(isinstance(tasks, dict) and tasks, directory, "model.json", "no tasks")
    fields_of: dict[str, dict] = {}
    for task, spec in tasks.items():
        _check(
            isinstance(spec, dict)
            and spec.get("kind") in TASK_KINDS
            and isinstance(spec.get("labels"), list)
            and len(spec["labels"]) >= 2 - (spec.get("kind") == "multilabel")
            and all(isinstance(label, str) and label for label in spec["labels"])
            and len(set(spec["labels"])) == len(spec["labels"]),
            directory,
            "model.json",
            f"task {task!r} is malformed",
        )
        k = len(spec["labels"])
        calib_shape = (k, k) if spec["kind"] == "single" else (k,)
        fields_of[task] = dict(
            kind=spec["kind"],
            labels=list(spec["labels"]),
            coef=array(f"{task}/coef", (k, n_features)),
            intercept=array(f"{task}/intercept", (k,)),
            calib_coef=array(f"{task}/calib_coef", calib_shape),
            calib_intercept=array(f"{task}/calib_intercept", (k,)),
            thresholds=array(f"{task}/thresholds", (k,), 0.0, 1.0),
            C=array(f"{task}/C", (k,), 0.0),
        )
    # every task's weights go straight from the file into one array, side by side: what prediction
    # reads (``FeedbackClassifier._stack_coef``), each task's ``coef`` a view of it
    stacked, views = _side_by_side([fields["coef"] for fields in fields_of.values()], n_features)
    models = {
        task: TaskModel(**{**fields, "coef": view})
        for (task, fields), view in zip(fields_of.items(), views, strict=True)
    }
    # Options missing from an older file take the class defaults; only what was saved is passed on.
    for key in ("features", "params", "review"):
        _check(isinstance(config.get(key) or {}, dict), directory, "model.json", f"{key!r} is not an object")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in (config.get("features") or {}).items()}
    options.setdefault("concepts", False)  # a model saved before the concept view existed has none
    # every file has saved its negation option; one without it comes from when the view was always on
    options.setdefault("negation", True)
    options["abbreviations"] = options.get("abbreviations") or None
    params = config.get("params") or {}
    for name in (
        "char_weight",
        "C_grid",
        "class_weight",
        "nb_weighting",
        "augment_stripped",
        "n_folds",
        "cv_groups",
        "random_state",
    ):
        if name in params:
            options[name] = tuple(params[name]) if isinstance(params[name], list) else params[name]
    review = config.get("review") or {}
    for name, key, fits, allowed in (
        ("review_min_proba", "min_proba", lambda v: 0 < v < 1, "in (0, 1)"),
        ("review_band", "band", lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    ):
        if key in review:
            value = review[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not fits(value):
                raise ModelFileError(
                    f"{directory / 'model.json'}: review.{key} must be a number {allowed}, got {value!r}"
                )
            options[name] = float(value)
    # a file saved before the option existed: its rules let the condition task decide alone
    rules_weight = config.get("rules_weight", 0.0)
    if not _weight(rules_weight):
        raise ModelFileError(
            f"{directory / 'model.json'}: rules_weight must be a number in [0, 100], got {rules_weight!r}"
        )
    try:
        model = FeedbackClassifier(
            tasks={task: spec["kind"] for task, spec in tasks.items()},
            text_column=config.get("text_column", "text"),
            label_rules=config.get("label_rules"),
            rules_weight=float(rules_weight),
            **options,
        )
        features = FeatureExtractor(**model.feature_params())
        features.restore(vocabulary, array("idf", (n_features,), _SMALLEST_IDF))
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{directory / 'model.json'}: bad feature options ({exc})") from None
    _check(
        len(features.vocabulary_) == n_features,
        directory,
        "vocabulary.json",
        "a feature name is listed twice",
    )
    try:  # training options a later refit would reject (it reads them from here)
        model._validate_params()
    except ParameterError as exc:
        raise ModelFileError(f"{directory / 'model.json'}: params: {exc}") from None
    try:  # rules naming a task or label this model does not have would fail at the first predict
        model._check_rules(
            {task: spec["kind"] for task, spec in tasks.items()},
            {task: spec["labels"] for task, spec in tasks.items()},
        )
    except ParameterError as exc:
        raise ModelFileError(f"{directory / 'model.json'}: {exc}") from None
    try:
        features._reader_state = reader_state(
            features, {key[7:]: value for key, value in arrays.items() if key.startswith("reader/")}
        )
    except ValueError as exc:
        raise ModelFileError(f"{directory / 'arrays.npz'}: {exc}; re-save the model") from None
    model.features_ = features
    model.models_ = models
    model._stacked = (tuple(views), stacked)
    model.text_column_ = model.text_column
    model.card_ = card if isinstance(card, dict) else {}
    return model
