"""PyTorch ``state_dict`` <-> Flax variables, with PyTorch's keys, order, shapes and dtypes.

torchsem's modules name their variables as PyTorch does (``weight``, ``bias``,
``running_mean``, ...), so a PyTorch key is the Flax path joined with ``'.'``:
``variables['params']['fc1']['weight']`` is ``'fc1.weight'`` and
``variables['batch_stats']['bn1']['running_mean']`` is ``'bn1.running_mean'``. Parameters
live in the ``params`` collection, buffers in ``batch_stats``; no layout is transposed.
Variables are read in their mappings' own order (:func:`torchsem.tree.mapping_leaves`), which
for variables made by ``init`` is registration order, PyTorch's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .tree import mapping_leaves, unflatten_mapping

__all__ = ["STATE_COLLECTIONS", "host_copy", "load_torch_state_dict", "to_jax", "to_torch_state_dict"]

STATE_COLLECTIONS: tuple[str, ...] = ("params", "batch_stats")
"""The Flax collections that hold PyTorch state: parameters, then buffers."""

# PyTorch registers these first within a module (nn.Linear, nn.BatchNorm*, nn.Conv*), so a
# module whose dict was re-sorted by a JAX transform still comes out in PyTorch's order.
_PARAM_ORDER = ("weight", "bias")
_BUFFER_ORDER = ("running_mean", "running_var", "num_batches_tracked")


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def _collection_leaves(tree: Any, collection: str) -> list[tuple[tuple[str, ...], Any]]:
    """``(key path, value)`` for a collection's variables, in the collection's own (registration) order."""
    if not _is_mapping(tree):
        raise TypeError(f"the '{collection}' collection must be a mapping of variables, got {type(tree).__name__}")
    return mapping_leaves(tree)


class _ModuleNode:
    """One module's own parameters and buffers, and its children in first-seen order."""

    def __init__(self) -> None:
        self.params: list[tuple[str, str, Any]] = []  # (local name, key, value)
        self.buffers: list[tuple[str, str, Any]] = []
        self.children: dict[str, _ModuleNode] = {}

    def child(self, name: str) -> _ModuleNode:
        return self.children.setdefault(name, _ModuleNode())

    def walk(self, prefix: str = ""):
        """Yield (module prefix, node) in PyTorch's ``state_dict`` traversal: self, then children."""
        yield prefix, self
        for name, node in self.children.items():
            yield from node.walk(f"{prefix}{name}.")


def _ordered(entries: list[tuple[str, str, Any]], first: Sequence[str]) -> list[tuple[str, str, Any]]:
    rank = {name: i for i, name in enumerate(first)}
    return sorted(entries, key=lambda e: rank.get(e[0], len(first)))  # stable: others keep their order


def _state_tree(variables: Mapping[str, Any], collections: Sequence[str]) -> _ModuleNode:
    root = _ModuleNode()
    seen: dict[str, str] = {}
    for collection in collections:
        if collection not in variables:
            continue
        for path, value in _collection_leaves(variables[collection], collection):
            key = ".".join(path)
            if key in seen:
                raise ValueError(
                    f"'{key}' is in both the '{seen[key]}' and the '{collection}' collections; "
                    "a PyTorch state_dict key must be unique"
                )
            seen[key] = collection
            node = root
            for name in path[:-1]:
                node = node.child(name)
            (node.params if collection == "params" else node.buffers).append((path[-1], key, value))
    return root


def _state_entries(variables: Mapping[str, Any], collections: Sequence[str]) -> list[tuple[str, str, Any]]:
    """(module prefix, key, value) for every state variable, in PyTorch's state_dict order."""
    if not _is_mapping(variables):
        raise TypeError(f"variables must be a mapping of Flax collections, got {type(variables).__name__}")
    entries = []
    for prefix, node in _state_tree(variables, collections).walk():
        for _, key, value in _ordered(node.params, _PARAM_ORDER) + _ordered(node.buffers, _BUFFER_ORDER):
            entries.append((prefix, key, value))
    return entries


def _is_torch_tensor(value: Any) -> bool:
    # Duck typing, so that torchsem never imports torch.
    return hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy")


