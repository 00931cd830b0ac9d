"""Placeholder: PyTorch initialisers, being written."""
