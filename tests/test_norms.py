"""GroupNorm / LayerNorm / RMSNorm / InstanceNorm behaviour the parity catalogue does not cover.

(Warnings, the Flax mode and mutability errors, InstanceNorm's frozen momentum=None statistics.)
The numerical parity is in ``compare/scenarios/norms.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from torchsem import nn


def _x(*shape: int) -> np.ndarray:
    return (1 + 2 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)


def test_instancenorm_channel_mismatch_warns_like_pytorch():
    layer = nn.InstanceNorm1d(4)
    x = _x(2, 3, 5)
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features. You can silence"):
        y = layer.apply({}, x, use_running_average=False)
    assert y.shape == x.shape
    with pytest.warns(UserWarning, match="dim=0 does not match"):
        layer.apply({}, x[0], use_running_average=True)


def test_instancenorm_mode_given_once():
    x = _x(2, 3, 5)
    with pytest.raises(ValueError, match="use_running_average"):
        nn.InstanceNorm1d(3).apply({}, x)
    with pytest.raises(ValueError, match="use_running_average"):
        nn.InstanceNorm1d(3, use_running_average=True).apply({}, x, use_running_average=True)


def test_instancenorm_training_needs_mutable_batch_stats():
    layer = nn.InstanceNorm1d(3, track_running_stats=True)
    x = _x(2, 3, 5)
    variables = layer.init(jax.random.key(0), x, use_running_average=True)
    with pytest.raises(ValueError, match=r"mutable=\['batch_stats'\]"):
        layer.apply(variables, x, use_running_average=False)


def test_instancenorm_momentum_none_freezes_stats_and_never_counts():
    # PyTorch passes momentum=None to instance_norm as 0.0, and InstanceNorm never counts batches.
    for momentum in (None, 0.1):
        layer = nn.InstanceNorm1d(3, momentum=momentum, track_running_stats=True)
        x = _x(2, 3, 5)
        variables = layer.init(jax.random.key(0), x, use_running_average=True)
        _, updated = layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
        stats = updated["batch_stats"]
        assert int(stats["num_batches_tracked"]) == 0
        moved = not np.array_equal(np.asarray(stats["running_mean"]), np.zeros(3, np.float32))
        assert moved == (momentum is not None)


def test_instancenorm_running_stats_are_batch_means_of_instance_stats():
    layer = nn.InstanceNorm1d(3, momentum=1.0, track_running_stats=True)
    x = _x(4, 3, 7)
    variables = layer.init(jax.random.key(0), x, use_running_average=True)
    _, updated = jax.jit(lambda v, x: layer.apply(v, x, use_running_average=False, mutable=["batch_stats"]))(
        variables, x
    )
    xd = x.astype(np.float64)
    np.testing.assert_allclose(updated["batch_stats"]["running_mean"], xd.mean(2).mean(0), rtol=1e-6)
    np.testing.assert_allclose(updated["batch_stats"]["running_var"], xd.var(2, ddof=1).mean(0), rtol=1e-5)


def test_rmsnorm_default_eps_is_machine_epsilon():
    # eps=None: torch.finfo(float32).eps, where Flax's RMSNorm defaults to 1e-6.
    x = np.full((1, 4), 1e-4, np.float32)
    y = nn.RMSNorm(4, elementwise_affine=False).apply({}, x)
    expected = 1e-4 / np.sqrt(1e-8 + np.finfo(np.float32).eps)
    np.testing.assert_allclose(y, np.full((1, 4), expected), rtol=1e-6)


def test_defaults_differ_from_flax():
    import flax.linen as flax_nn

    assert nn.GroupNorm(2, 4).eps == 1e-5 and flax_nn.GroupNorm().epsilon == 1e-6
    assert flax_nn.GroupNorm().num_groups == 32  # torchsem (as PyTorch) has no default group count
    assert nn.LayerNorm(4).eps == 1e-5 and flax_nn.LayerNorm().epsilon == 1e-6
    assert nn.InstanceNorm2d(3).affine is False  # Flax's InstanceNorm learns scale and bias by default


def test_state_dict_names():
    from torchsem import convert

    x = _x(2, 4, 3)
    names = {
        nn.GroupNorm(2, 4): ["weight", "bias"],
        nn.GroupNorm(2, 4, bias=False): ["weight"],
        nn.LayerNorm(3): ["weight", "bias"],
        nn.RMSNorm(3): ["weight"],
        nn.InstanceNorm1d(4, affine=True, track_running_stats=True): [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ],
    }
    for module, expected in names.items():
        kwargs = {"use_running_average": True} if isinstance(module, nn.InstanceNorm1d) else {}
        variables = module.init(jax.random.key(0), jnp.asarray(x), **kwargs)
        assert list(convert.to_torch_state_dict(variables)) == expected
