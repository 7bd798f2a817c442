"""QCOS benchmarking core: versioned workloads, fidelity estimators and a qiskit-aer runner.

Django-free on purpose: the API, models and workers import from here, never the other way round,
so the numbers a report carries can be recomputed from a seed without a server.
"""
