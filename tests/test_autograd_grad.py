"""torchsem.autograd.grad / value_and_grad: the API, PyTorch's None gradients and errors, and jit cost.

Parity of None patterns and values with PyTorch on fixed programs lives in the ``autograd``
scenario family (run by test_parity_catalogue.py); random programs in
test_autograd_random_programs.py. Here: argument handling, the eager Python-control-flow
fallback and higher-order use against live PyTorch, and the compile-time properties
(the analysis runs once per trace; the compiled program costs what jax.grad over the
trainable leaves costs).
"""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import maybe_jit
from torchsem import autograd
from torchsem.autograd import _reachability


def _params():
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.standard_normal(3), jnp.float32),
        "b": jnp.asarray(0.5, jnp.float32),
        "n": jnp.asarray([1, 2, 3], jnp.int32),
    }


def _loss(p, x):
    return (p["w"] * x).sum() * p["b"] + p["n"].astype(jnp.float32).sum()


def test_integer_leaves_are_none_and_floats_have_gradients(jit):
    p, x = _params(), jnp.arange(3.0)
    grads = maybe_jit(autograd.grad(_loss), jit)(p, x)
    assert grads["n"] is None
    assert grads["w"].shape == (3,) and grads["b"].shape == ()


@pytest.mark.parametrize("mask", [{"w": False, "b": True, "n": False}, {"w": True, "b": False, "n": False}])
def test_requires_grad_false_gives_none(mask, jit):
    grads = maybe_jit(autograd.grad(_loss, requires_grad=mask), jit)(_params(), jnp.arange(3.0))
    for name, flag in mask.items():
        assert (grads[name] is None) == (not flag or name == "n")


def test_requires_grad_prefix_broadcasts_over_subtrees(jit):
    params = {"a": {"w": jnp.ones(2), "v": jnp.ones(2)}, "b": {"w": jnp.ones(2)}}

    def loss(p):
        return sum(leaf.sum() for leaf in jax.tree.leaves(p))

    grads = maybe_jit(autograd.grad(loss, requires_grad={"a": False, "b": True}), jit)(params)
    assert grads["a"] == {"w": None, "v": None}
    np.testing.assert_array_equal(grads["b"]["w"], np.ones(2, np.float32))


def test_tuple_argnums_returns_a_tuple_and_takes_a_tuple_mask(jit):
    def loss(a, b, c):
        return (a * b).sum() + c

    grads = maybe_jit(autograd.grad(loss, argnums=(0, 2), requires_grad=(True, False)), jit)(
        jnp.ones(2), jnp.full(2, 3.0), jnp.asarray(1.0)
    )
    assert isinstance(grads, tuple) and len(grads) == 2
    np.testing.assert_array_equal(grads[0], np.full(2, 3.0, np.float32))
    assert grads[1] is None


def test_has_aux_returns_aux_and_value(jit):
    def loss(w):
        return (w**2).sum(), {"norm": jnp.linalg.norm(w), "unused": None}

    (value, aux), grads = maybe_jit(autograd.value_and_grad(loss, has_aux=True), jit)(jnp.ones(3))
    assert float(value) == 3.0 and float(aux["norm"]) == pytest.approx(np.sqrt(3.0))
    grads_only, aux_again = maybe_jit(autograd.grad(loss, has_aux=True), jit)(jnp.ones(3))
    np.testing.assert_array_equal(grads_only, grads)
    assert float(aux_again["norm"]) == pytest.approx(np.sqrt(3.0))


def test_keyword_arguments_pass_through_undifferentiated(jit):
    def loss(w, *, scale):
        return (w * scale).sum()

    grads = maybe_jit(lambda w, s: autograd.grad(loss)(w, scale=s), jit)(jnp.ones(2), jnp.asarray(4.0))
    np.testing.assert_array_equal(grads, np.full(2, 4.0, np.float32))


def test_python_float_leaves_are_differentiable():
    assert float(autograd.grad(lambda w: w * 3.0)(2.0)) == 3.0


@pytest.mark.parametrize("argnums", [3, (0, 5), -4, "0", (), (0, 0)])
def test_bad_argnums_is_a_clear_error(argnums):
    with pytest.raises((TypeError, ValueError), match="argnums"):
        autograd.grad(lambda a, b, c: a.sum(), argnums=argnums)(jnp.ones(1), jnp.ones(1), jnp.ones(1))


