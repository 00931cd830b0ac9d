"""Autograd semantics (family ``autograd``): requires_grad, None gradients, leaves and grad_fn, retain_grad, no_grad.

Each entry runs a small PyTorch program and the same operations in JAX through
:mod:`torchsem.autograd`, and compares what PyTorch's ``.grad`` holds after ``backward()``
(``None`` must match ``None``; zeros are not None), the error ``backward()`` raises (its type
and message, :func:`torchsem.compare.error_outputs`), or what
``requires_grad`` / ``is_leaf`` / ``grad_fn`` say about every value.

The small programs are written once against an operation vocabulary (:class:`TorchOps`,
:class:`JaxOps`: ``detach``, integer casts, comparisons, ``no_grad``...) so both sides run the
same sequence of operations. The document's network (``torchsem.models.Net``) is started from
the document's seed on both sides: PyTorch's generator, and :class:`torchsem.random.Generator`
replaying it for JAX.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._authoring import error_outputs, jitted
from .._outputs import NO_ERROR as NO_ERROR  # the text of "no error", for the random-program tests
from .._scenario import Scenario, register

SEED = 1029

# ------------------------------------------------------------------------ operation vocabulary


class TorchOps:
    """The operation vocabulary in PyTorch."""

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def detach(self, x):
        return x.detach()

    def long_float(self, x):
        return x.long().float()

    def to_float(self, x):
        return x.float()

    def gt_float(self, x):
        return (x > 0).float()

    def floor(self, x):
        return self.torch.floor(x)

    def round(self, x):
        return self.torch.round(x)

    def sign(self, x):
        return self.torch.sign(x)

    def sin(self, x):
        return self.torch.sin(x)

    def exp(self, x):
        return self.torch.exp(x)

    def tanh(self, x):
        return self.torch.tanh(x)

    def relu(self, x):
        return self.torch.relu(x)

    def where_positive(self, x, a, b):
        return self.torch.where(x > 0, a, b)

    def sort_by(self, values, keys):
        return values[keys.argsort()]

    def long_sum(self, x):
        return x.long().sum()

    def no_grad(self, fun: Callable) -> Callable:
        def run(*args):
            with self.torch.no_grad():
                return fun(*args)

        return run


class JaxOps:
    """The operation vocabulary in JAX, through torchsem.autograd."""

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp

        from torchsem import autograd

        self.jax, self.jnp, self.autograd = jax, jnp, autograd

    def detach(self, x):
        return self.autograd.detach(x)

    def long_float(self, x):
        return x.astype(self.jnp.int32).astype(self.jnp.float32)

    def to_float(self, x):
        return x.astype(self.jnp.float32)

    def gt_float(self, x):
        return (x > 0).astype(self.jnp.float32)

    def floor(self, x):
        return self.jnp.floor(x)

    def round(self, x):
        return self.jnp.round(x)

    def sign(self, x):
        return self.jnp.sign(x)

    def sin(self, x):
        return self.jnp.sin(x)

    def exp(self, x):
        return self.jnp.exp(x)

    def tanh(self, x):
        return self.jnp.tanh(x)

    def relu(self, x):
        return self.jax.nn.relu(x)

    def where_positive(self, x, a, b):
        return self.jnp.where(x > 0, a, b)

    def sort_by(self, values, keys):
        return values[self.jnp.argsort(keys)]

    def long_sum(self, x):
        return x.astype(self.jnp.int32).sum()

    def no_grad(self, fun: Callable) -> Callable:
        return self.autograd.no_grad(fun)


Program = Callable[[Any, Mapping[str, Any]], Any]


def torch_program_grads(
    inputs: Mapping[str, np.ndarray], program: Program, requires_grad: Mapping[str, bool]
) -> dict[str, Any]:
    """Run ``program`` in PyTorch: ``requires_grad_`` per input, ``loss.backward()``, every ``.grad``.

    The error outputs are those of ``requires_grad_`` or ``backward()``, whichever raises; when
    ``requires_grad_`` raises, the loss is that of the same program on tensors that require no grad.
    """
    import torch

    tensors = {name: torch.tensor(value) for name, value in inputs.items()}
    losses = []

    def backward() -> None:
        for name, tensor in tensors.items():
            tensor.requires_grad_(bool(requires_grad.get(name, False)))
        losses.append(program(TorchOps(), tensors))
        losses[0].backward()

    error = error_outputs(backward)
    if not losses:
        tensors = {name: torch.tensor(value) for name, value in inputs.items()}
        losses.append(program(TorchOps(), tensors))
    return {"loss": losses[0].detach(), **error, **{f"{name}.grad": t.grad for name, t in tensors.items()}}


def jax_program_grads(
    inputs: Mapping[str, np.ndarray], jit: bool, program: Program, requires_grad: Mapping[str, bool]
) -> dict[str, Any]:
    """Run ``program`` in JAX with :func:`torchsem.autograd.value_and_grad` over all inputs.

    When it raises (PyTorch's ``backward()`` or ``requires_grad_`` error), no gradient exists: every
    ``.grad`` is None, as PyTorch's after a ``backward()`` that raised, and the loss is the program's.
    """
    import jax.numpy as jnp

    from torchsem import autograd

    ops = JaxOps()
    args = {name: jnp.asarray(value) for name, value in inputs.items()}
    mask = {name: bool(requires_grad.get(name, False)) for name in inputs}

    def loss_fn(tensors):
        return program(ops, tensors)

    value_and_grad = jitted(autograd.value_and_grad(loss_fn, requires_grad=mask), jit)
    results = []
    error = error_outputs(lambda: results.append(value_and_grad(args)))
    loss, grads = results[0] if results else (jitted(loss_fn, jit)(args), dict.fromkeys(inputs))
    return {"loss": loss, **error, **{f"{name}.grad": grads[name] for name in inputs}}


def _inputs(seed: int, **shapes: Any) -> Callable[[], dict[str, np.ndarray]]:
    """Deterministic inputs: float32 normals for shapes, given arrays as they are."""

    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        made = {}
        for name, spec in shapes.items():
            made[name] = (
                np.asarray(spec) if isinstance(spec, np.ndarray) else rng.standard_normal(spec).astype(np.float32)
            )
        return made

    return make


def register_program(
    case: str,
    section: str,
    mapping: str,
    make_inputs: Callable[[], dict[str, np.ndarray]],
    program: Program,
    requires_grad: Mapping[str, bool],
    jax_program: Program | None = None,
    notes: str = "",
) -> Scenario:
    """Register a small program run on both sides; ``jax_program`` when JAX needs other operations."""
    jax_side = jax_program or program
    return register(
        Scenario(
            name=f"autograd/{case}",
            section=section,
            mapping=mapping,
            make_inputs=make_inputs,
            torch_program=lambda inputs: torch_program_grads(inputs, program, requires_grad),
            jax_program=lambda inputs, jit: jax_program_grads(inputs, jit, jax_side, requires_grad),
            notes=notes,
        )
    )


_ALL = {"w": True, "v": True, "u": True}
_S1 = "1. requires_grad: only leaves that require grad get a gradient"
_S2 = "2. detach() cuts the graph: upstream leaves get None"
_S4 = "4. torch.no_grad(): results need no grad; backward() raises"

# ------------------------------------------------------------------- None vs zeros vs values

register_program(
    "frozen-and-integer-leaves",
    _S1,
    "w.requires_grad = False -> requires_grad={'w': False} (w closed over, not differentiated); int tensors never",
    _inputs(1, w=(3,), b=(), n=np.array([1, 2, 3], np.int64)),
    lambda ops, t: (t["w"] * t["b"]).sum() + (t["b"] * ops.to_float(t["n"])).sum(),
    {"w": False, "b": True, "n": False},
)

register_program(
    "detach-cuts-path",
    _S2,
    "x.detach() -> torchsem.autograd.detach(x) (jax.lax.stop_gradient)",
    _inputs(2, w=(3,), v=(3,), u=(3,)),
    lambda ops, t: (ops.detach(t["w"]) * t["v"]).sum() + (t["u"] * 2.0).sum(),
    _ALL,
)

register_program(
    "unused-input",
    _S1,
    "a parameter the loss never reads -> grads[...] is None",
    _inputs(3, w=(3,), v=(3,)),
    lambda ops, t: (t["v"] * 3.0).sum(),
    {"w": True, "v": True},
)

register_program(
    "multiply-by-zero-gives-zeros",
    _S1,
    "w * 0.0 is still a path: zeros, not None",
    _inputs(4, w=(3,), v=(3,)),
    lambda ops, t: (t["w"] * 0.0).sum() + t["v"].sum(),
    {"w": True, "v": True},
)

register_program(
    "long-then-float-cuts",
    _S1,
    "x.long().float() -> x.astype(int32).astype(float32): no path",
    _inputs(5, w=(4,), v=(4,)),
    lambda ops, t: (ops.long_float(t["w"] * 3.0) * t["v"]).sum(),
    {"w": True, "v": True},
)

register_program(
    "comparison-cuts",
    _S1,
    "(x > 0).float() -> (x > 0).astype(float32): no path through a comparison",
    _inputs(6, w=(4,), v=(4,)),
    lambda ops, t: (ops.gt_float(t["w"]) * t["v"]).sum(),
    {"w": True, "v": True},
)

register_program(
    "zero-derivative-ops-give-zeros",
    _S1,
    "floor/round/sign have a grad_fn in PyTorch (FloorBackward0...): zeros, not None",
    _inputs(7, w=(4,), v=(4,), u=(4,)),
    lambda ops, t: (ops.floor(t["w"]) + ops.round(t["v"] * 2.0) + ops.sign(t["u"])).sum(),
    _ALL,
)

register_program(
    "where-condition-cuts",
    _S1,
    "torch.where(x > 0, a, b) -> jnp.where: the condition gets None",
    _inputs(8, w=(5,), v=(5,), u=(5,)),
    lambda ops, t: ops.where_positive(t["w"], t["v"] * 2.0, t["u"]).sum(),
    _ALL,
)

register_program(
    "sort-keys-cut",
    _S1,
    "values[keys.argsort()] -> values[jnp.argsort(keys)]: the keys get None",
    _inputs(9, w=(5,), v=(5,), c=np.arange(5, dtype=np.float32)),
    lambda ops, t: (ops.sort_by(t["v"], t["w"]) * t["c"]).sum(),
    {"w": True, "v": True, "c": False},
)

register_program(
    "relu-and-friends",
    _S1,
    "relu/exp/tanh/sin chains -> the same gradients",
    _inputs(10, w=(4,), v=(4,), u=(4,)),
    lambda ops, t: (ops.relu(t["w"]) * ops.exp(t["v"]) + ops.tanh(ops.sin(t["u"]))).sum(),
    _ALL,
)

register_program(
    "one-element-loss",
    _S1,
    "backward() on a one-element (1, 1) loss works in PyTorch; torchsem.grad accepts it",
    _inputs(11, w=(3,), v=(3,)),
    lambda ops, t: (t["w"] * t["v"]).sum().reshape(1, 1),
    {"w": True, "v": True},
)

# ------------------------------------------------------------------------------- errors

register_program(
    "no-grad-error",
    _S4,
    "with torch.no_grad(): loss = f(w) -> loss = no_grad(f)(w); grad raises PyTorch's error",
    _inputs(12, w=(3,), v=(3,)),
    lambda ops, t: ops.no_grad(lambda a, b: (a * b).sum())(t["w"], t["v"]),
    {"w": True, "v": True},
)

register_program(
    "no-grad-partial",
    _S4,
    "a no_grad branch contributes no gradient; other paths still do",
    _inputs(13, w=(3,), v=(3,)),
    lambda ops, t: ops.no_grad(lambda a: a * 2.0)(t["w"]).sum() + (t["v"] * t["v"]).sum(),
    {"w": True, "v": True},
)

register_program(
    "all-frozen-error",
    _S1,
    "every leaf requires_grad=False -> element 0 ... does not require grad",
    _inputs(14, w=(3,), v=(3,)),
    lambda ops, t: (t["w"] * t["v"]).sum(),
    {"w": False, "v": False},
)

register_program(
    "detached-loss-error",
    _S2,
    "a loss built only from detached values -> PyTorch's RuntimeError",
    _inputs(15, w=(3,), v=(3,)),
    lambda ops, t: (ops.detach(t["w"]) * ops.detach(t["v"])).sum(),
    {"w": True, "v": True},
)

register_program(
    "integer-loss-error",
    _S1,
    "an integer loss never requires grad -> PyTorch's RuntimeError",
    _inputs(16, w=(3,)),
    lambda ops, t: ops.long_sum(t["w"] * 10.0),
    {"w": True},
)

register_program(
    "non-scalar-loss-error",
    _S1,
    "backward() on a (3,) loss -> 'grad can be implicitly created only for scalar outputs'",
    _inputs(17, w=(3,)),
    lambda ops, t: t["w"] * 2.0,
    {"w": True},
)

register_program(
    "integer-requires-grad-error",
    _S1,
    "n.requires_grad_(True) on an int tensor -> requires_grad=True on an int leaf: PyTorch's RuntimeError",
    _inputs(18, w=(3,), n=np.array([1, 2, 3], np.int64)),
    lambda ops, t: (t["w"] * ops.to_float(t["n"])).sum(),
    {"w": True, "n": True},
)


# ------------------------------------------------------------- control flow inside the function


def _scan_shift(length: int, use_ys: bool) -> tuple[Program, Program]:
    """Carry (a, b, c) -> (b * x_t, c, c) for ``length`` steps; the loss reads the final a (or every a_t)."""

    def torch_side(ops, t):
        a, b, c = t["a"], t["b"], t["c"]
        ys = []
        for step in range(length):
            ys.append(a)
            a, b, c = b * t["x"][step], c, c
        return sum(y.sum() for y in ys) if use_ys else a.sum()

    def jax_side(ops, t):
        def body(carry, x):
            a, b, c = carry
            return (b * x, c, c), a

        (a, _, _), ys = ops.jax.lax.scan(body, (t["a"], t["b"], t["c"]), t["x"][:length])
        return ys.sum() if use_ys else a.sum()

    return torch_side, jax_side


for _length, _use_ys in ((1, False), (2, False), (2, True)):
    _torch_side, _jax_side = _scan_shift(_length, _use_ys)
    register_program(
        f"scan-shift-length{_length}-{'ys' if _use_ys else 'carry'}",
        "static analysis through lax.scan",
        "a Python loop over steps -> jax.lax.scan: a carry that reaches the loss only after more steps than run "
        "is None",
        _inputs(20 + _length, a=(2,), b=(2,), c=(2,), x=(3, 2)),
        _torch_side,
        {"a": True, "b": True, "c": True, "x": False},
        jax_program=_jax_side,
    )


def _torch_cond(ops, t):
    branch = t["w"] * 2.0 + ops.detach(t["u"]) if t["p"] > 0 else t["w"] * 3.0 + ops.detach(t["u"])
    return branch.sum()


def _jax_cond(ops, t):
    lax = ops.jax.lax
    branch = lax.cond(
        t["p"] > 0,
        lambda w, u: w * 2.0 + lax.stop_gradient(u),
        lambda w, u: w * 3.0 + lax.stop_gradient(u),
        t["w"],
        t["u"],
    )
    return branch.sum()


register_program(
    "cond-branches",
    "static analysis through lax.cond",
    "if p > 0: ... else: ... -> jax.lax.cond (a leaf used by both branches, one detached in both, one unused)",
    _inputs(24, w=(3,), u=(3,), v=(3,), p=np.array(0.5, np.float32)),
    _torch_cond,
    {"w": True, "u": True, "v": True, "p": False},
    jax_program=_jax_cond,
    notes="The None structure is static, so a leaf used in only one branch gets zeros when the other "
    "branch runs (PyTorch: None); this entry uses leaves the same way in both branches.",
)


def _torch_remat(ops, t):
    from torch.utils.checkpoint import checkpoint

    return checkpoint(lambda w, v: ops.sin(w) * ops.detach(v), t["w"], t["v"], use_reentrant=False).sum()


def _jax_remat(ops, t):
    return ops.jax.checkpoint(lambda w, v: ops.jnp.sin(w) * ops.jax.lax.stop_gradient(v))(t["w"], t["v"]).sum()


register_program(
    "remat-detach",
    "static analysis through jax.checkpoint",
    "torch.utils.checkpoint.checkpoint(f, ...) -> jax.checkpoint(f)(...): detach inside still cuts",
    _inputs(25, w=(3,), v=(3,)),
    _torch_remat,
    {"w": True, "v": True},
    jax_program=_jax_remat,
)


def _torch_jit_inside(ops, t):
    return (ops.tanh(t["w"]) * ops.detach(t["v"]) + 0.0 * t["u"]).sum()


def _jax_jit_inside(ops, t):
    inner = ops.jax.jit(lambda w, v, u: ops.jnp.tanh(w) * ops.jax.lax.stop_gradient(v) + 0.0 * u)
    return inner(t["w"], t["v"], t["u"]).sum()


register_program(
    "jit-inside",
    "static analysis through a nested jax.jit",
    "a jitted helper inside the loss -> the same None/zeros structure as the eager PyTorch code",
    _inputs(26, w=(3,), v=(3,), u=(3,)),
    _torch_jit_inside,
    _ALL,
    jax_program=_jax_jit_inside,
)


def _torch_scale_grad(ops, t):
    import torch

    class ScaleGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, s):
            ctx.save_for_backward(s)
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            (s,) = ctx.saved_tensors
            return g * s, None

    return (ScaleGrad.apply(t["w"], t["s"]) ** 2).sum()


def _jax_scale_grad(ops, t):
    jax = ops.jax

    @jax.custom_vjp
    def scale_grad(x, s):
        return x

    scale_grad.defvjp(lambda x, s: (x, s), lambda s, g: (g * s, None))
    return (scale_grad(t["w"], t["s"]) ** 2).sum()


register_program(
    "custom-vjp-scale-grad",
    "static analysis through jax.custom_vjp",
    "torch.autograd.Function whose backward returns None for s -> jax.custom_vjp whose primal ignores s: None",
    _inputs(27, w=(3,), s=np.array(3.0, np.float32)),
    _torch_scale_grad,
    {"w": True, "s": True},
    jax_program=_jax_scale_grad,
)


def _torch_straight_through(ops, t):
    import torch

    class StraightThroughRound(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.round(x)

        @staticmethod
        def backward(ctx, g):
            return g

    return (StraightThroughRound.apply(t["w"]) * t["v"]).sum()


def _jax_straight_through(ops, t):
    jax = ops.jax

    @jax.custom_jvp
    def straight_through_round(x):
        return jax.lax.stop_gradient(ops.jnp.round(x))

    straight_through_round.defjvp(lambda primals, tangents: (straight_through_round(primals[0]), tangents[0]))
    return (straight_through_round(t["w"]) * t["v"]).sum()


register_program(
    "custom-jvp-straight-through",
    "static analysis through jax.custom_jvp",
    "autograd.Function (round forward, identity backward) -> jax.custom_jvp: the rule, not the primal's "
    "stop_gradient, decides",
    _inputs(28, w=(4,), v=(4,)),
    _torch_straight_through,
    {"w": True, "v": True},
    jax_program=_jax_straight_through,
)


# ------------------------------------------------------------------ leaves and grad_fn (section 3)

_S3 = "3. leaf and non-leaf tensors: requires_grad, is_leaf, grad_fn"


def _torch_grad_fn(tensor) -> str | None:
    return None if tensor.grad_fn is None else type(tensor.grad_fn).__name__


def _torch_describe(values: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for name, t in values.items():
        out[f"{name}.requires_grad"] = torch.tensor(t.requires_grad)
        out[f"{name}.is_leaf"] = torch.tensor(t.is_leaf)
        out[f"{name}.grad_fn"] = _torch_grad_fn(t)
    return out


def _jax_describe(graph: Any, names: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, key in names.items():
        info = graph[key]
        out[f"{label}.requires_grad"] = np.bool_(info.requires_grad)
        out[f"{label}.is_leaf"] = np.bool_(info.is_leaf)
        out[f"{label}.grad_fn"] = info.grad_fn
    return out


def _torch_leaf_rules(inputs):
    import torch

    a = torch.tensor(inputs["a"])
    w = torch.tensor(inputs["w"], requires_grad=True)
    b = a + 1
    c = w * 2
    d = c.detach()
    e = w.long().float()
    f = d * w
    with torch.no_grad():
        g = w * 3
    return _torch_describe({"a": a, "w": w, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g})


def _jax_leaf_rules(inputs, jit):
    import jax.numpy as jnp

    from torchsem import autograd

    def program(a, w):
        c = w * 2
        d = autograd.detach(c)
        return {
            "b": a + 1,
            "c": c,
            "d": d,
            "e": w.astype(jnp.int32).astype(jnp.float32),
            "f": d * w,
            "g": autograd.no_grad(lambda x: x * 3)(w),
        }

    graph = autograd.inspect_graph(
        jitted(program, jit), jnp.asarray(inputs["a"]), jnp.asarray(inputs["w"]), requires_grad=(False, True)
    )
    return _jax_describe(graph, {k: k for k in ("a", "w", "b", "c", "d", "e", "f", "g")})


register(
    Scenario(
        name="autograd/leaf-rules",
        section=_S3,
        mapping="t.requires_grad / t.is_leaf / t.grad_fn -> torchsem.autograd.inspect_graph(fun, *args)[name]",
        make_inputs=lambda: {"a": np.array([1.0], np.float32), "w": np.array([0.5, -2.0], np.float32)},
        torch_program=_torch_leaf_rules,
        jax_program=_jax_leaf_rules,
    )
)


# ``op: (PyTorch expression, JAX expression)``: each takes its namespace first (``torch``; ``jax``),
# then ``w`` (2, 3), ``v`` (3,), ``b`` (2, 3, 3), so neither side imports the other's library.
_GRAD_FN_OPS: dict[str, tuple[Callable, Callable]] = {
    "reshape": (lambda T, w, v, b: w.reshape(3, 2), lambda J, w, v, b: w.reshape(3, 2)),
    "mul": (lambda T, w, v, b: w * 2, lambda J, w, v, b: w * 2),
    "add": (lambda T, w, v, b: w + 1, lambda J, w, v, b: w + 1),
    "sub": (lambda T, w, v, b: w - 1, lambda J, w, v, b: w - 1),
    "div": (lambda T, w, v, b: w / 2, lambda J, w, v, b: w / 2),
    "neg": (lambda T, w, v, b: -w, lambda J, w, v, b: -w),
    "exp": (lambda T, w, v, b: T.exp(w), lambda J, w, v, b: J.numpy.exp(w)),
    "log": (lambda T, w, v, b: T.log(w.abs()), lambda J, w, v, b: J.numpy.log(J.numpy.abs(w))),
    "sin": (lambda T, w, v, b: T.sin(w), lambda J, w, v, b: J.numpy.sin(w)),
    "cos": (lambda T, w, v, b: T.cos(w), lambda J, w, v, b: J.numpy.cos(w)),
    "tanh": (lambda T, w, v, b: T.tanh(w), lambda J, w, v, b: J.numpy.tanh(w)),
    "sigmoid": (lambda T, w, v, b: T.sigmoid(w), lambda J, w, v, b: J.nn.sigmoid(w)),
    "sqrt": (lambda T, w, v, b: T.sqrt(w.abs()), lambda J, w, v, b: J.numpy.sqrt(J.numpy.abs(w))),
    "rsqrt": (lambda T, w, v, b: T.rsqrt(w.abs()), lambda J, w, v, b: J.lax.rsqrt(J.numpy.abs(w))),
    "abs": (lambda T, w, v, b: T.abs(w), lambda J, w, v, b: J.numpy.abs(w)),
    "floor": (lambda T, w, v, b: T.floor(w), lambda J, w, v, b: J.numpy.floor(w)),
    "ceil": (lambda T, w, v, b: T.ceil(w), lambda J, w, v, b: J.numpy.ceil(w)),
    "round": (lambda T, w, v, b: T.round(w), lambda J, w, v, b: J.numpy.round(w)),
    "sign": (lambda T, w, v, b: T.sign(w), lambda J, w, v, b: J.numpy.sign(w)),
    "maximum": (lambda T, w, v, b: T.maximum(w, w * 0), lambda J, w, v, b: J.numpy.maximum(w, w * 0)),
    "minimum": (lambda T, w, v, b: T.minimum(w, w * 0), lambda J, w, v, b: J.numpy.minimum(w, w * 0)),
    "pow2": (lambda T, w, v, b: w**2, lambda J, w, v, b: w**2),
    "square": (lambda T, w, v, b: T.square(w), lambda J, w, v, b: J.numpy.square(w)),
    "pow-tensor": (lambda T, w, v, b: w.abs() ** w, lambda J, w, v, b: J.numpy.abs(w) ** w),
    "erf": (lambda T, w, v, b: T.erf(w), lambda J, w, v, b: J.scipy.special.erf(w)),
    "log1p": (lambda T, w, v, b: T.log1p(w.abs()), lambda J, w, v, b: J.numpy.log1p(J.numpy.abs(w))),
    "cumsum": (lambda T, w, v, b: w.cumsum(0), lambda J, w, v, b: J.numpy.cumsum(w, 0)),
    "where": (lambda T, w, v, b: T.where(w > 0, w, w * 2), lambda J, w, v, b: J.numpy.where(w > 0, w, w * 2)),
    "cat": (lambda T, w, v, b: T.cat([w, w]), lambda J, w, v, b: J.numpy.concatenate([w, w])),
    "clone": (lambda T, w, v, b: w.clone(), lambda J, w, v, b: J.numpy.array(w, copy=True)),
    "to-float16": (lambda T, w, v, b: w.to(T.float16), lambda J, w, v, b: w.astype(J.numpy.float16)),
    "permute": (lambda T, w, v, b: w.permute(1, 0), lambda J, w, v, b: w.T),
    "slice": (lambda T, w, v, b: w[:, 1:], lambda J, w, v, b: w[:, 1:]),
    "sum": (lambda T, w, v, b: w.sum(), lambda J, w, v, b: w.sum()),
    "sum-dim": (lambda T, w, v, b: w.sum(0), lambda J, w, v, b: w.sum(0)),
    "max": (lambda T, w, v, b: w.max(), lambda J, w, v, b: J.numpy.max(w)),
    "amax": (lambda T, w, v, b: w.amax(0), lambda J, w, v, b: J.numpy.max(w, axis=0)),
    "mm": (lambda T, w, v, b: w @ w.T, lambda J, w, v, b: w @ w.T),
    "mv": (lambda T, w, v, b: w @ v, lambda J, w, v, b: w @ v),
    "dot": (lambda T, w, v, b: v @ v, lambda J, w, v, b: v @ v),
    "bmm": (lambda T, w, v, b: T.bmm(b, b.transpose(1, 2)), lambda J, w, v, b: J.numpy.matmul(b, b.swapaxes(1, 2))),
    "unsqueeze": (lambda T, w, v, b: w.unsqueeze(0), lambda J, w, v, b: w[None]),
    "expand": (lambda T, w, v, b: w.expand(4, 2, 3), lambda J, w, v, b: J.numpy.broadcast_to(w, (4, 2, 3))),
    "squeeze": (lambda T, w, v, b: w.unsqueeze(0).squeeze(0), lambda J, w, v, b: J.numpy.squeeze(w[None], 0)),
    "relu": (lambda T, w, v, b: T.relu(w), lambda J, w, v, b: J.nn.relu(w)),
    "log_softmax": (lambda T, w, v, b: T.log_softmax(w, 1), lambda J, w, v, b: J.nn.log_softmax(w, axis=1)),
    "clamp": (lambda T, w, v, b: w.clamp(0, 1), lambda J, w, v, b: J.numpy.clip(w, 0, 1)),
}


def _grad_fn_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(30)
    return {
        "w": rng.standard_normal((2, 3)).astype(np.float32),
        "v": rng.standard_normal(3).astype(np.float32),
        "b": rng.standard_normal((2, 3, 3)).astype(np.float32),
    }


def _torch_grad_fn_names(inputs):
    import torch

    w, v, b = (torch.tensor(inputs[k], requires_grad=True) for k in ("w", "v", "b"))
    return {f"{op}.grad_fn": _torch_grad_fn(torch_side(torch, w, v, b)) for op, (torch_side, _) in _GRAD_FN_OPS.items()}


def _jax_grad_fn_names(inputs, jit):
    import jax
    import jax.numpy as jnp
    import jax.scipy.special  # jax.scipy is a lazily imported submodule

    from torchsem import autograd

    def program(w, v, b):
        return {op: jax_side(jax, w, v, b) for op, (_, jax_side) in _GRAD_FN_OPS.items()}

    graph = autograd.inspect_graph(jitted(program, jit), *(jnp.asarray(inputs[k]) for k in ("w", "v", "b")))
    return {f"{op}.grad_fn": graph.outputs[op].grad_fn for op in _GRAD_FN_OPS}


register(
    Scenario(
        name="autograd/grad-fn-names",
        section=_S3,
        mapping="type(t.grad_fn).__name__ -> inspect_graph(...)[name].grad_fn, for each JAX primitive with a "
        "PyTorch counterpart",
        make_inputs=_grad_fn_inputs,
        torch_program=_torch_grad_fn_names,
        jax_program=_jax_grad_fn_names,
    )
)


# ``case: (module name, constructor arguments, input shape)``, the same on both sides.
_MODULE_CASES: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "linear-2d": ("Linear", {"in_features": 3, "out_features": 2}, (4, 3)),
    "linear-2d-no-bias": ("Linear", {"in_features": 3, "out_features": 2, "bias": False}, (4, 3)),
    "linear-3d": ("Linear", {"in_features": 3, "out_features": 2}, (2, 4, 3)),
    "linear-3d-no-bias": ("Linear", {"in_features": 3, "out_features": 2, "bias": False}, (2, 4, 3)),
    "linear-1d": ("Linear", {"in_features": 3, "out_features": 2}, (3,)),
    "linear-1d-no-bias": ("Linear", {"in_features": 3, "out_features": 2, "bias": False}, (3,)),
    "batchnorm1d": ("BatchNorm1d", {"num_features": 3}, (4, 3, 5)),
    "avgpool1d": ("AvgPool1d", {"kernel_size": 2}, (2, 3, 8)),
}


def _module_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(31)
    return {
        "x3": rng.standard_normal(3).astype(np.float32),
        "x43": rng.standard_normal((4, 3)).astype(np.float32),
        "x243": rng.standard_normal((2, 4, 3)).astype(np.float32),
        "x435": rng.standard_normal((4, 3, 5)).astype(np.float32),
        "x238": rng.standard_normal((2, 3, 8)).astype(np.float32),
    }


def _input_key(shape: tuple[int, ...]) -> str:
    return "x" + "".join(str(d) for d in shape)


def _torch_module_grad_fn(inputs):
    import torch

    out: dict[str, Any] = {}
    for case, (module_name, arguments, shape) in _MODULE_CASES.items():
        for mode in ("train", "eval"):
            module = getattr(torch.nn, module_name)(**arguments)
            module.train(mode == "train")
            x = torch.tensor(inputs[_input_key(shape)], requires_grad=True)
            out[f"{case}.{mode}.grad_fn"] = _torch_grad_fn(module(x))
    return out


def _jax_module_grad_fn(inputs, jit):
    import jax
    import jax.numpy as jnp

    from torchsem import autograd, nn

    out: dict[str, Any] = {}
    for case, (module_name, arguments, shape) in _MODULE_CASES.items():
        module = getattr(nn, module_name)(**arguments)
        x = jnp.asarray(inputs[_input_key(shape)])
        for mode in ("train", "eval"):
            kwargs = {"use_running_average": mode == "eval"} if case.startswith("batchnorm") else {}
            variables = module.init(jax.random.key(0), x, **kwargs)

            def forward(variables, x, kwargs=kwargs, module=module):
                return module.apply(variables, x, mutable=["batch_stats"], **kwargs)[0]

            graph = autograd.inspect_graph(jitted(forward, jit), variables, x)
            out[f"{case}.{mode}.grad_fn"] = graph.outputs["output"].grad_fn
    return out


register(
    Scenario(
        name="autograd/module-grad-fn-names",
        section=_S3,
        mapping="module(x).grad_fn for nn.Linear/BatchNorm1d/AvgPool1d -> inspect_graph on torchsem.nn modules",
        make_inputs=_module_inputs,
        torch_program=_torch_module_grad_fn,
        jax_program=_jax_module_grad_fn,
    )
)


# ----------------------------------------------------------------------- the document's network

_NET_VALUES = ("pool1_out", "bn1_out", "reshape_out", "detach_out", "fc1_out")


def _net_inputs() -> dict[str, Any]:
    return {"seed": np.int64(SEED), "target": np.array([1, 1, 1], np.int64)}


def _torch_net(inputs: Mapping[str, Any], detach: bool, seen: dict[str, Any] | None = None):
    """``seed_torch(1029); model = net(); x = torch.randn((3, 3, 8))`` with the document's ``net``."""
    from .._torch_net import torch_document_start

    model, (x,) = torch_document_start(seed=int(inputs["seed"]), detach=detach, seen=seen)
    return model, x


def _jax_net(inputs: Mapping[str, Any], detach: bool):
    """The same start in JAX (the shared document start: torchsem.random replays PyTorch's generator)."""
    import jax.numpy as jnp

    from torchsem.models import Net

    from .._document_net import document_start

    variables, (x,) = document_start(seed=int(inputs["seed"]))
    return Net(detach=detach), variables, jnp.asarray(x)


Selection = Any
"""A ``requires_grad_mask`` selector: a dotted name or prefix, a list of them, or ``(name, leaf) -> bool``."""


def _selects(selection: Selection, name: str, leaf: Any) -> bool:
    """Whether ``selection`` picks the parameter ``name`` (PyTorch side: over ``model.named_parameters()``)."""
    if callable(selection):
        return bool(selection(name, leaf))
    names = [selection] if isinstance(selection, str) else selection
    return any(name == n or name.startswith(n + ".") for n in names)


def _is_bias(name: str, leaf: Any) -> bool:
    return name.endswith(".bias")


def _torch_net_grads(
    inputs, detach: bool = False, train: bool = True, frozen: Selection = (), trainable: Selection | None = None
):
    import torch

    model, x = _torch_net(inputs, detach)
    model.train(train)
    for name, parameter in model.named_parameters():
        selected = trainable is None or _selects(trainable, name, parameter)
        parameter.requires_grad_(selected and not _selects(frozen, name, parameter))
    loss = torch.nn.CrossEntropyLoss()(model(x), torch.tensor(inputs["target"]))
    loss.backward()
    return {"loss": loss.detach(), **{f"{n}.grad": p.grad for n, p in model.named_parameters()}}


def _jax_net_grads(
    inputs, jit, detach: bool = False, train: bool = True, frozen: Selection = (), trainable: Selection | None = None
):
    from torchsem import autograd
    from torchsem.losses import cross_entropy

    model, variables, x = _jax_net(inputs, detach)
    params, batch_stats = variables["params"], variables["batch_stats"]
    mask = autograd.requires_grad_mask(params, trainable=trainable, frozen=frozen)  # the mapping's selector as it is

    def loss_fn(params, x, target):
        logits, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=train, mutable=["batch_stats"])
        return cross_entropy(logits, target)

    value_and_grad = autograd.value_and_grad(loss_fn, requires_grad=mask)
    loss, grads = jitted(value_and_grad, jit)(params, x, inputs["target"])
    return {"loss": loss, **{f"{name}.grad": grad for name, grad in autograd.named_leaves(grads).items()}}


