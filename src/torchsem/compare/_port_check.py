"""Parity checking for a user's own port: a PyTorch ``nn.Module`` against its Flax counterpart, step by step.

:func:`check_port` loads the PyTorch module's weights into the Flax module, runs both through
the same train/eval steps on the same inputs and reports the first quantity (output, loss,
running statistic, gradient, parameter after the optimizer step) whose difference exceeds the
tolerance, with its name and step.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import convert
from ..tree import flatten_mapping, unflatten_mapping
from ._outputs import OutputValue, to_numpy
from ._result import OutputComparison, compare_output
from ._scenario import Tolerance

Mode = str  # "train" or "eval"
_MODES = ("train", "eval")
_SKIPPED_COLLECTIONS = ("intermediates", "perturbations")


@dataclasses.dataclass(frozen=True)
class PortQuantity:
    """One quantity compared at one step: PyTorch's value against the port's.

    Attributes:
      step: 1-based step number.
      mode: ``"train"`` or ``"eval"``.
      name: ``output``, ``loss``, a buffer name (``bn1.running_mean``), ``grad <param>`` or
        ``<param>`` (its value after the optimizer step), with PyTorch's dotted names.
      comparison: the values, differences, tolerance and verdict.
    """

    step: int
    mode: Mode
    name: str
    comparison: OutputComparison

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    def describe(self) -> str:
        c = self.comparison
        return (
            f"step {self.step} ({self.mode}), {self.name}: {c.detail} "
            f"(max abs {c.max_abs:.3g}, max rel {c.max_rel:.3g})"
        )


@dataclasses.dataclass(frozen=True)
class PortCheck:
    """The result of :func:`check_port`: every quantity compared, in the order they arise."""

    quantities: tuple[PortQuantity, ...]
    steps: tuple[Mode, ...]
    steps_run: int

    @property
    def ok(self) -> bool:
        """Whether every quantity at every step agrees within tolerance."""
        return all(q.ok for q in self.quantities)

    @property
    def first_mismatch(self) -> PortQuantity | None:
        """The first quantity (by step, then output, loss, buffers, grads, parameters) that disagrees."""
        return next((q for q in self.quantities if not q.ok), None)

    def summary(self) -> str:
        """One paragraph: agreement with the largest difference, or the first mismatch with both values."""
        from ._format import format_cell

        if self.ok:
            worst = max(self.quantities, key=lambda q: q.comparison.max_abs, default=None)
            tail = (
                f"; largest difference {worst.comparison.max_abs:.3g} ({worst.name}, step {worst.step})"
                if worst
                else ""
            )
            return (
                f"the port agrees with PyTorch: {len(self.quantities)} quantities over "
                f"{self.steps_run} steps ({', '.join(self.steps)}){tail}"
            )
        first = self.first_mismatch
        assert first is not None
        c = first.comparison
        return (
            f"the port first differs from PyTorch at {first.describe()}\n"
            f"  PyTorch: {format_cell(c.expected, 100)}\n  port:    {format_cell(c.actual, 100)}"
        )

    def __str__(self) -> str:
        return self.summary()


def _torch() -> Any:
    torch = sys.modules.get("torch")
    if torch is None:
        raise ImportError(
            "check_port compares against a torch.nn.Module, but PyTorch is not imported: "
            "import torch (pip install torch) before calling it"
        )
    return torch


def _modes(steps: int | Sequence[str]) -> tuple[Mode, ...]:
    if isinstance(steps, bool):
        raise TypeError(f"steps must be an int or a sequence of 'train'/'eval', got {steps!r}")
    if isinstance(steps, int):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return ("train",) * steps
    if isinstance(steps, str):
        raise TypeError(f"steps must be an int or a sequence of 'train'/'eval', got the string {steps!r}")
    modes = tuple(steps)
    bad = [m for m in modes if m not in _MODES]
    if bad or not modes:
        raise ValueError(f"steps must name at least one step, each 'train' or 'eval', got {list(modes)!r}")
    return modes


def _per_step(value: Any, count: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{what}: a list gives one entry per step, so it needs {count} entries, got {len(value)}")
        return list(value)
    return [value] * count


def _mode_kwargs_for(module: Any) -> Callable[[bool], dict[str, Any]]:
    parameters = inspect.signature(type(module).__call__).parameters
    for name, train_value in (
        ("train", True),
        ("training", True),
        ("use_running_average", False),
        ("deterministic", False),
    ):
        if name in parameters:

            def mode_kwargs(training: bool, _n: str = name, _v: bool = train_value) -> dict[str, Any]:
                return {_n: training if _v else not training}

            return mode_kwargs
    return lambda training: {}


def _default_cotangent(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


class _TorchSide:
    """Runs the PyTorch module one step at a time and reads its outputs, grads, buffers and parameters."""

    def __init__(self, module: Any, loss_fn: Callable | None, optimizer: Any) -> None:
        self.torch = _torch()
        self.module = module
        self.loss_fn = loss_fn
        self.optimizer = optimizer

    def _tensor(self, value: Any) -> Any:
        if isinstance(value, self.torch.Tensor):
            return value
        return self.torch.from_numpy(np.array(value, copy=True))

    def step(self, mode: Mode, x: Any, target: Any) -> dict[str, OutputValue]:
        torch, module = self.torch, self.module
        module.train(mode == "train")
        values: dict[str, OutputValue] = {}
        if mode == "eval":
            with torch.no_grad():
                values["output"] = to_numpy(module(self._tensor(x)))
            values.update(self.buffers())
            return values
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            module.zero_grad(set_to_none=True)
        output = module(self._tensor(x))
        if self.loss_fn is not None:
            loss = self.loss_fn(output, None if target is None else self._tensor(target))
        else:
            cotangent = _default_cotangent(tuple(output.shape), convert.host_copy(output).dtype)
            loss = (output * torch.from_numpy(cotangent)).sum()
        loss.backward()
        values["output"] = to_numpy(output)
        values["loss"] = to_numpy(loss)
        values.update(self.buffers())
        for name, parameter in module.named_parameters():
            values[f"grad {name}"] = None if parameter.grad is None else to_numpy(parameter.grad)
        if self.optimizer is not None:
            self.optimizer.step()
            values.update(self.parameters())
        return values

    def buffers(self) -> dict[str, OutputValue]:
        return {name: to_numpy(b) for name, b in self.module.named_buffers()}

    def parameters(self) -> dict[str, OutputValue]:
        return {name: to_numpy(p) for name, p in self.module.named_parameters()}

    def requires_grad(self) -> dict[str, bool]:
        return {name: bool(p.requires_grad) for name, p in self.module.named_parameters()}


class _JaxSide:
    """Runs the Flax module one step at a time, functionally, with PyTorch's None-gradient semantics."""

    def __init__(
        self,
        module: Any,
        variables: dict[str, Any],
        requires_grad: Mapping[str, bool],
        loss_fn: Callable | None,
        optimizer: Any,
        mode_kwargs: Callable[[bool], dict[str, Any]],
        rngs: Mapping[str, Any] | None,
        jit: bool,
    ) -> None:
        import jax

        self.module = module
        self.params = variables.get("params", {})
        self.state = {k: v for k, v in variables.items() if k != "params"}
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.opt_state = optimizer.init(self.params) if optimizer is not None else None
        self.mode_kwargs = mode_kwargs
        self.rngs = dict(rngs) if rngs else None
        flat_params = flatten_mapping(self.params)
        unknown = sorted(set(requires_grad) - set(flat_params))
        if unknown:
            raise ValueError(
                f"the PyTorch parameters {unknown} have no counterpart in the port's params ({sorted(flat_params)})"
            )
        self.mask = unflatten_mapping(self.params, {k: requires_grad.get(k, True) for k in flat_params})
        self._train = jax.jit(self._train_step) if jit else self._train_step
        self._eval = jax.jit(self._eval_step) if jit else self._eval_step

    def _apply(self, params, state, x, training: bool, rngs):
        mutable = list(state) if training else False
        out = self.module.apply(
            {"params": params, **state},
            x,
            **self.mode_kwargs(training),
            mutable=mutable,
            **({"rngs": rngs} if rngs else {}),
        )
        return out if training else (out, state)

    def _train_step(self, params, state, x, target, rngs):
        import jax.numpy as jnp

        from .. import autograd

        def loss_of(p):
            output, new_state = self._apply(p, state, x, True, rngs)
            if self.loss_fn is not None:
                loss = self.loss_fn(output, target)
            else:
                loss = jnp.sum(output * _default_cotangent(tuple(output.shape), np.dtype(output.dtype)))
            return loss, (output, new_state)

        (loss, (output, new_state)), grads = autograd.value_and_grad(loss_of, has_aux=True, requires_grad=self.mask)(
            params
        )
        return output, loss, new_state, grads

    def _eval_step(self, params, state, x, rngs):
        output, _ = self._apply(params, state, x, False, rngs)
        return output

    def _step_rngs(self, step: int):
        import jax

        if not self.rngs:
            return None
        return {name: jax.random.fold_in(key, step) for name, key in self.rngs.items()}

    def step(self, step: int, mode: Mode, x: Any, target: Any) -> dict[str, OutputValue]:
        x = convert.to_jax(x)
        rngs = self._step_rngs(step)
        values: dict[str, OutputValue] = {}
        if mode == "eval":
            values["output"] = to_numpy(self._eval(self.params, self.state, x, rngs))
            values.update(self.buffers())
            return values
        output, loss, new_state, grads = self._train(
            self.params, self.state, x, None if target is None else convert.to_jax(target), rngs
        )
        self.state = {**self.state, **new_state}
        values["output"] = to_numpy(output)
        values["loss"] = to_numpy(loss)
        values.update(self.buffers())
        values.update({f"grad {name}": to_numpy(g) for name, g in flatten_mapping(grads).items()})
        if self.optimizer is not None:
            self._apply_optimizer(grads)
            values.update({name: to_numpy(p) for name, p in flatten_mapping(self.params).items()})
        return values

    def _apply_optimizer(self, grads) -> None:
        import jax

        updates, self.opt_state = self.optimizer.update(grads, self.opt_state, self.params)
        flat_params, flat_updates = flatten_mapping(self.params), flatten_mapping(updates)
        stepped = {
            k: p if flat_updates.get(k) is None else p + jax.numpy.asarray(flat_updates[k]).astype(p.dtype)
            for k, p in flat_params.items()
        }
        self.params = unflatten_mapping(self.params, stepped)

    def buffers(self) -> dict[str, OutputValue]:
        flat: dict[str, OutputValue] = {}
        for collection, tree in self.state.items():
            if collection in _SKIPPED_COLLECTIONS:
                continue
            flat.update({name: to_numpy(v) for name, v in flatten_mapping(tree).items()})
        return flat


