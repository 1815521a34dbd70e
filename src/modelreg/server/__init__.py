"""The registry's HTTP server: a FastAPI app over the service layer (``create_app``)."""

from modelreg.server.app import create_app

__all__ = ["create_app"]
