"""derive: a symbolic derivation verifier for recurrent neural network gradients."""

__version__ = "0.1.0"
