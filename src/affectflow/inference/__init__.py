"""Prediction from media files with a trained run (:mod:`affectflow.inference.media`)."""
