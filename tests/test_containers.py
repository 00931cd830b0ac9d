"""ModuleList and ModuleDict: PyTorch's child names and container behaviour (parity runs in the catalogue)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from torchsem.convert import to_torch_state_dict
from torchsem.nn import Linear, ModuleDict, ModuleList, ReLU


class _Tower(nn.Module):
    compact_form: bool = False

    def setup(self):
        if not self.compact_form:
            self.blocks = ModuleList([Linear(3, 3) for _ in range(3)])
            self.heads = ModuleDict({"cls": Linear(3, 2), "reg": Linear(3, 1)})

    def _run(self, blocks, heads, x):
        for block in blocks[:2]:
            x = block(x)
        x = blocks[-1](x)
        return jnp.concatenate([heads[k](x) for k in heads], axis=-1)

    @nn.compact
    def __call__(self, x):
        if self.compact_form:
            blocks = ModuleList([Linear(3, 3) for _ in range(3)], name="blocks")
            heads = ModuleDict({"cls": Linear(3, 2), "reg": Linear(3, 1)}, name="heads")
            return self._run(blocks, heads, x)
        return self._run(self.blocks, self.heads, x)


@pytest.mark.parametrize("compact_form", [False, True], ids=["setup", "compact"])
def test_members_are_named_as_pytorchs_state_dict(compact_form):
    variables = _Tower(compact_form).init(jax.random.key(0), jnp.ones((2, 3)))
    keys = list(to_torch_state_dict(variables))
    assert keys == [f"blocks.{i}.{p}" for i in range(3) for p in ("weight", "bias")] + [
        "heads.cls.weight",
        "heads.cls.bias",
        "heads.reg.weight",
        "heads.reg.bias",
    ]
    out = jax.jit(_Tower(compact_form).apply)(variables, jnp.ones((2, 3)))
    assert out.shape == (2, 3)


def test_container_protocols_match_pytorchs():
    blocks = ModuleList([Linear(3, 3), ReLU(), Linear(3, 1)])
    assert len(blocks) == 3 and [m.name for m in blocks] == ["0", "1", "2"]
    assert blocks[-1].name == "2" and [m.name for m in blocks[1:]] == ["1", "2"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        blocks[3]
    with pytest.raises(TypeError, match="'str' object cannot be interpreted as an integer"):
        blocks["a"]
    with pytest.raises(NotImplementedError, match='Module \\[ModuleList\\] is missing the required "forward" function'):
        blocks(jnp.ones(3))
    heads = ModuleDict({"b": Linear(3, 1), "a": ReLU()})
    assert list(heads) == heads.keys() == ["b", "a"] and "a" in heads and "c" not in heads
    assert [k for k, _ in heads.items()] == ["b", "a"] and len(heads.values()) == 2
    with pytest.raises(NotImplementedError, match="ModuleDict"):
        heads(jnp.ones(3))
    with pytest.raises(TypeError, match="not both"):
        ModuleList([ReLU()], layers=())