@pytest.mark.parametrize(
    "mask, error, match",
    [
        ({"w": 1, "b": True, "n": False}, TypeError, "requires_grad must be a pytree of Python bools"),
        ({"w": True}, ValueError, "requires_grad must be a prefix"),
        ((True, False), ValueError, "requires_grad must be a prefix"),
    ],
)
def test_bad_requires_grad_is_a_clear_error(mask, error, match):
    with pytest.raises(error, match=match):
        autograd.grad(_loss, requires_grad=mask)(_params(), jnp.arange(3.0))


def test_non_array_leaf_is_a_clear_error():
    with pytest.raises(TypeError, match=r"the leaf at \['name'\] is a str"):
        autograd.grad(lambda p: p["w"].sum())({"w": jnp.ones(2), "name": "fc1"})


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError, match=r"has_aux=True requires fun to return a pair"):
        autograd.grad(lambda w: w.sum(), has_aux=True)(jnp.ones(2))


def test_errors_keep_pytorchs_message_and_add_detail_as_a_note():
    with pytest.raises(RuntimeError) as info:
        autograd.grad(lambda w: w * 2)(jnp.ones(3))
    assert str(info.value) == autograd.SCALAR_OUTPUT_MESSAGE
    assert "(3,)" in " ".join(getattr(info.value, "__notes__", []))


def test_element_0_error_is_raised_at_trace_time_under_jit():
    fun = jax.jit(autograd.grad(autograd.no_grad(lambda w: (w * 2).sum())))
    with pytest.raises(RuntimeError, match=autograd.ELEMENT_0_MESSAGE):
        fun(jnp.ones(3))


@pytest.mark.live_torch
def test_python_control_flow_on_values_matches_pytorch_eagerly():
    """jax.grad allows `if w.sum() > 0` outside jit; so does torchsem.grad (linearised fallback)."""
    import torch

    def branchy(detach, w, v):
        if w.sum() > 0:
            return (w * 2.0 * detach(v)).sum()
        return (w * 3.0).sum() + v.sum()

    for seed in range(4):
        rng = np.random.default_rng(seed)
        w0 = (np.abs(rng.standard_normal(3)) * (1 if seed % 2 == 0 else -1)).astype(np.float32)  # both branches
        v0 = rng.standard_normal(3).astype(np.float32)
        tw, tv = torch.tensor(w0, requires_grad=True), torch.tensor(v0, requires_grad=True)
        branchy(lambda t: t.detach(), tw, tv).backward()
        grads = autograd.grad(lambda p: branchy(jax.lax.stop_gradient, p["w"], p["v"]))(
            {"w": jnp.asarray(w0), "v": jnp.asarray(v0)}
        )
        for name, tensor in (("w", tw), ("v", tv)):
            if tensor.grad is None:
                assert grads[name] is None, (seed, name)
            else:
                np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.live_torch
def test_second_order_matches_pytorch_double_backward(jit):
    """torchsem.grad is itself differentiable: d/dw sum(grad f(w)) as torch.autograd.grad(create_graph=True)."""
    import torch

    w0 = np.array([0.3, -1.2, 2.0], np.float32)
    tw = torch.tensor(w0, requires_grad=True)
    (first,) = torch.autograd.grad((torch.sin(tw) * tw).sum(), tw, create_graph=True)
    first.sum().backward()

    def inner(w):
        return (jnp.sin(w) * w).sum()

    second = maybe_jit(autograd.grad(lambda w: autograd.grad(inner)(w).sum()), jit)(jnp.asarray(w0))
    np.testing.assert_allclose(second, tw.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.live_torch
def test_per_example_gradients_under_vmap_match_pytorch(jit):
    import torch

    rng = np.random.default_rng(3)
    xs = rng.standard_normal((4, 3)).astype(np.float32)
    w0 = rng.standard_normal(3).astype(np.float32)
    expected = []
    for x in xs:
        tw = torch.tensor(w0, requires_grad=True)
        (torch.tanh(tw * torch.tensor(x))).sum().backward()
        expected.append(tw.grad.numpy())

    def loss(params, x):
        return jnp.tanh(params["w"] * x).sum() + params["frozen"].sum()

    params = {"w": jnp.asarray(w0), "frozen": jnp.ones(2)}
    per_example = maybe_jit(
        jax.vmap(autograd.grad(loss, requires_grad={"w": True, "frozen": False}), in_axes=(None, 0)), jit
    )(params, jnp.asarray(xs))
    assert per_example["frozen"] is None
    np.testing.assert_allclose(per_example["w"], np.stack(expected), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------- compile-time properties


def test_analysis_runs_once_per_trace_under_jit(monkeypatch):
    calls = []
    original = _reachability.output_bits

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_reachability, "output_bits", counting)
    step = jax.jit(autograd.grad(lambda p: (p["w"] * p["v"]).sum(), requires_grad={"w": True, "v": False}))
    params = {"w": jnp.ones(3), "v": jnp.ones(3)}
    for _ in range(3):
        step(params)
    assert len(calls) == 1
    step({"w": jnp.ones(4), "v": jnp.ones(4)})  # a new shape is a new trace
    assert len(calls) == 2
    step({"w": jnp.ones(4, jnp.float16), "v": jnp.ones(4, jnp.float16)})  # and so is a new dtype
    assert len(calls) == 3


def _net_setup():
    from torchsem.losses import cross_entropy
    from torchsem.models import Net

    model = Net()
    x = jax.random.normal(jax.random.key(1), (3, 3, 8))
    variables = model.init(jax.random.key(0), x)
    target = jnp.array([1, 1, 1])

    def loss(params, x):
        logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, mutable=["batch_stats"])
        return cross_entropy(logits, target)

    return loss, variables["params"], x


