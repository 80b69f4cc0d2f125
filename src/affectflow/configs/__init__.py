"""Packaged configuration files (``default.yaml`` and presets)."""
