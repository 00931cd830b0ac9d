"""The NNX twin of a linen module: the same ``apply`` (one implementation of the math), NNX Variables for its state.

A :class:`Twin` holds one torchsem linen module (static) and its variables as NNX Variables
named by PyTorch's ``state_dict`` (``weight``, ``running_mean``; nested ones such as a
ResNet's ``layer1.0.conv1.weight`` under :class:`flax.nnx.Dict` nodes, so the NNX path is
``('layer1', '0', 'conv1', 'weight')``). Its ``__call__`` rebuilds the linen variables from the
Variables, runs ``linen_module.apply`` in the twin's mode, and writes the updated running
statistics back in training, so ``nnx.jit``/``nnx.grad``/``nnx.Optimizer`` see ordinary NNX
state.

The mode is NNX's: the attributes ``use_running_average`` (normalisation layers) and
``deterministic`` (dropout and the modules with dropout inside), set by ``model.train()``,
``model.eval()`` and ``nnx.view``; None, a twin nobody has switched, is PyTorch's default,
training. A linen module whose call takes ``train`` (torchsem's models) or hands keyword
arguments on (a linen ``Sequential``) gets both attributes, and is in eval mode when either
is True.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..nn import mode_argument
from ._variables import variable_type

__all__ = ["Example", "Twin", "make_twin_class", "mode_argument", "skip_init", "twin_class", "wrap"]

Example = tuple[tuple[jax.ShapeDtypeStruct, ...], Mapping[str, Any]]
"""A linen module's example call for ``init``: positional array shapes, static keyword arguments."""

_STATE_COLLECTIONS = ("params", "batch_stats")
_OWN_ATTRIBUTES = frozenset({"linen_module", "rngs", "use_running_average", "deterministic"})


_state = threading.local()