_NET_CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "net-frozen-fc1-weight": (
        "1. requires_grad=False on a parameter (example one)",
        "model.fc1.weight.requires_grad = False -> requires_grad_mask(params, frozen='fc1.weight')",
        {"frozen": "fc1.weight"},
    ),
    "net-detach": (
        "2. detach() cuts the graph (example two)",
        "x = x.detach() in forward -> Net(detach=True) (jax.lax.stop_gradient): bn1 grads None",
        {"detach": True},
    ),
    "net-eval-mode": (
        "5. model.eval() does not change gradient computation",
        "model.eval() -> apply(..., train=False): every parameter still gets a gradient",
        {"train": False},
    ),
    "net-trainable-fc1-only": (
        "1. requires_grad by name",
        "for p in model.bn1.parameters(): p.requires_grad = False -> requires_grad_mask(params, trainable='fc1')",
        {"trainable": "fc1"},
    ),
    "net-frozen-biases": (
        "1. requires_grad by predicate",
        "bias.requires_grad = False for every bias -> requires_grad_mask(params, frozen=lambda name, leaf: "
        "name.endswith('.bias'))",
        {"frozen": _is_bias},
    ),
}

for _case, (_section, _mapping, _options) in _NET_CASES.items():
    register(
        Scenario(
            name=f"autograd/{_case}",
            section=_section,
            mapping=_mapping,
            make_inputs=_net_inputs,
            torch_program=functools.partial(_torch_net_grads, **_options),
            jax_program=functools.partial(_jax_net_grads, **_options),
        )
    )


