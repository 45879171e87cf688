"""gansweep: train, score, sweep and compare GANs from the command line."""

__version__ = "0.1.0"
