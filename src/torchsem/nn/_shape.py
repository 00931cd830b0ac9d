"""Shape modules: ``torch.nn.Flatten``/``Unflatten``, and channel dropout (``Dropout1d/2d/3d``).

Channel dropout lives here because what it adds to :class:`~torchsem.nn.Dropout` is shape: the
mask has one entry per channel (the input's layout decides which axis that is), broadcast over
the spatial axes. The probability check, the ``x * 0`` of ``p == 1`` and the kept entries'
scaling are :mod:`torchsem.nn._dropout`'s own pieces.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._activations import _wrap_dim
from ._dropout import _check_probability, dropout_call
from ._errors import InputError

Array = jax.Array


def _int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    return int(value)


class Flatten(nn.Module):
    """Merge axes ``start_dim`` .. ``end_dim`` into one, as ``torch.nn.Flatten(start_dim=1, end_dim=-1)``.

    C order (the last axis fastest), as PyTorch. A 0-d input has the dims ``[-1, 0]`` and
    becomes ``(1,)`` (so the default ``start_dim=1`` raises PyTorch's IndexError on it, and on a
    1-d input).
    """

    start_dim: int = 1
    end_dim: int = -1

    def __post_init__(self) -> None:
        _int("Flatten", "start_dim", self.start_dim)
        _int("Flatten", "end_dim", self.end_dim)
        super().__post_init__()

    def __call__(self, input: Array) -> Array:
        """Flatten; PyTorch's IndexError for an axis out of range, RuntimeError for start after end."""
        input = jnp.asarray(input)
        start = _wrap_dim(self.start_dim, input.ndim)
        end = _wrap_dim(self.end_dim, input.ndim)
        if start > end:
            raise InputError("flatten() has invalid args: start_dim cannot come after end_dim")
        if input.ndim == 0:
            return input.reshape(1)
        shape = (*input.shape[:start], math.prod(input.shape[start : end + 1]), *input.shape[end + 1 :])
        return input.reshape(shape)