def _scan_setup():
    def loss(params, x):
        def body(carry, xt):
            h = jnp.tanh(carry @ params["w"] + xt * params["u"])
            return h, (h * params["v"]).sum()

        _, ys = jax.lax.scan(body, params["h0"], x)
        return ys.sum() + jax.lax.stop_gradient(params["d"]).sum()

    rng = np.random.default_rng(5)
    params = {
        k: jnp.asarray(rng.standard_normal(s), jnp.float32)
        for k, s in {"w": (4, 4), "u": (4,), "v": (4,), "h0": (4,), "d": (4,)}.items()
    }
    return loss, params, jnp.asarray(rng.standard_normal((6, 4)), jnp.float32)


def _cost(compiled) -> dict:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return {k: analysis[k] for k in ("flops", "transcendentals", "bytes accessed") if k in analysis}


@pytest.mark.parametrize(
    "setup, trainable",
    [
        (_net_setup, {"bn1": {"weight": True, "bias": True}, "fc1": {"weight": False, "bias": True}}),
        (_net_setup, {"bn1": {"weight": False, "bias": False}, "fc1": {"weight": True, "bias": True}}),
        (_net_setup, {"bn1": {"weight": True, "bias": True}, "fc1": {"weight": True, "bias": True}}),
        (_scan_setup, {"w": True, "u": False, "v": True, "h0": False, "d": True}),
    ],
    ids=["net-frozen-fc1-weight", "net-fc1-only", "net-all", "scan-mixed"],
)
def test_compiled_cost_equals_jax_grad_over_the_trainable_leaves(setup, trainable):
    loss, params, x = setup()
    ours = jax.jit(autograd.grad(loss, requires_grad=trainable)).lower(params, x).compile()

    flat, treedef = jax.tree.flatten(params)
    flags = jax.tree.leaves(trainable)

    def reference(train_leaves, frozen_leaves, x):
        t, f = iter(train_leaves), iter(frozen_leaves)
        return loss(treedef.unflatten([next(t) if flag else next(f) for flag in flags]), x)

    train_leaves = [leaf for leaf, flag in zip(flat, flags) if flag]
    frozen_leaves = [leaf for leaf, flag in zip(flat, flags) if not flag]
    plain = jax.jit(jax.grad(reference)).lower(train_leaves, frozen_leaves, x).compile()
    ours_cost, plain_cost = _cost(ours), _cost(plain)
    assert ours_cost["flops"] == plain_cost["flops"] > 0
    assert ours_cost.get("transcendentals") == plain_cost.get("transcendentals")
    # Equal, or less where jax.grad writes out zeros for a trainable leaf with no path (torchsem returns None).
    assert ours_cost["bytes accessed"] <= plain_cost["bytes accessed"]
    if setup is _net_setup:  # every trainable leaf reaches the loss: the optimised programs are the same
        assert _instructions(ours) == _instructions(plain)


def _instructions(compiled) -> collections.Counter:
    return collections.Counter(re.findall(r"= \S+ (\w[\w-]*)\(", compiled.as_text()))
