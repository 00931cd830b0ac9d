"""torchvision's ResNet-18 ported to Flax by ``torchsem.port``, then checked against PyTorch.

    module, variables = torchsem.port.port(torchvision_resnet18, x)

The PyTorch model is torchvision's network (``torchsem.compare._torch_resnet``: torchvision's
``resnet.py`` rebuilt from ``torch.nn``, as its wheel does not load with the CPU torch here).
Prints the head of the generated source and ``check_port``'s report over two train steps and
an eval step (``layer1`` frozen by ``requires_grad=False``), by the float64-judged criterion.

Run:  .venv/bin/python comparisons/port_resnet18.py
CLI:  .venv/bin/torchsem port comparisons/port_resnet18.py:make --check
"""

from __future__ import annotations

from typing import Any


def make() -> dict[str, Any]:
    """The factory for ``torchsem port``: the PyTorch model, example inputs and check_port's options."""
    import torch

    from torchsem.compare._torch_resnet import torch_resnet

    torch.manual_seed(0)
    model = torch_resnet("resnet18", num_classes=10)
    for parameter in model.layer1.parameters():
        parameter.requires_grad_(False)
    x = torch.randn(4, 3, 64, 64)
    return {
        "torch_module": model,
        "inputs": x,
        "steps": ["train", "train", "eval"],
        # Judged against a float64 PyTorch run: the port at most 4 times as far from it as float32
        # PyTorch is (BatchNorm on a batch of 4 moves float32 PyTorch itself ~1e-4 from float64).
        "drift": 4.0,
    }


def main() -> None:
    import jax

    from torchsem.port import port

    spec = make()
    model, x = spec.pop("torch_module"), spec.pop("inputs")
    ported = port(model, x, check=True, check_kwargs=spec)
    module, variables = ported  # the two-line port: the Flax module and its variables
    print(f"{type(module).__name__}: {sum(v.size for v in jax.tree_util.tree_leaves(variables))} numbers loaded")
    print("\n".join(ported.source.splitlines()[:40]))
    print(f"... ({len(ported.source.splitlines())} lines, root class {ported.class_name})")
    print(f"frozen: {len(ported.frozen)} parameters ({ported.frozen[0]}, ...)")
    print()
    print(ported.check.summary())
    print()
    print(ported.check.table())


if __name__ == "__main__":
    main()