def _skipping() -> bool:
    return bool(getattr(_state, "skip", 0))


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Build twins inside this block without computing their initial values (zeros of the right shapes).

    For a model whose state is set right after construction, by :func:`torchsem.nnx.torch_init`
    or :func:`torchsem.nnx.load_state_dict`: the linen ``init`` is only traced for the shapes,
    never compiled or run, which saves most of the construction time of a small model. Until
    then the parameters and buffers are zeros, not PyTorch's defaults.

    PyTorch counterpart: ``torch.nn.utils.skip_init(Module, ...)``.
    """
    _state.skip = getattr(_state, "skip", 0) + 1
    try:
        yield
    finally:
        _state.skip -= 1


class Twin(nnx.Module):
    """An NNX module running a torchsem linen module's ``apply`` on state held as NNX Variables.

    Parameters are :class:`flax.nnx.Param`, running statistics :class:`flax.nnx.BatchStat`,
    ``num_batches_tracked`` :class:`torchsem.nnx.NumBatchesTracked`, at PyTorch's
    ``state_dict`` paths. Built eagerly: the linen module's ``init`` runs once at construction
    on its example input (zeros of the shapes the constructor arguments imply), with the key
    ``rngs.params()``, which gives PyTorch's default initialisation (its distribution; use
    :func:`torchsem.nnx.torch_init` for PyTorch's very numbers).

    Attributes:
      linen_module: the linen module (static).
      rngs: the ``dropout`` stream the masks are drawn from in training (modules with dropout only).

    PyTorch counterpart: the ``torch.nn`` module the linen module reproduces.
    """

    mode_names: ClassVar[tuple[str, ...]] = ()
    linen_class: ClassVar[type | None] = None

    def __init__(
        self, linen_module: nn.Module, example: Example | None, *, rngs: nnx.Rngs | None, dropout: bool = False
    ) -> None:
        """Initialise ``linen_module`` on ``example`` with ``rngs.params()`` and hold its variables.

        Args:
          linen_module: an unbound torchsem (or any Flax linen) module.
          example: shapes of the positional inputs of an example call, and its static keyword
            arguments; None for a module without parameters or buffers (nothing to initialise).
          rngs: the NNX rng streams: ``params`` initialises, ``dropout`` (forked) draws the masks;
            None only for a module without state or dropout.
          dropout: whether the module draws dropout masks in training (keeps a ``dropout`` stream).
        """
        if rngs is None and (example is not None or dropout):
            raise TypeError(
                f"{type(self).__name__}() missing 1 required keyword-only argument: 'rngs' "
                "(an nnx.Rngs: 'params' initialises, 'dropout' draws the masks)"
            )
        if not isinstance(linen_module, nn.Module):
            raise TypeError(f"torchsem.nnx: expected a flax.linen module, got {type(linen_module).__name__}")
        self.linen_module = linen_module
        # Static (hashable) so that torch_init can rebuild the example later; None: a module without state.
        self._example = (
            None
            if example is None
            else (tuple((tuple(s.shape), jnp.dtype(s.dtype).name) for s in example[0]), tuple(example[1].items()))
        )
        for name in self.mode_names:
            setattr(self, name, None)
        self.rngs = rngs["dropout"].fork() if dropout and rngs is not None else nnx.data(None)
        self._leaves: tuple[tuple[str, tuple[str, ...]], ...] = ()
        if rngs is not None and self._example is not None:
            self._bind(self._initial(rngs.params()))

    # -- construction ----------------------------------------------------------------------
    def _example_call(self) -> tuple[list[jax.Array], dict[str, Any]]:
        assert self._example is not None
        shapes, kwargs = self._example
        return [jnp.zeros(shape, dtype) for shape, dtype in shapes], dict(kwargs)

    def _initial(self, key: jax.Array) -> Mapping[str, Any]:
        if self._example is None:
            return {}
        args, kwargs = self._example_call()
        call = {**kwargs, **self._linen_mode(False)}

        skeletons: list[Any] = []

        def init(key: jax.Array, *xs: jax.Array) -> Any:
            variables = self.linen_module.init({"params": key, "dropout": key}, *xs, **call)
            # JAX hands dicts back with sorted keys; init's own order is PyTorch's registration order.
            skeletons.append(_skeleton(variables))
            return variables

        if _skipping():
            # skip_init: the shapes only (traced, never compiled); torch_init or load_state_dict fills them in.
            shapes = jax.eval_shape(init, key, *args)
            values = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
        else:
            # Jitted: an eager init compiles JAX's generator once per parameter shape (seconds for a ResNet).
            values = jax.jit(init)(key, *args)
        return _in_order(values, skeletons[0])

    def _bind(self, variables: Mapping[str, Any]) -> None:
        """Hold ``variables`` (linen's, in init's order) as NNX Variables at their PyTorch paths."""
        unknown = [c for c in variables if c not in _STATE_COLLECTIONS]
        if unknown:
            raise ValueError(
                f"torchsem.nnx: {type(self.linen_module).__name__} creates the collections {unknown}, which hold "
                "no PyTorch state"
            )
        leaves = []
        for collection in _STATE_COLLECTIONS:
            for path, value in _mapping_leaves(variables.get(collection, {})):
                if path[0] in _OWN_ATTRIBUTES or path[0].startswith("_"):
                    raise ValueError(f"torchsem.nnx: a variable named {path[0]!r} clashes with the twin's attribute")
                node: Any = self
                for name in path[:-1]:
                    if not hasattr(node, name):
                        setattr(node, name, nnx.Dict())
                    node = getattr(node, name)
                setattr(node, path[-1], variable_type(collection, path[-1])(jnp.asarray(value)))
                leaves.append((collection, path))
        self._leaves = tuple(leaves)

    # -- state -----------------------------------------------------------------------------
    def _variable(self, path: tuple[str, ...]) -> nnx.Variable[Any]:
        node: Any = self
        for name in path:
            node = getattr(node, name)
        return node

    def linen_variables(self) -> dict[str, Any]:
        """The linen module's variables (``{'params': ..., 'batch_stats': ...}``) read from the Variables.

        Returns:
          Nested dicts in ``init``'s (PyTorch's registration) order.
        """
        variables: dict[str, Any] = {}
        for collection, path in self._leaves:
            node = variables.setdefault(collection, {})
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = self._variable(path).get_value()
        return variables

    def set_linen_variables(self, variables: Mapping[str, Any]) -> None:
        """Write linen variables (any subset of the collections and leaves) into the Variables."""
        for collection, path in self._leaves:
            node: Any = variables.get(collection)
            for name in path:
                if not isinstance(node, Mapping) or name not in node:
                    node = None
                    break
                node = node[name]
            if node is not None:
                self._variable(path).set_value(node)

    def torch_state_dict_keys(self) -> list[str]:
        """This twin's PyTorch ``state_dict`` keys in PyTorch's order (the linen module's own, where it states one)."""
        from .. import convert

        order = getattr(self.linen_module, "torch_state_dict_keys", None)
        return list(convert.to_torch_state_dict(self.linen_variables(), key_order=None if order is None else order()))

    # -- mode ------------------------------------------------------------------------------
    def _training(self, given: Mapping[str, Any]) -> bool:
        """PyTorch's ``self.training``: False when any mode flag (the call's first, then the attribute's) is True."""
        for name in self.mode_names:
            value = given.get(name, getattr(self, name))
            if value is not None and bool(value):
                return False
        return True

    def _linen_mode(self, train: bool) -> dict[str, Any]:
        argument = mode_argument(type(self.linen_module))
        if argument is None:
            return {}
        if argument == "**":
            return {"use_running_average": not train, "deterministic": not train}
        if getattr(self.linen_module, argument, None) is not None:
            return {}  # fixed in the linen module's constructor: Flax's merge rule forbids giving it twice
        return {argument: train if argument == "train" else not train}

    # -- forward ---------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the linen module's ``apply`` in this twin's mode; in training write the new running statistics back.

        Args:
          *args: the linen module's positional inputs (PyTorch's ``forward`` arguments).
          **kwargs: its keyword arguments; ``use_running_average`` / ``deterministic`` given here
            override the attributes for this call.

        Returns:
          The linen module's output.
        """
        given = {name: kwargs.pop(name) for name in self.mode_names if name in kwargs}
        train = self._training(given)
        variables = self.linen_variables()
        mutable: Any = ["batch_stats"] if train and "batch_stats" in variables else False
        rngs = {"dropout": self.rngs()} if train and self.rngs is not None else None
        result = self.linen_module.apply(
            variables, *args, **kwargs, **self._linen_mode(train), mutable=mutable, rngs=rngs
        )
        if not mutable:
            return result
        output, updated = result
        self.set_linen_variables(updated)
        return output


class _NormalisingTwin(Twin):
    mode_names: ClassVar[tuple[str, ...]] = ("use_running_average",)

    def set_view(self, use_running_average: bool | None = None) -> None:
        """``nnx.view(model, use_running_average=...)``: True is PyTorch's ``eval()``."""
        if use_running_average is not None:
            self.use_running_average = use_running_average


