"""Parity checking for a user's own port: a PyTorch ``nn.Module`` against its Flax counterpart, step by step.

:func:`check_port` loads the PyTorch module's weights into the Flax module (translating Flax's
own names and layouts, see :mod:`._port_names`), runs both through the same train/eval steps on
the same inputs and compares, step by step and in execution order, every submodule's output,
the model output and loss, the buffers, the gradients, the parameters after the optimizer step
and the optimizer's state. The first quantity whose difference exceeds the tolerance names the
module where the port diverges; :class:`PortCheck` also tabulates the first divergence per kind
of quantity and (with ``torchsem[report]``) plots the error per step.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import convert
from ..tree import flatten_mapping, unflatten_mapping
from ._outputs import OutputValue, to_numpy
from ._port_names import Layout, PortNames
from ._port_report import PortCheck, PortQuantity
from ._result import OutputComparison, compare_output, drift_distance
from ._scenario import Tolerance

__all__ = ["PortCheck", "PortQuantity", "check_port"]

Mode = str  # "train" or "eval"
_MODES = ("train", "eval")
_SKIPPED_COLLECTIONS = ("intermediates", "perturbations")
# optax's state fields that hold one array per parameter, and PyTorch's name for each.
_OPTAX_STATE_NAMES = {"trace": "momentum_buffer", "mu": "exp_avg", "nu": "exp_avg_sq"}


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


def _tensor_leaves(value: Any) -> list[Any]:
    """The arrays of a module output (a tensor, or tuples/lists/dicts of them), in order."""
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _tensor_leaves(item)]
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _tensor_leaves(item)]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return [value]
    return []


def _activation_name(module: str, call: int, leaf: int, leaves: int) -> str:
    name = f"{module} output" + (f"[{leaf}]" if leaves > 1 else "")
    return name + (f" (call {call + 1})" if call else "")


Activations = dict[tuple[str, int], list[np.ndarray]]


class _TorchSide:
    """Runs the PyTorch module one step at a time and reads its activations, outputs, grads, buffers and state."""

    def __init__(
        self, module: Any, loss_fn: Callable | None, optimizer: Any, activations: bool, float64: bool = False
    ) -> None:
        self.torch = _torch()
        self.module = module
        self.float64 = float64  # the float64 reference run of drift=: floating inputs and targets widened
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        # The submodule calls of the last forward, in execution order (a hook fires when a call returns).
        self.order: list[tuple[str, int]] = []
        self.calls: Activations = {}
        self._call_counts: dict[str, int] = {}
        self._handles = []
        if activations:
            for name, submodule in module.named_modules():
                if name:
                    self._handles.append(submodule.register_forward_hook(self._hook(name)))

    def _hook(self, name: str) -> Callable:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            call = self._call_counts.get(name, 0)
            self._call_counts[name] = call + 1
            # Copied now: a later in-place op (ReLU(inplace=True)) would change the tensor.
            self.calls[(name, call)] = [np.asarray(to_numpy(leaf)) for leaf in _tensor_leaves(output)]
            self.order.append((name, call))

        return hook

    def close(self) -> None:
        """Remove the forward hooks from the user's module."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _tensor(self, value: Any) -> Any:
        tensor = value if isinstance(value, self.torch.Tensor) else self.torch.from_numpy(np.array(value, copy=True))
        if self.float64 and tensor.is_floating_point():
            return tensor.to(self.torch.float64)
        return tensor

    def _forward(self, x: Any) -> Any:
        self.order, self.calls, self._call_counts = [], {}, {}
        return self.module(self._tensor(x))

    def step(self, mode: Mode, x: Any, target: Any) -> dict[str, OutputValue]:
        torch, module = self.torch, self.module
        module.train(mode == "train")
        values: dict[str, OutputValue] = {}
        if mode == "eval":
            with torch.no_grad():
                values["output"] = to_numpy(self._forward(x))
            values.update(self.buffers())
            return values
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            module.zero_grad(set_to_none=True)
        output = self._forward(x)
        if self.loss_fn is not None:
            loss = self.loss_fn(output, None if target is None else self._tensor(target))
        else:
            dtype = convert.host_copy(output).dtype
            # The float64 run weights its output with the float32 run's very cotangent, widened.
            cotangent = _default_cotangent(tuple(output.shape), np.float32 if self.float64 else dtype).astype(dtype)
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
            values.update(self.optimizer_state())
        return values

    def buffers(self) -> dict[str, OutputValue]:
        return {name: to_numpy(b) for name, b in self.module.named_buffers()}

    def parameters(self) -> dict[str, OutputValue]:
        return {name: to_numpy(p) for name, p in self.module.named_parameters()}

    def optimizer_state(self) -> dict[str, OutputValue]:
        values: dict[str, OutputValue] = {}
        for name, parameter in self.module.named_parameters():
            for key, value in self.optimizer.state.get(parameter, {}).items():
                if hasattr(value, "shape") or isinstance(value, (int, float)):
                    values[f"optimizer {name} {key}"] = to_numpy(value)
        return values

    def requires_grad(self) -> dict[str, bool]:
        return {name: bool(p.requires_grad) for name, p in self.module.named_parameters()}


