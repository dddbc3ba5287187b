"""The errors vnfeedback raises, one small hierarchy so callers can catch ours precisely.

::

    VnfeedbackError                      base of everything below
    ├── TextTypeError(TypeError)         a text that is not a str (None, a number, bytes)
    ├── DataError(ValueError)            training/evaluation/batch data that cannot be used
    ├── ModelFileError(ValueError)       a model directory that is missing, corrupt or tampered with
    └── ParameterError(ValueError)       an option with a value outside its allowed set

    VnfeedbackWarning(UserWarning)       something usable but worth a look (a rare label, ...)

Each error also subclasses the built-in that fits, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class VnfeedbackError(Exception):
    """Base class of every error vnfeedback raises on purpose."""


class TextTypeError(VnfeedbackError, TypeError):
    """A text to classify is not a ``str``."""


class DataError(VnfeedbackError, ValueError):
    """Data given to train, evaluate or classify cannot be used as it is."""


class ModelFileError(VnfeedbackError, ValueError):
    """A model directory is missing, unreadable, corrupt, or was changed after it was saved."""


class ParameterError(VnfeedbackError, ValueError):
    """An option has a value outside its allowed set."""


class VnfeedbackWarning(UserWarning):
    """Something in the data or the model deserves a look but does not stop the work."""