def _torch_net_inspect(inputs, mode: str):
    import torch

    seen: dict[str, Any] = {}
    model, x = _torch_net(inputs, detach=mode == "detach", seen=seen)
    model.train(mode != "eval")
    if mode == "no_grad":
        with torch.no_grad():
            output = model(x)
            loss = torch.nn.CrossEntropyLoss()(output, torch.tensor(inputs["target"]))
    else:
        output = model(x)
        loss = torch.nn.CrossEntropyLoss()(output, torch.tensor(inputs["target"]))
    values = {**{n: p for n, p in model.named_parameters()}, "x": x, **seen}
    described = _torch_describe(values)
    described["loss.requires_grad"] = torch.tensor(loss.requires_grad)
    described["loss.is_leaf"] = torch.tensor(loss.is_leaf)
    return described


def _jax_net_inspect(inputs, jit, mode: str):
    from torchsem import autograd
    from torchsem.losses import cross_entropy

    model, variables, x = _jax_net(inputs, detach=mode == "detach")
    train = mode != "eval"

    def forward(params, batch_stats, x):
        logits, state = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=train, mutable=["batch_stats", "intermediates"]
        )
        return logits, state["intermediates"]

    if mode == "no_grad":
        forward = autograd.no_grad(forward)

    def program(params, batch_stats, x):
        logits, intermediates = forward(params, batch_stats, x)
        return {"loss": cross_entropy(logits, inputs["target"]), **intermediates}

    graph = autograd.inspect_graph(
        jitted(program, jit), variables["params"], variables["batch_stats"], x, requires_grad=(True, False, False)
    )
    names = {n: f"params.{n}" for n in ("bn1.weight", "bn1.bias", "fc1.weight", "fc1.bias")}
    names["x"] = "x"
    names.update({n: n for n in _NET_VALUES if n in graph.outputs})
    described = _jax_describe(graph, names)
    described["loss.requires_grad"] = np.bool_(graph["loss"].requires_grad)
    described["loss.is_leaf"] = np.bool_(graph["loss"].is_leaf)
    return described


