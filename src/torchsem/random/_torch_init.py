"""``torch_init``: a Flax module's variables with PyTorch's default initial values.

PyTorch initialises parameters while the model is built, each module's ``reset_parameters``
drawing from the global generator in construction order. Here ``module.init`` provides the
variable structure; the submodules are then visited in the order they are first called
(PyTorch's registration order for sequential nets, or an explicit ``order``) and each one's
registered replay function redraws its own parameters from a :class:`Generator`; a model whose
PyTorch ``__init__`` draws in an order of its own (torchvision's ResNet) registers one replay
for its whole subtree.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..convert import host_copy
from ._generator import Generator

OwnParams = dict[str, np.ndarray]
TorchInitFn = Callable[[Any, OwnParams, Generator], OwnParams]

_REGISTRY: dict[type, TorchInitFn] = {}
# "module:qualname" -> replay, resolved on first use so this package imports even while the
# modules it knows about are stubs or absent.
_LAZY_REGISTRY: dict[str, TorchInitFn] = {}
# The registered types (or lazy specs) whose replay initialises their whole subtree.
_SUBTREE: set[type | str] = set()


def register_torch_init(module_type: type | str, fn: TorchInitFn, *, subtree: bool = False) -> None:
    """Register how PyTorch initialises the parameters of a module type.

    Args:
        module_type: a Flax module class, or ``"package.module:ClassName"`` resolved lazily.
            Subclasses inherit the registration unless registered themselves.
        fn: ``fn(module, own_params, generator) -> own_params``: given the bound module, its
            own parameter arrays (``{name: np.ndarray}``, not those of its submodules) and the
            generator, draw as PyTorch's ``reset_parameters`` does and return new arrays of the
            same shapes.
        subtree: ``fn`` initialises the module's whole subtree, for a PyTorch model whose
            ``__init__`` draws in an order of its own or re-initialises its children (torchvision's
            ResNet). ``fn`` then gets and returns the nested ``{name: array or dict}`` of every
            parameter under the module, and its submodules' own replays are not run.
    """
    if isinstance(module_type, str):
        if ":" not in module_type:
            raise ValueError(f"module_type must look like 'package.module:ClassName', got {module_type!r}")
        _LAZY_REGISTRY[module_type] = fn
    elif isinstance(module_type, type):
        _REGISTRY[module_type] = fn
    else:
        raise TypeError(f"module_type must be a class or a 'module:ClassName' string, got {module_type!r}")
    if subtree:
        _SUBTREE.add(module_type)
    else:
        _SUBTREE.discard(module_type)


def _resolve_lazy() -> None:
    for spec in list(_LAZY_REGISTRY):
        module_name, _, qualname = spec.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            continue  # not written yet: stays lazy
        if isinstance(target, type):
            if target not in _REGISTRY:
                _REGISTRY[target] = _LAZY_REGISTRY[spec]
                if spec in _SUBTREE:
                    _SUBTREE.add(target)
            _SUBTREE.discard(spec)
            del _LAZY_REGISTRY[spec]


def registered_torch_inits() -> dict[type, TorchInitFn]:
    """The module types with a replay function (lazy entries that resolve are included)."""
    _resolve_lazy()
    return dict(_REGISTRY)


def _replay_for(module_type: type) -> TorchInitFn | None:
    _resolve_lazy()
    for klass in module_type.__mro__:
        if klass in _REGISTRY:
            return _REGISTRY[klass]
    return None


def _replays_subtree(module_type: type) -> bool:
    """Whether the replay :func:`_replay_for` finds was registered with ``subtree=True``."""
    for klass in module_type.__mro__:
        if klass in _REGISTRY:
            return klass in _SUBTREE
    return False


# ------------------------------------------------------------------ replays


def _fan_in(weight: np.ndarray) -> int:
    """``torch.nn.init._calculate_fan_in_and_fan_out(weight)[0]``: ``size(1) * prod(size(2:))``."""
    if weight.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    return int(weight.shape[1]) * math.prod(int(s) for s in weight.shape[2:])


def kaiming_uniform_bound(fan_in: int, a: float) -> float:
    """Half-width of ``kaiming_uniform_(w, a)`` (leaky_relu gain, fan_in mode), as torch computes it.

        gain = sqrt(2 / (1 + a**2)),  bound = sqrt(3) * (gain / sqrt(fan_in))

    PyTorch counterpart: ``torch.nn.init.kaiming_uniform_`` / ``calculate_gain``.
    """
    gain = math.sqrt(2.0 / (1 + a**2))
    std = gain / math.sqrt(fan_in)
    return math.sqrt(3.0) * std


def linear_torch_init(module: Any, params: OwnParams, generator: Generator) -> OwnParams:
    """``torch.nn.Linear.reset_parameters``: weight then bias, each ``uniform_(-b, b)``.

    weight ``(out, in)``: ``kaiming_uniform_(weight, a=sqrt(5))``, i.e. ``b = sqrt(3) *
    sqrt(1/3) / sqrt(in)`` (torch's float64 arithmetic, close to but not always exactly
    ``1/sqrt(in)``); bias ``(out,)``: ``b = 1/sqrt(in)`` (0 when ``in == 0``). A
    zero-element weight is left alone (and draws nothing), as in PyTorch.
    """
    for name in ("weight_init", "bias_init"):
        if getattr(module, name, None) is not None:
            raise NotImplementedError(
                f"{type(module).__name__}.{name} is set: torch_init replays PyTorch's default initialisation only"
            )
    weight = params["weight"]
    new = dict(params)
    fan_in = _fan_in(weight)
    dtype = weight.dtype
    if weight.size:
        bound = kaiming_uniform_bound(fan_in, math.sqrt(5))
        new["weight"] = generator.uniform(weight.shape, -bound, bound, dtype=dtype)
    if "bias" in params:
        bias = params["bias"]
        # PyTorch writes the integer 0 here, so -bound is +0.0, not -0.0
        bias_bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        new["bias"] = generator.uniform(bias.shape, -bias_bound, bias_bound, dtype=bias.dtype)
    return new


def batchnorm_torch_init(module: Any, params: OwnParams, generator: Generator) -> OwnParams:
    """``torch.nn.BatchNorm*d.reset_parameters``: weight ones, bias zeros; draws nothing."""
    new = dict(params)
    for name, value in params.items():
        if name in ("weight", "scale"):
            new[name] = np.ones_like(value)
        elif name == "bias":
            new[name] = np.zeros_like(value)
    return new


# torchsem's own modules register their replays where they are defined (torchsem.nn); Flax's
# BatchNorm is registered here so that torch_init also serves ports written with plain Flax.
register_torch_init("flax.linen:BatchNorm", batchnorm_torch_init)


# ---------------------------------------------------------------- the walk


def _call_order(
    module: Any, rng: Any, args: tuple, kwargs: dict
) -> tuple[dict, list[tuple[tuple[str, ...], Any]], Callable[[], Any] | None]:
    """``module.init``'s variables plus the submodules in the order of their first method call.

    The parameters' initial values are not computed: the replays redraw them. ``init`` is traced
    abstractly (``jax.eval_shape``) for the call order and the parameters' shapes, which come
    back as zeros, and the other collections (buffers) come from a jitted ``init`` whose
    parameters XLA drops as unused. An eager ``init`` would compile JAX's random number generator
    once per parameter shape: seconds for a ResNet. A module that cannot be traced with these
    arguments is initialised eagerly instead.

    Returns:
      ``(variables, calls, init_params)``: ``init_params()`` computes the parameters ``init``
      would give (for any a replay leaves as they were), None when ``variables`` holds them.
    """
    import flax.linen as nn
    import jax

    seen: dict[tuple[str, ...], Any] = {}

    def record(next_fun: Callable, call_args: tuple, call_kwargs: dict, context: Any) -> Any:
        # Unbound: a method the module's own __post_init__ calls (a loss checking its arguments).
        if context.method_name != "setup" and context.module.scope is not None:
            path = tuple(context.module.path)
            seen.setdefault(path, context.module)
        return next_fun(*call_args, **call_kwargs)

    skeletons: list[dict[str, Any]] = []

    def init(key: Any, *inputs: Any) -> Any:
        variables = module.init(key, *inputs, **kwargs)
        # JAX's transforms hand dicts back with sorted keys; PyTorch's order is init's own.
        skeletons.append(_skeleton(variables))
        return variables

    try:
        with nn.intercept_methods(record):
            shapes = jax.eval_shape(init, rng, *args)
        variables = jax.jit(lambda key, *inputs: {k: v for k, v in init(key, *inputs).items() if k != "params"})(
            rng, *args
        )
    except Exception:  # e.g. an argument that is not an array, or a bad input: the eager init says
        seen.clear()
        with nn.intercept_methods(record):
            return module.init(rng, *args, **kwargs), list(seen.items()), None
    order = skeletons[0]
    variables = {name: _in_order(variables[name], order[name]) for name in order if name != "params"}
    if "params" in shapes:
        params = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes["params"])
        variables = {"params": _in_order(params, order["params"]), **variables}
        variables = {name: variables[name] for name in order}

    def init_params() -> Any:
        # Eager, as a plain init: jitted, JAX's initialisers may round their last bit differently.
        return _in_order(module.init(rng, *args, **kwargs)["params"], order["params"])

    return variables, list(seen.items()), init_params


def _skeleton(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The nested keys of a mapping in its own order (None at the leaves)."""
    return {name: _skeleton(value) if isinstance(value, Mapping) else None for name, value in tree.items()}


