"""Ported models trained side by side with PyTorch: ``torchsem.port`` on the models people port.

For each model (the document's net in its three variants, ResNet-18, ResNet-50, a Transformer
classifier, an LSTM tagger) PyTorch trains the model for ``STEPS`` steps from a fixed numpy
``state_dict`` (SGD or AdamW, a frozen part by ``requires_grad=False``) with an eval pass
(``model.eval()``, ``torch.no_grad()``) after steps 5 and 10; the port trains from the same
``state_dict`` with ``torchsem.autograd.value_and_grad`` and ``torchsem.optim`` (the frozen part
through ``Ported.frozen`` and ``optim.freeze``), train steps jitted.

The JAX side runs the generated source checked in under ``tests/data/port/<model>.py``; with
live torch, ``test_source_is_current`` ports the PyTorch model again and requires the same
source, so the recorded path (no torch) runs exactly what ``port`` generates. PyTorch's outputs:
live when torch is importable, else ``tests/data/port_parity.json`` (re-record both with
``.venv/bin/python tests/test_port_parity.py --record``).

Criterion (stated per output, the ResNet scenarios' one): PyTorch runs the model in float32 and
in float64; torchsem's float32 result must be at most ``DRIFT_K`` times as far from float64 as
PyTorch's float32 result is (``compare.drift_distance``: root mean square of the differences,
each row scaled by float64's), or within ``FLOOR``. Recorded: the loss at every step, the eval
logits, and an 8-number sketch of every parameter and buffer after every step (not the weights).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import pathlib
import sys
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from conftest import LIVE_TORCH, LIVE_TORCH_REASON
from torchsem import autograd, optim
from torchsem.compare import drift_distance
from torchsem.compare.scenarios.resnet import _random_state, _sketch
from torchsem.convert import load_torch_state_dict, to_jax, to_torch_state_dict
from torchsem.losses import cross_entropy, nll_loss
from torchsem.port import load_source

DATA = pathlib.Path(__file__).parent / "data"
SOURCES = DATA / "port"
RECORDING = DATA / "port_parity.json"
STEPS = 10
EVAL_AFTER = (5, 10)
# torchsem's distance from float64 PyTorch may be at most DRIFT_K times float32 PyTorch's (the
# ResNet scenarios' k, measured there), or FLOOR: float32's 1e-5 for a model without BatchNorm
# on a small batch; after SGD steps through BatchNorm on a batch of 2 to 4, a ReLU input within
# rounding of its kink resolves differently in two float32 implementations (the ResNet
# scenarios' KINK_FLOOR_AFTER_STEP, 2e-3, measured there).
DRIFT_K = 4.0


@dataclasses.dataclass(frozen=True)
class Model:
    """One ported model's training run.

    Attributes:
      factory: the function of ``tests/_port_models.py`` that builds the PyTorch model.
      inputs: ``rng -> {"x": (STEPS + 1, ...) inputs, "y": targets}``; the last one is the eval batch.
      loss: ``"cross_entropy"`` or ``"nll"`` (of log-probabilities per token).
      optimizer: ``("sgd" | "adamw", options)``, the same on both sides.
      frozen: parameter prefixes set ``requires_grad=False`` before porting (the document's
        ``requires_grad`` example sets its own).
      state: ``"resnet18"``/``"resnet50"`` for the ResNet scenarios' trained-looking state_dict,
        else None for :func:`_generic_state`.
      floor: the drift criterion's floor (see ``DRIFT_K``).
    """

    factory: str
    inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    loss: str
    optimizer: tuple[str, dict[str, Any]]
    frozen: tuple[str, ...] = ()
    state: str | None = None
    floor: float = 1e-5


def _images(batch: int, size: int) -> Callable[[np.random.Generator], dict[str, np.ndarray]]:
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "x": rng.standard_normal((STEPS + 1, batch, 3, size, size)).astype(np.float32),
            "y": rng.integers(0, 10, (STEPS + 1, batch)).astype(np.int64),
        }

    return make


def _document(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "x": rng.standard_normal((STEPS + 1, 4, 3, 8)).astype(np.float32),
        "y": rng.integers(0, 4, (STEPS + 1, 4)).astype(np.int64),
    }


def _tokens(classes: int, per_token: bool) -> Callable[[np.random.Generator], dict[str, np.ndarray]]:
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = (STEPS + 1, 4, 6)
        return {
            "x": rng.integers(0, 20, shape).astype(np.int64),
            "y": rng.integers(0, classes, shape if per_token else shape[:2]).astype(np.int64),
        }

    return make


_SGD = ("sgd", {"lr": 0.1, "momentum": 0.9})
_RESNET_SGD = ("sgd", {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4})
_ADAMW = ("adamw", {"lr": 1e-2, "weight_decay": 0.01})

MODELS: dict[str, Model] = {
    "document_net": Model("document_net", _document, "cross_entropy", _SGD),
    "document_net_detach": Model("document_net_detach", _document, "cross_entropy", _SGD),
    "document_net_frozen": Model("document_net_frozen", _document, "cross_entropy", _SGD),
    # Images where the last stage is 2x2, so that no BatchNorm sees fewer than 8 values per channel.
    "resnet18": Model("resnet18", _images(4, 64), "cross_entropy", _RESNET_SGD, ("layer1",), "resnet18", 2e-3),
    "resnet50": Model("resnet50", _images(2, 48), "cross_entropy", _RESNET_SGD, ("layer1",), "resnet50", 2e-3),
    "transformer_classifier": Model("transformer_classifier", _tokens(3, False), "cross_entropy", _ADAMW, ("embed",)),
    "lstm_tagger": Model("lstm_tagger", _tokens(5, True), "nll", _ADAMW, ("embed",)),
}
SEEDS = {name: 2600 + index for index, name in enumerate(MODELS)}


# --- shared by both sides ------------------------------------------------------------------------


def _generic_state(shapes: dict[str, tuple[tuple[int, ...], str]], seed: int) -> dict[str, np.ndarray]:
    """A state_dict drawn per key (so independent of key order): weights ~ N(0, 1/fan_in), norms near 1."""
    state = {}
    for key, (shape, dtype) in shapes.items():
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        name = key.rpartition(".")[2]
        if name == "num_batches_tracked":
            value = np.array(0, np.int64)
        elif name == "running_mean":
            value = 0.1 * rng.standard_normal(shape)
        elif name == "running_var":
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif name == "weight":  # a norm's scale
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = 0.1 * rng.standard_normal(shape)
        state[key] = np.asarray(value, np.dtype(dtype))
    return state


def _state(name: str, shapes: dict[str, tuple[tuple[int, ...], str]]) -> dict[str, np.ndarray]:
    model = MODELS[name]
    if model.state is not None:
        return {k: np.array(v) for k, v in _random_state(model.state, SEEDS[name]).items()}
    return _generic_state(shapes, SEEDS[name])


def _inputs(name: str) -> dict[str, np.ndarray]:
    return MODELS[name].inputs(np.random.default_rng(SEEDS[name]))


def _sketches(named: dict[str, np.ndarray]) -> np.ndarray:
    """One 8-number sketch per float tensor, in sorted-name order (int buffers: left out)."""
    rows = [_sketch(np.asarray(named[k], np.float64)) for k in sorted(named) if np.asarray(named[k]).dtype.kind == "f"]
    return np.stack(rows)


# --- PyTorch -------------------------------------------------------------------------------------


def _torch_model(name: str) -> Any:
    import _port_models

    model = getattr(_port_models, MODELS[name].factory)()
    for prefix in MODELS[name].frozen:
        for parameter in model.get_submodule(prefix).parameters():
            parameter.requires_grad_(False)
    return model


def _torch_run(name: str, dtype: Any) -> dict[str, np.ndarray]:
    import torch
    import torch.nn.functional as F

    spec = MODELS[name]
    model = _torch_model(name)
    shapes = {k: (tuple(v.shape), str(v.numpy().dtype)) for k, v in model.state_dict().items()}
    state = _state(name, shapes)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    model.to(dtype)
    kind, options = spec.optimizer
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, **options) if kind == "sgd" else torch.optim.AdamW(trainable, **options)
    data = _inputs(name)

    def loss_of(out: Any, y: Any) -> Any:
        if spec.loss == "nll":
            return F.nll_loss(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        return F.cross_entropy(out, y)

    def floating(x: np.ndarray) -> Any:
        t = torch.from_numpy(x.copy())
        return t.to(dtype) if t.is_floating_point() else t

    outputs: dict[str, np.ndarray] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # PyTorch splits reductions by thread count: one thread, one recording
    try:
        for step in range(1, STEPS + 1):
            model.train()
            optimizer.zero_grad()
            loss = loss_of(model(floating(data["x"][step - 1])), torch.from_numpy(data["y"][step - 1]))
            loss.backward()
            optimizer.step()
            outputs[f"step{step} loss"] = loss.detach().numpy().copy()
            outputs[f"step{step} state"] = _sketches({k: v.numpy() for k, v in model.state_dict().items()})
            if step in EVAL_AFTER:
                model.eval()
                with torch.no_grad():
                    out = model(floating(data["x"][STEPS]))
                    outputs[f"step{step} eval output"] = out.numpy().copy()
                    outputs[f"step{step} eval loss"] = loss_of(out, torch.from_numpy(data["y"][STEPS])).numpy().copy()
    finally:
        torch.set_num_threads(threads)
    return outputs


@functools.cache
def _torch_outputs(name: str) -> dict[str, dict[str, np.ndarray]]:
    import torch

    return {"float32": _torch_run(name, torch.float32), "float64": _torch_run(name, torch.float64)}


def _encode(array: np.ndarray) -> dict[str, Any]:
    a = np.array(array, np.float64, order="C")  # (ascontiguousarray would make a 0-d loss 1-d)
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _decode(entry: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(entry["data"]), np.float64).reshape(entry["shape"])


@functools.cache
def _recorded() -> dict[str, Any]:
    return json.loads(RECORDING.read_text())


def torch_outputs(name: str) -> dict[str, dict[str, np.ndarray]]:
    """PyTorch's float32 and float64 outputs: live, or recorded."""
    if LIVE_TORCH:
        return _torch_outputs(name)
    entry = _recorded()[name]
    return {precision: {k: _decode(v) for k, v in entry[precision].items()} for precision in ("float32", "float64")}


