"""Placeholder: being written."""
import flax.linen as nn


class Dropout(nn.Module):
    """Not implemented yet."""
