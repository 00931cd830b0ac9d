"""Recurrent parity (family ``rnn``): ``RNN``, ``GRU``, ``LSTM`` and their cells against PyTorch.

Through the generic module runner: PyTorch's seeded initial parameters bit for bit (every one
``U(-1/sqrt(H), 1/sqrt(H))`` in PyTorch's order, names and order of the ``state_dict``
included), the outputs ``(output, h_n)`` / ``(output, h_n, c_n)``, and the gradients with
respect to the input, the initial states and every parameter, eagerly and under ``jax.jit``.
The grid covers one and two layers, both directions, ``batch_first``, ``bias=False``,
``nonlinearity='relu'``, ``proj_size``, given and default initial states and unbatched
inputs, over sequences of 5 steps with 4-6 hidden features.

Dropout between layers draws its masks from JAX's generator, so training with ``0 < p < 1``
cannot agree with PyTorch's masks: it is compared with ``p = 1`` in training (the second
layer then reads zeros, a deterministic outcome that shows the dropout sits between the
layers), and in eval and statistically in training by tests/test_rnn.py. Error cases compare PyTorch's error
types and messages.

An LSTM's initial state is the pair ``(h_0, c_0)``, which the runner's positional inputs
cannot hold: the ``*WithState`` classes below (made on first use, so declaring the cases
imports neither torch nor jax) are PyTorch's and torchsem's LSTM and LSTMCell with
``forward(x, h0, c0)`` calling ``forward(x, (h0, c0))``; everything else is the library's own
class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._module_case import ErrorCase, Input, ModuleCase, register_module_cases

_SECTION = "torchsem.nn.RNN/GRU/LSTM and RNNCell/GRUCell/LSTMCell (recurrent layers)"
_STATEFUL = ("LSTM", "LSTMCell")

# Every comparison holds at float32's default rtol=1e-5, atol=1e-6: measured, the worst excess
# over rtol * |expected| is 2.9e-7 (a 2-layer bidirectional GRU's grad weight_ih_l0, size ~3),
# for PyTorch's oneDNN LSTM and its native GRU/RNN loops alike.


_BUILT: dict[str, Any] = {}


def _build(name: str) -> Any:
    """The ``(x, h0, c0)`` wrappers, made on first use (torch only for the torch side)."""
    if name in _BUILT:
        return _BUILT[name]
    base_name = name.removeprefix("Torch").removesuffix("WithState")
    if name.startswith("Torch"):
        import torch

        torch_base = getattr(torch.nn, base_name)

        class TorchWithState(torch_base):  # type: ignore[misc, valid-type]
            def forward(self, input: Any, h0: Any, c0: Any) -> Any:
                return super().forward(input, (h0, c0))

        built: Any = TorchWithState
    else:
        from ... import nn

        jax_base = getattr(nn, base_name)
        if base_name == "LSTM":

            class WithState(jax_base):  # type: ignore[misc, valid-type]
                def __call__(self, input: Any, h0: Any, c0: Any, deterministic: bool | None = None) -> Any:
                    return super().__call__(input, (h0, c0), deterministic)

        else:

            class WithState(jax_base):  # type: ignore[misc, valid-type, no-redef]
                def __call__(self, input: Any, h0: Any, c0: Any) -> Any:
                    return super().__call__(input, (h0, c0))

        built = WithState
    built.__name__ = built.__qualname__ = name
    _BUILT[name] = built
    return built


def __getattr__(name: str) -> Any:
    if name.endswith("WithState") and name.removeprefix("Torch").removesuffix("WithState") in _STATEFUL:
        return _build(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _classes(kind: str, with_state: bool) -> tuple[str, str]:
    if with_state:
        return f"{__name__}.Torch{kind}WithState", f"{__name__}.{kind}WithState"
    return f"torch.nn.{kind}", f"torchsem.nn.{kind}"


def _state_shapes(kind: str, args: tuple, kwargs: Mapping[str, Any], x: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The initial states' shapes for input shape ``x`` (h0, and c0 for the LSTMs)."""
    hidden = args[1]
    if kind.endswith("Cell"):
        shape = (x[0], hidden) if len(x) == 2 else (hidden,)
        return [shape, shape] if kind == "LSTMCell" else [shape]
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional", False) else 1)
    batch = () if len(x) == 2 else ((x[0],) if kwargs.get("batch_first", False) else (x[1],))
    h = (layers, *batch, kwargs.get("proj_size", 0) or hidden)
    return [h, (layers, *batch, hidden)] if kind == "LSTM" else [h]