REFERENCE = " [float64]"


def _float64_copy(module: Any, optimizer: Any) -> tuple[Any, Any]:
    """A float64 copy of the PyTorch module and a fresh optimizer of the same class and groups over it."""
    import copy

    twin = copy.deepcopy(module).double()
    if optimizer is None:
        return twin, None
    index = {id(p): i for i, p in enumerate(module.parameters())}
    copies = list(twin.parameters())
    groups = []
    for group in optimizer.param_groups:
        try:
            params = [copies[index[id(p)]] for p in group["params"]]
        except KeyError:
            raise ValueError("drift: the optimizer holds a tensor that is not a parameter of torch_module") from None
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": params})
    return twin, type(optimizer)(groups)


def _flax_activations(tree: Any, path: tuple[str, ...] = ()) -> Activations:
    """Every submodule call Flax's ``capture_intermediates`` recorded, by dotted port path and call index."""
    import jax

    found: Activations = {}
    if not isinstance(tree, Mapping):
        return found
    for key, value in tree.items():
        if key == "__call__" and path:
            for call, output in enumerate(value):
                found[(".".join(path), call)] = [np.asarray(to_numpy(leaf)) for leaf in jax.tree.leaves(output)]
        elif key != "__call__":
            found.update(_flax_activations(value, (*path, key)))
    return found


