"""Losses with PyTorch's semantics, named and called as ``torch.nn.functional``'s.

Each function takes ``torch.nn.functional``'s arguments in its order (the deprecated
``size_average``/``reduce`` keep their positions but only accept None: pass ``reduction``),
computes in PyTorch's float32 order, differentiates with PyTorch's backward formulas where
autodiff of the forward would differ, and raises PyTorch's errors. The modules
(``CrossEntropyLoss``, ``NLLLoss``, ...) are in :mod:`torchsem.nn`.
"""

from ._binary import binary_cross_entropy as binary_cross_entropy
from ._binary import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._cross_entropy import cross_entropy as cross_entropy
from ._kl_div import kl_div as kl_div
from ._nll import nll_loss as nll_loss
from ._regression import huber_loss as huber_loss
from ._regression import l1_loss as l1_loss
from ._regression import mse_loss as mse_loss
from ._regression import smooth_l1_loss as smooth_l1_loss

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]
