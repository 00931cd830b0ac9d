"""``grad`` and ``value_and_grad`` with PyTorch's ``requires_grad`` / ``.grad is None`` semantics.

``jax.grad`` returns zeros for a parameter that is frozen, detached or unused; PyTorch leaves
its ``.grad`` as None, and refuses ``backward()`` when nothing the loss depends on requires
grad. Here the differentiated arguments are split into trainable leaves (``requires_grad``)
and frozen ones (closed over as constants, never differentiated); ``fun`` is traced once
with the trainable leaves as inputs; the reachability analysis of that program
(:mod:`._reachability`) says which trainable leaves have a differentiable path to the loss;
and the gradient is taken, by evaluating the same traced program, with respect to those
leaves only. Every other leaf comes back as ``None``.

The None structure depends only on the traced program, so under ``jax.jit`` it is decided
once at trace time and the compiled computation is exactly ``jax.grad`` over the reachable
trainable leaves (XLA would have dead-code-eliminated the rest anyway).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from . import _reachability

ELEMENT_0_MESSAGE = "element 0 of tensors does not require grad and does not have a grad_fn"
SCALAR_OUTPUT_MESSAGE = "grad can be implicitly created only for scalar outputs"
REAL_OUTPUT_MESSAGE = "grad can be implicitly created only for real scalar outputs but got {dtype}"
FLOATING_ONLY_MESSAGE = "only Tensors of floating point dtype can require gradients"

_ARRAY_LIKE = (jax.Array, np.ndarray, np.generic, float, int, bool, complex)


def _with_note(error: Exception, note: str) -> Exception:
    """Attach detail to an error whose message must stay PyTorch's word for word."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    return error


def is_differentiable_leaf(leaf: Any) -> bool:
    """Whether a pytree leaf can require grad: an array (or Python scalar) of floating/complex dtype."""
    if not isinstance(leaf, _ARRAY_LIKE):
        return False
    dtype = getattr(leaf, "dtype", None)
    return _reachability.is_differentiable_aval(
        jax.ShapeDtypeStruct((), dtype if dtype is not None else jnp.result_type(leaf))
    )


def _normalise_argnums(argnums: int | Sequence[int], n_args: int) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool)
    nums: object = (argnums,) if single else argnums  # its items are checked below
    if (
        not isinstance(nums, Sequence)
        or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in nums)
        or len(nums) == 0
    ):
        raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    normalised = []
    for i in nums:
        j = int(i) + n_args if i < 0 else int(i)
        if not 0 <= j < n_args:
            raise TypeError(
                f"argnums={argnums!r} differentiates argument {i}, but the function was called "
                f"with {n_args} positional argument(s)"
            )
        normalised.append(j)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"argnums must not repeat an argument, got {argnums!r}")
    return tuple(normalised), single


def leaf_requires_grad(requires_grad: Any, tree: Any, *, argument: str = "requires_grad") -> list[bool]:
    """One flag per leaf of ``tree`` from a pytree of bools that is a prefix of ``tree``.

    ``None`` means the default: every floating (or complex) leaf requires grad. A ``True``
    covering a whole subtree applies to its floating leaves; ``True`` given for a single
    integer or boolean leaf is PyTorch's error.
    """
    leaves_with_paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    if requires_grad is None:
        return [is_differentiable_leaf(leaf) for _, leaf in leaves_with_paths]
    mask_leaves, mask_def = jax.tree.flatten(requires_grad)
    for flag in mask_leaves:
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(
                f"{argument} must be a pytree of Python bools (a prefix of the differentiated "
                f"arguments), got a leaf of type {type(flag).__name__}: {flag!r}"
            )
    try:
        subtrees = mask_def.flatten_up_to(tree)  # type: ignore[attr-defined]  # jaxlib: no PyTreeDef stub
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{argument} must be a prefix of the differentiated arguments' structure; "
            f"{argument} has structure {mask_def} but the arguments have {jax.tree.structure(tree)}: "
            f"{error}"
        ) from None
    flags: list[bool] = []
    for flag, subtree in zip(mask_leaves, subtrees):
        sub_leaves, sub_def = jax.tree.flatten(subtree)
        if (
            bool(flag)
            and jax.tree_util.treedef_is_leaf(sub_def)
            and sub_leaves
            and not is_differentiable_leaf(sub_leaves[0])
        ):
            leaf = sub_leaves[0]
            kind = getattr(leaf, "dtype", type(leaf).__name__)
            raise _with_note(
                RuntimeError(FLOATING_ONLY_MESSAGE), f"{argument}=True was given for a leaf of dtype {kind}"
            )
        flags.extend(bool(flag) and is_differentiable_leaf(leaf) for leaf in sub_leaves)
    return flags


