"""Placeholder: being written."""
import flax.linen as nn


class Linear(nn.Module):
    """Not implemented yet."""
