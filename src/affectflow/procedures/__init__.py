"""Experiment procedures built on single training runs: sweeps, cross-validation, decision fusion, staged late fusion.

Each procedure composes the one train / predict / score path of :mod:`affectflow.experiment`; independent jobs run
through :mod:`affectflow.execution`.
"""
