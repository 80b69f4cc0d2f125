"""Export of trained runs (:func:`export_run`; ONNX in :mod:`affectflow.export.onnx`)."""

from affectflow.export.onnx import ExportError, export_run

__all__ = ["ExportError", "export_run"]
