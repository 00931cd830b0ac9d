"""Section 5, ``model.eval()`` and Dropout: training drops and rescales, eval passes everything.

In training mode ``nn.Dropout(p)`` zeroes each element with probability ``p`` and scales the
others by ``1 / (1 - p)``; in eval mode it is the identity; ``torch.no_grad()`` changes
neither. ``torchsem.nn.Dropout`` does the same with the mode as ``deterministic=not train``
and the randomness from Flax's ``'dropout'`` rng stream. The masks come from different
generators, so what is compared is what they do, not which elements they pick.

Run: ``python comparisons/08_dropout.py``
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from _show import Comparison
from torchsem import autograd
from torchsem.compare import get
from torchsem.nn import Dropout

compare = Comparison("document/dropout-train-eval")
inputs = get("document/dropout-train-eval").make_inputs()
x = jnp.asarray(inputs["x"])
dropout = Dropout(0.5)
key = jax.random.key(0)


def train(x, key):  # dropout.train(); dropout(x)
    return dropout.apply({}, x, deterministic=False, rngs={"dropout": key})


y = train(x, key)
kept = np.asarray(y) != 0
compare.show(
    "print(y / x)  # where kept", "train: output / input where kept", np.unique(np.asarray(y)[kept] / inputs["x"][kept])
)
compare.show(
    "print((y == 0).all())  # where dropped", "train: dropped elements are exactly 0", np.all(np.asarray(y)[~kept] == 0)
)
grad = autograd.grad(lambda x: jnp.sum(train(x, key)))(x)
compare.show("print(x.grad)  # where kept", "train: grad of sum(output) where kept", np.unique(np.asarray(grad)[kept]))
many = train(jnp.asarray(inputs["many"]), jax.random.key(1))
compare.show(
    "print((dropout(torch.ones(100000)) != 0).float().mean())",
    "train: kept fraction of 1e5 elements",
    np.float32(np.mean(np.asarray(many) != 0)),
)
compare.show(
    "print(dropout(x))  # after dropout.eval()", "eval: output (identity)", dropout.apply({}, x, deterministic=True)
)
compare.show(
    "print(nn.Dropout(1.0)(x))  # training",
    "p=1, train: output (all zero)",
    Dropout(1.0).apply({}, x, deterministic=False),
)

sys.exit(compare.done())
