"""Placeholder: being written."""
import flax.linen as nn


class BatchNorm(nn.Module):
    """Not implemented yet."""


class BatchNorm1d(nn.Module):
    """Not implemented yet."""


class BatchNorm2d(nn.Module):
    """Not implemented yet."""


class BatchNorm3d(nn.Module):
    """Not implemented yet."""
