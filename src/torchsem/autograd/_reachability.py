"""Which inputs of a traced program have a differentiable path to which values.

This is PyTorch's ``requires_grad`` propagation, decided statically on a jaxpr:

- a value is *reached* by an input when the input requires grad and some chain of
  operations carries it to the value with every value on the way floating point
  (PyTorch: only floating-point tensors require grad; integer and boolean results never
  do, so ``x.long().float()`` and comparisons cut the graph);
- ``stop_gradient`` (PyTorch's ``detach`` and ``no_grad``) cuts the chain;
- every other operation with a floating-point output is differentiable in all of its
  floating-point operands, as in PyTorch, where ``floor``, ``round`` or ``sign`` have a
  ``grad_fn`` whose gradient is zero. (This is why the analysis runs on the primal
  program and not on the JVP: JAX drops those zero tangents symbolically, PyTorch does not.)

Reachability is a bit set per value (bit ``i`` = input ``i`` reaches it), propagated
forward in one pass over the equations. Higher-order primitives are followed into their
sub-programs: calls (``jit``, ``closed_call``, ``remat``, ``shard_map``...) map operands to
sub-program inputs one to one; ``cond`` takes the union over branches (which branch runs is
a runtime value; the answer must be static); ``while`` takes the union over every number of
iterations; ``scan`` is followed for exactly ``length`` iterations (with cycle detection), so
a carry that only reaches the output after more steps than the loop runs stays cut, as in
the unrolled PyTorch loop. ``custom_jvp``/``custom_vjp`` functions are treated like a
PyTorch ``autograd.Function``: an output depends on the operands its primal computation
reads, whatever ``stop_gradient`` that computation uses internally (the custom rule, not the
primal, defines the derivative), so an operand the primal ignores (a gradient-scaling factor
used only by ``bwd``) gets None, as an ``autograd.Function`` whose ``backward`` returns None
for it. Unknown higher-order primitives get the conservative rule (every floating output
depends on every floating operand), whose only possible error is zeros where PyTorch would
give None, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore

_CUT_PRIMITIVES = frozenset({"stop_gradient"})
_CUSTOM_RULE_CALLS = frozenset({"custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"})
_OPAQUE_DIFFERENTIABLE = frozenset({*_CUSTOM_RULE_CALLS, "custom_lin", "custom_transpose_call"})
_SCAN_STATE_LIMIT = 4096


def is_differentiable_aval(aval: Any) -> bool:
    """Whether values of this abstract type can require grad (floating or complex dtype)."""
    dtype = getattr(aval, "dtype", None)
    if dtype is None:
        return False
    try:
        return bool(jax.dtypes.issubdtype(dtype, np.inexact))
    except TypeError:
        return False


def _var_differentiable(var: Any) -> bool:
    return is_differentiable_aval(var.aval)


def _read(env: dict, atom: Any) -> int:
    if isinstance(atom, jcore.Literal):
        return 0
    return env.get(atom, 0)


def _union(bits: Sequence[int]) -> int:
    total = 0
    for b in bits:
        total |= b
    return total


def _closed_parts(sub: Any) -> tuple[Any, int]:
    """The open jaxpr of a (closed or open) sub-program."""
    if isinstance(sub, jcore.ClosedJaxpr):
        return sub.jaxpr, len(sub.jaxpr.constvars)
    return sub, len(sub.constvars)


class _Analysis:
    """One reachability pass; memoises sub-program transfer functions by (program, input bits)."""

    def __init__(self, data_only: bool = False) -> None:
        # data_only: inside a custom_jvp/custom_vjp primal, where stop_gradient does not cut.
        self.data_only = data_only
        self._memo: dict[tuple[int, tuple[int, ...]], tuple[int, ...]] = {}
        self._keep_alive: list[Any] = []
        self._data_only_analysis: _Analysis | None = self if data_only else None

    def run(self, jaxpr: Any, in_bits: Sequence[int], env: dict | None = None) -> tuple[int, ...]:
        """Bits of each output of ``jaxpr`` (an open Jaxpr) given bits of its inputs."""
        if len(in_bits) != len(jaxpr.invars):
            raise ValueError(f"expected {len(jaxpr.invars)} input bit sets, got {len(in_bits)}")
        env = {} if env is None else env
        for var, bits in zip(jaxpr.invars, in_bits):
            env[var] = bits if _var_differentiable(var) else 0
        for eqn in jaxpr.eqns:
            out_bits = self.equation(eqn, [_read(env, v) for v in eqn.invars])
            for var, bits in zip(eqn.outvars, out_bits):
                if not isinstance(var, jcore.DropVar):
                    env[var] = bits if _var_differentiable(var) else 0
        return tuple(_read(env, v) for v in jaxpr.outvars)

    def sub(self, sub_program: Any, in_bits: Sequence[int]) -> tuple[int, ...]:
        jaxpr, _ = _closed_parts(sub_program)
        key = (id(jaxpr), tuple(in_bits))
        if key not in self._memo:
            self._keep_alive.append(jaxpr)
            self._memo[key] = self.run(jaxpr, in_bits)
        return self._memo[key]

    def equation(self, eqn: Any, in_bits: list[int]) -> tuple[int, ...]:
        name = eqn.primitive.name
        n_out = len(eqn.outvars)
        if name in _CUT_PRIMITIVES and not self.data_only:
            return (0,) * n_out
        if name in _CUT_PRIMITIVES:
            return tuple(in_bits[:n_out])
        if name in _CUSTOM_RULE_CALLS:
            primal = eqn.params.get("call_jaxpr", eqn.params.get("fun_jaxpr"))
            if primal is not None:
                jaxpr, _ = _closed_parts(primal)
                if len(jaxpr.invars) == len(eqn.invars) and len(jaxpr.outvars) == n_out:
                    if self._data_only_analysis is None:
                        self._data_only_analysis = _Analysis(data_only=True)
                    return self._data_only_analysis.sub(primal, in_bits)
        rule = _RULES.get(name)
        if rule is not None:
            return rule(self, eqn, in_bits)
        if name not in _OPAQUE_DIFFERENTIABLE:
            call = _call_like_subprogram(eqn)
            if call is not None:
                return self.sub(call, in_bits)
        return (_union(in_bits),) * n_out


def _call_like_subprogram(eqn: Any) -> Any | None:
    """The sub-program of a call-like primitive (operands map 1:1 to its inputs), else None."""
    for key in ("jaxpr", "call_jaxpr"):
        sub = eqn.params.get(key)
        if sub is None:
            continue
        if isinstance(sub, (jcore.ClosedJaxpr, jcore.Jaxpr)):
            jaxpr, _ = _closed_parts(sub)
            if len(jaxpr.invars) == len(eqn.invars) and len(jaxpr.outvars) == len(eqn.outvars):
                return sub
    return None


def _cond_rule(analysis: _Analysis, eqn: Any, in_bits: list[int]) -> tuple[int, ...]:
    operands = in_bits[1:]
    outs = [0] * len(eqn.outvars)
    for branch in eqn.params["branches"]:
        for i, bits in enumerate(analysis.sub(branch, operands)):
            outs[i] |= bits
    return tuple(outs)


def _while_rule(analysis: _Analysis, eqn: Any, in_bits: list[int]) -> tuple[int, ...]:
    cond_n, body_n = eqn.params["cond_nconsts"], eqn.params["body_nconsts"]
    body_consts = in_bits[cond_n : cond_n + body_n]
    carry = tuple(in_bits[cond_n + body_n :])
    # The loop may run any number of times: the union over all iterates (monotone, so it stops).
    while True:
        stepped = analysis.sub(eqn.params["body_jaxpr"], [*body_consts, *carry])
        merged = tuple(a | b for a, b in zip(carry, stepped))
        if merged == carry:
            return carry
        carry = merged


def _scan_rule(analysis: _Analysis, eqn: Any, in_bits: list[int]) -> tuple[int, ...]:
    n_consts, n_carry = eqn.params["num_consts"], eqn.params["num_carry"]
    length = int(eqn.params["length"])
    consts = in_bits[:n_consts]
    carry: tuple[int, ...] = tuple(in_bits[n_consts : n_consts + n_carry])
    xs = in_bits[n_consts + n_carry :]
    n_ys = len(eqn.outvars) - n_carry
    body = eqn.params["jaxpr"]

    def step(state: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        outs = analysis.sub(body, [*consts, *state, *xs])
        return tuple(outs[:n_carry]), tuple(outs[n_carry:])

    ys = [0] * n_ys
    states: list[tuple[int, ...]] = [carry]
    seen: dict[tuple[int, ...], int] = {carry: 0}
    step_ys: list[tuple[int, ...]] = []
    k = 0
    while k < length:
        nxt, y = step(states[k])
        step_ys.append(y)
        for i, bits in enumerate(y):
            ys[i] |= bits
        k += 1
        if nxt in seen:
            # From here the states repeat with this period: finish the loop arithmetically.
            start = seen[nxt]
            period = k - start
            remaining = length - k
            for j in range(min(remaining, period)):
                for i, bits in enumerate(step_ys[start + j]):
                    ys[i] |= bits
            final = states[start + remaining % period]
            return (*final, *ys)
        if k >= _SCAN_STATE_LIMIT:
            # Pathologically long transient: fall back to the union over all iterates (a superset).
            return (*_while_like_union(step, nxt, ys), *ys)
        seen[nxt] = k
        states.append(nxt)
    return (*states[length], *ys)


def _while_like_union(step: Callable, carry: tuple[int, ...], ys: list[int]) -> tuple[int, ...]:
    while True:
        nxt, y = step(carry)
        for i, bits in enumerate(y):
            ys[i] |= bits
        merged = tuple(a | b for a, b in zip(carry, nxt))
        if merged == carry:
            return carry
        carry = merged


def _sort_rule(analysis: _Analysis, eqn: Any, in_bits: list[int]) -> tuple[int, ...]:
    # Sorting permutes each operand by the keys' order; an order is an integer fact (PyTorch:
    # values[keys.argsort()] gives keys no gradient), so operand i only reaches output i.
    return tuple(in_bits)


_RULES: dict[str, Callable[[_Analysis, Any, list[int]], tuple[int, ...]]] = {
    "cond": _cond_rule,
    "while": _while_rule,
    "scan": _scan_rule,
    "sort": _sort_rule,
}


def output_bits(jaxpr: Any, in_bits: Sequence[int]) -> tuple[int, ...]:
    """Reachability bit set of every output of an open ``jaxpr`` given its inputs' bit sets.

    Constants (``constvars``) never require grad.
    """
    return _Analysis().run(jaxpr, list(in_bits))


def value_bits(jaxpr: Any, in_bits: Sequence[int]) -> dict[Any, int]:
    """Reachability bit set of every top-level value (``Var``) of an open ``jaxpr``."""
    env: dict[Any, int] = {}
    _Analysis().run(jaxpr, list(in_bits), env)
    return env


def source_bits(sources: Sequence[bool]) -> list[int]:
    """Bit ``i`` for every input ``i`` that requires grad, 0 for the others."""
    return [(1 << i) if flag else 0 for i, flag in enumerate(sources)]


def inputs_reaching(bits: int, n_inputs: int) -> tuple[bool, ...]:
    """Decode a bit set into one flag per input."""
    return tuple(bool((bits >> i) & 1) for i in range(n_inputs))


def consumer_bits(jaxpr: Any, in_bits: Sequence[int], input_index: int) -> int:
    """Union of the bit sets of the values computed directly from input ``input_index``.

    Follows the input into call-like sub-programs (``jit``, ``remat``...) down to the first
    operations that consume it. Used to ask whether the value a Flax ``perturb`` adds its
    input to requires grad by itself: ``bits(x + p) = bits(x) | bit(p)``.
    """
    analysis = _Analysis()
    env: dict[Any, int] = {}
    analysis.run(jaxpr, list(in_bits), env)
    target = jaxpr.invars[input_index]
    total = 0
    for eqn in jaxpr.eqns:
        positions = [i for i, v in enumerate(eqn.invars) if v is target]
        if not positions:
            continue
        name = eqn.primitive.name
        call = None
        if name not in _RULES and name not in _OPAQUE_DIFFERENTIABLE and name not in _CUT_PRIMITIVES:
            call = _call_like_subprogram(eqn)
        if call is not None:
            inner, _ = _closed_parts(call)
            operand_bits = [_read(env, v) for v in eqn.invars]
            for i in positions:
                total |= consumer_bits(inner, operand_bits, i)
        else:
            for var in eqn.outvars:
                if not isinstance(var, jcore.DropVar):
                    total |= env.get(var, 0)
    return total