def _case(
    kind: str,
    args: tuple,
    kwargs: dict[str, Any],
    x: tuple[int, ...],
    seed: int,
    states: bool = False,
    modes: tuple[str, ...] = ("train",),
) -> ModuleCase:
    inputs: list[Input] = [Input(x)]
    if states:
        inputs += [Input(shape, scale=0.5) for shape in _state_shapes(kind, args, kwargs, x)]
    torch_class, jax_class = _classes(kind, states and kind in _STATEFUL)
    # Named here: the runner's default name runs the input shapes together ("5x2x34x2x5").
    parts = [kind.lower(), *map(str, args), *(f"{k}={str(v).lower()}" for k, v in kwargs.items())]
    parts += ["in=" + "x".join(map(str, x))] + (["h0c0" if kind in _STATEFUL else "h0"] if states else [])
    name = "-".join(parts + (["-".join(modes)] if modes != ("train",) else []))
    return ModuleCase(
        torch_class,
        jax_class,
        args,
        kwargs,
        inputs=tuple(inputs),
        modes=modes,
        seed=seed,
        name=name,
    )


def _cases() -> list[ModuleCase]:
    # (kind, args, kwargs, input shape, initial states given, modes)
    grid: list[tuple[str, tuple, dict[str, Any], tuple[int, ...], bool, tuple[str, ...]]] = [
        ("RNN", (3, 4), {}, (5, 2, 3), False, ("train",)),
        (
            "RNN",
            (3, 4),
            dict(num_layers=2, nonlinearity="relu", bias=False, batch_first=True, bidirectional=True),
            (2, 5, 3),
            True,
            ("train",),
        ),
        ("GRU", (3, 5), dict(num_layers=2, bidirectional=True), (5, 2, 3), True, ("train",)),
        ("GRU", (3, 5), dict(bias=False, batch_first=True), (5, 3), True, ("train",)),  # unbatched
        # PyTorch runs an LSTM without projections through oneDNN's fused kernel, with them through its own loop.
        ("LSTM", (3, 6), {}, (5, 2, 3), True, ("train",)),
        ("LSTM", (3, 6), dict(num_layers=2, proj_size=2, batch_first=True), (2, 5, 3), True, ("train",)),
        ("LSTM", (3, 5), dict(bias=False, bidirectional=True, proj_size=3), (5, 3), True, ("train",)),  # unbatched
        # p = 1 in training: the second layer reads zeros, which shows the dropout acts between the
        # layers in training (eval, where it vanishes, is compared in tests/test_rnn.py for p = 0.3).
        ("LSTM", (3, 4), dict(num_layers=2, dropout=1.0), (5, 2, 3), False, ("train",)),
        ("RNNCell", (3, 4), {}, (2, 3), True, ("train",)),
        ("RNNCell", (3, 4), dict(bias=False, nonlinearity="relu"), (3,), False, ("train",)),  # unbatched
        ("GRUCell", (3, 5), {}, (2, 3), True, ("train",)),
        ("LSTMCell", (3, 4), {}, (2, 3), False, ("train",)),
        ("LSTMCell", (3, 4), dict(bias=False), (3,), True, ("train",)),  # unbatched
    ]
    return [
        _case(kind, args, kwargs, x, seed, states, modes)
        for seed, (kind, args, kwargs, x, states, modes) in enumerate(grid, start=1701)
    ]