for _mode, _mapping in (
    ("train", "forward in train mode -> inspect_graph(apply with sow'n intermediates)"),
    ("eval", "model.eval() forward -> inspect_graph(apply(..., train=False)): grad_fn unchanged"),
    ("no_grad", "with torch.no_grad(): forward -> inspect_graph(no_grad(apply)): every result a leaf"),
    ("detach", "x = x.detach() after the reshape -> Net(detach=True): the detached value is a leaf"),
):
    register(
        Scenario(
            name=f"autograd/net-inspect-{_mode.replace('_', '-')}",
            section=_S3
            if _mode in ("train", "detach")
            else (_S4 if _mode == "no_grad" else "5. model.eval() does not change gradient computation"),
            mapping=_mapping,
            make_inputs=_net_inputs,
            torch_program=functools.partial(_torch_net_inspect, mode=_mode),
            jax_program=functools.partial(_jax_net_inspect, mode=_mode),
        )
    )


# ------------------------------------------------------------------------ retain_grad (section 3)


def _torch_net_retained(inputs, detach: bool):
    import torch

    seen: dict[str, Any] = {}
    model, x = _torch_net(inputs, detach, seen)
    loss = torch.nn.CrossEntropyLoss()(model(x), torch.tensor(inputs["target"]))
    fc1_input = "detach_out" if detach else "reshape_out"
    retained = {
        "pool1.output": seen["pool1_out"],
        "bn1.output": seen["bn1_out"],
        "fc1.input": seen[fc1_input],
        "fc1.output": seen["fc1_out"],
    }
    for tensor in retained.values():
        if tensor.requires_grad:  # PyTorch refuses retain_grad() on the others: their .grad stays None
            tensor.retain_grad()
    loss.backward()
    return {
        "loss": loss.detach(),
        **{f"{name}.grad": t.grad for name, t in retained.items()},
        **{f"{n}.grad": p.grad for n, p in model.named_parameters()},
    }


