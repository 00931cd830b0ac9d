"""Named outputs of a scenario program and their conversion to numpy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..convert import host_copy

OutputValue = np.ndarray | str | None
"""One named result: a numpy array (float, int or bool), a string (an error message), or None.

None stands for PyTorch's ``.grad is None``; a string for the message of an error a
program raised on purpose (for example the no_grad ``RuntimeError``).
"""

Outputs = dict[str, OutputValue]
Inputs = Mapping[str, Any]

NO_ERROR = "no error"
"""The text output of a program that was expected to raise and did not (recorded as this text).

Both sides of a scenario return it in place of an error message, so "PyTorch raised and JAX
did not" is a compared difference; the one spelling, because recordings hold it verbatim.
"""


def to_numpy(value: Any) -> OutputValue:
    """Convert a torch tensor, JAX array, Python scalar, string or None to an output value.

    Torch tensors are converted through duck typing (``detach``/``numpy``) so that this
    module never imports torch.
    """
    if value is None or isinstance(value, str):
        return value
    return host_copy(value)


def as_outputs(values: Mapping[str, Any]) -> Outputs:
    """Convert every value of a mapping with :func:`to_numpy`, keeping the key order."""
    if not isinstance(values, Mapping):
        raise TypeError(f"a scenario program must return a mapping of named outputs, got {type(values).__name__}")
    outputs: Outputs = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key or "::" in key:
            raise ValueError(f"output names must be non-empty strings without '::', got {key!r}")
        outputs[key] = to_numpy(value)
    return outputs
