"""Monitoring: compare production traffic with the training reference and watch the model run.

This package is the ``monitoring`` layer of ARCHITECTURE.md, a sibling of ``shipyard.serving``.
For now it holds :mod:`shipyard.monitoring.stats`, the pure-NumPy drift statistics behind
Evidently's default tests (two-sample Kolmogorov-Smirnov, chi-squared, two-proportion Z,
normed Wasserstein, Jensen-Shannon) and the population stability index, each checked against
SciPy or a direct computation in the tests; SciPy is never imported at run time.
"""