def host_copy(value: Any) -> np.ndarray:
    """A numpy array that owns its memory, holding the values of ``value``.

    ``tensor.numpy()`` and ``np.asarray(array)`` are views: they share memory with the torch
    tensor or the caller's array, which may change in place later (``optimizer.step()``,
    BatchNorm's running statistics, a data loader reusing its buffer). JAX may keep reading
    host memory after ``jnp.asarray`` has returned (it defers the copy while work is queued),
    so every value torchsem does not own is copied here before JAX sees it.

    Args:
      value: a torch tensor (read through ``.detach().cpu().numpy()``; torch is never
        imported), a numpy or JAX array, or a Python/numpy scalar.

    Returns:
      A fresh, writable numpy array with the value's dtype and shape.
    """
    if _is_torch_tensor(value):
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def to_jax(value: Any, dtype: Any = None) -> jax.Array:
    """A JAX array of ``value`` that no later change to the source's memory can reach.

    JAX arrays are immutable and returned as they are (cast to ``dtype`` when given); any
    other value goes through :func:`host_copy` first.

    Args:
      value: a torch tensor, numpy or JAX array, or scalar.
      dtype: the dtype wanted (default: the value's own).
    """
    if isinstance(value, jax.Array):
        return value if dtype is None else value.astype(dtype)
    copied = host_copy(value)
    return jnp.asarray(copied if dtype is None else copied.astype(dtype, copy=False))


def _torch_size(shape: tuple[int, ...]) -> str:
    return f"torch.Size([{', '.join(str(d) for d in shape)}])"


def _dtype_problem(source: np.ndarray, target_dtype: jnp.dtype) -> str | None:
    """Why ``source`` cannot become ``target_dtype`` without losing information, or None."""
    source_dtype = jnp.dtype(source.dtype)
    if source_dtype == target_dtype:
        return None
    both_float = jnp.issubdtype(source_dtype, jnp.floating) and jnp.issubdtype(target_dtype, jnp.floating)
    if both_float:
        if jnp.promote_types(source_dtype, target_dtype) == target_dtype:
            return None  # widening (e.g. float16 -> float32) is exact
        return (
            f"{source_dtype} -> {target_dtype} would round the values; convert the array explicitly "
            f"(e.g. .astype(numpy.{target_dtype}))"
        )
    both_int = jnp.issubdtype(source_dtype, jnp.integer) and jnp.issubdtype(target_dtype, jnp.integer)
    if both_int:
        info = jnp.iinfo(target_dtype)
        if source.size == 0 or (int(source.min()) >= info.min and int(source.max()) <= info.max):
            return None  # e.g. PyTorch's int64 num_batches_tracked into JAX's int32
        return f"its values do not fit in {target_dtype}"
    return f"{source_dtype} -> {target_dtype} changes the kind of number; convert the array explicitly if that is meant"


