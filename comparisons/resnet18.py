"""torchvision's ResNet-18 trained for 20 SGD steps side by side with PyTorch, and how far each drifts from float64.

``torch.manual_seed(1531); torchvision.models.resnet18(num_classes=10, zero_init_residual=True)``
against ``torch_init(torchsem.models.resnet18(...), Generator(1531), x)``: the same initial
weights, each drawn from its own generator. Both train for 20 steps with ``SGD(lr=0.01,
momentum=0.9, weight_decay=5e-4)`` and cross-entropy on batches of 8 images (3x32x32), with an
eval pass after every 5 steps; torchsem's train step is one jitted function.

Float32 is not float64: BatchNorm on 8 images (8 values per channel in the last stage)
amplifies rounding, so PyTorch's own float32 run moves away from the same run in float64. The
catalogue entry therefore records PyTorch's float64 run too and judges torchsem by the drift
criterion: torchsem's distance from float64 at most 4 times float32 PyTorch's, plus a floor of
2e-3 (a ReLU kink resolved the other way). The script prints the loss at every step from the
three runs, then the drift table per quantity.

PyTorch's values come from torchsem's oracle: live PyTorch when importable, else the outputs
recorded from PyTorch (``TORCHSEM_ORACLE=recorded`` forces them).

Run: ``python comparisons/resnet18.py``
"""

import sys

import numpy as np

from _show import Comparison
from torchsem.compare import drift_distance, format_like_torch, judge
from torchsem.compare.scenarios.resnet18_training import DRIFT_K, FLOOR, NAME

REFERENCE = " [float64]"
# Tensors shown one by one under the drift table (their rows of the judged sketches).
SHOWN_PARAMETERS = ("conv1.weight", "layer2.0.conv1.weight", "layer4.1.conv2.weight", "fc.weight", "fc.bias")
SHOWN_BUFFERS = ("bn1.running_mean", "layer4.1.bn2.running_var")

compare = Comparison(NAME)
ours = compare.scenario.run_jax(True)
theirs = compare.pytorch

print("step   PyTorch f32 loss   torchsem loss   float64 loss   |torchsem - f64|   |PyTorch f32 - f64|")
for step, (t32, mine, f64) in enumerate(zip(theirs["loss"], ours["loss"], theirs["loss" + REFERENCE]), start=1):
    t32, mine, f64 = float(t32), float(mine), float(f64)
    print(f"{step:4d}   {t32:16.7f}   {mine:13.7f}   {f64:12.7f}   {abs(mine - f64):16.2e}   {abs(t32 - f64):19.2e}")

print("\n>>> model.eval(); model(x_eval) after step 20")
print("PyTorch:  " + format_like_torch(theirs["eval logits"][-1]).replace("\n", "\n          "))
print("torchsem: " + format_like_torch(ours["eval logits"][-1]).replace("\n", "\n          "))

# Every output judged as the parity suite judges it (the drift tolerances with their float64 references).
result = judge(compare.scenario, theirs, ours, oracle="comparison", jit=True)
compare.verdicts.extend(c.ok for c in result.comparisons)
if result.missing or result.unexpected or result.error:
    compare.verdicts.append(False)
    print(result.explain())

print(
    f"\nDrift from PyTorch's float64 run, D = root mean square of (value - float64) / float64's row scale"
    f"\ncriterion: D(torchsem) <= {DRIFT_K:g} x D(PyTorch float32) + {FLOOR:g}"
)
print(f"{'quantity':30s} {'D(PyTorch f32)':>14s} {'D(torchsem)':>12s} {'ratio':>7s} {'allowed':>9s}  verdict")
for c in result.comparisons:
    if c.tolerance.drift is None:
        continue
    reference = theirs[c.name + REFERENCE]
    torch_drift, jax_drift = drift_distance(theirs[c.name], reference)[0], drift_distance(ours[c.name], reference)[0]
    allowed = DRIFT_K * torch_drift + FLOOR
    ratio = jax_drift / torch_drift if torch_drift > 0 else float("inf")
    verdict = "within" if c.ok else "DIFFERS"
    print(f"{c.name:30s} {torch_drift:14.3g} {jax_drift:12.3g} {ratio:7.2f} {allowed:9.3g}  {verdict}")

print("\nper tensor (its row of the sketches above; shown, judged as part of the whole sketch):")
parameters = theirs["parameter names"].split()
buffers = [b for b in theirs["buffer names"].split() if not b.endswith("num_batches_tracked")]
for output, names, shown in (
    ("final params change sketch", parameters, SHOWN_PARAMETERS),
    ("final buffers change sketch", buffers, SHOWN_BUFFERS),
):
    for tensor in shown:
        row = names.index(tensor)
        reference = theirs[output + REFERENCE][row]
        torch_drift = drift_distance(theirs[output][row], reference)[0]
        jax_drift = drift_distance(ours[output][row], reference)[0]
        print(f"  change of {tensor:28s} D(PyTorch f32) {torch_drift:9.3g}   D(torchsem) {jax_drift:9.3g}")

exact = [c for c in result.comparisons if c.exact]
print(
    f"\nexact: {', '.join(c.name for c in exact)}: "
    + ("the same" if all(c.ok for c in exact) else "; ".join(c.detail for c in exact if not c.ok))
)
worst = max(
    abs(float(mine) - float(t32)) / abs(float(t32))
    for mine, t32 in zip(np.asarray(ours["loss"]).reshape(-1), np.asarray(theirs["loss"]).reshape(-1))
)
print(f"largest relative difference of torchsem's loss from PyTorch float32's over the 20 steps: {worst:.2e}")
sys.exit(compare.done())