def _errors() -> list[ErrorCase]:
    # name: (kind, with (h0, c0) wrapper, args, kwargs, input shapes)
    calls: dict[str, tuple[str, bool, tuple, dict[str, Any], tuple[Input | tuple[int, ...], ...]]] = {
        "input-size": ("LSTM", False, (4, 5), {}, ((5, 2, 3),)),
        "input-size-batch-first": ("GRU", False, (4, 5), dict(batch_first=True), ((2, 5, 3),)),
        "input-1d": ("RNN", False, (4, 5), {}, ((5,),)),
        "input-4d": ("GRU", False, (4, 5), {}, ((5, 2, 4, 1),)),
        "input-4d-lstm": ("LSTM", False, (4, 5), {}, ((5, 2, 4, 1),)),
        "input-dtype": ("LSTM", False, (4, 5), {}, (Input((5, 2, 4), "float16"),)),
        "hidden-size": ("GRU", False, (4, 5), {}, ((5, 2, 4), (1, 3, 5))),
        "hidden-layers": ("RNN", False, (4, 5), dict(num_layers=2), ((5, 2, 4), (1, 2, 5))),
        "hidden-bidirectional-unbatched": ("RNN", False, (4, 5), dict(bidirectional=True), ((5, 4), (1, 5))),
        "hx-2d-batched": ("GRU", False, (4, 5), {}, ((5, 2, 4), (2, 5))),
        "hx-3d-unbatched": ("RNN", False, (4, 5), {}, ((5, 4), (1, 2, 5))),
        "lstm-hidden0-size": ("LSTM", True, (4, 5), {}, ((5, 2, 4), (1, 3, 5), (1, 2, 5))),
        "lstm-hidden1-size": ("LSTM", True, (4, 5), {}, ((5, 2, 4), (1, 2, 5), (2, 2, 5))),
        "lstm-hidden0-proj": ("LSTM", True, (4, 5), dict(proj_size=2), ((5, 2, 4), (1, 2, 5), (1, 2, 5))),
        "lstm-hx-2d-batched": ("LSTM", True, (4, 5), {}, ((5, 2, 4), (2, 5), (2, 5))),
        "lstm-hx-3d-unbatched": ("LSTM", True, (4, 5), {}, ((5, 4), (1, 2, 5), (1, 2, 5))),
        "sequence-empty": ("LSTM", False, (4, 5), {}, ((0, 2, 4),)),
        "sequence-empty-gru": ("GRU", False, (4, 5), dict(batch_first=True), ((2, 0, 4),)),
        "cell-input-size": ("RNNCell", False, (4, 5), {}, ((2, 3),)),
        "cell-batch": ("GRUCell", False, (4, 5), {}, ((2, 4), (3, 5))),
        "cell-hidden-size": ("RNNCell", False, (4, 5), {}, ((2, 4), (2, 6))),
        "cell-hidden-size-unbatched": ("GRUCell", False, (4, 5), {}, ((4,), (2, 5))),
        "cell-input-3d": ("GRUCell", False, (4, 5), {}, ((2, 2, 4),)),
        "cell-hidden-3d": ("RNNCell", False, (4, 5), {}, ((2, 4), (1, 2, 5))),
        "cell-input-dtype": ("RNNCell", False, (4, 5), {}, (Input((2, 4), "float16"),)),
        "cell-nonlinearity": ("RNNCell", False, (4, 5), dict(nonlinearity="sigmoid"), ((2, 4),)),
        "lstmcell-input-3d": ("LSTMCell", False, (4, 5), {}, ((2, 2, 4),)),
        "lstmcell-hidden0-batch": ("LSTMCell", True, (4, 5), {}, ((2, 4), (3, 5), (2, 5))),
        "lstmcell-hidden1-batch": ("LSTMCell", True, (4, 5), {}, ((2, 4), (2, 5), (3, 5))),
        "lstmcell-hidden1-size": ("LSTMCell", True, (4, 5), {}, ((2, 4), (2, 5), (2, 6))),
        "lstmcell-hx0-3d": ("LSTMCell", True, (4, 5), {}, ((2, 4), (2, 2, 5), (2, 5))),
    }
    cases = [
        ErrorCase(*_classes(kind, state), name, args, kwargs, inputs=shapes)
        for name, (kind, state, args, kwargs, shapes) in calls.items()
    ]
    constructors: dict[str, tuple[str, tuple, dict[str, Any]]] = {
        "nonlinearity": ("RNN", (4, 5), dict(nonlinearity="sigmoid")),
        "nonlinearity-positional": ("RNN", (4, 5, 1, "gelu"), {}),
        "dropout-above-1": ("GRU", (4, 5), dict(dropout=1.5)),
        "dropout-negative": ("LSTM", (4, 5), dict(dropout=-0.1)),
        "dropout-bool": ("RNN", (4, 5), dict(dropout=True)),
        "num-layers-zero": ("LSTM", (4, 5), dict(num_layers=0)),
        "num-layers-float": ("GRU", (4, 5), dict(num_layers=1.5)),
        "proj-size-too-big": ("LSTM", (4, 5), dict(proj_size=5)),
        "proj-size-negative": ("LSTM", (4, 5), dict(proj_size=-1)),
        "input-size-zero": ("GRU", (0, 5), {}),
        "hidden-size-zero": ("LSTM", (4, 0), {}),
        "input-size-float": ("RNN", (4.0, 5), {}),
        "bias-int": ("LSTM", (4, 5), dict(bias=1)),
        "batch-first-int": ("GRU", (4, 5), dict(batch_first=0)),
    }
    cases += [
        ErrorCase(*_classes(kind, False), name, args, kwargs) for name, (kind, args, kwargs) in constructors.items()
    ]
    return cases


register_module_cases("rnn", _SECTION, [*_cases(), *_errors()])
