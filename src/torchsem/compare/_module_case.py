"""The generic module-parity runner: one declaration per module case, checked against PyTorch.

A :class:`ModuleCase` names a PyTorch module class and its torchsem counterpart, the
constructor arguments (PyTorch's positional order and keywords, given to both), the inputs
and the modes to run. It becomes one :class:`~torchsem.compare.Scenario` whose two programs
do the same thing on both sides:

1. ``torch.manual_seed(seed); module = TorchClass(*args, **kwargs)`` and, in JAX,
   ``torch_init(TorchsemClass(*args, **kwargs), Generator(seed), *inputs)``: the initial
   ``state_dict`` (keys, order, dtypes, shapes and every bit, through a hash of the bytes, so
   the recordings hold no weights) is compared, so the default initialisation and the
   ``state_dict`` names are checked in the same case; the JAX side then starts from those
   variables, which equal PyTorch's ``state_dict`` when the hashes agree;
2. for each mode in ``modes`` (the same module object throughout, so running statistics
   carry over): ``module.train()``/``module.eval()`` against the Flax mode argument
   (``use_running_average`` / ``deterministic`` / ``train``, with ``mutable`` collections in
   training), the forward outputs, then the gradients of ``sum(output * cotangent)`` (a fixed
   random cotangent per float output) with respect to every float input and every
   parameter (None where PyTorch's ``.grad`` is None), and every buffer after the forward.

An :class:`ErrorCase` builds and calls a module on bad input or with bad arguments and
compares the error's type and PyTorch's message.

Both run eagerly and under ``jax.jit`` through the catalogue, are recorded by ``torchsem
record`` for the path without PyTorch, and are listed by ``torchsem compare --all``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._authoring import error_outputs, jitted
from ._outputs import Inputs
from ._scenario import Scenario, Tolerance, register

__all__ = ["ErrorCase", "Input", "ModuleCase", "nnx_class_of", "nnx_variant", "register_module_cases"]

_MODES = ("train", "eval")
EXACT = Tolerance(0.0, 0.0, "torch_init replays PyTorch's reset_parameters bit for bit")
CONTAINED = Tolerance(0.0, 0.0, "torchsem may explain more around PyTorch's own message", text="contained")


@dataclasses.dataclass(frozen=True)
class Input:
    """One positional input of a module call.

    Attributes:
      shape: the array's shape.
      dtype: a numpy dtype name; floating inputs are standard normal (times ``scale``) and are
        differentiated, integer inputs are uniform on ``[low, high)``, bool inputs are fair coins.
      low, high: the range of integer inputs.
      scale, offset: floating inputs are ``offset + scale * N(0, 1)``.
      requires_grad: whether a floating input is differentiated (PyTorch's
        ``requires_grad_()``).
      fixed: values for the first elements in C order (``(inf, -inf, nan, 0.0)`` to check how
        non-finite inputs propagate); the rest is drawn.
      keyword: the call's keyword for this input (``"key_padding_mask"``), given to both calls
        as ``keyword=array``; None: positional, in the order of the positional inputs.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    low: int = 0
    high: int = 2
    scale: float = 1.0
    offset: float = 0.0
    requires_grad: bool = True
    fixed: tuple[float, ...] = ()
    keyword: str | None = None

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        kind = np.dtype(self.dtype).kind
        if kind == "f":
            drawn = (self.offset + self.scale * rng.standard_normal(self.shape)).astype(self.dtype)
            drawn.reshape(-1)[: len(self.fixed)] = self.fixed
            return drawn
        if kind == "b":
            return rng.integers(0, 2, self.shape).astype(bool)
        return rng.integers(self.low, self.high, self.shape).astype(self.dtype)


def _as_input(value: Input | Sequence[int]) -> Input:
    return value if isinstance(value, Input) else Input(tuple(value))


def _resolve(target: type | str) -> Any:
    """A class given directly or as ``"package.module.Class"`` (so torch is imported only when run)."""
    if not isinstance(target, str):
        return target
    module_name, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def _short(target: type | str) -> str:
    return target.rpartition(".")[2] if isinstance(target, str) else target.__name__


