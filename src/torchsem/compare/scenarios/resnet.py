"""torchvision's ResNets against ``torchsem.models`` (family ``resnet``).

The PyTorch side is the reference ResNet of :mod:`torchsem.compare._torch_resnet` (torchvision's
network rebuilt from ``torch.nn``: torchvision itself does not install with the CPU torch here).

- ``resnet/init/<arch>``: ``torch.manual_seed(s); torchvision.models.<arch>()`` against
  ``torch_init(torchsem.models.<arch>(), Generator(s), x)``: the ``state_dict`` keys in order,
  then every tensor's dtype, shape and bytes (as a hash, so the recording holds no weights).
- ``resnet/forward/<arch>``: the same numpy weights (He-normal convolutions, BatchNorm weights
  and biases away from 1 and 0, non-trivial running statistics) loaded into both, then an
  eval-mode and a train-mode forward and backward pass of ``cross_entropy``: logits, loss, every
  parameter's gradient and (after the train pass) every buffer's change. (ResNet-50's eval pass
  is not differentiated: ``EVAL_GRADIENTS``.)
- ``resnet/train/<arch>``: three SGD steps (``lr=0.01, momentum=0.9, weight_decay=5e-4``,
  ``layer1`` frozen: ``requires_grad=False`` / ``torchsem.optim.freeze``), each followed by an
  eval pass: the train logits and loss, every parameter's and buffer's change since the start,
  the eval logits and loss, after every step. (Not ``lr=0.1``: with a batch of 4 at 32x32 one
  step moves ResNet-18's first convolution by ten times its norm, BatchNorm making the gradient
  grow as the weight shrinks, and float32 PyTorch's eval logits end 10 to 57 % away from
  float64's after three steps, over four seeds: nothing left to compare.)

Tensors are recorded as sketches (:func:`_sketch`: 8 numbers per tensor, from every element),
so the recordings stay small. The PyTorch program runs the float32 model and the same model in
float64; the float64 run's outputs are recorded next to the float32 ones (suffix ``[float64]``)
and every float output is judged by its drift from them (a drift
:class:`~torchsem.compare.Tolerance`, :func:`~torchsem.compare.compare_output`):
torchsem's float32 result must be at most ``DRIFT_K`` times as far from float64 as PyTorch's
float32 result is, or within a floor: float32's 1e-5, and after a backward pass the effect of a
ReLU kink that two float32 implementations resolve differently (``KINK_FLOOR_*``). Small
batches make BatchNorm amplify rounding (float32 PyTorch's own gradients of a torchvision-
initialised ResNet-50 are typically 1 to 3 %, up to 5 %, away from float64's at batches of 2
to 8), so float32's usual tolerance would fail PyTorch itself. The JAX programs run jitted in
both of the catalogue's modes (:func:`_once`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .._module_case import _digest
from .._scenario import Scenario, Tolerance, register

_SECTION = "torchvision's ResNets: torchsem.models.resnet18/50, resnext50_32x4d, wide_resnet50_2"
REFERENCE = " [float64]"
NUM_CLASSES = 10
IMAGE = (3, 32, 32)  # for tracing the variables (their shapes do not depend on it) and torch_init
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
FROZEN = "layer1"
TRAIN_STEPS = 3
# The training-kit run (resnet/train-kit/resnet18): PyTorch's canonical parameter groups (weight decay on
# the convolution and linear weights only), a cosine schedule per group that turns back up after
# KIT_T_MAX steps, and gradient clipping that engages at every step (the total norms are about 11).
KIT_LR, KIT_NO_DECAY_LR, KIT_T_MAX, KIT_MAX_NORM = 0.02, 0.01, 2, 1.0
SKETCH = 8  # components of a tensor's summary (_sketch)
# Whose eval-mode forward pass is differentiated too. Not ResNet-50's: the compilation of its
# eval-mode backward pass costs 5 s of the suite's two-core budget, and ResNet-18 checks the same
# layers' eval-mode backward at model scale (as the batchnorm and conv families do layer by layer).
EVAL_GRADIENTS = {"resnet18": True, "resnet50": False}

# The drift criterion's k: torchsem's distance from float64 PyTorch (root mean square over an
# output, each row scaled by float64's, compare.drift_distance) may be at most DRIFT_K times float32
# PyTorch's, plus the float32 tolerance's 1e-5. Measured with these cases' sizes and weights over 6
# seeds of ResNet-50 and 4 of ResNet-18, every output of the forward and the train scenarios: the
# largest ratio was 1.57 (ResNet-18: 1.36); a loss, one number, is held to the drift of its logits.
DRIFT_K = 4.0


# Floors of the drift criterion for what comes after a backward pass. A ReLU (or max-pool window)
# whose input lies within rounding of its kink is resolved one way by one float32 implementation
# and the other way by another, and every gradient upstream of it moves by a fraction of one
# element's share: measured, in float32 torchsem against float32 PyTorch (which agreed with float64
# there), up to 2.1e-2 on a ResNet-50's parameter changes and 4e-4 on its eval-mode gradients, and
# up to 3.6e-4 on the logits, losses and running statistics one to two SGD steps after such a
# flip. Which seeds and CPUs meet one is chance (1 in 7 ResNet-50 training runs here), so these
# outputs are held to the larger of DRIFT_K times PyTorch's drift and these floors.
KINK_FLOOR_GRADIENTS = 0.05
KINK_FLOOR_AFTER_STEP = 2e-3


def _drift(name: str, floor: tuple[float, str], baseline: tuple[str, ...] = ()) -> Tolerance:
    value, why = floor
    return Tolerance(
        value,
        1e-6,
        f"float32 drift from PyTorch's own float64 run: torchsem's distance to it at most {DRIFT_K:g} times "
        f"PyTorch float32's (BatchNorm on few values per channel amplifies rounding in both), or {value:g}"
        f"{why}",
        drift=DRIFT_K,
        reference=name + REFERENCE,
        baseline=baseline,
    )


def _loss_baseline(name: str) -> tuple[str, ...]:
    """The logits a loss is computed from: ``"step1 train loss"`` -> ``"step1 train logits"``."""
    return (name.removesuffix("loss") + "logits",)


def _floor(name: str) -> tuple[float, str]:
    """float32's 1e-5 for what a forward pass from the loaded weights computes; a kink floor after a backward pass."""
    if "grad" in name or "params change" in name:
        return KINK_FLOOR_GRADIENTS, " (a ReLU kink resolved the other way moves the gradients: KINK_FLOOR_GRADIENTS)"
    if name.startswith("step") and not name.startswith(("step1 train", "step1 buffers")):
        # computed with the parameters an SGD step made
        return KINK_FLOOR_AFTER_STEP, " after an SGD step (a ReLU kink resolved the other way: KINK_FLOOR_AFTER_STEP)"
    return 1e-5, " (float32's tolerance)"