@dataclasses.dataclass
class Differentiation:
    """A call of a differentiated function, split into trainable and frozen leaves.

    Attributes:
      leaves: the leaves of the differentiated arguments, flattened.
      treedef: their structure (the tuple of differentiated arguments when ``argnums`` is a tuple).
      trainable: per leaf, whether it requires grad.
      single: whether ``argnums`` was a single int.
    """

    fun: Callable
    args: tuple
    kwargs: dict
    argnums: tuple[int, ...]
    single: bool
    has_aux: bool
    leaves: list
    treedef: Any
    trainable: list[bool]

    @property
    def trainable_positions(self) -> list[int]:
        return [i for i, flag in enumerate(self.trainable) if flag]

    @property
    def trainable_values(self) -> list:
        return [self.leaves[i] for i in self.trainable_positions]

    def flat_function(self) -> Callable:
        """``fun`` as a function of the trainable leaves only, the rest closed over."""
        positions = self.trainable_positions

        def flat(*values):
            leaves = list(self.leaves)
            for i, value in zip(positions, values):
                leaves[i] = value
            differentiated = self.treedef.unflatten(leaves)
            parts = (differentiated,) if self.single else differentiated
            args = list(self.args)
            for i, part in zip(self.argnums, parts):
                args[i] = part
            return self.fun(*args, **self.kwargs)

        return flat

    def unflatten_grads(self, grads_by_position: dict[int, Any]) -> Any:
        """The gradient pytree: the differentiated arguments' structure with None where there is no grad."""
        return self.treedef.unflatten([grads_by_position.get(i) for i in range(len(self.leaves))])


def prepare(
    fun: Callable,
    args: tuple,
    kwargs: dict,
    argnums: int | Sequence[int],
    has_aux: bool,
    requires_grad: Any,
    *,
    force_trainable: Callable[[tuple], bool] | None = None,
) -> Differentiation:
    """Split a call into trainable and frozen leaves (validating arguments like ``jax.grad``)."""
    nums, single = _normalise_argnums(argnums, len(args))
    differentiated = args[nums[0]] if single else tuple(args[i] for i in nums)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(differentiated)
    leaves = [leaf for _, leaf in with_paths]
    for path, leaf in with_paths:
        if not isinstance(leaf, _ARRAY_LIKE):
            where = jax.tree_util.keystr(path) or "<argument>"
            raise TypeError(
                f"grad: the differentiated arguments must be pytrees of arrays; the leaf at {where} "
                f"is a {type(leaf).__name__}"
            )
    trainable = leaf_requires_grad(requires_grad, differentiated)
    if force_trainable is not None:
        trainable = [
            flag or (force_trainable(path) and is_differentiable_leaf(leaf))
            for flag, (path, leaf) in zip(trainable, with_paths)
        ]
    return Differentiation(fun, tuple(args), dict(kwargs), nums, single, has_aux, leaves, treedef, trainable)


@dataclasses.dataclass
class TracedProgram:
    """``fun`` traced once with the trainable leaves as inputs, and what reaches its loss.

    Attributes:
      closed: the program (``None`` on the eager fallback, see :func:`trace`).
      out_tree: structure of ``fun``'s result.
      loss_aval: shape and dtype of the loss.
      loss_bits: reachability bit set of the loss (bit ``i``: trainable input ``i``).
      evaluate: computes ``fun``'s flat outputs from the trainable values.
    """

    closed: Any
    out_tree: Any
    loss_aval: jax.ShapeDtypeStruct
    loss_bits: int
    evaluate: Callable