class _StochasticTwin(Twin):
    mode_names: ClassVar[tuple[str, ...]] = ("deterministic",)

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)``: True is PyTorch's ``eval()``."""
        if deterministic is not None:
            self.deterministic = deterministic


class _TrainingTwin(Twin):
    mode_names: ClassVar[tuple[str, ...]] = ("use_running_average", "deterministic")

    def set_view(self, use_running_average: bool | None = None, deterministic: bool | None = None) -> None:
        """``nnx.view(model, use_running_average=..., deterministic=...)``: either True is PyTorch's ``eval()``."""
        if use_running_average is not None:
            self.use_running_average = use_running_average
        if deterministic is not None:
            self.deterministic = deterministic


_BASES: dict[str | None, type[Twin]] = {
    None: Twin,
    "use_running_average": _NormalisingTwin,
    "deterministic": _StochasticTwin,
    "train": _TrainingTwin,
    "**": _TrainingTwin,
}


def _base_for(linen_class: type) -> type[Twin]:
    return _BASES[mode_argument(linen_class)]


def wrap(
    linen_module: nn.Module,
    *example_inputs: Any,
    rngs: nnx.Rngs,
    dropout: bool | None = None,
    **example_kwargs: Any,
) -> Twin:
    """Any linen module as an NNX module: a :class:`Twin` initialised on example inputs.

    Args:
      linen_module: an unbound Flax linen module (torchsem's or a port's).
      *example_inputs: arrays (or ``jax.ShapeDtypeStruct``) of an example call; only shapes
        and dtypes are used.
      rngs: NNX rng streams (``params`` initialises; ``dropout`` draws masks).
      dropout: whether the module draws dropout masks in training; default: its call takes
        ``deterministic`` (or hands keyword arguments on).
      **example_kwargs: static keyword arguments of the example call.

    Returns:
      The twin; its NNX state paths are the linen variables' paths.

    PyTorch counterpart: none (a PyTorch module is its own NNX form).
    """
    shapes = tuple(jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in example_inputs)
    base = _base_for(type(linen_module))
    if dropout is None:
        dropout = mode_argument(type(linen_module)) in ("deterministic", "**")
    return base(linen_module, (shapes, example_kwargs), rngs=rngs, dropout=dropout)


