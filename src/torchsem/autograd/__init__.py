"""PyTorch's autograd semantics in JAX: ``requires_grad``, None gradients, leaves and ``grad_fn``, ``no_grad``.

- :func:`grad`, :func:`value_and_grad`: ``jax.grad`` that returns ``None`` exactly where
  PyTorch leaves ``.grad`` None (frozen, detached, unused, integer leaves), zeros where PyTorch
  has a zero gradient, and raises PyTorch's ``element 0 of tensors does not require grad and
  does not have a grad_fn`` when nothing the loss depends on requires grad. The None structure
  is decided statically from the traced program; jitted, it costs nothing.
- :func:`no_grad`, :func:`detach`: results that carry no gradient (``torch.no_grad()``,
  ``tensor.detach()``).
- :func:`inspect_graph`: ``requires_grad`` / ``is_leaf`` / ``grad_fn`` of every input and
  intermediate of a forward pass.
- :func:`value_grad_and_retained`, :class:`retain_module_grads`, :func:`init_perturbations`:
  gradients of intermediates (``retain_grad()``) through Flax's ``perturb``.
- :func:`requires_grad_mask`, :func:`named_leaves`: ``requires_grad`` masks by dotted names
  (``"fc1.weight"``, :mod:`torchsem.tree`'s) or predicates; :func:`resolve_requires_grad`:
  the mask from names or a bool pytree, as the train steps take it.

Gradients with None: ``None`` is a pytree node without leaves in JAX, so
``jax.tree.map(f, grads, params)`` fails where a gradient is None. Map over the gradients
first and treat None as a leaf::

    jax.tree.map(lambda g, p: None if g is None else p - lr * g, grads, params,
                 is_leaf=lambda g: g is None)

torchsem.optim's optimizers take such gradients directly and skip None leaves as
``optimizer.step()`` does; :func:`none_to_zeros` fills them for code that needs arrays.
"""

from ._grad import ELEMENT_0_MESSAGE as ELEMENT_0_MESSAGE
from ._grad import FLOATING_ONLY_MESSAGE as FLOATING_ONLY_MESSAGE
from ._grad import SCALAR_OUTPUT_MESSAGE as SCALAR_OUTPUT_MESSAGE
from ._grad import grad as grad
from ._grad import value_and_grad as value_and_grad
from ._inspect import AutogradGraph as AutogradGraph
from ._inspect import TensorInfo as TensorInfo
from ._inspect import inspect_graph as inspect_graph
from ._masks import named_leaves as named_leaves
from ._masks import requires_grad_mask as requires_grad_mask
from ._masks import resolve_requires_grad as resolve_requires_grad
from ._masks import select_leaves as select_leaves
from ._no_grad import detach as detach
from ._no_grad import no_grad as no_grad
from ._none import none_to_zeros as none_to_zeros
from ._retain import RETAIN_REQUIRES_GRAD_MESSAGE as RETAIN_REQUIRES_GRAD_MESSAGE
from ._retain import init_perturbations as init_perturbations
from ._retain import retain_module_grads as retain_module_grads
from ._retain import value_grad_and_retained as value_grad_and_retained

__all__ = [
    "ELEMENT_0_MESSAGE",
    "FLOATING_ONLY_MESSAGE",
    "RETAIN_REQUIRES_GRAD_MESSAGE",
    "SCALAR_OUTPUT_MESSAGE",
    "AutogradGraph",
    "TensorInfo",
    "detach",
    "grad",
    "init_perturbations",
    "inspect_graph",
    "named_leaves",
    "no_grad",
    "none_to_zeros",
    "requires_grad_mask",
    "resolve_requires_grad",
    "retain_module_grads",
    "select_leaves",
    "value_and_grad",
    "value_grad_and_retained",
]