def check_port(
    torch_module: Any,
    flax_module: Any,
    inputs: Any,
    *,
    steps: int | Sequence[str] = 1,
    targets: Any = None,
    loss_fns: tuple[Callable, Callable] | None = None,
    optimizers: tuple[Any, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    mode_kwargs: Callable[[bool], dict[str, Any]] | None = None,
    rngs: Mapping[str, Any] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    tolerances: Mapping[str, Tolerance] | None = None,
    jit: bool = False,
    stop_at_first: bool = True,
) -> PortCheck:
    """Run a PyTorch module and its Flax port side by side and report the first quantity that differs.

    The port's variables are initialised (``flax_module.init``) and then overwritten with the
    PyTorch module's ``state_dict`` through :func:`torchsem.convert.load_torch_state_dict`
    (strict: names and shapes must match, PyTorch's dotted names = the Flax variables flattened
    with ``.``). Then, for each step:

    - ``train``: PyTorch ``module.train()``, zero grads, forward, loss, ``backward()``, optional
      ``optimizer.step()``; the port applies with the train flag and mutable state, takes
      gradients with :func:`torchsem.autograd.value_and_grad` (a PyTorch parameter with
      ``requires_grad=False`` is masked out and must come back ``None`` on both sides), then
      applies its optax optimizer. Compared, in this order: ``output``, ``loss``, every buffer
      (``bn1.running_mean``, ...), ``grad <name>`` for every parameter, and every parameter after
      the step (when ``optimizers`` is given).
    - ``eval``: PyTorch ``module.eval()`` under ``torch.no_grad()``, the port with the eval flag and
      immutable state; compared: ``output`` and every buffer (which must not move).

    Without ``loss_fns`` the loss is ``sum(output * c)`` with a fixed standard-normal ``c``
    (numpy seed 0), so every output element reaches the gradients.

    Args:
      torch_module: the PyTorch ``nn.Module`` (torch must already be imported; torchsem never imports it).
      flax_module: the Flax linen module whose variables carry PyTorch's names.
      inputs: one input array used at every step, or a list with one input per step.
      steps: the number of train steps, or the modes in order, e.g. ``["train", "train", "eval"]``.
      targets: the loss target (one, or a list with one per step); passed to ``loss_fns``.
      loss_fns: ``(torch_loss, jax_loss)``, each ``(output, target) -> scalar``.
      optimizers: ``(torch_optimizer, optax_transformation)``: a ``torch.optim`` optimizer built
        over ``torch_module.parameters()`` and its JAX counterpart (e.g. ``torchsem.optim.sgd``).
      variables: the port's initial variables (default: ``flax_module.init`` on the first input,
        in eval mode); PyTorch's weights are loaded into them either way.
      mode_kwargs: ``training -> call kwargs`` for the port; by default a ``train``/``training``
        argument gets ``training`` and ``use_running_average``/``deterministic`` get ``not training``.
      rngs: Flax rngs for ``apply`` (folded with the step number). Dropout masks cannot match
        PyTorch's, so compare dropout models in eval steps or with ``p=0``.
      rtol, atol: the default tolerance (float32: 1e-5, 1e-6).
      tolerances: per-quantity overrides by name (``"loss"``, ``"grad fc1.weight"``), each with a reason.
      jit: run the port's steps under ``jax.jit``.
      stop_at_first: stop after the step in which the first mismatch appears (later steps only compound it).

    Returns:
      A :class:`PortCheck`: ``ok``, ``first_mismatch`` (step, mode, name, values) and ``summary()``.

    Raises:
      ImportError: torch is not imported. ValueError/TypeError: bad ``steps``, per-step lists of
        the wrong length, or parameters the port does not have; ``load_torch_state_dict``'s error
        for missing, unexpected or wrongly shaped variables.
    """
    import jax

    modes = _modes(steps)
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    if loss_fns is not None and len(loss_fns) != 2:
        raise ValueError("loss_fns must be a pair (torch_loss, jax_loss)")
    if optimizers is not None and len(optimizers) != 2:
        raise ValueError("optimizers must be a pair (torch_optimizer, optax_transformation)")
    step_inputs = _per_step(inputs, len(modes), "inputs")
    step_targets = _per_step(targets, len(modes), "targets")
    overrides = dict(tolerances or {})
    default = Tolerance(rtol, atol, "check_port default")

    torch_side = _TorchSide(torch_module, loss_fns[0] if loss_fns else None, optimizers[0] if optimizers else None)
    kwargs_for = mode_kwargs if mode_kwargs is not None else _mode_kwargs_for(flax_module)
    if variables is None:
        first = np.asarray(to_numpy(step_inputs[0]))
        variables = flax_module.init(jax.random.key(0), first, **kwargs_for(False))
    variables = {k: v for k, v in dict(variables).items() if k not in _SKIPPED_COLLECTIONS}
    state_dict = {name: to_numpy(value) for name, value in torch_module.state_dict().items()}
    loaded = convert.load_torch_state_dict(variables, state_dict, strict=True)
    jax_side = _JaxSide(
        flax_module,
        dict(loaded),
        torch_side.requires_grad(),
        loss_fns[1] if loss_fns else None,
        optimizers[1] if optimizers else None,
        kwargs_for,
        rngs,
        jit,
    )

    quantities: list[PortQuantity] = []
    run = 0
    for index, mode in enumerate(modes):
        x = to_numpy(step_inputs[index])
        target = None if step_targets[index] is None else to_numpy(step_targets[index])
        expected = torch_side.step(mode, x, target)
        actual = jax_side.step(index, mode, x, target)
        run += 1
        for name, value in expected.items():
            if name not in actual:
                inf = float("inf")
                quantities.append(
                    PortQuantity(
                        index + 1,
                        mode,
                        name,
                        OutputComparison(
                            name,
                            value,
                            None,
                            overrides.get(name, default),
                            inf,
                            inf,
                            False,
                            "the port has no such quantity",
                        ),
                    )
                )
                continue
            quantities.append(
                PortQuantity(
                    index + 1, mode, name, compare_output(name, value, actual[name], overrides.get(name, default))
                )
            )
        if stop_at_first and any(not q.ok for q in quantities):
            break
    return PortCheck(tuple(quantities), modes, run)