# --- torchsem ------------------------------------------------------------------------------------


def generated_source(name: str) -> str:
    return (SOURCES / f"{name}.py").read_text()


def _class_name(source: str) -> str:
    return source.split("The model is ``", 1)[1].split("``", 1)[0]


@functools.cache
def _jax_outputs(name: str, jit: bool) -> dict[str, Any]:
    spec = MODELS[name]
    source = generated_source(name)
    module = load_source(source, _class_name(source))()
    data = _inputs(name)
    example = to_jax(data["x"][0])
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), example, train=False))
    skeleton = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    torch_keys = to_torch_state_dict(skeleton)
    state = _state(name, {k: (tuple(v.shape), str(np.asarray(v).dtype)) for k, v in torch_keys.items()})
    variables = load_torch_state_dict(skeleton, state)
    params, stats = variables["params"], variables.get("batch_stats", {})
    frozen = _frozen(name)
    kind, options = spec.optimizer
    inner = optim.sgd(**options) if kind == "sgd" else optim.adamw(**options)
    tx = optim.freeze(inner, frozen) if frozen else inner

    def loss_of(out: Any, y: Any) -> Any:
        if spec.loss == "nll":
            return nll_loss(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        return cross_entropy(out, y)

    def train_step(params: Any, stats: Any, opt_state: Any, x: Any, y: Any) -> Any:
        def objective(params: Any) -> Any:
            out, updated = module.apply(
                {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
            )
            return loss_of(out, y), updated.get("batch_stats", {})

        (loss, stats), grads = autograd.value_and_grad(objective, has_aux=True)(params)
        params, opt_state = optim.step(tx, grads, opt_state, params)
        return params, stats, opt_state, loss

    def eval_step(params: Any, stats: Any, x: Any, y: Any) -> Any:
        out = module.apply({"params": params, "batch_stats": stats}, x, train=False)
        return out, loss_of(out, y)

    if jit:
        train_step, eval_step = jax.jit(train_step), jax.jit(eval_step)
    opt_state = tx.init(params)
    outputs: dict[str, Any] = {}
    for step in range(1, STEPS + 1):
        params, stats, opt_state, loss = train_step(
            params, stats, opt_state, to_jax(data["x"][step - 1]), to_jax(data["y"][step - 1], jnp.int32)
        )
        outputs[f"step{step} loss"] = np.asarray(loss)
        named = to_torch_state_dict({"params": params, "batch_stats": stats})
        outputs[f"step{step} state"] = _sketches({k: np.asarray(v) for k, v in named.items()})
        if step in EVAL_AFTER:
            out, eval_loss = eval_step(params, stats, to_jax(data["x"][STEPS]), to_jax(data["y"][STEPS], jnp.int32))
            outputs[f"step{step} eval output"] = np.asarray(out)
            outputs[f"step{step} eval loss"] = np.asarray(eval_loss)
    outputs["frozen unchanged"] = all(
        np.array_equal(np.asarray(named[k]), state[k]) for k in named if any(k.startswith(f) for f in frozen)
    )
    return outputs


def _frozen(name: str) -> tuple[str, ...]:
    """``Ported.frozen`` of the model: PyTorch's ``requires_grad=False`` parameters (recorded with the source)."""
    return tuple(json.loads((SOURCES / "frozen.json").read_text())[name])


# --- the tests -----------------------------------------------------------------------------------

# Models cheap enough to run eagerly as well as jitted.
_EAGER = ("document_net", "document_net_detach", "document_net_frozen", "transformer_classifier", "lstm_tagger")
_CASES = [pytest.param(name, True, id=f"{name}-jit") for name in MODELS] + [
    pytest.param(name, False, id=f"{name}-eager") for name in _EAGER
]


@pytest.mark.parametrize(("name", "jit"), _CASES)
def test_trains_like_pytorch(name: str, jit: bool) -> None:
    """Loss, eval outputs and every tensor's sketch after every step: torchsem's drift within DRIFT_K of PyTorch's."""
    mine = _jax_outputs(name, jit)
    theirs = torch_outputs(name)
    assert mine["frozen unchanged"], "a frozen parameter moved"
    floor = MODELS[name].floor
    drifts = {key: drift_distance(theirs["float32"][key], reference)[0] for key, reference in theirs["float64"].items()}
    for key, reference in theirs["float64"].items():
        value = np.asarray(mine[key], np.float64)
        assert value.shape == reference.shape, key
        ours, _ = drift_distance(value, reference)
        pytorch = drifts[key]
        if key.endswith("loss"):
            # A loss is one number, and the ratio of two single errors is random over orders of
            # magnitude: it is held to the drift of what it is computed from as well.
            pytorch = max(pytorch, drifts[key.replace("eval loss", "eval output").replace(" loss", " state")])
        assert ours <= max(DRIFT_K * pytorch, floor), (
            f"{name} {key}: torchsem's float32 is {ours:.3g} from float64 PyTorch, PyTorch's float32 {pytorch:.3g} "
            f"(allowed: {DRIFT_K:g} times that, or {floor:g})"
        )


@pytest.mark.live_torch
@pytest.mark.skipif(not LIVE_TORCH, reason=LIVE_TORCH_REASON)
@pytest.mark.parametrize("name", list(MODELS))
def test_source_is_current(name: str) -> None:
    """``port`` generates exactly the checked-in source (what the recorded path runs), and the frozen names."""
    ported = _port(name)
    assert ported.source == generated_source(name)
    assert ported.frozen == _frozen(name)


@functools.cache
def _port(name: str) -> Any:
    import torch

    from torchsem.port import port

    return port(_torch_model(name), torch.from_numpy(_inputs(name)["x"][0].copy()))


def _record() -> None:
    SOURCES.mkdir(parents=True, exist_ok=True)
    frozen = {}
    recording: dict[str, Any] = {}
    for name in MODELS:
        ported = _port(name)
        (SOURCES / f"{name}.py").write_text(ported.source)
        frozen[name] = list(ported.frozen)
        outputs = _torch_outputs(name)
        recording[name] = {p: {k: _encode(v) for k, v in outputs[p].items()} for p in outputs}
        print(f"{name}: {len(ported.source)} characters of source, {len(outputs['float32'])} outputs")
    (SOURCES / "frozen.json").write_text(json.dumps(frozen, indent=1) + "\n")
    RECORDING.write_text(json.dumps(recording) + "\n")


if __name__ == "__main__" and "--record" in sys.argv:
    _record()