class _JaxSide:
    """Runs the Flax module one step at a time, functionally, with PyTorch's None-gradient semantics."""

    def __init__(
        self,
        module: Any,
        variables: dict[str, Any],
        names: PortNames,
        requires_grad: Mapping[str, bool],
        loss_fn: Callable | None,
        optimizer: Any,
        mode_kwargs: Callable[[bool], dict[str, Any]],
        rngs: Mapping[str, Any] | None,
        jit: bool,
        activations: bool,
        channels_last: bool,
    ) -> None:
        import jax

        self.module = module
        self.names = names
        self.params = variables.get("params", {})
        self.state = {k: v for k, v in variables.items() if k != "params"}
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.opt_state = optimizer.init(self.params) if optimizer is not None else None
        self.mode_kwargs = mode_kwargs
        self.rngs = dict(rngs) if rngs else None
        self.capture = activations
        self.channels_last = channels_last
        self.calls: Activations = {}
        flat_params = flatten_mapping(self.params)
        port_of = {names.port_name(t): t for t in requires_grad}
        unknown = sorted(t for p, t in port_of.items() if p is None or p not in flat_params)
        if unknown:
            raise ValueError(
                f"the PyTorch parameters {unknown} have no counterpart in the port's params ({sorted(flat_params)})"
            )
        self.mask = unflatten_mapping(
            self.params, {k: requires_grad.get(names.torch_name(k), True) for k in flat_params}
        )
        self._train = jax.jit(self._train_step) if jit else self._train_step
        self._eval = jax.jit(self._eval_step) if jit else self._eval_step

    def _port_input(self, x: Any) -> Any:
        import jax.numpy as jnp

        return jnp.moveaxis(x, 1, -1) if self.channels_last and x.ndim >= 3 else x

    def _torch_layout(self, value: np.ndarray) -> np.ndarray:
        return np.moveaxis(value, -1, 1) if self.channels_last and value.ndim >= 3 else value

    def _apply(self, params, state, x, training: bool, rngs):
        mutable = [*state, "intermediates"] if training else ["intermediates"]
        out, new_state = self.module.apply(
            {"params": params, **state},
            self._port_input(x),
            **self.mode_kwargs(training),
            mutable=mutable,
            capture_intermediates=self.capture,
            **({"rngs": rngs} if rngs else {}),
        )
        new_state = dict(new_state)
        intermediates = new_state.pop("intermediates", {})
        return out, (new_state if training else state), intermediates

    def _train_step(self, params, state, x, target, rngs):
        import jax.numpy as jnp

        from .. import autograd

        def loss_of(p):
            output, new_state, intermediates = self._apply(p, state, x, True, rngs)
            if self.loss_fn is not None:
                loss = self.loss_fn(output, target)
            else:
                torch_output = jnp.moveaxis(output, -1, 1) if self.channels_last and output.ndim >= 3 else output
                cotangent = _default_cotangent(tuple(torch_output.shape), np.dtype(output.dtype))
                loss = jnp.sum(torch_output * cotangent)
            return loss, (output, new_state, intermediates)

        (loss, (output, new_state, intermediates)), grads = autograd.value_and_grad(
            loss_of, has_aux=True, requires_grad=self.mask
        )(params)
        return output, loss, new_state, grads, intermediates

    def _eval_step(self, params, state, x, rngs):
        output, _, intermediates = self._apply(params, state, x, False, rngs)
        return output, intermediates

    def _step_rngs(self, step: int):
        import jax

        if not self.rngs:
            return None
        return {name: jax.random.fold_in(key, step) for name, key in self.rngs.items()}

    def _read_activations(self, intermediates: Any) -> None:
        self.calls = {}
        for (path, call), leaves in _flax_activations(intermediates).items():
            self.calls[(self.names.module(path), call)] = [self._torch_layout(leaf) for leaf in leaves]

    def step(self, step: int, mode: Mode, x: Any, target: Any) -> dict[str, OutputValue]:
        x = convert.to_jax(x)
        rngs = self._step_rngs(step)
        values: dict[str, OutputValue] = {}
        if mode == "eval":
            output, intermediates = self._eval(self.params, self.state, x, rngs)
            self._read_activations(intermediates)
            values["output"] = self._torch_layout(np.asarray(to_numpy(output)))
            values.update(self.buffers())
            return values
        output, loss, new_state, grads, intermediates = self._train(
            self.params, self.state, x, None if target is None else convert.to_jax(target), rngs
        )
        self._read_activations(intermediates)
        self.state = {**self.state, **new_state}
        values["output"] = self._torch_layout(np.asarray(to_numpy(output)))
        values["loss"] = to_numpy(loss)
        values.update(self.buffers())
        flat_grads = {name: None if g is None else to_numpy(g) for name, g in flatten_mapping(grads).items()}
        values.update({f"grad {name}": g for name, g in self.names.to_torch(flat_grads).items()})
        if self.optimizer is not None:
            self._apply_optimizer(grads)
            values.update(self.parameters())
            values.update(self.optimizer_state())
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

    def parameters(self) -> dict[str, OutputValue]:
        flat = {name: to_numpy(p) for name, p in flatten_mapping(self.params).items()}
        return self.names.to_torch(flat)

    def buffers(self) -> dict[str, OutputValue]:
        flat: dict[str, OutputValue] = {}
        for collection, tree in self.state.items():
            if collection in _SKIPPED_COLLECTIONS:
                continue
            flat.update({name: to_numpy(v) for name, v in flatten_mapping(tree).items()})
        return self.names.to_torch(flat)

    def optimizer_state(self) -> dict[str, OutputValue]:
        """The optimizer's per-parameter state under PyTorch's names: torchsem's own, or optax's trace/mu/nu."""
        from .. import optim

        port_names = list(flatten_mapping(self.params))
        per_parameter: dict[str, dict[str, Any]] = {}
        try:
            torch_state = optim.state_dict(self.opt_state, order=port_names)
        except (TypeError, ValueError):
            torch_state = None
        if torch_state is not None:
            for index, entries in torch_state.items():
                per_parameter[port_names[index]] = dict(entries)
        else:
            for field, tree in _optax_state_fields(self.opt_state, set(port_names)):
                for name, value in flatten_mapping(tree).items():
                    if value is not None:
                        per_parameter.setdefault(name, {})[_OPTAX_STATE_NAMES[field]] = value
        values: dict[str, OutputValue] = {}
        for port_name, entries in per_parameter.items():
            for key, value in entries.items():
                torch_name, converted = next(iter(self.names.to_torch({port_name: to_numpy(value)}).items()))
                if key == "step":
                    converted = to_numpy(value)
                values[f"optimizer {torch_name} {key}"] = converted
        return values