class Unflatten(nn.Module):
    """Split axis ``dim`` into ``unflattened_size``, as ``torch.nn.Unflatten(dim, unflattened_size)``.

    One entry of ``unflattened_size`` may be -1 (inferred). A list is kept as a tuple.
    """

    dim: int
    unflattened_size: tuple[int, ...]

    def __post_init__(self) -> None:
        size = self.unflattened_size
        if not isinstance(size, (tuple, list)):
            raise TypeError(f"unflattened_size must be a tuple of ints, but found type {type(size).__name__}")
        for position, element in enumerate(size):
            if not isinstance(element, int):
                raise TypeError(
                    "unflattened_size must be tuple of ints, "
                    f"but found element of type {type(element).__name__} at pos {position}"
                )
        object.__setattr__(self, "unflattened_size", tuple(size))
        super().__post_init__()

    def __call__(self, input: Array) -> Array:
        """Unflatten; PyTorch's errors for an empty size, a product that does not match, an axis out of range."""
        input = jnp.asarray(input)
        sizes = self.unflattened_size
        if input.ndim == 0:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        axis = _wrap_dim(self.dim, input.ndim)
        if not sizes:
            raise InputError("unflatten: sizes must be non-empty")
        length = input.shape[axis]
        if sizes.count(-1) > 1:
            raise InputError("only one dimension can be inferred")
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            if known == 0 or length % known:
                raise InputError(f"shape '{list(sizes)}' is invalid for input of size {length}")
            sizes = tuple(length // known if s == -1 else s for s in sizes)
        elif known != length:
            raise InputError(
                f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {axis} "
                f"({length}) in the input tensor"
            )
        return input.reshape((*input.shape[:axis], *sizes, *input.shape[axis + 1 :]))


_NOTE = (
    "Note that dropout{n}d exists to provide channel-wise dropout on inputs with {n} spatial dimension{s}, a "
    "channel dimension, and an optional batch dimension (i.e. {lo}D or {hi}D inputs)."
)


class _ChannelDropout(nn.Module):
    """Zero whole channels with probability ``p`` in training, scale the rest by ``1/(1-p)``.

    As :class:`~torchsem.nn.Dropout`: eval mode (``deterministic=True``) and ``p == 0`` return
    the input, ``p == 1`` returns ``x * 0`` (NaN for an infinite or NaN element, as PyTorch),
    training draws from the ``dropout`` rng stream (JAX's bits, not PyTorch's), and the mode is
    given once, to the constructor or the call.
    """

    p: float = 0.5
    inplace: bool = False
    deterministic: bool | None = None
    rng_collection: str = "dropout"

    _spatial = 1

    def __post_init__(self) -> None:
        _check_probability(self.p)
        super().__post_init__()

    def check_rank(self, input: Array) -> None:
        raise NotImplementedError

    def noise_shape(self, input: Array) -> tuple[int, ...]:
        raise NotImplementedError

    def _note(self) -> str:
        n = self._spatial
        return _NOTE.format(n=n, s="" if n == 1 else "s", lo=n + 1, hi=n + 2)

    @nn.compact
    def __call__(self, input: Array, deterministic: bool | None = None, rng: Array | None = None) -> Array:
        """Apply channel dropout.

        Args:
          input: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, floating point.
          deterministic: eval mode when True; exactly one of this and the attribute is given.
          rng: an explicit PRNG key in place of the ``rng_collection`` stream.
        """
        input = jnp.asarray(input)
        name = type(self).__name__
        if not jnp.issubdtype(input.dtype, jnp.inexact):
            raise TypeError(f"{name}: input must be floating point, got {input.dtype}")
        self.check_rank(input)  # PyTorch checks (and warns about) the rank in eval mode too
        return dropout_call(self, input, deterministic, rng, self.noise_shape(input))


def _per_leading(input: Array, leading: int) -> tuple[int, ...]:
    """One mask entry per index of the first ``leading`` axes, broadcast over the rest."""
    if input.ndim < leading:
        raise InputError("Feature dropout requires at least 2 dimensions in the input")
    return input.shape[:leading] + (1,) * (input.ndim - leading)


class Dropout1d(_ChannelDropout):
    """Channel dropout for ``(N, C, L)`` or ``(C, L)``, as ``torch.nn.Dropout1d(p=0.5, inplace=False)``.

    Other ranks raise PyTorch's RuntimeError (in eval mode too). ``inplace`` means nothing for
    immutable arrays.
    """

    def check_rank(self, input: Array) -> None:
        if input.ndim not in (2, 3):
            raise InputError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. {self._note()}")

    def noise_shape(self, input: Array) -> tuple[int, ...]:
        return _per_leading(input, input.ndim - 1)


class Dropout2d(_ChannelDropout):
    """Channel dropout for ``(N, C, H, W)``, as ``torch.nn.Dropout2d(p=0.5, inplace=False)``.

    PyTorch's quirks kept: every rank drops per ``(axis 0, axis 1)`` pair, so a 3-d input is
    read as ``(N, C, L)`` (not as an unbatched ``(C, H, W)``), with PyTorch's warning; ranks
    other than 3 and 4 warn as PyTorch does.
    """

    _spatial = 2

    def check_rank(self, input: Array) -> None:
        if input.ndim not in (3, 4):
            warnings.warn(
                f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will "
                "result in an error in a future release. To retain the behavior and silence this warning, "
                f"please use dropout instead. {self._note()}",
                UserWarning,
                stacklevel=3,
            )
        if input.ndim == 3:
            warnings.warn(
                "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                "This behavior will change in a future release to interpret the input as one without a "
                "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                "please switch to using dropout1d instead.",
                UserWarning,
                stacklevel=3,
            )

    def noise_shape(self, input: Array) -> tuple[int, ...]:
        return _per_leading(input, 2)


class Dropout3d(_ChannelDropout):
    """Channel dropout for ``(N, C, D, H, W)`` or ``(C, D, H, W)``, as ``torch.nn.Dropout3d(p=0.5, inplace=False)``.

    A rank other than 5 is read as unbatched (one mask entry per index of axis 0), with
    PyTorch's warning for ranks other than 4 and 5.
    """

    _spatial = 3

    def check_rank(self, input: Array) -> None:
        if input.ndim not in (4, 5):
            warnings.warn(
                f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and will "
                "result in an error in a future release. To retain the behavior and silence this warning, "
                f"please use dropout instead. {self._note()}",
                UserWarning,
                stacklevel=3,
            )

    def noise_shape(self, input: Array) -> tuple[int, ...]:
        return _per_leading(input, 2 if input.ndim == 5 else 1)
