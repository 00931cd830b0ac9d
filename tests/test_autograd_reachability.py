"""The static reachability analysis behind torchsem.autograd.grad: loops, branches, custom rules.

Where PyTorch has an answer (an eager program doing the same), the None pattern is compared
with live PyTorch; the documented approximations (``lax.cond`` takes the union of its
branches, ``while_loop`` the union over iteration counts, the eager linearised fallback) are
pinned down as documented.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem import autograd
from torchsem.autograd import _reachability


def _none_pattern(grads) -> dict[str, bool]:
    return {k: v is None for k, v in grads.items()}


def _torch_none_pattern(tensors) -> dict[str, bool]:
    return {k: t.grad is None for k, t in tensors.items()}


def _rotate_torch(length: int):
    import torch

    tensors = {k: torch.tensor([float(i + 1)], requires_grad=True) for i, k in enumerate("abc")}
    a, b, c = tensors["a"], tensors["b"], tensors["c"]
    for _ in range(length):
        a, b, c = b * 1.5, c, a
    a.sum().backward()
    return tensors


def _rotate_jax(params, length: int):
    (a, _, _), _ = jax.lax.scan(
        lambda carry, _: ((carry[1] * 1.5, carry[2], carry[0]), None),
        (params["a"], params["b"], params["c"]),
        None,
        length=length,
    )
    return a.sum()


@pytest.mark.live_torch
@pytest.mark.parametrize("length", [0, 1, 2, 3, 1000, 1001, 1002])
def test_scan_carry_rotation_is_exact_for_the_number_of_steps(length, jit):
    tensors = _rotate_torch(length)
    params = {k: jnp.asarray([float(i + 1)]) for i, k in enumerate("abc")}
    grads = maybe_jit(autograd.grad(lambda p: _rotate_jax(p, length)), jit)(params)
    assert _none_pattern(grads) == _torch_none_pattern(tensors)
    for name, tensor in tensors.items():
        if tensor.grad is not None:
            np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-6)


@pytest.mark.live_torch
def test_fori_loop_with_static_bounds_is_a_scan_and_exact(jit):
    import torch

    tensors = {k: torch.tensor([0.5 + i], requires_grad=True) for i, k in enumerate("ab")}
    a, b = tensors["a"], tensors["b"]
    for _ in range(4):
        a, b = b * 2.0, b
    a.sum().backward()

    def loss(p):
        a, _ = jax.lax.fori_loop(0, 4, lambda i, carry: (carry[1] * 2.0, carry[1]), (p["a"], p["b"]))
        return a.sum()

    grads = maybe_jit(autograd.grad(loss), jit)({k: jnp.asarray([0.5 + i]) for i, k in enumerate("ab")})
    assert _none_pattern(grads) == _torch_none_pattern(tensors) == {"a": True, "b": False}


@pytest.mark.live_torch
def test_multi_operand_sort_gives_the_keys_no_gradient(jit):
    import torch

    keys0, values0 = np.array([0.3, -1.0, 2.0], np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    keys, values = torch.tensor(keys0, requires_grad=True), torch.tensor(values0, requires_grad=True)
    (values[keys.argsort()] * torch.arange(3.0)).sum().backward()

    def loss(p):
        _, sorted_values = jax.lax.sort((p["keys"], p["values"]), num_keys=1)
        return (sorted_values * jnp.arange(3.0)).sum()

    grads = maybe_jit(autograd.grad(loss), jit)({"keys": jnp.asarray(keys0), "values": jnp.asarray(values0)})
    assert grads["keys"] is None and keys.grad is None
    np.testing.assert_array_equal(grads["values"], values.grad.numpy())


def test_cond_takes_the_union_of_its_branches(jit):
    """Documented: a leaf read only by the branch that does not run gets zeros (PyTorch: None)."""

    def loss(p, flag):
        return jax.lax.cond(flag, lambda: p["a"] * 2.0, lambda: p["b"] * 3.0).sum()

    grads = maybe_jit(autograd.grad(loss), jit)({"a": jnp.ones(2), "b": jnp.ones(2)}, jnp.asarray(True))
    np.testing.assert_array_equal(grads["a"], np.full(2, 2.0, np.float32))
    np.testing.assert_array_equal(grads["b"], np.zeros(2, np.float32))


def test_while_loop_takes_the_union_over_iteration_counts():
    def program(a, b):
        _, a_out, _ = jax.lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[2], s[2]), (0, a, b))
        return a_out

    closed = jax.make_jaxpr(program)(jnp.ones(2), jnp.ones(2))
    (bits,) = _reachability.output_bits(closed.jaxpr, _reachability.source_bits([True, True]))
    assert _reachability.inputs_reaching(bits, 2) == (True, True)


def test_while_loop_with_a_path_raises_jaxs_reverse_mode_error():
    def loss(w):
        return jax.lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * 2.0), (0, w))[1].sum()

    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work for lax.while_loop"):
        autograd.grad(loss)(jnp.ones(2))


def test_while_loop_on_frozen_values_is_fine(jit):
    def loss(p):
        total = jax.lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * 2.0), (0, p["frozen"]))[1]
        return (total * p["w"]).sum()

    grads = maybe_jit(autograd.grad(loss, requires_grad={"w": True, "frozen": False}), jit)(
        {"w": jnp.ones(2), "frozen": jnp.ones(2)}
    )
    np.testing.assert_array_equal(grads["w"], np.full(2, 8.0, np.float32))
    assert grads["frozen"] is None


def test_integer_and_boolean_values_never_carry_a_path():
    def program(w):
        counts = (w > 0).sum()
        index = jnp.argmax(w)
        return counts.astype(jnp.float32) + w[index] * 0 + jnp.float32(index)

    closed = jax.make_jaxpr(program)(jnp.ones(3))
    (bits,) = _reachability.output_bits(closed.jaxpr, [1])
    assert bits == 1  # only through w[index] * 0: a path with a zero gradient, as PyTorch's
    (bits,) = _reachability.output_bits(
        jax.make_jaxpr(lambda w: (w > 0).sum().astype(jnp.float32))(jnp.ones(3)).jaxpr, [1]
    )
    assert bits == 0


def test_shard_map_is_followed_like_a_call():
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:2]), ("data",))

    def loss(p):
        body = jax.shard_map(
            lambda a, b: a * jax.lax.stop_gradient(b),
            mesh=mesh,
            in_specs=(PartitionSpec("data"), PartitionSpec("data")),
            out_specs=PartitionSpec("data"),
        )
        return body(p["a"], p["b"]).sum()

    grads = autograd.grad(loss)({"a": jnp.ones(4), "b": jnp.full(4, 3.0)})
    assert grads["b"] is None
    np.testing.assert_array_equal(grads["a"], np.full(4, 3.0, np.float32))


def test_unknown_higher_order_primitives_fall_back_to_every_output_depending_on_every_input():
    """A made-up primitive with a sub-program we do not know: conservative (zeros, never a lost gradient)."""
    from jax.extend import core as jcore

    inner = jax.make_jaxpr(lambda a, b: (a * 2.0,))(jnp.ones(2), jnp.ones(2))
    eqn = jcore.new_jaxpr_eqn(
        list(inner.jaxpr.invars),
        [jcore.Var(inner.jaxpr.outvars[0].aval)],
        jcore.Primitive("mystery_call"),
        {"program": inner},
        set(),
    )
    out = _reachability._Analysis().equation(eqn, [1, 2])
    assert out == (3,)


def test_eager_fallback_uses_the_linearised_program():
    """Python control flow on values (eager only): documented divergence for zero-derivative ops."""

    def loss(p):
        if p["w"].sum() > 0:  # needs concrete values: the abstract trace fails, the fallback runs
            return jnp.floor(p["w"]).sum() + (p["v"] * 2.0).sum()
        return p["v"].sum()

    grads = autograd.grad(loss)({"w": jnp.ones(2), "v": jnp.ones(2)})
    assert grads["w"] is None  # PyTorch: zeros (FloorBackward0); the linearised program has no floor
    np.testing.assert_array_equal(grads["v"], np.full(2, 2.0, np.float32))
    with pytest.raises(jax.errors.TracerBoolConversionError):
        jax.jit(autograd.grad(loss))({"w": jnp.ones(2), "v": jnp.ones(2)})  # as jax.grad under jit