def _optax_state_fields(state: Any, names: set[str]) -> list[tuple[str, Any]]:
    """``(field, tree)`` for every optax state field (trace, mu, nu) holding one array per parameter."""
    found: list[tuple[str, Any]] = []
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        for field in state._fields:
            value = getattr(state, field)
            if field in _OPTAX_STATE_NAMES and isinstance(value, Mapping) and set(flatten_mapping(value)) <= names:
                found.append((field, value))
            else:
                found.extend(_optax_state_fields(value, names))
    elif isinstance(state, (tuple, list)):
        for item in state:
            found.extend(_optax_state_fields(item, names))
    elif isinstance(state, Mapping):
        for item in state.values():
            found.extend(_optax_state_fields(item, names))
    return found


def _tolerance_for(name: str, overrides: Mapping[str, Tolerance], default: Tolerance) -> Tolerance:
    if name in overrides:
        return overrides[name]
    for pattern, tolerance in overrides.items():
        if fnmatch.fnmatchcase(name, pattern):
            return tolerance
    return default


def _kind_of(name: str, buffers: set[str]) -> str:
    if name in ("output", "loss"):
        return name
    if name.startswith("grad "):
        return "grad"
    if name.startswith("optimizer "):
        return "optimizer"
    return "buffer" if name in buffers else "param"


