"""The prediction service of a trained run: ``create_app(run, settings)`` builds the FastAPI app that
``affectflow serve`` runs (see :mod:`affectflow.serve.app` for the endpoints)."""

from affectflow.serve.app import create_app
from affectflow.serve.settings import ServeSettings

__all__ = ["create_app", "ServeSettings"]
