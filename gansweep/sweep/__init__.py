"""Hyperparameter sweeps with Optuna: search spaces, the trial objective, the driver."""