def _loss_shape(out_shape: Any, has_aux: bool) -> jax.ShapeDtypeStruct:
    if has_aux:
        if not (isinstance(out_shape, (tuple, list)) and len(out_shape) == 2):
            raise TypeError(
                f"has_aux=True requires fun to return a pair (output, aux), got a {type(out_shape).__name__}"
            )
        primal = out_shape[0]
    else:
        primal = out_shape
    if not isinstance(primal, jax.ShapeDtypeStruct):
        raise TypeError(
            "grad: fun must return a single array (the loss)"
            + (" as the first element of its (output, aux) pair" if has_aux else "")
            + f", got {jax.tree.structure(primal)}"
        )
    return primal


def _has_tracer(values: Sequence[Any]) -> bool:
    return any(isinstance(v, jax.core.Tracer) for v in values)


def trace(diff: Differentiation) -> TracedProgram:
    """Trace ``fun`` over the trainable leaves and find which of them reach the loss.

    The primary path traces with abstract trainable leaves (``jax.make_jaxpr``) and analyses
    the primal program. ``jax.grad`` also accepts Python control flow on the *values* of
    differentiated arguments when called outside ``jit``; such a function cannot be traced
    abstractly, and then (eager calls only) the analysis falls back to the linearised program
    (``jax.linearize``), which JAX builds with concrete values. That fallback differs from
    PyTorch in one documented way: a path made only of zero-derivative operations
    (``floor``, ``round``, ``sign``, ``ceil``) counts as no path (None instead of zeros).
    """
    flat = diff.flat_function()
    values = diff.trainable_values
    try:
        closed, out_shape = jax.make_jaxpr(flat, return_shape=True)(*values)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError):
        if _has_tracer(values) or not values:
            raise
        return _trace_linearized(diff, flat, values)
    out_tree = jax.tree.structure(out_shape)
    loss_aval = _loss_shape(out_shape, diff.has_aux)
    bits = _reachability.output_bits(closed.jaxpr, _reachability.source_bits([True] * len(values)))
    evaluate = jcore.jaxpr_as_fun(closed)
    return TracedProgram(closed, out_tree, loss_aval, bits[0], lambda *vals: list(evaluate(*vals)))


def _trace_linearized(diff: Differentiation, flat: Callable, values: list) -> TracedProgram:
    def loss_only(*vals):
        out = flat(*vals)
        return out[0] if diff.has_aux else out

    full_out = flat(*values)
    out_tree = jax.tree.structure(full_out)
    out_shape = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), full_out)
    loss_aval = _loss_shape(out_shape, diff.has_aux)
    if not jax.dtypes.issubdtype(loss_aval.dtype, np.inexact):
        bits = 0
    else:
        _, jvp = jax.linearize(loss_only, *values)
        linear = jax.make_jaxpr(jvp)(*values)
        bits = _reachability.output_bits(linear.jaxpr, _reachability.source_bits([True] * len(values)))[0]
    return TracedProgram(None, out_tree, loss_aval, bits, lambda *vals: jax.tree.leaves(flat(*vals)))


def check_loss(program: TracedProgram) -> None:
    """PyTorch's checks before ``backward()``: requires grad, real, one element."""
    if program.loss_bits == 0:
        raise RuntimeError(ELEMENT_0_MESSAGE)
    dtype = program.loss_aval.dtype
    if jax.dtypes.issubdtype(dtype, np.complexfloating):
        raise RuntimeError(REAL_OUTPUT_MESSAGE.format(dtype=dtype))
    if int(np.prod(program.loss_aval.shape)) != 1:
        raise _with_note(
            RuntimeError(SCALAR_OUTPUT_MESSAGE),
            f"the loss has shape {tuple(program.loss_aval.shape)}; reduce it (e.g. .mean()) first",
        )


