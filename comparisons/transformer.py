"""A Transformer classifier trained side by side with PyTorch, dropout masks included.

``Embedding -> TransformerEncoder(2 layers, dropout 0.1, batch_first) -> mean -> Linear``,
``torch.manual_seed(2501)`` on PyTorch's side and ``torch_init(model, Generator(2501), x)`` on
torchsem's, 20 AdamW steps. Inside ``torchsem.nn.torch_dropout(generator)`` every dropout
(attention weights, the residual branches, the feed-forward) draws PyTorch's own mask from the
same generator, so the training run is PyTorch's, not merely distributed like it. The script
prints the loss at every step from both, and the eval logits after 20 steps.

PyTorch's values come from torchsem's oracle: live PyTorch when importable, else the outputs
recorded from PyTorch (``TORCHSEM_ORACLE=recorded`` forces them).

Run: ``python comparisons/transformer.py``
"""

import sys

import numpy as np

from _show import Comparison

compare = Comparison("transformer_classifier/dropout-0.1-torch-masks")
ours = compare.scenario.run_jax(True)
print("step   PyTorch loss   torchsem loss   |difference|")
for step, (theirs, mine) in enumerate(zip(compare.pytorch["loss"], ours["loss"]), start=1):
    print(f"{step:4d}   {float(theirs):12.7f}   {float(mine):13.7f}   {abs(float(theirs) - float(mine)):.2e}")
print()
compare.show("loss at every step", "loss", ours["loss"])
compare.show("model.eval(); model(eval_tokens) after steps 5, 10, 15, 20", "eval logits", ours["eval logits"])
compare.show("model.fc.weight after 20 steps", "final fc.weight", ours["final fc.weight"])
worst = max(
    float(np.max(np.abs(np.asarray(ours[k], np.float64) - compare.pytorch[k]) / (np.abs(compare.pytorch[k]) + 1e-6)))
    for k in ("eval logits", "final fc.weight", "final encoder.layers.1.linear2.weight")
)
print(f"\nlargest relative difference of logits and final weights: {worst:.2e}")
sys.exit(compare.done())
