"""Dropout: ``torch.nn.Dropout``'s train/eval behaviour, randomness from the ``dropout`` rng stream."""

from __future__ import annotations

import numbers

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._mode import merge_mode
from ._torch_dropout import active_generator, torch_dropout_mask


def _check_probability(p: float) -> None:
    if not isinstance(p, numbers.Real):
        raise TypeError(f"dropout probability p must be a real number, got {p!r}")
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _scale_kept(input: jax.Array, keep: jax.Array, p: float) -> jax.Array:
    """``input * (keep / (1 - p))`` in the input's dtype, in PyTorch's order of operations.

    PyTorch's CPU kernel builds the noise ``keep / (1 - p)`` in the input's dtype and then
    multiplies, so a dropped element is ``x * 0`` (NaN for an infinite or NaN ``x``, as in
    PyTorch) and a kept one is ``x * (1 / (1 - p))`` rounded as PyTorch rounds it.
    """
    noise = keep.astype(input.dtype) / jnp.asarray(1.0 - p, input.dtype)
    return input * noise


class Dropout(nn.Module):
    """Zero each element with probability ``p`` in training, scale the rest by ``1/(1-p)``; as ``torch.nn.Dropout``.

    ``y = x * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` elementwise when training;
    ``y = x`` in eval mode (``deterministic=True``) and when ``p == 0``; ``y = x * 0`` when
    ``p == 1`` (so, as in PyTorch, an infinite or NaN element becomes NaN rather than 0).

    Training draws its mask from the ``rng_collection`` stream (``'dropout'``): pass
    ``rngs={'dropout': key}`` to ``init``/``apply``. The mask's bits come from JAX's
    generator, so they differ from PyTorch's; its distribution and every deterministic
    behaviour are PyTorch's. Inside ``torchsem.nn.torch_dropout(generator)`` the mask is
    PyTorch's own, bit for bit, drawn from a ``torchsem.random.Generator`` in call order.

    Attributes:
      p: the probability of an element being zeroed, in ``[0, 1]``.
      deterministic: eval mode when True (PyTorch's ``model.eval()``), training when False; give
        it here or to the call, not both (Flax's ``nn.merge_param``). There is no default:
        PyTorch modules start in training mode, but a layer that silently trains where the
        caller meant eval (or the reverse) is the bug torchsem exists to prevent, and
        ``BatchNorm``'s ``use_running_average`` is required in the same way.
      rng_collection: the rng stream the mask is drawn from.

    Reproduces ``torch.nn.Dropout(p=0.5)`` (``inplace`` has no meaning for immutable arrays).
    """

    p: float = 0.5
    deterministic: bool | None = None
    rng_collection: str = "dropout"

    def __post_init__(self) -> None:
        _check_probability(self.p)
        super().__post_init__()

    @nn.compact
    def __call__(self, input: jax.Array, deterministic: bool | None = None, rng: jax.Array | None = None) -> jax.Array:
        """Apply dropout.

        Args:
          input: any shape, floating point.
          deterministic: eval mode when True; exactly one of this and the attribute is given.
          rng: an explicit PRNG key in place of the ``rng_collection`` stream.

        Returns:
          An array of the input's shape and dtype.
        """
        input = jnp.asarray(input)
        if not jnp.issubdtype(input.dtype, jnp.inexact):
            raise TypeError(f"Dropout: input must be floating point, got {input.dtype}")
        return dropout_call(self, input, deterministic, rng, input.shape)


def dropout_call(
    module: nn.Module,
    input: jax.Array,
    deterministic: bool | None,
    rng: jax.Array | None,
    mask_shape: tuple[int, ...],
    draw_order: tuple[int, ...] | None = None,
) -> jax.Array:
    """The body of every dropout module's call: the mode, the special cases, the mask, the scale.

    ``module`` has ``p``, ``deterministic`` and ``rng_collection``; ``mask_shape`` is the shape
    of the Bernoulli mask, broadcast against ``input`` (the input's own shape for ``Dropout``,
    ``(N, C, 1, ...)`` for the channel dropouts). ``draw_order``: the axes in the memory order
    of PyTorch's tensor at this point, when it is a transposed view (``torch_dropout`` draws
    its mask in memory order, as ``bernoulli_`` fills it).
    """
    name = type(module).__name__
    eval_mode = merge_mode(
        name, "deterministic", module.deterministic, deterministic, "True: PyTorch's eval(), False: train()"
    )
    if eval_mode or module.p == 0 or input.size == 0:
        return input
    if module.p == 1:
        return input * jnp.zeros((), input.dtype)
    generator = active_generator()
    if generator is not None and rng is None:
        # Inside torch_dropout: PyTorch's own mask, drawn from its generator in call order.
        if draw_order is None:
            return _scale_kept(input, torch_dropout_mask(generator, mask_shape, module.p), module.p)
        drawn = torch_dropout_mask(generator, tuple(mask_shape[axis] for axis in draw_order), module.p)
        keep = jnp.transpose(drawn, tuple(int(a) for a in np.argsort(draw_order)))
        return _scale_kept(input, keep, module.p)
    if rng is None:
        if not module.has_rng(module.rng_collection):
            raise ValueError(
                f"{name}(p={module.p}) in training mode (deterministic=False) needs a PRNG key for the "
                f"'{module.rng_collection}' rng stream: pass rngs={{'{module.rng_collection}': key}} to init/apply, "
                "or deterministic=True for eval mode"
            )
        rng = module.make_rng(module.rng_collection)
    keep = jax.random.bernoulli(rng, 1.0 - module.p, mask_shape)
    return _scale_kept(input, keep, module.p)
