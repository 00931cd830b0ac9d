"""Shared by the comparison scripts: each value the document prints, from PyTorch and from JAX.

PyTorch's values come from torchsem's oracle: live PyTorch when it is importable, else the
outputs recorded from PyTorch and shipped in the package (``TORCHSEM_ORACLE=recorded`` forces
them). Both sides are printed the way PyTorch's ``print`` shows a tensor, as in the document.
"""

from __future__ import annotations

from typing import Any

from torchsem.compare import as_outputs, compare_output, format_like_torch, get, get_oracle


def _indented(label: str, text: str) -> str:
    pad = " " * len(label)
    return "\n".join((label if i == 0 else pad) + line if line else "" for i, line in enumerate(text.split("\n")))


class Comparison:
    """The document's prints for one catalogue entry: PyTorch's recorded/live value next to JAX's."""

    def __init__(self, entry: str) -> None:
        self.scenario = get(entry)
        oracle = get_oracle()
        self.pytorch = oracle.outputs(self.scenario)
        self.verdicts: list[bool] = []
        print(self.scenario.section)
        print(f"PyTorch's values: {oracle.describe([self.scenario])}")
        print(f"mapping: {self.scenario.mapping}\n")

    def show(self, statement: str, name: str, jax_value: Any) -> None:
        """Print ``statement`` as the document runs it, then PyTorch's and torchsem's value, and judge them."""
        expected = self.pytorch[name]
        actual = as_outputs({name: jax_value})[name]
        verdict = compare_output(name, expected, actual, self.scenario.tolerance_for(name))
        self.verdicts.append(verdict.ok)
        print(f">>> {statement}")
        print(_indented("PyTorch:  ", format_like_torch(expected)))
        print(_indented("torchsem: ", format_like_torch(actual)))
        if not verdict.ok:
            print(f"    DIFFERS: {verdict.detail}")

    def plain(self, statement: str, plain_value: Any, note: str) -> None:
        """What plain JAX/Flax/Optax gives for the same statement (not judged): the pitfall torchsem avoids."""
        value = as_outputs({"plain": plain_value})["plain"]
        print(f">>> {statement}    # plain JAX, for contrast: {note}")
        print(_indented("plain JAX: ", format_like_torch(value)))

    def done(self) -> int:
        """Print the verdict; the exit status is 0 when every printed value agrees with PyTorch."""
        agreeing = sum(self.verdicts)
        print(f"\n{agreeing} of {len(self.verdicts)} printed values agree with PyTorch.")
        return 0 if agreeing == len(self.verdicts) else 1