def _linen_port(port: Any, activations: bool | None) -> tuple[Any, bool]:
    """The port as a linen module (an NNX model through ``torchsem.nnx.as_linen``) and whether to compare activations.

    Raises:
      ValueError: ``activations=True`` for an NNX port, whose layers linen cannot intercept.
    """
    from flax import nnx

    if not isinstance(port, nnx.Module):
        return port, True if activations is None else activations
    if activations:
        raise ValueError(
            "check_port: activations=True needs a linen port; an NNX port's layers cannot be intercepted "
            "(its output, loss, buffers, gradients and parameters are compared: leave activations unset)"
        )
    from ..nnx import as_linen

    return as_linen(port), False


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
    load_weights: bool = True,
    names: Mapping[str, str] | Callable[[str], str] | None = None,
    flax_conventions: bool = True,
    layouts: Mapping[str, Layout] | None = None,
    channels_last: bool = False,
    activations: bool | None = None,
    mode_kwargs: Callable[[bool], dict[str, Any]] | None = None,
    rngs: Mapping[str, Any] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    tolerances: Mapping[str, Tolerance] | None = None,
    jit: bool = False,
    stop_at_first: bool = True,
    drift: float | None = None,
) -> PortCheck:
    """Run a PyTorch module and its Flax port side by side and report where they first differ.

    The port's variables are initialised (``flax_module.init``) and then overwritten with the
    PyTorch module's ``state_dict`` through :func:`torchsem.convert.load_torch_state_dict`
    (strict). Names: a torchsem port carries PyTorch's names (the dotted path of a variable is
    its state_dict key); for a plain-Flax port, ``flax_conventions`` translates Flax's own
    names and layouts (``kernel`` -> ``weight`` transposed: Dense ``(in, out)``, Conv
    ``(*spatial, in, out)``; ``scale`` -> ``weight``; ``mean``/``var`` -> ``running_mean``/
    ``running_var``; a Flax BatchNorm's missing ``num_batches_tracked`` is not an error) and
    ``names`` renames modules (``{"Dense_0": "fc1"}``). Step 0 compares every parameter and
    buffer as loaded. Then, for each step:

    - ``train``: PyTorch ``module.train()``, zero grads, forward, loss, ``backward()``, optional
      ``optimizer.step()``; the port applies with the train flag and mutable state, takes
      gradients with :func:`torchsem.autograd.value_and_grad` (a PyTorch parameter with
      ``requires_grad=False`` is masked out and must come back ``None`` on both sides), then
      applies its optax optimizer. Compared, in this order: every submodule's output in
      PyTorch's execution order (PyTorch forward hooks against Flax's
      ``capture_intermediates``; ``layer1.0.conv1 output``), ``output``, ``loss``, every buffer
      (``bn1.running_mean``), ``grad <name>`` for every parameter, and with ``optimizers`` every
      parameter after the step and the optimizer's state (``optimizer fc1.weight exp_avg``:
      torchsem's optimizers by PyTorch's names; optax's ``trace``/``mu``/``nu`` as
      ``momentum_buffer``/``exp_avg``/``exp_avg_sq``).
    - ``eval``: PyTorch ``module.eval()`` under ``torch.no_grad()``, the port with the eval flag
      and immutable state: submodule outputs, ``output`` and every buffer (which must not move).

    So the first mismatch names the module where the port goes wrong, e.g. ``step 1 (train):
    layer3.0.bn2 output differs (max rel 3e-2, ...)``. A PyTorch submodule with no Flax
    counterpart (a ``ReLU`` module the port writes as ``nn.relu``) is listed in
    ``PortCheck.uncompared``, not failed. Without ``loss_fns`` the loss is ``sum(output * c)``
    with a fixed standard-normal ``c`` (numpy seed 0), so every output element reaches the
    gradients.

    Args:
      torch_module: the PyTorch ``nn.Module`` (torch must already be imported; torchsem never imports it).
      flax_module: the Flax linen module, or an NNX model (its state loaded from the PyTorch module
        as a linen port's would be; the model itself is not changed).
      inputs: one input array used at every step, or a list with one input per step (channels-first).
      steps: the number of train steps, or the modes in order, e.g. ``["train", "train", "eval"]``.
      targets: the loss target (one, or a list with one per step); passed to ``loss_fns``.
      loss_fns: ``(torch_loss, jax_loss)``, each ``(output, target) -> scalar``.
      optimizers: ``(torch_optimizer, optax_transformation)``: a ``torch.optim`` optimizer built
        over ``torch_module.parameters()`` and its JAX counterpart (e.g. ``torchsem.optim.sgd``).
      variables: the port's initial variables (default: ``flax_module.init`` on the first input,
        in eval mode).
      load_weights: load PyTorch's ``state_dict`` into ``variables`` (False: check a port whose
        variables you loaded yourself; step 0 then shows what your loading got wrong).
      names: port module path -> PyTorch module path, a mapping (longest prefix wins) or a function.
      flax_conventions: translate Flax's own variable names and kernel layouts (see above).
      layouts: PyTorch variable name -> ``(torch_to_port, port_to_torch)`` for other layouts.
      channels_last: the port takes and returns channels-last arrays (plain Flax convnets):
        inputs of rank >= 3 are moved to channels-last for the port, and its activations and
        output moved back to channels-first for comparison.
      activations: compare every submodule's output (False: only the model-level quantities).
        Default: True for a linen port, False for an NNX port (a ``torchsem.nnx`` model, or
        any ``flax.nnx.Module``, run through :func:`torchsem.nnx.as_linen`).
      mode_kwargs: ``training -> call kwargs`` for the port; by default a ``train``/``training``
        argument gets ``training`` and ``use_running_average``/``deterministic`` get ``not training``.
      rngs: Flax rngs for ``apply`` (folded with the step number). Dropout masks cannot match
        PyTorch's, so compare dropout models in eval steps or with ``p=0``.
      rtol, atol: the default tolerance (float32: 1e-5, 1e-6).
      tolerances: per-quantity overrides by name or ``fnmatch`` pattern (``"loss"``,
        ``"grad fc1.*"``), each with a reason.
      jit: run the port's steps under ``jax.jit``.
      stop_at_first: stop after the step in which the first mismatch appears (later steps only
        compound it); False runs every step, for :meth:`PortCheck.plot`.
      drift: judge every float quantity by its distance from a float64 PyTorch run instead of
        by ``rtol``/``atol`` against float32 PyTorch: a float64 copy of the module (and a fresh
        optimizer of the same class and groups) runs the same steps, and the port must be at
        most ``drift`` times as far from it as float32 PyTorch is, or within ``rtol`` of it
        (:func:`compare_output`'s drift criterion; a loss is also held to its output's drift).
        For deep models, where float32 PyTorch itself moves away from float64 (BatchNorm on
        small batches) and float32's elementwise tolerance would fail PyTorch against itself.
        ``tolerances`` still override per quantity. Typical: 4 (the ResNet scenarios' measured k).

    Returns:
      A :class:`PortCheck`: ``ok``, ``first_mismatch``, ``first_by_kind()``, ``table()``,
      ``summary()``, ``trajectory(name)`` and ``plot(path)``.

    Raises:
      ImportError: torch is not imported. ValueError/TypeError: bad ``steps``, per-step lists of
        the wrong length, or parameters the port does not have; ``load_torch_state_dict``'s
        RuntimeError for missing, unexpected or wrongly shaped variables.
    """
    import jax

    modes = _modes(steps)
    flax_module, activations = _linen_port(flax_module, activations)
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    if loss_fns is not None and len(loss_fns) != 2:
        raise ValueError("loss_fns must be a pair (torch_loss, jax_loss)")
    if optimizers is not None and len(optimizers) != 2:
        raise ValueError("optimizers must be a pair (torch_optimizer, optax_transformation)")
    if not load_weights and variables is None:
        raise ValueError("load_weights=False checks the variables you loaded yourself: pass them as `variables`")
    if drift is not None and not drift >= 1:
        raise ValueError(f"drift must be >= 1 (a multiple of PyTorch's distance from float64), got {drift}")
    step_inputs = _per_step(inputs, len(modes), "inputs")
    step_targets = _per_step(targets, len(modes), "targets")
    overrides = dict(tolerances or {})
    default = Tolerance(rtol, atol, "check_port default")

    reference_side = None
    if drift is not None:  # copied before the float32 side registers its hooks on the module
        module64, optimizer64 = _float64_copy(torch_module, optimizers[0] if optimizers else None)
        reference_side = _TorchSide(module64, loss_fns[0] if loss_fns else None, optimizer64, activations, True)
    torch_side = _TorchSide(
        torch_module, loss_fns[0] if loss_fns else None, optimizers[0] if optimizers else None, activations
    )
    try:
        kwargs_for = mode_kwargs if mode_kwargs is not None else _mode_kwargs_for(flax_module)
        if variables is None:
            first = np.asarray(to_numpy(step_inputs[0]))
            if channels_last and first.ndim >= 3:
                first = np.moveaxis(first, 1, -1)
            variables = flax_module.init(jax.random.key(0), first, **kwargs_for(False))
        variables = {k: v for k, v in dict(variables).items() if k not in _SKIPPED_COLLECTIONS}
        port_names = PortNames(variables, names, flax_conventions, layouts)
        state_dict = {name: np.asarray(to_numpy(value)) for name, value in torch_module.state_dict().items()}
        translated, unmatched = port_names.to_port_state_dict(state_dict)
        loaded = convert.load_torch_state_dict(variables, translated, strict=True) if load_weights else variables
        jax_side = _JaxSide(
            flax_module,
            dict(loaded),
            port_names,
            torch_side.requires_grad(),
            loss_fns[1] if loss_fns else None,
            optimizers[1] if optimizers else None,
            kwargs_for,
            rngs,
            jit,
            activations,
            channels_last,
        )
        inputs_targets = (step_inputs, step_targets)
        judge = _Judge(overrides, default, drift)
        return _run(torch_side, jax_side, modes, inputs_targets, unmatched, judge, stop_at_first, reference_side)
    finally:
        torch_side.close()
        if reference_side is not None:
            reference_side.close()