def _in_order(tree: Mapping[str, Any], skeleton: Mapping[str, Any]) -> dict[str, Any]:
    """``tree`` as plain dicts whose keys follow ``skeleton``'s order."""
    return {name: tree[name] if inner is None else _in_order(tree[name], inner) for name, inner in skeleton.items()}


def _subtree(tree: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = tree
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            return None
        node = node[name]
    return node if isinstance(node, Mapping) else None


def _own_leaves(node: Mapping[str, Any] | None) -> dict[str, Any]:
    if node is None:
        return {}
    return {name: value for name, value in node.items() if not isinstance(value, Mapping)}


def _all_owner_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    owners = [prefix] if _own_leaves(tree) else []
    for name, value in tree.items():
        if isinstance(value, Mapping):
            owners.extend(_all_owner_paths(value, (*prefix, name)))
    return owners


def _set_leaves(tree: Any, path: tuple[str, ...], leaves: Mapping[str, Any]) -> Any:
    if not path:
        return {**tree, **leaves}
    return {**tree, path[0]: _set_leaves(tree[path[0]], path[1:], leaves)}


def _replay_subtree(bound_module: Any, node: Mapping[str, Any], generator: Generator, where: str) -> dict[str, Any]:
    """Run a ``subtree=True`` replay on the nested parameters under one module; same structure back."""
    import jax

    replay = _replay_for(type(bound_module))
    assert replay is not None
    current = jax.tree_util.tree_map(np.asarray, _to_plain_dict(node))
    redrawn = _to_plain_dict(replay(bound_module, current, generator))
    shapes = jax.tree_util.tree_map(np.shape, current)
    if jax.tree_util.tree_map(np.shape, redrawn) != shapes:  # names and shapes, nested dicts compared whole
        raise ValueError(
            f"replay for {type(bound_module).__name__} (at {where}) must return the parameters it was given, "
            f"same names and shapes: {shapes}"
        )
    # A replay may hand back views of memory it does not own (a torch tensor's .numpy()).
    return _in_order(jax.tree_util.tree_map(_own_copy, redrawn, current), _skeleton(node))


def torch_init(
    module: Any,
    generator: Generator,
    *args: Any,
    order: Sequence[str] | None = None,
    **init_kwargs: Any,
) -> dict[str, Any]:
    """Initialise a Flax module with PyTorch's default initial values drawn from ``generator``.

    Traces ``module.init(PRNGKey(0), *args, **init_kwargs)`` for the variable structure and
    the call order (abstractly: the parameters' JAX initial values are never computed, except
    for one a replay leaves as it was), then replays each parameter-owning submodule's
    registered PyTorch ``reset_parameters`` in order, advancing ``generator`` exactly as
    building the PyTorch model advances the global generator. A replay registered with
    ``subtree=True`` initialises its module's whole subtree, and its submodules' replays are
    skipped. Collections other than ``params`` (e.g. ``batch_stats``) are returned as
    ``module.init`` makes them, and every collection keeps ``init``'s (registration) order.

    Args:
        module: an unbound Flax linen module.
        generator: the :class:`Generator` to draw from (advanced in place).
        *args: sample inputs for ``module.init``.
        order: optional dotted submodule paths (``"fc1"``, ``"block.fc1"``; ``""`` for the
            root) giving PyTorch's construction order; default: the order of first call.
        **init_kwargs: keyword arguments for ``module.init`` (e.g. ``train=False``).

    Returns:
        The variables dict, ``params`` leaves as ``jax.Array`` of their original dtypes.

    Raises:
        NotImplementedError: a module that owns parameters has no registered replay.
        ValueError: ``order`` names an unknown path, or misses a parameter-owning module.

    PyTorch counterpart: ``torch.manual_seed(seed); model = Net()`` with the default
    ``reset_parameters`` of each layer.
    """
    import jax
    import jax.numpy as jnp

    variables, called, init_params = _call_order(module, jax.random.PRNGKey(0), args, init_kwargs)
    key_order = _skeleton(variables)  # init's (PyTorch's registration) order, which tree_map would sort
    variables = _in_order(jax.tree_util.tree_map(np.asarray, _to_plain_dict(variables)), key_order)
    params = variables.get("params", {})
    placeholders = params
    modules_by_path = dict(called)

    if order is None:
        visit = [path for path, _ in called]
    else:
        visit = [tuple(part for part in dotted.split(".") if part) for dotted in order]
        unknown = [".".join(p) for p in visit if p not in modules_by_path]
        if unknown:
            raise ValueError(f"order names submodules that were never called: {unknown}")

    owners = _all_owner_paths(params)
    missing = [".".join(p) or "<root>" for p in owners if p not in visit]
    if missing:
        raise ValueError(
            f"parameters of {missing} would not be initialised: "
            + ("pass them in order=[...]" if order is not None else "their modules were never called")
        )

    replayed_whole: list[tuple[str, ...]] = []  # subtrees a subtree=True replay has initialised
    for path in visit:
        if any(path[: len(done)] == done for done in replayed_whole):
            continue
        own = _own_leaves(_subtree(params, path))
        bound_module = modules_by_path[path]
        replay = _replay_for(type(bound_module))
        if replay is not None and _replays_subtree(type(bound_module)):
            node = _subtree(params, path)
            if node:
                where = ".".join(path) or "<root>"
                redrawn = _replay_subtree(bound_module, node, generator, where)
                params = _set_leaves(params, path[:-1], {path[-1]: redrawn}) if path else redrawn
            replayed_whole.append(path)
            continue
        if replay is None:
            if own:
                name = type(bound_module).__name__
                raise NotImplementedError(
                    f"torch_init has no PyTorch initialisation registered for {name} "
                    f"(at {'.'.join(path) or '<root>'}, params {sorted(own)}); use register_torch_init({name}, fn)"
                )
            continue
        if not own:
            continue
        given = {k: np.asarray(v) for k, v in own.items()}
        redrawn = replay(bound_module, given, generator)
        # A replay may hand back views of memory it does not own (a torch tensor's .numpy()); a value
        # it hands back untouched stays the same object, so that it is filled in from init below.
        redrawn = {name: _own_copy(value, given.get(name)) for name, value in redrawn.items()}
        for name, value in redrawn.items():
            if name not in own or np.shape(value) != np.shape(own[name]):
                raise ValueError(
                    f"replay for {type(bound_module).__name__} returned {name!r} with shape {np.shape(value)}, "
                    f"expected one of {{{', '.join(f'{k}: {np.shape(v)}' for k, v in own.items())}}}"
                )
        params = _set_leaves(params, path, redrawn)

    if init_params is not None and params:
        untouched = jax.tree_util.tree_leaves(
            jax.tree_util.tree_map(lambda final, placeholder: final is placeholder, params, placeholders)
        )
        if any(untouched):  # a replay left some parameter as it was: init's own value, as before
            computed = jax.tree_util.tree_map(np.asarray, _to_plain_dict(init_params()))
            params = jax.tree_util.tree_map(
                lambda final, placeholder, value: value if final is placeholder else final,
                params,
                placeholders,
                computed,
            )
    variables["params"] = params
    return _in_order(jax.tree_util.tree_map(jnp.asarray, variables), key_order)


def _own_copy(value: Any, given: Any) -> Any:
    """``host_copy(value)``, except the very array the replay was given, which is torchsem's already."""
    return value if value is given else host_copy(value)


def _to_plain_dict(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {name: _to_plain_dict(value) for name, value in tree.items()}
    return tree
