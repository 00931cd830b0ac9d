"""A torchvision ResNet-18 trained for 20 SGD steps side by side (family ``resnet18_training``).

``torch.manual_seed(SEED); torchvision.models.resnet18(num_classes=10, zero_init_residual=True)``
(the reference ResNet of :mod:`torchsem.compare._torch_resnet`) against
``torch_init(torchsem.models.resnet18(num_classes=10, zero_init_residual=True), Generator(SEED), x)``:
the same initial weights, drawn on each side from its own generator. Both train for ``STEPS``
steps with ``SGD(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)`` and cross-entropy on
batches of ``BATCH`` 3x32x32 images (one fixed random image per class plus noise: learnable, so
the loss falls), with an eval pass (``model.eval()``, ``torch.no_grad()``) on a fixed batch after
every ``EVAL_EVERY`` steps. The torchsem side is one jitted train step (forward,
``torchsem.autograd.value_and_grad``, ``torchsem.optim.step``) and one jitted eval forward.

Compared: the loss at every step, the eval logits, and an 8-number sketch per tensor
(:func:`~torchsem.compare.scenarios.resnet._sketch`) of every parameter's and every float
buffer's change over the run, with the buffers' ``num_batches_tracked`` exactly. The recording
holds these and nothing per weight (17 KB).

The PyTorch program also trains the same initial model in float64 and records that run next to
the float32 one (suffix ``[float64]``): BatchNorm on 8 images (the last stage sees 8 values per
channel) amplifies rounding, so every float output is judged by the drift criterion of
``scenarios/resnet.py``: torchsem's distance from float64 at most ``DRIFT_K`` times float32
PyTorch's, plus ``FLOOR`` (:func:`~torchsem.compare.compare_output`).

Why ``zero_init_residual=True`` (torchvision's option; a residual branch's last BatchNorm starts
at 0) and ``lr=0.01``: a ReLU or max-pool input within rounding of its kink is resolved one way by
one float32 run and the other way by another, and the training amplifies what follows. Measured
with the default init, float32 PyTorch's own eval logits and parameter changes end 38 to 92 % (D)
away from float64's after 20 steps, at lr 0.05, 0.01 and even 0.001: a criterion relative to
that allows anything. With
``zero_init_residual``, over 6 seeds (1530-1535) such a flip on one side moved the result by up
to 0.11 (D of the parameter changes) at lr 0.05 and 0.05 at lr 0.02 (one seed in six failing the
criterion each time), and by at most 8.5e-4 at lr 0.01, under ``FLOOR``; float32 PyTorch's own
drift at lr 0.01 is 2e-7 (losses) to 1.2e-4 (parameter changes).

Not in the default report (a model-scale run on two cores: 18 s live, 9 s of it PyTorch's two runs, and
16 s recorded):
``torchsem compare --all`` or ``--only resnet18_training``; the worked example is
``comparisons/resnet18.py``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._scenario import Scenario, Tolerance, register
from .resnet import (
    KINK_FLOOR_AFTER_STEP,
    REFERENCE,
    _by_name,
    _names,
    _numpy,
    _once,
    _one_thread,
    _summaries,
    _torch_precisions,
)

ARCH = "resnet18"
NUM_CLASSES = 10
SEED = 1531
STEPS, EVAL_EVERY, BATCH = 20, 5, 8
IMAGE = (3, 32, 32)
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
MODEL_KWARGS: dict[str, Any] = {"num_classes": NUM_CLASSES, "zero_init_residual": True}

# The drift criterion (see the module docstring and scenarios/resnet.py's DRIFT_K): torchsem's
# root-mean-square distance from the float64 run (compare.drift_distance) at most DRIFT_K times
# float32 PyTorch's, plus FLOOR. The floor is scenarios/resnet.py's KINK_FLOOR_AFTER_STEP, for a
# ReLU kink resolved the other way by one side: at lr 0.01 over 6 seeds the largest such move was
# 8.5e-4 (D of the parameter changes, in PyTorch's float32 run; torchsem's largest 2.2e-4). A wrong
# optimizer lands outside: weight_decay=0 on torchsem's side gives D = 1.3e-2 on the eval logits,
# 3.8e-3 on the buffers and 0.6 on the parameter changes; lr 1 % off gives 2.3e-2 on the losses.
DRIFT_K = 4.0
FLOOR = KINK_FLOOR_AFTER_STEP


def _tolerance_of(name: str) -> Tolerance | None:
    if name.endswith(REFERENCE) or name.endswith(" names") or name.endswith("num_batches_tracked"):
        return None
    return Tolerance(
        FLOOR,
        1e-6,
        f"float32 drift from PyTorch's own float64 run over {STEPS} SGD steps: torchsem's distance to it at most "
        f"{DRIFT_K:g} times PyTorch float32's, plus {FLOOR:g} (BatchNorm on {BATCH} images amplifies rounding in both, "
        "and a ReLU kink resolved the other way moves what follows: FLOOR)",
        drift=DRIFT_K,
        reference=name + REFERENCE,
    )


def _make_inputs() -> dict[str, np.ndarray]:
    """Learnable batches: one fixed random image per class plus as much noise, so the loss falls as it trains."""
    rng = np.random.default_rng(SEED)
    templates = rng.standard_normal((NUM_CLASSES, *IMAGE))
    ys = rng.integers(0, NUM_CLASSES, (STEPS, BATCH))
    y_eval = rng.integers(0, NUM_CLASSES, BATCH)
    return {
        "xs": (templates[ys] + rng.standard_normal((STEPS, BATCH, *IMAGE))).astype(np.float32),
        "ys": ys.astype(np.int64),
        "x_eval": (templates[y_eval] + rng.standard_normal((BATCH, *IMAGE))).astype(np.float32),
    }


def _torch_program(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorch: the float32 model from ``torch.manual_seed(SEED)``, and the same model in float64, trained alike."""
    import torch
    import torch.nn.functional as F

    from .._torch_resnet import torch_resnet

    outputs: dict[str, Any] = {}
    with _one_thread():
        torch.manual_seed(SEED)
        initial = torch_resnet(ARCH, **MODEL_KWARGS)
        start = {name: value.detach().numpy().copy() for name, value in initial.state_dict().items()}
        outputs["parameter names"] = " ".join(name for name, _ in initial.named_parameters())
        outputs["buffer names"] = " ".join(name for name, _ in initial.named_buffers())
        for dtype, suffix in _torch_precisions():
            model = copy.deepcopy(initial).to(dtype)
            optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
            x_eval = torch.from_numpy(inputs["x_eval"]).to(dtype)
            losses, eval_logits = [], []
            for step in range(STEPS):
                model.train()
                optimizer.zero_grad()
                logits = model(torch.from_numpy(inputs["xs"][step]).to(dtype))
                loss = F.cross_entropy(logits, torch.from_numpy(inputs["ys"][step]))
                loss.backward()
                optimizer.step()
                losses.append(loss.detach().numpy().copy())
                if (step + 1) % EVAL_EVERY == 0:
                    model.eval()
                    with torch.no_grad():
                        eval_logits.append(model(x_eval).numpy().copy())
            outputs[f"loss{suffix}"] = np.stack(losses)
            outputs[f"eval logits{suffix}"] = np.stack(eval_logits)
            outputs.update(_summaries(_numpy(model.named_parameters()), "final params", suffix, start))
            outputs.update(_summaries(_numpy(model.named_buffers()), "final buffers", suffix, start))
    return outputs


