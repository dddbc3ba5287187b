"""vnfeedback: tag Vietnamese telecom customer feedback by complaint type, product area and intent.

>>> import vnfeedback
>>> model = vnfeedback.load()                       # the bundled telecom model, offline
>>> model.predict("Mạng 4G chập chờn, gọi tổng đài chờ 20 phút").labels["product_area"]
'mobile_data'

Public names: ``load``, ``train``, ``FeedbackClassifier``, ``Prediction`` and the errors. Everything
else is importable but not part of the contract (see ``shared/design/api.md``).
"""

from __future__ import annotations

__version__ = "0.1.0"

import os
from typing import Any

from .errors import (
    DataError,
    ModelFileError,
    ParameterError,
    TextTypeError,
    VnfeedbackError,
    VnfeedbackWarning,
)

__all__ = [
    "load",
    "train",
    "FeedbackClassifier",
    "Prediction",
    "VnfeedbackError",
    "DataError",
    "ModelFileError",
    "ParameterError",
    "TextTypeError",
    "VnfeedbackWarning",
    "__version__",
]

_LAZY = {"FeedbackClassifier", "Prediction"}


def __getattr__(name: str) -> Any:
    # numpy/scipy load on first use, so `import vnfeedback` and `vnfeedback --help` stay fast
    if name in _LAZY:
        from . import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'vnfeedback' has no attribute {name!r}")


_loaded: dict[str, Any] = {}


def load(path: str | os.PathLike | None = None) -> Any:
    """Load a model directory, or the bundled default telecom model when ``path`` is None.

    The bundled model is loaded once per process and shared (models are read-only when
    predicting, so this is thread-safe).

    Parameters
    ----------
    path : str or path-like, optional
        A directory written by ``model.save()``.

    Returns
    -------
    FeedbackClassifier

    Raises
    ------
    ModelFileError
        If the directory is missing, incomplete, corrupt or was changed after saving.

    Example
    -------
    >>> model = vnfeedback.load()
    >>> sorted(model.tasks)
    ['complaint_type', 'intent', 'product_area']
    """
    from .persistence import bundled_model_path, load_model

    if path is None:
        if "bundled" not in _loaded:
            _loaded["bundled"] = load_model(bundled_model_path())
        return _loaded["bundled"]
    return load_model(path)


def train(
    data: Any,
    *,
    tasks: dict[str, str] | None = None,
    text_column: str = "text",
    random_state: int = 0,
    **options: Any,
) -> Any:
    """Train a model on labelled data.

    Parameters
    ----------
    data : path, DataFrame or iterable of dicts
        ``.csv``/``.jsonl``/``.parquet`` (``.gz`` for csv/jsonl); multi-label values are lists
        (JSON/Parquet) or ``"a|b"`` (CSV); an empty list or ``""`` means no label.
    tasks : dict, optional
        Task -> ``"single"`` or ``"multilabel"``; None infers them (list-valued column -> multilabel).
    text_column : str
    random_state : int
    **options
        Any other ``FeedbackClassifier`` parameter (``tokenizer=``, ``C_grid=``, ...); an unknown
        name is an error, not ignored.

    Returns
    -------
    FeedbackClassifier

    Example
    -------
    >>> rows = [{"text": "sóng yếu quá", "intent": "complaint"}, ...]  # doctest: +SKIP
    >>> model = vnfeedback.train(rows, tasks={"intent": "single"})  # doctest: +SKIP
    """
    import inspect

    from .classifier import FeedbackClassifier

    allowed = set(inspect.signature(FeedbackClassifier).parameters) - {"tasks", "text_column", "random_state"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ParameterError(f"unknown option(s) {unknown} for train(); allowed: {sorted(allowed)}")
    model = FeedbackClassifier(tasks=tasks, text_column=text_column, random_state=random_state, **options)
    return model.fit(data)