def _jax_net_retained(inputs, jit, detach: bool):
    from torchsem import autograd
    from torchsem.losses import cross_entropy

    model, variables, x = _jax_net(inputs, detach)
    retain = autograd.retain_module_grads(outputs=["pool1", "bn1", "fc1"], inputs=["fc1"])
    with retain:
        variables = autograd.init_perturbations(model, variables, x, train=True)

    def loss_fn(variables, x, target):
        with retain:
            logits, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return cross_entropy(logits, target)

    mask = autograd.requires_grad_mask({k: v for k, v in variables.items() if k != "perturbations"})
    fun = autograd.value_grad_and_retained(loss_fn, requires_grad=mask)
    loss, grads, retained = jitted(fun, jit)(variables, x, inputs["target"])
    return {
        "loss": loss,
        **{f"{name}.grad": g for name, g in retained.items()},
        **{f"{name}.grad": g for name, g in autograd.named_leaves(grads["params"]).items()},
    }


for _detach in (False, True):
    register(
        Scenario(
            name=f"autograd/net-retain-grad{'-detach' if _detach else ''}",
            section=_S3,
            mapping="h.retain_grad() on intermediates -> retain_module_grads(outputs=[...], inputs=['fc1']) + "
            "value_grad_and_retained (Flax perturb)",
            make_inputs=_net_inputs,
            torch_program=functools.partial(_torch_net_retained, detach=_detach),
            jax_program=functools.partial(_jax_net_retained, detach=_detach),
        )
    )