def _metadata_version(state_dict: Mapping[str, Any], module_prefix: str) -> int | None:
    metadata = getattr(state_dict, "_metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    entry = metadata.get(module_prefix.rstrip("."), None)
    return entry.get("version") if isinstance(entry, Mapping) else None


def load_torch_state_dict(variables: Mapping[str, Any], state_dict: Mapping[str, Any], strict: bool = True) -> Any:
    """New Flax variables with the values of a PyTorch ``state_dict``, as ``module.load_state_dict``.

    Every variable of the ``params`` and ``batch_stats`` collections takes the value stored
    under its PyTorch key (the path joined with ``'.'``); other collections are kept. Values
    may be torch tensors (read through ``.detach().cpu().numpy()``, torch is never imported),
    numpy or JAX arrays; each is copied (:func:`host_copy`), so changing the source in place
    afterwards (``optimizer.step()``, a BatchNorm forward in train mode) cannot reach the
    returned variables. A value keeps the variable's dtype: exact conversions are allowed
    (float widening, PyTorch's int64 counters into int32 when they fit); a conversion that
    would round floats, overflow integers or change the kind of number is refused, where
    PyTorch's ``copy_`` would cast silently. As in PyTorch, a one-element 1-d value loads
    into a 0-d variable, and a state_dict without version-2 metadata (e.g. a plain dict of
    numpy arrays) may omit ``num_batches_tracked``.

    Args:
      variables: Flax variables (``{'params': ..., 'batch_stats': ...}``), as from ``init``.
      state_dict: PyTorch keys to tensors/arrays (``model.state_dict()``).
      strict: whether missing and unexpected keys are errors, as in PyTorch. Shape and dtype
        mismatches are errors either way (PyTorch reports size mismatches either way too).

    Returns:
      Variables of the same structure and dtypes with the loaded values (missing keys keep
      their old values when ``strict=False``).

    Raises:
      RuntimeError: ``Error(s) in loading state_dict for variables:`` followed by every
        missing key, unexpected key, size mismatch and dtype problem, one per line, in
        PyTorch's wording and order.
    """
    if not _is_mapping(state_dict):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    entries = _state_entries(variables, STATE_COLLECTIONS)
    expected = {key: (prefix, value) for prefix, key, value in entries}
    module_prefixes = list(dict.fromkeys(prefix for prefix, _, _ in entries))
    if "" not in module_prefixes:
        module_prefixes.insert(0, "")

    missing, problems, replacements = [], [], {}
    collection_of = {}
    for collection in STATE_COLLECTIONS:
        for path, _ in _collection_leaves(variables.get(collection, {}), collection):
            collection_of[".".join(path)] = (collection, path)
    for prefix, key, current in entries:
        if key not in state_dict:
            # PyTorch's BatchNorm accepts pre-version-2 state without num_batches_tracked.
            skip = key.endswith("num_batches_tracked") and (_metadata_version(state_dict, prefix) or 0) < 2
            if not skip:
                missing.append(key)
            continue
        value = host_copy(state_dict[key])
        target_shape = tuple(np.shape(current))
        if target_shape == () and value.shape == (1,):
            value = value.reshape(())
        if value.shape != target_shape:
            problems.append(
                f"size mismatch for {key}: copying a param with shape {_torch_size(value.shape)} from "
                f"checkpoint, the shape in current model is {_torch_size(target_shape)}."
            )
            continue
        target_dtype = jnp.dtype(current.dtype if hasattr(current, "dtype") else np.asarray(current).dtype)
        problem = _dtype_problem(value, target_dtype)
        if problem is not None:
            problems.append(
                f"dtype mismatch for {key}: cannot load a {value.dtype} value into a {target_dtype} "
                f"variable: {problem}."
            )
            continue
        collection, path = collection_of[key]
        # value is already torchsem's own copy: the source may change in place after this returns.
        replacements[(collection, *path)] = jnp.asarray(value.astype(target_dtype, copy=False))

    def module_rank(key: str) -> int:
        owners = [i for i, prefix in enumerate(module_prefixes) if key.startswith(prefix)]
        return max(owners, key=lambda i: len(module_prefixes[i]))

    unexpected = sorted((key for key in state_dict if key not in expected), key=module_rank)
    messages = []
    if strict and missing:
        messages.append("Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
    if strict and unexpected:
        messages.append("Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
    messages.extend(problems)
    if messages:
        raise RuntimeError("Error(s) in loading state_dict for variables:\n\t{}".format("\n\t".join(messages)))

    rebuilt = {}
    for collection, tree in variables.items():
        if collection in STATE_COLLECTIONS and _is_mapping(tree):
            sub = {".".join(path[1:]): v for path, v in replacements.items() if path[0] == collection}
            rebuilt[collection] = unflatten_mapping(tree, sub)
        else:
            rebuilt[collection] = tree
    # ignore: mypy sees Mapping's argument-less constructor; a concrete mapping (FrozenDict) takes a dict.
    return type(variables)(rebuilt) if type(variables) is not dict else rebuilt  # type: ignore[call-arg]


def to_torch_state_dict(
    variables: Mapping[str, Any], key_order: Iterable[str] | None = None
) -> OrderedDict[str, np.ndarray]:
    """A PyTorch ``state_dict`` of numpy arrays from Flax variables, as ``module.state_dict()``.

    Keys are the ``params`` and ``batch_stats`` paths joined with ``'.'`` (other collections,
    such as ``intermediates``, are not state and are left out). The order is PyTorch's
    traversal: a module's parameters (``weight`` before ``bias``), then its buffers
    (``running_mean``, ``running_var``, ``num_batches_tracked``), then its submodules in the
    order they first appear in the variables. That is registration order for variables made
    by ``init`` or :func:`load_torch_state_dict`; a JAX transform sorts dict keys, so for a
    model whose submodules are not registered alphabetically pass ``key_order`` (e.g.
    ``torch_model.state_dict().keys()``). Floating arrays keep their dtype; integer arrays
    become int64 (PyTorch's ``num_batches_tracked`` is a 0-d int64; JAX stores it as int32
    unless x64 is enabled).

    Args:
      variables: Flax variables.
      key_order: the exact keys in the order wanted; must name every state variable once.

    Returns:
      An ``OrderedDict`` of writable numpy arrays, loadable with
      ``model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    entries = _state_entries(variables, STATE_COLLECTIONS)
    state = OrderedDict()
    for _, key, value in entries:
        array = np.array(value, copy=True)
        if np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.int64)
        state[key] = array
    if key_order is None:
        return state
    order = list(key_order)
    if sorted(order) != sorted(state) or len(set(order)) != len(order):
        missing = [k for k in state if k not in order]
        extra = [k for k in order if k not in state]
        raise ValueError(
            f"key_order must list every state key exactly once; missing {missing}, unknown {extra}"
            + (", duplicates present" if len(set(order)) != len(order) else "")
        )
    return OrderedDict((key, state[key]) for key in order)
