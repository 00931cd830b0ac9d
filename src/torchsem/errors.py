"""torchsem's error types: bad input where PyTorch raises ``RuntimeError``."""

from __future__ import annotations


class InputError(RuntimeError, ValueError):
    """Bad input that PyTorch rejects with a ``RuntimeError`` (a shape that does not fit the module).

    It is a ``RuntimeError``, so code written against PyTorch (``except RuntimeError``) catches
    it, and a ``ValueError``, the Python convention for a bad argument value. The message
    explains the problem in torchsem's terms and then quotes PyTorch's own message.
    """
