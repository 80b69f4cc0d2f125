"""Synthetic corpora with known latent affect, shipped for demos, tests and benchmarks."""

from affectflow.synthetic.latent import LatentAffect, simulate_latent_affect

__all__ = ["LatentAffect", "simulate_latent_affect"]
