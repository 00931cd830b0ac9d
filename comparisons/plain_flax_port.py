"""check_port on a port a new user writes in plain Flax: the document's net with flax.linen.BatchNorm and Dense.

The port stores ``fc1.kernel`` as ``(in, out)`` and calls BatchNorm's variables ``scale``,
``mean`` and ``var``; check_port translates Flax's conventions to PyTorch's names and layouts,
so instead of a naming error it reports the real difference: Flax's BatchNorm updates its
running variance with the biased batch variance, PyTorch with the unbiased one.

Run: ``python comparisons/plain_flax_port.py`` (needs torch), or through the command line:
``torchsem check-port comparisons/plain_flax_port.py:make --plot port.png``.
"""

import flax.linen as nn
import numpy as np


class PlainFlaxNet(nn.Module):
    """AvgPool1d(2) -> BatchNorm1d(3) -> reshape -> Linear(12, 4), written with Flax's own modules."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.avg_pool(x.transpose(0, 2, 1), (2,), strides=(2,)).transpose(0, 2, 1)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis=1, name="bn1")(x)
        return nn.Dense(4, name="fc1")(x.reshape(x.shape[0], -1))


def make():
    """check_port's arguments: the document's net in PyTorch, its plain-Flax port, 4 steps with SGD."""
    import optax
    import torch

    from torchsem.losses import cross_entropy

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pool1 = torch.nn.AvgPool1d(2)
            self.bn1 = torch.nn.BatchNorm1d(3)
            self.fc1 = torch.nn.Linear(12, 4)

        def forward(self, x):
            x = self.bn1(self.pool1(x))
            return self.fc1(x.reshape(x.size(0), -1))

    torch.manual_seed(1029)
    model = TorchNet()
    rng = np.random.default_rng(0)
    return {
        "torch_module": model,
        "flax_module": PlainFlaxNet(),
        "inputs": [rng.standard_normal((3, 3, 8)).astype(np.float32) for _ in range(4)],
        "steps": ["train", "train", "eval", "train"],
        "targets": np.array([1, 1, 1]),
        "loss_fns": (torch.nn.functional.cross_entropy, cross_entropy),
        "optimizers": (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),
    }


if __name__ == "__main__":
    from torchsem.compare import check_port

    spec = make()
    result = check_port(
        spec.pop("torch_module"), spec.pop("flax_module"), spec.pop("inputs"), **spec, stop_at_first=False
    )
    print(result.summary())
    print()
    print(result.table())
    print(f"\nnot compared (no counterpart in the port): {', '.join(result.uncompared)}")