def _torch_small_retained(inputs):
    import torch

    w = torch.tensor(inputs["w"], requires_grad=True)
    x = torch.tensor(inputs["x"])
    h = w * x
    h.retain_grad()
    k = w * 3.0
    k.retain_grad()
    g = x * 2.0  # does not require grad: PyTorch refuses retain_grad(); .grad is None
    loss = (h**2).sum() + (k.detach() * g).sum()
    loss.backward()
    return {"loss": loss.detach(), "h.grad": h.grad, "k.grad": k.grad, "g.grad": g.grad, "w.grad": w.grad}


def _jax_small_retained(inputs, jit):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from torchsem import autograd

    class Small(nn.Module):
        @nn.compact
        def __call__(self, x):
            w = self.param("w", lambda key: jnp.asarray(inputs["w"]))
            h = self.perturb("h", w * x)
            k = self.perturb("k", w * 3.0)
            g = self.perturb("g", x * 2.0)
            return (h**2).sum() + (autograd.detach(k) * g).sum()

    model = Small()
    x = jnp.asarray(inputs["x"])
    variables = model.init(jax.random.key(0), x)
    fun = autograd.value_grad_and_retained(lambda v, x: model.apply(v, x))
    loss, grads, retained = jitted(fun, jit)(variables, x)
    return {
        "loss": loss,
        "h.grad": retained["h"],
        "k.grad": retained["k"],
        "g.grad": retained["g"],
        "w.grad": grads["params"]["w"],
    }


register(
    Scenario(
        name="autograd/retain-grad-small",
        section=_S3,
        mapping="h.retain_grad(); loss.backward(); h.grad -> h = self.perturb('h', h); value_grad_and_retained",
        make_inputs=_inputs(40, w=(3,), x=(3,)),
        torch_program=_torch_small_retained,
        jax_program=_jax_small_retained,
    )
)