def _one_row(value: Any) -> Any:
    return value.reshape(-1) if isinstance(value, np.ndarray) else value


class _Judge:
    """Each quantity's comparison: the override or default tolerance, or the drift criterion."""

    def __init__(self, overrides: Mapping[str, Tolerance], default: Tolerance, drift: float | None) -> None:
        self.overrides, self.default, self.drift = overrides, default, drift

    def compare(
        self, name: str, expected: OutputValue, actual: Any, reference: OutputValue, yardstick: float | None
    ) -> OutputComparison:
        tolerance = _tolerance_for(name, self.overrides, self.default)
        drift_judged = (
            self.drift is not None
            and tolerance is self.default
            and isinstance(expected, np.ndarray)
            and expected.dtype.kind == "f"
        )
        if drift_judged:
            tolerance = Tolerance(
                self.default.rtol,
                self.default.atol,
                f"float64-judged drift: at most {self.drift:g} times float32 PyTorch's distance from its "
                f"float64 run, or within {self.default.rtol:g} of it",
                drift=self.drift,
                reference=name + REFERENCE,
            )
            # One row per tensor: drift_distance scales each row along the last axis, and a
            # convolution's last axis is a few pixels (1 in a ResNet's last stage), whose rows of
            # near-zero activations or gradients would make rounding look like divergence.
            comparison = compare_output(
                name, _one_row(expected), _one_row(actual), tolerance, _one_row(reference), yardstick
            )
            return dataclasses.replace(comparison, expected=expected, actual=actual)
        return compare_output(name, expected, actual, tolerance)

    def missing(self, name: str, expected: OutputValue) -> OutputComparison:
        tolerance = _tolerance_for(name, self.overrides, self.default)
        inf = float("inf")
        return OutputComparison(name, expected, None, tolerance, inf, inf, False, "the port has no such quantity")


