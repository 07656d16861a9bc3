"""Experiments built on training and scoring: comparisons, reports and noise sweeps."""
