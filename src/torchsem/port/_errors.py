"""The port's error type."""

from __future__ import annotations


class PortError(ValueError):
    """A PyTorch module the port cannot reproduce: an unsupported layer or op, or untraceable Python.

    The message names the graph node, the op and where in the PyTorch source it was called,
    and what is supported instead; nothing is approximated silently.
    """