@functools.cache
def _jax_steps() -> tuple[Any, Any, Any, Any]:
    """``(model, tx, train_step, evaluate)``, jitted, made once per process.

    - ``train_step(params, batch_stats, opt_state, x, y)``: a train-mode forward pass,
      ``cross_entropy``, its gradients (``torchsem.autograd``) and ``torchsem.optim.step`` of
      ``optim.sgd``: ``(params, batch_stats, opt_state, loss)``;
    - ``evaluate(params, batch_stats, x)``: the eval-mode logits.
    """
    import jax

    from ... import autograd, models, optim
    from ...losses import cross_entropy

    model = models.resnet18(**MODEL_KWARGS)
    tx = optim.sgd(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def train_step(params: Any, batch_stats: Any, opt_state: Any, x: Any, y: Any) -> Any:
        def loss_of(params: Any) -> Any:
            logits, updated = model.apply(
                {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
            )
            return cross_entropy(logits, y), updated["batch_stats"]

        (loss, stats), grads = autograd.value_and_grad(loss_of, has_aux=True)(params)
        params, opt_state = optim.step(tx, grads, opt_state, params)
        return params, stats, opt_state, loss

    def evaluate(params: Any, batch_stats: Any, x: Any) -> Any:
        return model.apply({"params": params, "batch_stats": batch_stats}, x, train=False)

    return model, tx, jax.jit(train_step), jax.jit(evaluate)


def _jax_run(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """torchsem: ``torch_init`` from ``Generator(SEED)``, then the same steps, jitted."""
    import jax.numpy as jnp

    from ...convert import to_jax, to_torch_state_dict
    from ...random import Generator, torch_init

    model, tx, train_step, evaluate = _jax_steps()
    variables = torch_init(model, Generator(SEED), jnp.zeros((1, *IMAGE), jnp.float32), train=False)
    start = to_torch_state_dict(variables)
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = tx.init(params)
    param_names, buffer_names = _names(ARCH, "params"), _names(ARCH, "batch_stats")
    x_eval = to_jax(inputs["x_eval"])
    losses, eval_logits = [], []
    for step in range(STEPS):
        x, y = to_jax(inputs["xs"][step]), to_jax(inputs["ys"][step], jnp.int32)
        params, batch_stats, opt_state, loss = train_step(params, batch_stats, opt_state, x, y)
        losses.append(np.asarray(loss))
        if (step + 1) % EVAL_EVERY == 0:
            eval_logits.append(np.asarray(evaluate(params, batch_stats, x_eval)))
    named_params, named_buffers = _by_name(param_names, params), _by_name(buffer_names, batch_stats)
    outputs: dict[str, Any] = {
        "parameter names": " ".join(name for name, value in named_params.items() if value is not None),
        "buffer names": " ".join(name for name, value in named_buffers.items() if value is not None),
        "loss": np.stack(losses),
        "eval logits": np.stack(eval_logits),
    }
    outputs.update(_summaries(named_params, "final params", start=start))
    outputs.update(_summaries(named_buffers, "final buffers", start=start))
    return outputs


NAME = "resnet18_training/sgd-20-steps"

register(
    Scenario(
        name=NAME,
        section="torchvision's ResNet-18 trained side by side: torchsem.models.resnet18, 20 SGD steps",
        mapping=f"torch.manual_seed({SEED}); torchvision.models.resnet18(num_classes=10, zero_init_residual=True), "
        f"SGD(lr={LR}, momentum={MOMENTUM}, weight_decay={WEIGHT_DECAY}), {STEPS} steps -> "
        f"torch_init(torchsem.models.resnet18(...), Generator({SEED}), x), "
        "jitted autograd.value_and_grad + optim.step(optim.sgd(...))",
        torch_program=_torch_program,
        jax_program=_once(NAME, _jax_run),
        make_inputs=_make_inputs,
        tolerance_of=_tolerance_of,
        notes=f"N={BATCH}, 32x32 images, 10 classes, eval logits after every {EVAL_EVERY} steps; per tensor: an "
        "8-component random-sign sketch of its change; judged by drift from PyTorch's float64 run (DRIFT_K, FLOOR).",
    )
)