def _arg_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_arg_text(v) for v in value)
    return str(value).lower()


def _case_id(
    args: tuple,
    kwargs: Mapping[str, Any],
    inputs: Sequence[Input],
    modes: Sequence[str],
    call_kwargs: Mapping[str, Any] | None = None,
) -> str:
    parts = [_arg_text(a) for a in args] + [f"{k}={_arg_text(v)}" for k, v in kwargs.items()]
    parts.append(
        "in="
        + "+".join(
            ("" if i.keyword is None else f"{i.keyword}:")
            + (_arg_text(i.shape) or "scalar")
            + ("" if i.dtype == "float32" else f".{i.dtype}")
            for i in inputs
        )
    )
    parts += [f"{k}={_arg_text(v)}" for k, v in (call_kwargs or {}).items()]
    if tuple(modes) != _MODES:
        parts.append("-".join(modes))
    return re.sub(r"[^a-z0-9_.=\-]", "", "-".join(parts).lower())


def _signature(target: type | str, args: tuple, kwargs: Mapping[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{_short(target)}({', '.join(shown)})"


def _mode_kwargs(module: Any, train: bool) -> dict[str, Any]:
    """The Flax call argument that plays ``module.train()``/``module.eval()`` for this module."""
    parameters = inspect.signature(type(module).__call__).parameters
    for name, value_in_train in (("use_running_average", False), ("deterministic", False), ("train", True)):
        if name in parameters:
            return {name: train if value_in_train else not train}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        # A container (Sequential) hands each flag to the layers whose call takes it.
        return {"use_running_average": not train, "deterministic": not train}
    return {}


def _torch_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments for the PyTorch class: a numpy array (a loss's ``weight``) as a tensor copy."""
    import torch

    return {k: torch.from_numpy(np.array(v, copy=True)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def _split_call(specs: Sequence[Input], values: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The call's positional and keyword arguments: each input by its ``keyword``, or in order."""
    args = [value for spec, value in zip(specs, values) if spec.keyword is None]
    return args, {spec.keyword: value for spec, value in zip(specs, values) if spec.keyword is not None}


def _jax_input(value: np.ndarray) -> Any:
    """The input as JAX holds it: PyTorch's int64 becomes JAX's default int32 unless x64 is on."""
    import jax

    from .. import convert

    return convert.to_jax(value, jax.dtypes.canonicalize_dtype(value.dtype))


def _cotangent(seed: int, step: int, index: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.random.default_rng([seed, step, index]).standard_normal(shape).astype(dtype)


def _digest(value: Any) -> str:
    """dtype, shape and a hash of the bytes: an exact comparison that records 40 bytes, not the weights."""
    array = np.asarray(value)  # tobytes() is C order whatever the strides
    return f"{array.dtype}{list(array.shape)} sha256:{hashlib.sha256(array.tobytes()).hexdigest()[:24]}"


def _input_key(index: int, step: int) -> str:
    return f"input{index}.{step}"


def _perturbed(state: Mapping[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Every float of a ``state_dict`` moved by ``U(-0.3, 0.3) * (1 + |value|)``; integers kept.

    The same numbers on both sides (both start from the same initial state), so loading them
    exercises ``load_state_dict`` / ``load_torch_state_dict`` with non-trivial values
    (BatchNorm's defaults are ones and zeros); a positive value stays positive (running_var).
    """
    rng = np.random.default_rng([seed, 11])
    moved = {}
    for key, value in state.items():
        array = np.array(value, copy=True)
        if array.dtype.kind == "f":
            noise = rng.uniform(-0.3, 0.3, array.shape)
            array = (array + noise * (1 + np.abs(array))).astype(array.dtype)
        moved[key] = array
    return moved


def _tag(step: int, mode: str) -> str:
    return f"{mode}.{step}"


@dataclasses.dataclass(frozen=True)
class ModuleCase:
    """One module configuration, run in PyTorch and in torchsem with the same arguments.

    Attributes:
      torch_module: the PyTorch class, as a dotted path (``"torch.nn.Linear"``) so that
        declaring a case imports no torch.
      module: the torchsem class (or its dotted path).
      args, kwargs: constructor arguments, given to both classes (PyTorch's signature).
      inputs: the inputs of the call (shapes, or :class:`Input` for dtypes, ranges and
        keywords), positional unless an :class:`Input` names its ``keyword``.
      call_kwargs: further keyword arguments of every call, given to both (``need_weights=False``).
      modes: the sequence of ``"train"``/``"eval"`` forwards on the same module.
      seed: the seed of ``torch.manual_seed`` / ``torchsem.random.Generator`` and of the inputs.
      name: the case's name within its family (default: made from the arguments and shapes).
      tolerances: per-quantity tolerances, keyed by the quantity without its step
        (``"output0"``, ``"grad weight"``, ``"running_var"``), each with its reason.
      check_init: whether the initial ``state_dict`` is compared bit for bit (False only for
        modules whose default initialisation is drawn from something other than PyTorch's
        CPU generator; say why in ``notes``).
      perturb: after the init check, load the same randomly moved ``state_dict`` into both
        (``load_state_dict`` / ``load_torch_state_dict``), for modules whose default state is
        too regular to test with (BatchNorm's ones and zeros).
      notes: free text for the report.
      jax_kwargs: torchsem-only constructor options (``conv_algorithm="matmul"``), given to the
        torchsem class only; they name the case (``...-jax-conv_algorithm=matmul``).
    """

    torch_module: str
    module: type | str
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: tuple[Input | tuple[int, ...], ...] = ()
    call_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    modes: tuple[str, ...] = _MODES
    seed: int = 0
    name: str | None = None
    tolerances: Mapping[str, Tolerance] = dataclasses.field(default_factory=dict)
    check_init: bool = True
    perturb: bool = False
    notes: str = ""
    jax_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in _MODES]
        if bad or not self.modes:
            raise ValueError(f"modes must be a non-empty sequence of 'train'/'eval', got {self.modes!r}")
        if not self.inputs:
            raise ValueError("a module case needs at least one input")

    @property
    def specs(self) -> tuple[Input, ...]:
        return tuple(_as_input(i) for i in self.inputs)

    def case_id(self, family: str) -> str:
        if self.name:
            return self.name
        case = _case_id(self.args, self.kwargs, self.specs, self.modes, self.call_kwargs)
        if self.jax_kwargs:
            case += "-jax-" + "-".join(f"{k}={v}" for k, v in self.jax_kwargs.items())
        kind = _short(self.torch_module).lower()
        return case if kind == family else f"{kind}-{case}"  # e.g. batchnorm/batchnorm2d-3-...

    def make_inputs(self) -> dict[str, np.ndarray]:
        """A fresh batch per step (``input{i}.{step}``), so running statistics see changing data."""
        rng = np.random.default_rng([self.seed, 7])
        return {
            _input_key(i, step): spec.draw(rng)
            for step in range(1, len(self.modes) + 1)
            for i, spec in enumerate(self.specs)
        }

    def tolerance_of(self, output: str) -> Tolerance | None:
        tag, _, quantity = output.partition(" ")
        if tag == "init":
            return EXACT
        return self.tolerances.get(quantity)

    # -- PyTorch ---------------------------------------------------------------------------
    def run_torch(self, inputs: Inputs) -> dict[str, Any]:
        import torch

        from ._outputs import to_numpy  # a snapshot: PyTorch updates buffers in place later

        torch.manual_seed(self.seed)
        module = _resolve(self.torch_module)(*self.args, **_torch_kwargs(self.kwargs))
        outputs: dict[str, Any] = {}
        if self.check_init:
            state = module.state_dict()
            outputs["init state_dict keys"] = " ".join(state) or "(empty)"
            outputs.update({f"init {key}": _digest(to_numpy(value)) for key, value in state.items()})
        if self.perturb:
            moved = _perturbed({k: to_numpy(v) for k, v in module.state_dict().items()}, self.seed)
            module.load_state_dict({k: torch.from_numpy(v) for k, v in moved.items()})
        for step, mode in enumerate(self.modes, 1):
            tag = _tag(step, mode)
            module.train(mode == "train")
            module.zero_grad(set_to_none=True)
            xs = []
            for i, spec in enumerate(self.specs):
                x = torch.from_numpy(np.array(inputs[_input_key(i, step)], copy=True))
                xs.append(x.requires_grad_(True) if spec.is_float and spec.requires_grad else x)
            args, kwargs = _split_call(self.specs, xs)
            ys = _flat_outputs(module(*args, **kwargs, **dict(self.call_kwargs)))
            loss = None
            for j, y in enumerate(ys):
                # None: an output that is absent (MultiheadAttention's weights with need_weights=False)
                outputs[f"{tag} output{j}"] = None if y is None else to_numpy(y)
                if y is not None and y.is_floating_point() and y.requires_grad:
                    cotangent = torch.from_numpy(
                        _cotangent(self.seed, step, j, tuple(y.shape), y.detach().numpy().dtype)
                    )
                    term = (y * cotangent).sum()
                    loss = term if loss is None else loss + term
            if loss is not None:
                loss.backward()
            for i, (spec, x) in enumerate(zip(self.specs, xs)):
                if spec.is_float and spec.requires_grad:
                    outputs[f"{tag} grad input{i}"] = to_numpy(x.grad)
            for name, parameter in module.named_parameters():
                outputs[f"{tag} grad {name}"] = to_numpy(parameter.grad)
            for name, buffer in module.named_buffers():
                outputs[f"{tag} {name}"] = to_numpy(buffer)
        return outputs

    # -- torchsem ----------------------------------------------------------------------------
    def run_jax(self, inputs: Inputs, jit: bool) -> dict[str, Any]:
        import jax
        import jax.numpy as jnp

        from .. import autograd, convert
        from ..random import Generator, torch_init

        module = _resolve(self.module)(*self.args, **dict(self.kwargs), **dict(self.jax_kwargs))
        first, first_kwargs = _split_call(
            self.specs, [_jax_input(inputs[_input_key(i, 1)]) for i in range(len(self.specs))]
        )
        variables = torch_init(
            module,
            Generator(self.seed),
            *first,
            **first_kwargs,
            **dict(self.call_kwargs),
            **_mode_kwargs(module, False),
        )
        outputs: dict[str, Any] = {}
        if self.check_init:
            state = convert.to_torch_state_dict(variables, key_order=_torch_key_order(module))
            outputs["init state_dict keys"] = " ".join(state) or "(empty)"
            outputs.update({f"init {key}": _digest(value) for key, value in state.items()})
        if self.perturb:
            moved = _perturbed(convert.to_torch_state_dict(variables), self.seed)
            variables = convert.load_torch_state_dict(variables, moved)
        params = variables.get("params", {})
        collections = {k: v for k, v in variables.items() if k != "params"}
        differentiated = [i for i, spec in enumerate(self.specs) if spec.is_float and spec.requires_grad]

        def forward(params, collections, xs, float_xs, key, train):
            call = list(xs)
            for i, x in zip(differentiated, float_xs):
                call[i] = x
            mutable = sorted(collections) if train and collections else False
            args, kwargs = _split_call(self.specs, call)
            result = module.apply(
                {"params": params, **collections},
                *args,
                **kwargs,
                **dict(self.call_kwargs),
                **_mode_kwargs(module, train),
                mutable=mutable,
                rngs={"dropout": key},
            )
            ys, updated = result if mutable else (result, {})
            return _flat_outputs(ys), updated

        def step_fn(params, collections, xs, cotangents, key, train):
            """One forward and PyTorch's ``backward()``: outputs, updated collections, grads or None."""
            float_xs = [xs[i] for i in differentiated]
            if all(c is None for c in cotangents):  # nothing to differentiate (integer outputs)
                return forward(params, collections, xs, float_xs, key, train), None

            def loss(params, float_xs):
                ys, updated = forward(params, collections, xs, float_xs, key, train)
                terms = [jnp.sum(y * c) for y, c in zip(ys, cotangents) if c is not None]
                return sum(terms[1:], terms[0]), (ys, updated)

            (_, aux), grads = autograd.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, float_xs)
            return aux, grads

        # One jitted function for every step (train is static), as a user's jitted step would be.
        run = jitted(step_fn, jit, static_argnums=5)
        for step, mode in enumerate(self.modes, 1):
            tag, train = _tag(step, mode), mode == "train"
            xs = [_jax_input(inputs[_input_key(i, step)]) for i in range(len(self.specs))]
            key = jax.random.key(self.seed + step)
            shapes = jax.eval_shape(
                functools.partial(forward, train=train), params, collections, xs, [xs[i] for i in differentiated], key
            )[0]
            cotangents = [
                _cotangent(self.seed, step, j, tuple(s.shape), np.dtype(s.dtype))
                if s is not None and np.dtype(s.dtype).kind == "f"
                else None
                for j, s in enumerate(shapes)
            ]
            (ys, updated), grads = run(params, collections, xs, cotangents, key, train)
            for j, y in enumerate(ys):
                outputs[f"{tag} output{j}"] = y
            param_grads, input_grads = grads if grads is not None else (None, None)
            for position, i in enumerate(differentiated):
                outputs[f"{tag} grad input{i}"] = None if input_grads is None else input_grads[position]
            for name, g in _dotted(params, param_grads).items():
                outputs[f"{tag} grad {name}"] = g
            collections = {**collections, **dict(updated)}
            outputs.update({f"{tag} {name}": value for name, value in convert.to_torch_state_dict(collections).items()})
        return outputs

    # -- torchsem.nnx, the NNX front end -----------------------------------------------------
    def run_nnx(self, inputs: Inputs, jit: bool) -> dict[str, Any]:
        """The same case through ``torchsem.nnx``: the module's NNX twin, ``model.train()``/``eval()``, ``nnx.jit``.

        The outputs have the linen program's names, so they are judged against the same
        PyTorch outputs (live, or the linen case's recording). ``torchsem.nnx.torch_init``
        gives the initial state, ``state_dict``/``load_state_dict`` read and perturb it, the
        mode is set on the model as PyTorch sets it, and every step runs under ``nnx.jit``
        when ``jit`` (one jitted step function, retraced per mode as a user's would be).
        """
        import jax
        from flax import nnx

        from .. import autograd
        from .. import nnx as tnx
        from ..random import Generator

        first = _split_call(self.specs, [_jax_input(inputs[_input_key(i, 1)]) for i in range(len(self.specs))])[0]
        with tnx.skip_init():  # torch_init sets every value next
            model = _nnx_model(
                self.module,
                self.args,
                {**self.kwargs, **self.jax_kwargs},
                first,
                self.call_kwargs,
                nnx.Rngs(0, dropout=self.seed),
            )
        tnx.torch_init(model, Generator(self.seed))
        outputs: dict[str, Any] = {}
        if self.check_init:
            state = tnx.state_dict(model)
            outputs["init state_dict keys"] = " ".join(state) or "(empty)"
            outputs.update({f"init {key}": _digest(value) for key, value in state.items()})
        if self.perturb:
            tnx.load_state_dict(model, _perturbed(tnx.state_dict(model), self.seed))
        differentiated = [i for i, spec in enumerate(self.specs) if spec.is_float and spec.requires_grad]

        def copy(state: Any) -> Any:
            return jax.tree.map(lambda leaf: leaf, state)  # fresh Variables for this trace

        def forward(graphdef, params, rest, pure, xs, float_xs):
            params = copy(params)
            nnx.replace_by_pure_dict(params, pure)
            module = nnx.merge(graphdef, params, copy(rest))
            call = list(xs)
            for i, x in zip(differentiated, float_xs):
                call[i] = x
            args, kwargs = _split_call(self.specs, call)
            ys = _flat_outputs(module(*args, **kwargs, **dict(self.call_kwargs)))
            return ys, nnx.state(module, nnx.Not(nnx.Param))

        def step_fn(model, xs, cotangents):
            """One forward and PyTorch's ``backward()`` on the model: outputs and grads (None where PyTorch's are)."""
            graphdef, params, rest = nnx.split(model, nnx.Param, ...)
            pure = nnx.to_pure_dict(params)
            float_xs = [xs[i] for i in differentiated]
            if all(c is None for c in cotangents):
                (ys, updated), grads = forward(graphdef, params, rest, pure, xs, float_xs), None
            else:

                def loss(pure, float_xs):
                    ys, updated = forward(graphdef, params, rest, pure, xs, float_xs)
                    terms = [(y * c).sum() for y, c in zip(ys, cotangents) if c is not None]
                    return sum(terms[1:], terms[0]), (ys, updated)

                (_, (ys, updated)), grads = autograd.value_and_grad(loss, argnums=(0, 1), has_aux=True)(pure, float_xs)
            nnx.update(model, updated)  # running statistics and the dropout stream move on, as PyTorch's do
            return ys, grads

        run = nnx.jit(step_fn) if jit else step_fn
        names = [key for key, value in _param_paths(model)]
        for step, mode in enumerate(self.modes, 1):
            tag = _tag(step, mode)
            model.train() if mode == "train" else model.eval()
            xs = [_jax_input(inputs[_input_key(i, step)]) for i in range(len(self.specs))]
            graphdef, current = nnx.split(model)

            def shapes_of(state, xs, graphdef=graphdef):
                args, kwargs = _split_call(self.specs, xs)
                return _flat_outputs(nnx.merge(graphdef, copy(state))(*args, **kwargs, **dict(self.call_kwargs)))

            shapes = jax.eval_shape(shapes_of, current, xs)
            cotangents = [
                _cotangent(self.seed, step, j, tuple(s.shape), np.dtype(s.dtype))
                if s is not None and np.dtype(s.dtype).kind == "f"
                else None
                for j, s in enumerate(shapes)
            ]
            ys, grads = run(model, xs, cotangents)
            for j, y in enumerate(ys):
                outputs[f"{tag} output{j}"] = y
            param_grads, input_grads = grads if grads is not None else (None, None)
            for position, i in enumerate(differentiated):
                outputs[f"{tag} grad input{i}"] = None if input_grads is None else input_grads[position]
            for name, path in zip(names, (p for _, p in _param_paths(model))):
                outputs[f"{tag} grad {name}"] = None if param_grads is None else _at(param_grads, path)
            params = {".".join(path) for _, path in _param_paths(model)}
            outputs.update({f"{tag} {k}": v for k, v in tnx.state_dict(model).items() if k not in params})
        return outputs

    def nnx_scenario(self, family: str, section: str) -> Scenario:
        """The case through ``torchsem.nnx``: the linen scenario's name (so its recording), the NNX program.

        The module is its class's twin, or (a factory, a subclass, a container) the NNX form
        :func:`torchsem.nnx.from_linen` makes of the linen module (see :func:`_nnx_model`).
        """
        return dataclasses.replace(self.scenario(family, section), jax_program=self.run_nnx)

    def scenario(self, family: str, section: str) -> Scenario:
        arguments = (self.args, dict(self.kwargs))
        return Scenario(
            name=f"{family}/{self.case_id(family)}",
            section=section,
            mapping=f"torch.nn.{_signature(self.torch_module, *arguments)} -> "
            f"torchsem.nn.{_signature(self.module, self.args, {**self.kwargs, **self.jax_kwargs})}",
            torch_program=self.run_torch,
            jax_program=self.run_jax,
            make_inputs=self.make_inputs,
            tolerance_of=self.tolerance_of,
            notes=self.notes,
        )


def nnx_class_of(module_class: Any) -> Any:
    """The ``torchsem.nnx`` class whose linen module is exactly ``module_class``, or None."""
    from .. import nnx as tnx

    return tnx.twin_of(module_class)


def _nnx_model(
    target: type | str,
    args: tuple,
    kwargs: Mapping[str, Any],
    example: Sequence[Any],
    call_kwargs: Mapping[str, Any],
    rngs: Any,
) -> Any:
    """A case's module as NNX: its class's twin, built with the case's arguments, or the NNX form of what it builds.

    A class without a twin (a subclass with its own call, a factory of a container or of a
    user's module) builds its linen module, which :func:`torchsem.nnx.from_linen` turns into
    NNX containers of twins, wrapping what has no twin on the case's first positional inputs.
    """
    from .. import nnx as tnx

    resolved = _resolve(target)
    twin = nnx_class_of(resolved)
    if twin is not None:
        return twin(*args, **dict(kwargs), rngs=rngs)
    return tnx.from_linen(resolved(*args, **dict(kwargs)), *example, rngs=rngs, **dict(call_kwargs))


def nnx_variant(scenario: Scenario) -> Scenario | None:
    """The NNX front end of a registered module or error case's scenario (same name and PyTorch outputs), or None."""
    case = getattr(scenario.jax_program, "__self__", None)
    if not isinstance(case, (ModuleCase, ErrorCase)):
        return None
    family, _, _ = scenario.name.partition("/")
    variant = case.nnx_scenario(family, scenario.section)
    return None if variant is None or variant.name != scenario.name else variant


def _param_paths(model: Any) -> list[tuple[str, tuple[str, ...]]]:
    """``(dotted name, path)`` of every NNX Param, in PyTorch's ``state_dict`` order."""
    from flax import nnx

    from .. import nnx as tnx

    paths = {
        ".".join(str(k) for k in path): tuple(str(k) for k in path)
        for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))
    }
    return [(key, paths[key]) for key in tnx.state_dict(model) if key in paths]


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        tree = tree[name]
    return tree


def _flat_outputs(result: Any) -> tuple[Any, ...]:
    """A call's outputs as one flat tuple, depth first: ``(out, (h, c))`` -> ``(out, h, c)``.

    An LSTM returns nested tuples on both sides; each array becomes ``output{j}`` in this order
    (a None, MultiheadAttention's weights with ``need_weights=False``, is an output of its own).
    """
    if not isinstance(result, tuple):
        return (result,)
    return tuple(leaf for item in result for leaf in _flat_outputs(item))


def _torch_key_order(module: Any) -> list[str] | None:
    """The module's own statement of PyTorch's ``state_dict`` order, where JAX's sorted keys cannot keep it.

    ``to_torch_state_dict`` orders a module's ``weight`` before its ``bias``; a module with
    other names (a recurrent layer's ``weight_ih_l0``, ``weight_hh_l0``, ...) lists its keys
    in PyTorch's order with ``torch_state_dict_keys()``. The key set is still checked
    against the variables, and the order against PyTorch's.
    """
    keys = getattr(module, "torch_state_dict_keys", None)
    return None if keys is None else list(keys())


def _dotted(params: Any, grads: Any) -> dict[str, Any]:
    """PyTorch-style ``{dotted name: gradient or None}`` over every parameter leaf."""
    from ..convert import to_torch_state_dict
    from ..tree import flatten_mapping

    names = list(to_torch_state_dict({"params": params}))
    if grads is None:
        return dict.fromkeys(names)
    flat = flatten_mapping(grads)
    return {name: flat.get(name) for name in names}


@dataclasses.dataclass(frozen=True)
class ErrorCase:
    """A module built or called with bad arguments or input: PyTorch's error type and message.

    Attributes:
      torch_module, module, args, kwargs: as in :class:`ModuleCase`.
      inputs: the call's inputs (empty: only the constructor is checked), positional unless an
        :class:`Input` names its ``keyword``.
      call_kwargs: further keyword arguments of the call, given to both.
      mode: ``"train"`` or ``"eval"`` for the call.
      name: the case's name within its family (``error-...`` is prepended).
    """

    torch_module: str
    module: type | str
    name: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: tuple[Input | tuple[int, ...], ...] = ()
    mode: str = "train"
    call_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def make_inputs(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        return {f"input{i}": _as_input(spec).draw(rng) for i, spec in enumerate(self.inputs)}

    def run_torch(self, inputs: Inputs) -> dict[str, Any]:
        import torch

        def attempt() -> None:
            module = _resolve(self.torch_module)(*self.args, **_torch_kwargs(self.kwargs))
            module.train(self.mode == "train")
            if self.inputs:
                xs = [torch.from_numpy(np.array(inputs[f"input{i}"])) for i in range(len(self.inputs))]
                args, kwargs = _split_call([_as_input(spec) for spec in self.inputs], xs)
                module(*args, **kwargs, **dict(self.call_kwargs))

        return error_outputs(attempt)

    def run_jax(self, inputs: Inputs, jit: bool) -> dict[str, Any]:
        import jax

        def attempt() -> None:
            module = _resolve(self.module)(*self.args, **dict(self.kwargs))
            if not self.inputs:
                return
            xs = [_jax_input(inputs[f"input{i}"]) for i in range(len(self.inputs))]
            train = self.mode == "train"

            def call(*xs: Any) -> Any:
                # Initialised in the call's own mode: PyTorch's checks run in the order that mode has.
                rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
                args, kwargs = _split_call([_as_input(spec) for spec in self.inputs], xs)
                return module.init_with_output(
                    rngs, *args, **kwargs, **dict(self.call_kwargs), **_mode_kwargs(module, train)
                )[0]

            jitted(call, jit)(*xs)

        return error_outputs(attempt)

    def run_nnx(self, inputs: Inputs, jit: bool) -> dict[str, Any]:
        """The same bad construction or call through ``torchsem.nnx``: the twin, its mode, ``nnx.jit``.

        The twin is built with the case's arguments (its constructor checks them, as PyTorch's),
        set to the case's mode and called, under ``nnx.jit`` when ``jit``.
        """
        from flax import nnx

        from .. import nnx as tnx

        specs = [_as_input(spec) for spec in self.inputs]

        def attempt() -> None:
            xs = [_jax_input(inputs[f"input{i}"]) for i in range(len(self.inputs))]
            example = _split_call(specs, xs)[0]
            with tnx.skip_init():  # the checks are traced, not run: no values needed
                model = _nnx_model(
                    self.module, self.args, self.kwargs, example, self.call_kwargs, nnx.Rngs(0, dropout=1)
                )
            if not self.inputs:
                return
            model.train() if self.mode == "train" else model.eval()

            def call(model: Any, *xs: Any) -> Any:
                args, kwargs = _split_call(specs, xs)
                return model(*args, **kwargs, **dict(self.call_kwargs))

            (nnx.jit(call) if jit else call)(model, *xs)

        return error_outputs(attempt)

    def nnx_scenario(self, family: str, section: str) -> Scenario:
        """The case through ``torchsem.nnx``: the linen scenario's name (so its recording), the NNX program."""
        return dataclasses.replace(self.scenario(family, section), jax_program=self.run_nnx)

    def scenario(self, family: str, section: str) -> Scenario:
        arguments = (self.args, dict(self.kwargs))
        shapes = ", ".join(str(_as_input(i).shape) for i in self.inputs)
        return Scenario(
            name=f"{family}/error-{self.name}",
            section=section,
            mapping=f"torch.nn.{_signature(self.torch_module, *arguments)}({shapes}) raises -> "
            f"torchsem.nn.{_signature(self.module, *arguments)} raises the same error",
            torch_program=self.run_torch,
            jax_program=self.run_jax,
            make_inputs=self.make_inputs,
            tolerances={"error message": CONTAINED},
        )


def register_module_cases(family: str, section: str, cases: Sequence[ModuleCase | ErrorCase]) -> list[Scenario]:
    """Register one scenario per case in ``family`` (the recording file's name)."""
    return [register(case.scenario(family, section)) for case in cases]