def _tolerance_of(name: str) -> Tolerance | None:
    if name.endswith(REFERENCE) or name.endswith(" names") or name.endswith("num_batches_tracked"):
        return None
    return _drift(name, _floor(name), _loss_baseline(name) if name.endswith("loss") else ())


# --- shared by both programs --------------------------------------------------------------------


def _skeleton(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _skeleton(value) if isinstance(value, Mapping) else None for name, value in tree.items()}


def _in_order(tree: Mapping[str, Any], skeleton: Mapping[str, Any]) -> dict[str, Any]:
    return {name: tree[name] if inner is None else _in_order(tree[name], inner) for name, inner in skeleton.items()}


@functools.cache
def _template(arch: str) -> dict[str, Any]:
    """Zero variables of ``torchsem.models.<arch>(num_classes=10)`` in init's order, without running init.

    ``jax.eval_shape`` gives the shapes (an eager init would compile JAX's random number
    generator per parameter shape, seconds for a ResNet) but hands the dicts back with sorted
    keys; the order init made them in (torchvision's) is read inside the trace.
    """
    import jax
    import jax.numpy as jnp

    from ... import models

    model = getattr(models, arch)(num_classes=NUM_CLASSES)
    orders: list[dict[str, Any]] = []

    def init(x: Any) -> Any:
        variables = model.init(jax.random.key(0), x, train=False)
        orders.append(_skeleton(variables))
        return variables

    shapes = jax.eval_shape(init, jnp.zeros((1, *IMAGE), jnp.float32))
    return _in_order(jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes), orders[0])


@functools.cache
def _state_shapes(arch: str) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """torchvision's ``state_dict`` keys, shapes and dtypes of ``<arch>(num_classes=10)``, without torch."""
    from ...convert import to_torch_state_dict

    return tuple((key, value.shape, value.dtype.str) for key, value in to_torch_state_dict(_template(arch)).items())


