"""Augmentation of training media (MER 2023 MER-NOISE): speech noise at a chosen SNR, image transforms.

:mod:`affectflow.augment.audio` mixes noise into waveforms, :mod:`affectflow.augment.image` transforms frames
(files with NumPy/OpenCV, batches of a backbone with torch), :mod:`affectflow.augment.corpus` writes augmented
copies of a corpus's training recordings (``affectflow augment``).
"""
