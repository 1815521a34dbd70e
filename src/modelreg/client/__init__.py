"""The registry over HTTP: ``RemoteRegistry`` implements the same interface as the
embedded registry against a ``modelreg serve`` server."""

from modelreg.client.registry import RemoteRegistry

__all__ = ["RemoteRegistry"]