@functools.cache
def _random_state(arch: str, seed: int) -> dict[str, np.ndarray]:
    """A plausible trained-looking ``state_dict``: He-normal convs, BatchNorm weights near 1, real statistics.

    Drawn once per process (a ResNet-50's 23M normals take a second) and handed out read-only:
    both programs copy what they load.
    """
    rng = np.random.default_rng([seed, 1])
    state = {}
    for key, shape, dtype in _state_shapes(arch):
        name = key.rpartition(".")[2]
        value: np.ndarray
        if name == "num_batches_tracked":
            value = np.array(5, np.int64)
        elif name == "running_mean":
            value = 0.1 * rng.standard_normal(shape)
        elif name == "running_var":
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:  # a convolution: kaiming_normal_(mode="fan_out"), torchvision's
            value = rng.standard_normal(shape) * np.sqrt(2.0 / (shape[0] * shape[2] * shape[3]))
        elif key.startswith("fc."):
            bound = 1 / np.sqrt(_state_dict_shape(arch, "fc.weight")[1])
            value = rng.uniform(-bound, bound, shape)
        elif name == "weight" and key.endswith(_last_norm(arch) + ".weight"):
            # The residual branch's last BatchNorm, small as in a trained network (torchvision's
            # zero_init_residual starts it at 0): with every branch at full scale the gradients
            # grow a hundredfold through the blocks, and float32 PyTorch's own ResNet-50 gradients
            # end a few percent away from float64's.
            value = rng.uniform(0.05, 0.25, shape)
        elif name == "weight":  # a BatchNorm's scale
            value = rng.uniform(0.5, 1.5, shape)
        else:  # a BatchNorm's shift
            value = 0.1 * rng.standard_normal(shape)
        state[key] = np.asarray(value, np.dtype(dtype) if name != "num_batches_tracked" else np.int64)
        state[key].setflags(write=False)
    return state


def _last_norm(arch: str) -> str:
    return "bn2" if arch in ("resnet18", "resnet34") else "bn3"


def _state_dict_shape(arch: str, key: str) -> tuple[int, ...]:
    return next(shape for name, shape, _ in _state_shapes(arch) if name == key)


@functools.cache
def _signs(size: int) -> np.ndarray:
    """Fixed pseudo-random signs, one per element of a tensor of ``size`` elements (float32: exact)."""
    return np.where(np.random.default_rng([1515, size]).random(size) < 0.5, -1.0, 1.0).astype(np.float32)


