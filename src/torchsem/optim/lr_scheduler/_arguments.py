"""Argument checks shared by the schedulers (one parameter group, numbers that are numbers)."""

from __future__ import annotations

import numbers
from typing import Any


def number(name: str, value: Any) -> Any:
    """``value`` unchanged if it is a real number (not a bool), else a TypeError naming the argument.

    The value is kept as given (an int stays an int, a numpy float32 stays one): PyTorch does
    its scheduler arithmetic on whatever Python number the group holds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    return value


def integer(name: str, value: Any) -> int:
    """``value`` if it is an int (not a bool), else a TypeError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    return int(value)


def one_group(name: str, value: Any) -> Any:
    """PyTorch's ``_format_param`` for an optimizer with one parameter group.

    A list or tuple must hold one value per group (torchsem's optimizers have one group);
    PyTorch's ValueError otherwise.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has 1."
            )
        return value[0]
    return value


def one_function(value: Any) -> Any:
    """LambdaLR's and MultiplicativeLR's ``lr_lambda``: one function, or a list holding one."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"Expected 1 lr_lambdas, but got {len(value)}")
        return value[0]
    return value