def differentiate(diff: Differentiation, program: TracedProgram, reached: Sequence[bool]) -> tuple[Any, dict[int, Any]]:
    """``(value, {leaf position: grad})`` for the trainable leaves flagged in ``reached``.

    ``value`` is the loss, or ``(loss, aux)`` with ``has_aux``. Unreached trainable leaves are
    passed as constants, so no gradient is computed for them.
    """
    positions = diff.trainable_positions
    values = diff.trainable_values
    live = [k for k, flag in enumerate(reached) if flag]

    def loss_of_live(*live_values):
        vals = list(values)
        for k, value in zip(live, live_values):
            vals[k] = value
        tree = program.out_tree.unflatten(program.evaluate(*vals))
        primal, aux = (tree[0], tree[1]) if diff.has_aux else (tree, None)
        return jnp.reshape(primal, ()), (primal, aux)

    (_, (primal, aux)), grads = jax.value_and_grad(loss_of_live, argnums=tuple(range(len(live))), has_aux=True)(
        *[values[k] for k in live]
    )
    value = (primal, aux) if diff.has_aux else primal
    return value, {positions[k]: g for k, g in zip(live, grads)}


def value_and_grad(
    fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, requires_grad: Any = None
) -> Callable:
    """``jax.value_and_grad`` with PyTorch's None gradients and ``requires_grad``.

    Reproduces ``loss = fun(...); loss.backward()`` followed by reading every leaf's ``.grad``.

    Args:
      fun: function to differentiate; returns a one-element floating array (the loss), or
        ``(loss, aux)`` with ``has_aux=True``.
      argnums: which positional argument(s) to differentiate (int or tuple of ints).
      has_aux: whether ``fun`` returns ``(loss, aux)``; ``aux`` is returned, not differentiated.
      requires_grad: a pytree of bools, a prefix of the differentiated argument (or of the tuple
        of them when ``argnums`` is a tuple), marking the leaves that require grad. Default: every
        floating leaf. Leaves marked False are closed over as constants and never differentiated.

    Returns:
      A function returning ``(value, grads)``: ``value`` is the loss (or ``(loss, aux)``);
      ``grads`` has the differentiated arguments' structure with an array for every leaf that
      requires grad and has a differentiable path to the loss, and ``None`` for every other
      leaf (frozen, integer, detached, unused) -- PyTorch's ``.grad is None``. A path whose
      gradient is numerically zero (``w * 0.0``, ``floor(w)``) gives zeros, as in PyTorch.

    Raises:
      RuntimeError: ``element 0 of tensors does not require grad and does not have a grad_fn``
        when nothing the loss depends on requires grad (everything frozen or detached, the loss
        computed under :func:`no_grad`, an integer loss); PyTorch's messages for a loss with
        more than one element or a complex loss; ``only Tensors of floating point dtype can
        require gradients`` for ``requires_grad=True`` on an integer leaf.

    Note ``None`` is a pytree node without leaves in JAX: ``jax.tree.map(f, grads, params)``
    fails on a None; map with the gradients first and ``is_leaf=lambda g: g is None``.
    """

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        diff = prepare(fun, args, kwargs, argnums, has_aux, requires_grad)
        program = trace(diff)
        check_loss(program)
        reached = _reachability.inputs_reaching(program.loss_bits, len(diff.trainable_positions))
        value, grads = differentiate(diff, program, reached)
        return value, diff.unflatten_grads(grads)

    return value_and_grad_fun


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, requires_grad: Any = None) -> Callable:
    """``jax.grad`` with PyTorch's None gradients and ``requires_grad``: ``loss.backward()``, then ``.grad``.

    Same arguments, result and errors as :func:`value_and_grad`, returning only the gradients
    (``(grads, aux)`` with ``has_aux=True``, like ``jax.grad``).
    """
    value_and_grad_fun = value_and_grad(fun, argnums, has_aux, requires_grad)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        value, grads = value_and_grad_fun(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_fun