def _sketch(value: np.ndarray) -> np.ndarray:
    """``SKETCH`` random-sign sums over interleaved slices of the tensor, scaled to its root mean square.

    Component ``s`` is ``sum_j sign_j x_j`` over the elements ``j = s (mod SKETCH)``, divided by
    the square root of their count. Every element counts, so a wrong value anywhere or a permuted
    layout changes the sketch; and its error (the sum of the elements' errors, in random
    directions unrelated to the values) measures the size of the tensor's error, where a sum or a
    sum of squares only measures its projection on the ones or on the tensor itself.
    """
    flat = np.asarray(value, np.float64).reshape(-1)
    padded = np.zeros(-(-flat.size // SKETCH) * SKETCH)
    padded[: flat.size] = flat * _signs(flat.size)
    return padded.reshape(-1, SKETCH).sum(axis=0) / np.sqrt(max(padded.size // SKETCH, 1))


def _summaries(
    named: Mapping[str, Any], prefix: str, suffix: str = "", start: Mapping[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """One sketch row per float tensor (of its change since ``start``, when given), in order.

    Integer tensors (``num_batches_tracked``) come out whole, as one int64 vector (the float64
    run has no separate copy of them); a None (PyTorch's ``.grad is None``) makes the summary None.
    """
    if any(value is None for value in named.values()):
        return {f"{prefix} sketch{suffix}": None}
    arrays = {name: np.asarray(value) for name, value in named.items()}
    rows = []
    for name, value in arrays.items():
        if value.dtype.kind == "f":
            moved = value.astype(np.float64) - (start[name].astype(np.float64) if start is not None else 0.0)
            rows.append(_sketch(moved))
    outputs: dict[str, Any] = {}
    if rows:
        outputs[f"{prefix} {'change ' if start is not None else ''}sketch{suffix}"] = np.stack(rows)
    integers = [int(value) for value in arrays.values() if value.dtype.kind in "iu"]
    if integers and not suffix:
        outputs[f"{prefix} num_batches_tracked"] = np.array(integers, np.int64)
    return outputs


def _forward_inputs(arch: str, batch: int, size: int, seed: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        return {
            "state": dict(_random_state(arch, seed)),
            "x": rng.standard_normal((batch, 3, size, size)).astype(np.float32),
            "y": rng.integers(0, NUM_CLASSES, batch).astype(np.int64),
        }

    return make


def _train_inputs(arch: str, batch: int, size: int, seed: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        return {
            "state": dict(_random_state(arch, seed)),
            "xs": rng.standard_normal((TRAIN_STEPS, batch, 3, size, size)).astype(np.float32),
            "ys": rng.integers(0, NUM_CLASSES, (TRAIN_STEPS, batch)).astype(np.int64),
            "x_eval": rng.standard_normal((batch, 3, size, size)).astype(np.float32),
            "y_eval": rng.integers(0, NUM_CLASSES, batch).astype(np.int64),
        }

    return make


# --- PyTorch -------------------------------------------------------------------------------------


def _torch_model(arch: str, state: Mapping[str, np.ndarray], dtype: Any) -> Any:
    import torch

    from .._torch_resnet import torch_resnet

    model = torch_resnet(arch, num_classes=NUM_CLASSES)
    model.load_state_dict({key: torch.from_numpy(np.array(value, copy=True)) for key, value in state.items()})
    return model.to(dtype)  # floating parameters and buffers only; num_batches_tracked stays int64


def _numpy(named: Any) -> dict[str, Any]:
    return {name: None if value is None else value.detach().numpy().copy() for name, value in named}


def _torch_precisions() -> tuple[tuple[Any, str], ...]:
    import torch

    return ((torch.float32, ""), (torch.float64, REFERENCE))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """PyTorch on one intra-op thread for the duration, then as it was.

    PyTorch splits its reductions by thread count, so one thread makes the recordings independent
    of the recording machine's cores; and its two OpenMP threads run five times slower than one on
    a two-core machine that other processes share (35 s against 7 s for ResNet-50's training run).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _torch_forward(arch: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def program(inputs: Mapping[str, Any]) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        outputs: dict[str, Any] = {}
        with _one_thread():
            for dtype, suffix in _torch_precisions():
                model = _torch_model(arch, inputs["state"], dtype)
                if not suffix:
                    outputs["parameter names"] = " ".join(name for name, _ in model.named_parameters())
                    outputs["buffer names"] = " ".join(name for name, _ in model.named_buffers())
                x = torch.from_numpy(inputs["x"]).to(dtype)
                y = torch.from_numpy(inputs["y"])
                for mode in ("eval", "train"):
                    model.train(mode == "train")
                    model.zero_grad(set_to_none=True)
                    differentiated = mode == "train" or EVAL_GRADIENTS[arch]
                    with torch.set_grad_enabled(differentiated):
                        logits = model(x)
                        loss = F.cross_entropy(logits, y)
                    outputs[f"{mode} logits{suffix}"] = logits.detach().numpy().copy()
                    outputs[f"{mode} loss{suffix}"] = loss.detach().numpy().copy()
                    if differentiated:
                        loss.backward()
                        grads = _numpy((name, p.grad) for name, p in model.named_parameters())
                        outputs.update(_summaries(grads, f"{mode} grad", suffix))
                buffers = _numpy(model.named_buffers())
                outputs.update(_summaries(buffers, "train buffers", suffix, inputs["state"]))
        return outputs

    return program


def _torch_optimizer(model: Any, kit: bool) -> tuple[Any, Any]:
    """``(optimizer, scheduler)`` of the train case (``FROZEN`` frozen) or of the training-kit case."""
    import torch

    if not kit:
        for parameter in model.get_submodule(FROZEN).parameters():
            parameter.requires_grad_(False)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        return optimizer, None
    groups: list[dict[str, Any]] = [
        {"params": [p for p in model.parameters() if p.ndim > 1]},
        {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0, "lr": KIT_NO_DECAY_LR},
    ]
    optimizer = torch.optim.SGD(groups, lr=KIT_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=KIT_T_MAX)


def _torch_train(arch: str, kit: bool = False) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``TRAIN_STEPS`` PyTorch training steps, each followed by an eval pass (``kit``: the training-kit case)."""

    def program(inputs: Mapping[str, Any]) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        outputs: dict[str, Any] = {}
        start = inputs["state"]
        with _one_thread():
            for dtype, suffix in _torch_precisions():
                model = _torch_model(arch, start, dtype)
                optimizer, scheduler = _torch_optimizer(model, kit)
                x_eval = torch.from_numpy(inputs["x_eval"]).to(dtype)
                y_eval = torch.from_numpy(inputs["y_eval"])
                for step in range(TRAIN_STEPS):
                    model.train()
                    optimizer.zero_grad()
                    logits = model(torch.from_numpy(inputs["xs"][step]).to(dtype))
                    loss = F.cross_entropy(logits, torch.from_numpy(inputs["ys"][step]))
                    loss.backward()
                    tag = f"step{step + 1}"
                    if kit:
                        total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), KIT_MAX_NORM)
                        outputs[f"{tag} grad norm{suffix}"] = total_norm.detach().numpy().copy()
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    outputs[f"{tag} train logits{suffix}"] = logits.detach().numpy().copy()
                    outputs[f"{tag} train loss{suffix}"] = loss.detach().numpy().copy()
                    outputs.update(_summaries(_numpy(model.named_parameters()), f"{tag} params", suffix, start))
                    outputs.update(_summaries(_numpy(model.named_buffers()), f"{tag} buffers", suffix, start))
                    model.eval()
                    with torch.no_grad():
                        logits = model(x_eval)
                        outputs[f"{tag} eval logits{suffix}"] = logits.numpy().copy()
                        outputs[f"{tag} eval loss{suffix}"] = F.cross_entropy(logits, y_eval).numpy().copy()
        return outputs

    return program


def _torch_init(arch: str, seed: int, kwargs: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def program(inputs: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        from .._torch_resnet import torch_resnet

        torch.manual_seed(seed)
        state = torch_resnet(arch, **kwargs).state_dict()
        outputs: dict[str, Any] = {"state_dict keys": " ".join(state)}
        outputs.update({key: _digest(value.numpy()) for key, value in state.items()})
        return outputs

    return program


# --- torchsem ------------------------------------------------------------------------------------


def _names(arch: str, collection: str) -> list[str]:
    from ...convert import to_torch_state_dict

    return list(to_torch_state_dict({collection: _template(arch)[collection]}))


def _by_name(names: list[str], tree: Any) -> dict[str, Any]:
    """``{dotted name: leaf}`` in ``names``' order (a jitted function hands its dicts back sorted)."""
    from ...tree import flatten_mapping

    flat = dict(flatten_mapping(tree)) if tree is not None else {}
    return {name: flat.get(name) for name in names}


@functools.cache
def _jax_programs(arch: str, conv_algorithm: str = "xla") -> tuple[Callable[..., Any], Callable[..., Any], Any]:
    """``(grad_step, sgd_step, tx)`` for one architecture, jitted, made once per process.

    The forward and the training scenarios share these functions, and so their compilations (a
    ResNet-50's forward and backward pass takes 10 s to compile on two cores).

    - ``grad_step(params, batch_stats, x, y, train)``: one forward pass in train or eval mode,
      ``cross_entropy`` and its gradients (``torchsem.autograd``): ``(logits, loss, grads,
      batch_stats)``, the running statistics updated in train mode (``grads`` None in eval
      mode where ``EVAL_GRADIENTS`` says so);
    - ``sgd_step(grads, opt_state, params)``: ``torchsem.optim.step`` of
      ``optim.freeze(optim.sgd(...), FROZEN)``: PyTorch's ``optimizer.step()`` with the frozen
      stage's ``requires_grad=False`` (never moved, no momentum buffer, no weight decay).
    """
    import jax

    from ... import autograd, models, optim
    from ...losses import cross_entropy

    model = getattr(models, arch)(num_classes=NUM_CLASSES, conv_algorithm=conv_algorithm)
    tx = optim.freeze(optim.sgd(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY), FROZEN)

    def grad_step(params: Any, batch_stats: Any, x: Any, y: Any, train: bool) -> Any:
        def loss_of(params: Any) -> Any:
            collections = {"params": params, "batch_stats": batch_stats}
            if train:
                logits, updated = model.apply(collections, x, train=True, mutable=["batch_stats"])
                stats = updated["batch_stats"]
            else:
                logits, stats = model.apply(collections, x, train=False), batch_stats
            return cross_entropy(logits, y), (logits, stats)

        if not train and not EVAL_GRADIENTS[arch]:
            loss, (logits, stats) = loss_of(params)
            return logits, loss, None, stats
        (loss, (logits, stats)), grads = autograd.value_and_grad(loss_of, has_aux=True)(params)
        return logits, loss, grads, stats

    def sgd_step(grads: Any, opt_state: Any, params: Any) -> Any:
        return optim.step(tx, grads, opt_state, params)

    return jax.jit(grad_step, static_argnums=4), jax.jit(sgd_step), tx


def _jax_forward(arch: str, conv_algorithm: str = "xla") -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def program(inputs: Mapping[str, Any]) -> dict[str, Any]:
        import jax.numpy as jnp

        from ...convert import load_torch_state_dict, to_jax

        grad_step, _, _ = _jax_programs(arch, conv_algorithm)
        variables = load_torch_state_dict(_template(arch), inputs["state"])
        param_names, buffer_names = _names(arch, "params"), _names(arch, "batch_stats")
        x, y = to_jax(inputs["x"]), to_jax(inputs["y"], jnp.int32)
        outputs: dict[str, Any] = {"parameter names": " ".join(param_names), "buffer names": " ".join(buffer_names)}
        for mode in ("eval", "train"):
            logits, loss, grads, stats = grad_step(variables["params"], variables["batch_stats"], x, y, mode == "train")
            outputs[f"{mode} logits"] = logits
            outputs[f"{mode} loss"] = loss
            if grads is not None:
                outputs.update(_summaries(_by_name(param_names, grads), f"{mode} grad"))
        outputs.update(_summaries(_by_name(buffer_names, stats), "train buffers", start=inputs["state"]))
        return outputs

    return program


@functools.cache
def _kit_step() -> tuple[Callable[..., Any], Any]:
    """``(optimizer_step, tx)`` of the training-kit case: ``optax.chain(clip_grad_norm, param_groups(sgd, ...))``."""
    import jax
    import optax

    from ... import optim
    from ...optim import lr_scheduler

    groups = [
        {"params": lambda name, p: p.ndim > 1, "lr": lr_scheduler.CosineAnnealingLR(KIT_LR, T_max=KIT_T_MAX)},
        {
            "params": lambda name, p: p.ndim <= 1,
            "weight_decay": 0.0,
            "lr": lr_scheduler.CosineAnnealingLR(KIT_NO_DECAY_LR, T_max=KIT_T_MAX),
        },
    ]
    tx = optax.chain(
        optim.clip_grad_norm(KIT_MAX_NORM),
        optim.param_groups(optim.sgd, groups, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY),
    )
    return jax.jit(functools.partial(optim.step, tx)), tx


def _jax_train(arch: str, kit: bool = False) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The train (or training-kit) case in torchsem, on the forward case's compiled forward and backward pass."""

    def program(inputs: Mapping[str, Any]) -> dict[str, Any]:
        import jax.numpy as jnp

        from ...convert import load_torch_state_dict, to_jax

        grad_step, optimizer_step, tx = _jax_programs(arch)
        if kit:
            optimizer_step, tx = _kit_step()
        variables = load_torch_state_dict(_template(arch), inputs["state"])
        params, batch_stats = variables["params"], variables["batch_stats"]
        opt_state = tx.init(params)
        param_names, buffer_names = _names(arch, "params"), _names(arch, "batch_stats")
        x_eval, y_eval = to_jax(inputs["x_eval"]), to_jax(inputs["y_eval"], jnp.int32)
        outputs: dict[str, Any] = {}
        start = inputs["state"]
        for step in range(TRAIN_STEPS):
            x, y = to_jax(inputs["xs"][step]), to_jax(inputs["ys"][step], jnp.int32)
            logits, loss, grads, batch_stats = grad_step(params, batch_stats, x, y, True)
            params, opt_state = optimizer_step(grads, opt_state, params)
            tag = f"step{step + 1}"
            if kit:
                outputs[f"{tag} grad norm"] = opt_state[0].total_norm  # clip_grad_norm_'s return value
            outputs[f"{tag} train logits"] = logits
            outputs[f"{tag} train loss"] = loss
            outputs.update(_summaries(_by_name(param_names, params), f"{tag} params", start=start))
            outputs.update(_summaries(_by_name(buffer_names, batch_stats), f"{tag} buffers", start=start))
            # The eval pass runs the forward scenario's compiled forward and backward and drops the
            # gradients: a backward pass more, but no compilation more.
            eval_logits, eval_loss, _, _ = grad_step(params, batch_stats, x_eval, y_eval, False)
            outputs[f"{tag} eval logits"] = eval_logits
            outputs[f"{tag} eval loss"] = eval_loss
        return outputs

    return program


_COMPUTED: dict[str, dict[str, Any]] = {}


def _once(name: str, run: Callable[[Mapping[str, Any]], dict[str, Any]]) -> Callable[[Mapping[str, Any], bool], Any]:
    """The JAX program of a model scenario: jitted in both of the catalogue's modes, run once per process.

    An op-by-op (eager) ResNet compiles each of its hundreds of distinct operations separately:
    40 s for ResNet-18's forward and backward pass on two cores, more for ResNet-50, beyond the
    suite's budget. Eager against jitted execution is checked layer by layer in every module's
    family and on a small ResNet in ``tests/test_resnet.py``; here the catalogue's eager entry
    judges the jitted run's outputs again.
    """

    def program(inputs: Mapping[str, Any], jit: bool) -> dict[str, Any]:
        if name not in _COMPUTED:
            _COMPUTED[name] = run(inputs)
        return dict(_COMPUTED[name])

    return program


@functools.cache
def _jax_init_outputs(arch: str, seed: int, kwargs: tuple[tuple[str, Any], ...]) -> dict[str, str]:
    # torch_init runs on the host (numpy draws, no JAX program), so the eager and the jitted run of
    # the catalogue would compute the same thing twice: once per process is enough.
    import jax.numpy as jnp

    from ... import models
    from ...convert import to_torch_state_dict
    from ...random import Generator, torch_init

    model = getattr(models, arch)(**dict(kwargs))
    variables = torch_init(model, Generator(seed), jnp.zeros((1, *IMAGE), jnp.float32), train=False)
    state = to_torch_state_dict(variables)
    outputs = {"state_dict keys": " ".join(state)}
    outputs.update({key: _digest(value) for key, value in state.items()})
    return outputs


def _jax_init(arch: str, seed: int, kwargs: Mapping[str, Any]) -> Callable[[Mapping[str, Any], bool], dict[str, Any]]:
    def program(inputs: Mapping[str, Any], jit: bool) -> dict[str, Any]:
        return dict(_jax_init_outputs(arch, seed, tuple(sorted(kwargs.items()))))

    return program


# --- the catalogue -------------------------------------------------------------------------------

_INIT_CASES: tuple[tuple[str, dict[str, Any], int], ...] = (
    ("resnet18", {}, 1500),
    ("resnet18", {"zero_init_residual": True}, 1501),
    ("resnet50", {}, 1502),
    ("resnext50_32x4d", {}, 1504),
    ("wide_resnet50_2", {}, 1505),
)
# (arch, batch, image size, seed). Small batches keep the two-core CI budget; images large enough
# that the last stage is 2x2, so that no BatchNorm sees fewer than 8 values per channel (at 1x1
# with a batch of 2, a BatchNorm's output is +-1 and its backward pass nearly cancels).
_MODEL_CASES = {
    "forward": (("resnet18", 4, 64, 1510), ("resnet50", 2, 48, 1511)),
    "train": (("resnet18", 4, 64, 1520), ("resnet50", 2, 48, 1521)),
}
_SUMMARY = "per tensor: an 8-component random-sign sketch (of its change, for parameters and buffers)"

for _arch, _kwargs, _seed in _INIT_CASES:
    _shown = ", ".join(f"{k}={v!r}" for k, v in _kwargs.items())
    register(
        Scenario(
            name=f"resnet/init/{_arch}" + "".join(f"-{k}" for k, v in _kwargs.items() if v is True),
            section=_SECTION,
            mapping=f"torch.manual_seed({_seed}); torchvision.models.{_arch}({_shown}) -> "
            f"torch_init(torchsem.models.{_arch}({_shown}), Generator({_seed}), x)",
            torch_program=_torch_init(_arch, _seed, _kwargs),
            jax_program=_jax_init(_arch, _seed, _kwargs),
            notes="Every initial tensor compared bit for bit (dtype, shape and a hash of the bytes); the float32 "
            "normal fill of kaiming_normal_ is PyTorch's AVX2 kernel (skipped on a CPU without AVX2+FMA).",
        )
    )

for _arch, _batch, _size, _seed in _MODEL_CASES["forward"]:
    register(
        Scenario(
            name=f"resnet/forward/{_arch}",
            section=_SECTION,
            mapping=f"torchvision {_arch}: load_state_dict, eval()/train() forward + cross_entropy backward -> "
            f"torchsem.models.{_arch}: load_torch_state_dict, apply(train=False/True), autograd.value_and_grad",
            torch_program=_torch_forward(_arch),
            jax_program=_once(f"resnet/forward/{_arch}", _jax_forward(_arch)),
            make_inputs=_forward_inputs(_arch, _batch, _size, _seed),
            tolerance_of=_tolerance_of,
            notes=f"N={_batch}, {_size}x{_size} images, 10 classes; {_SUMMARY}; jitted (see _once).",
        )
    )

# torchsem's opt-in matmul convolutions (one GEMM per kernel tap) in a whole ResNet-18: the forward
# case's inputs and PyTorch program, so PyTorch's outputs are the forward case's.
_arch, _batch, _size, _seed = _MODEL_CASES["forward"][0]
register(
    Scenario(
        name=f"resnet/forward-matmul/{_arch}",
        section=_SECTION,
        mapping=f"torchvision {_arch}: eval()/train() forward + cross_entropy backward -> "
        f"torchsem.models.{_arch}(conv_algorithm='matmul'): the opt-in convolutions, same drift criterion",
        torch_program=_torch_forward(_arch),
        jax_program=_once(f"resnet/forward-matmul/{_arch}", _jax_forward(_arch, "matmul")),
        make_inputs=_forward_inputs(_arch, _batch, _size, _seed),
        tolerance_of=_tolerance_of,
        notes=f"N={_batch}, {_size}x{_size} images, 10 classes; {_SUMMARY}; jitted (see _once).",
    )
)

for _arch, _batch, _size, _seed in _MODEL_CASES["train"]:
    register(
        Scenario(
            name=f"resnet/train/{_arch}",
            section=_SECTION,
            mapping=f"torchvision {_arch}, {FROZEN} requires_grad=False, SGD(lr={LR}, momentum={MOMENTUM}, "
            f"weight_decay={WEIGHT_DECAY}), {TRAIN_STEPS} train steps with an eval pass after each -> "
            f"torchsem.autograd.value_and_grad + optim.step(optim.freeze(optim.sgd(...), {FROZEN!r}), ...)",
            torch_program=_torch_train(_arch),
            jax_program=_once(f"resnet/train/{_arch}", _jax_train(_arch)),
            make_inputs=_train_inputs(_arch, _batch, _size, _seed),
            tolerance_of=_tolerance_of,
            notes=f"N={_batch}, {_size}x{_size} images, 10 classes; {_SUMMARY}; jitted (see _once).",
        )
    )

# Issue 16's training kit at model scale: the train case's shapes, so the compiled passes are shared.
_arch, _batch, _size, _seed = "resnet18", 4, 64, 1530
register(
    Scenario(
        name=f"resnet/train-kit/{_arch}",
        section=_SECTION,
        mapping=f"torchvision {_arch}, SGD([{{weights, weight_decay={WEIGHT_DECAY}}}, {{1-d parameters, "
        f"weight_decay=0, lr={KIT_NO_DECAY_LR}}}], lr={KIT_LR}, momentum={MOMENTUM}) + "
        f"CosineAnnealingLR(T_max={KIT_T_MAX}) + clip_grad_norm_({KIT_MAX_NORM}) -> optax.chain("
        "optim.clip_grad_norm, optim.param_groups(optim.sgd, [...] with lr_scheduler schedules))",
        torch_program=_torch_train(_arch, kit=True),
        jax_program=_once(f"resnet/train-kit/{_arch}", _jax_train(_arch, kit=True)),
        make_inputs=_train_inputs(_arch, _batch, _size, _seed),
        tolerance_of=_tolerance_of,
        notes=f"N={_batch}, {_size}x{_size} images, 10 classes, {TRAIN_STEPS} steps (the cosine turns back up at "
        f"step {KIT_T_MAX + 1}); the total gradient norm clip_grad_norm_ returns, every step; {_SUMMARY}.",
    )
)