def _run(
    torch_side: _TorchSide,
    jax_side: _JaxSide,
    modes: tuple[Mode, ...],
    inputs_targets: tuple[list[Any], list[Any]],
    unmatched: list[str],
    judge: _Judge,
    stop_at_first: bool,
    reference_side: _TorchSide | None = None,
) -> PortCheck:
    step_inputs, step_targets = inputs_targets
    quantities: list[PortQuantity] = []
    uncompared: dict[str, None] = dict.fromkeys(unmatched)
    buffer_names = set(torch_side.buffers())
    references: dict[str, OutputValue] = {}

    def add(
        step: int, mode: str, name: str, kind: str, expected: OutputValue, actual: Any, missing: bool,
        yardstick: float | None = None,
    ) -> None:  # fmt: skip
        if missing:
            comparison = judge.missing(name, expected)
        else:
            comparison = judge.compare(name, expected, actual, references.get(name), yardstick)
        quantities.append(PortQuantity(step, mode, name, comparison, kind))

    port_start = {**jax_side.parameters(), **jax_side.buffers()}
    if reference_side is not None:
        references = {**reference_side.parameters(), **reference_side.buffers()}
    for name, value in {**torch_side.parameters(), **torch_side.buffers()}.items():
        if name in unmatched:
            continue
        add(0, "init", name, "init", value, port_start.get(name), name not in port_start)

    run = 0
    for index, mode in enumerate(modes):
        x = to_numpy(step_inputs[index])
        target = None if step_targets[index] is None else to_numpy(step_targets[index])
        expected = torch_side.step(mode, x, target)
        reference_calls: Activations = {}
        if reference_side is not None:
            references = reference_side.step(mode, x, target)
            reference_calls = reference_side.calls
        actual = jax_side.step(index, mode, x, target)
        run += 1
        for module, call in torch_side.order:
            torch_leaves = torch_side.calls[(module, call)]
            port_leaves = jax_side.calls.get((module, call))
            if port_leaves is None or len(port_leaves) != len(torch_leaves):
                uncompared[f"{module} output"] = None
                continue
            for leaf, (e, a) in enumerate(zip(torch_leaves, port_leaves)):
                name = _activation_name(module, call, leaf, len(torch_leaves))
                if (module, call) in reference_calls:
                    references[name] = reference_calls[(module, call)][leaf]
                add(index + 1, mode, name, "activation", e, a, False)
        yardstick = None
        output, output64 = expected.get("output"), references.get("output")
        if isinstance(output, np.ndarray) and isinstance(output64, np.ndarray):
            # A loss is one number: it is also held to the drift of the output it is computed from.
            yardstick = drift_distance(output.reshape(-1), output64.reshape(-1))[0]
        for name, value in expected.items():
            if name in unmatched:
                continue
            kind = _kind_of(name, buffer_names)
            if kind == "optimizer" and name not in actual:
                uncompared[name] = None
                continue
            add(
                index + 1,
                mode,
                name,
                kind,
                value,
                actual.get(name),
                name not in actual,
                yardstick if name == "loss" else None,
            )
        if stop_at_first and any(not q.ok for q in quantities):
            break
    return PortCheck(tuple(quantities), modes, run, tuple(uncompared))