def twin_class(linen_class: type, example: Callable[[Any], Example | None] | None, *, name: str | None = None) -> Any:
    """The NNX class of a torchsem linen class: its PyTorch constructor signature plus keyword-only ``rngs``.

    Args:
      linen_class: the linen class (``torchsem.nn.Linear``).
      example: ``example(linen_module) -> (shapes, kwargs)``, the example call that ``init``
        runs, from the constructor arguments alone; None for a class without state.
      name: the class's name (default: the linen class's).

    Returns:
      A :class:`Twin` subclass; ``Class(*args, rngs=rngs, **kwargs)`` builds
      ``linen_class(*args, **kwargs)`` and initialises it. Typed ``Any``: its signature is made
      at run time (``inspect.signature`` shows it), which a static checker cannot see.
    """
    base = _base_for(linen_class)
    dropout = mode_argument(linen_class) == "deterministic"

    def __init__(self: Twin, *args: Any, rngs: nnx.Rngs | None = None, **kwargs: Any) -> None:
        # A twin given as an argument (TransformerEncoder(encoder_layer, ...)) stands for its linen module.
        args = tuple(_linen_of(a) for a in args)
        module: Any
        if len(args) == 1 and not kwargs and isinstance(args[0], linen_class):
            module = args[0]  # from_linen: an already built linen module of this class
        else:
            module = linen_class(*args, **{k: _linen_of(v) for k, v in kwargs.items()})
        Twin.__init__(self, module, None if example is None else example(module), rngs=rngs, dropout=dropout)

    # Stateless layers without dropout (ReLU, MaxPool2d) are built as PyTorch's are, without rngs.
    return make_twin_class(linen_class, base, __init__, rngs_optional=example is None and not dropout, name=name)


def make_twin_class(
    linen_class: type, base: type[Twin], init: Callable[..., None], *, rngs_optional: bool, name: str | None = None
) -> Any:
    """A :class:`Twin` subclass named after ``linen_class``, with PyTorch's signature plus ``rngs`` and ``from_linen``.

    Args:
      linen_class: the linen class the twin runs.
      base: the Twin base (its mode attributes).
      init: the class's ``__init__(self, *args, rngs=..., **kwargs)``.
      rngs_optional: whether ``rngs`` defaults to None (a module that draws nothing).
      name: the class's name (default: the linen class's).

    Returns:
      The class (typed ``Any``: its signature is made at run time).
    """
    signature = inspect.signature(linen_class)
    parameters = [p for p in signature.parameters.values() if p.name not in ("parent", "name")]
    rngs_parameter = inspect.Parameter(
        "rngs",
        inspect.Parameter.KEYWORD_ONLY,
        default=None if rngs_optional else inspect.Parameter.empty,
        annotation="nnx.Rngs | None" if rngs_optional else "nnx.Rngs",
    )
    position = next((i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD), len(parameters))
    parameters.insert(position, rngs_parameter)
    public = signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)
    class_name = name or linen_class.__name__
    doc = (
        f"``torchsem.nn.{linen_class.__name__}`` as an NNX module (a :class:`~torchsem.nnx.Twin`): "
        f"PyTorch's constructor signature plus keyword-only ``rngs``.\n\n"
        f"Reproduces ``torch.nn.{linen_class.__name__}``; see ``torchsem.nn.{linen_class.__name__}`` for the math."
    )

    def from_linen(cls: Any, module: nn.Module, *, rngs: nnx.Rngs | None = None) -> Twin:
        """The twin of an already built linen module of this class (``torchsem.models.resnet18()``)."""
        return cls(module, rngs=rngs)

    namespace = {
        "__init__": init,
        "__doc__": doc,
        "__module__": "torchsem.nnx",
        "linen_class": linen_class,
        "from_linen": classmethod(from_linen),
    }
    cls = type(class_name, (base,), namespace)
    cls.__qualname__ = class_name
    cls.__signature__ = public  # type: ignore[attr-defined]  # what inspect and help() show: PyTorch's + rngs
    return cls


def _skeleton(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The nested keys of a mapping in its own order (None at the leaves)."""
    return {name: _skeleton(value) if isinstance(value, Mapping) else None for name, value in tree.items()}


def _in_order(tree: Mapping[str, Any], skeleton: Mapping[str, Any]) -> dict[str, Any]:
    """``tree`` as plain dicts whose keys follow ``skeleton``'s order."""
    return {name: tree[name] if inner is None else _in_order(tree[name], inner) for name, inner in skeleton.items()}


def _linen_of(value: Any) -> Any:
    return value.linen_module if isinstance(value, Twin) else value


def _mapping_leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    leaves = []
    for name, value in tree.items():
        if isinstance(value, Mapping):
            leaves.extend(_mapping_leaves(value, (*prefix, name)))
        else:
            leaves.append(((*prefix, name), value))
    return leaves
