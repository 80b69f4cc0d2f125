"""affectflow: time-continuous emotion recognition from voice, face, words and body signals.

The package is split by pipeline stage:

- :mod:`affectflow.corpus`: the on-disk corpus (recordings, feature sets, labels) and importers.
- :mod:`affectflow.synthetic`: generators of corpora with known latent affect (for demos and tests).
- :mod:`affectflow.data`: alignment to the label grid, normalisation, windowing, datasets.
- :mod:`affectflow.models`: the model registry and the architectures.
- :mod:`affectflow.training`: losses, the training loop, seeds, inference.
- :mod:`affectflow.metrics`: CCC, Pearson r, RMSE and how they are pooled.
- :mod:`affectflow.runs`: run directories, checkpoints, evaluation and prediction.
- :mod:`affectflow.cli`: the ``affectflow`` command line, a thin wrapper over the above.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
