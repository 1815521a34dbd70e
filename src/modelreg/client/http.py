"""One HTTP session to a registry server: auth headers, JSON, and errors mapped back to
the registry's own exception classes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from modelreg import errors

# Reads may wait for a slow query or a large blob chunk; connecting should be quick.
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
USER_AGENT = "modelreg-python"

Params = Mapping[str, str | int | bool | Iterable[str] | None]


class Session:
    """Requests to one server; raises ModelregError subclasses for every failure."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        user: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"user-agent": USER_AGENT}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if user:
            headers["x-modelreg-user"] = user
        self.headers = headers
        # A client passed in (an in-process transport in tests) must carry every request.
        self.custom_client = client is not None
        self.client = client or httpx.Client(timeout=TIMEOUT)
        self.client.headers.update(headers)

    def close(self) -> None:
        """Close pooled connections."""
        self.client.close()

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/v1/models``."""
        return self.base_url + path

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """Send a request and return its parsed JSON body (None for 204)."""
        kwargs: dict[str, Any] = {"params": _clean(params), "json": json}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = self.client.request(method, self.url(path), **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        check(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send a prepared request; the caller checks the response."""
        try:
            return self.client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc


def unreachable(base_url: str, exc: Exception) -> errors.StorageError:
    """The error for a server that cannot be reached or broke the connection."""
    return errors.StorageError(f"registry at {base_url} failed: {type(exc).__name__}: {exc}")


def check(response: httpx.Response) -> None:
    """Raise the registry error a response carries, if it is an error."""
    if response.status_code < 400:
        return
    if not response.is_closed:
        response.read()
    raise error_from(response.status_code, response.content, str(response.request.url))


def error_from(status: int, body: bytes, url: str) -> errors.ModelregError:
    """The registry error an error response's body describes."""
    try:
        error = json.loads(body)["error"]
        if not isinstance(error, dict) or "code" not in error:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        # Not our server's shape (a proxy, a load balancer): keep the status and text.
        cls = errors.StorageError if status >= 500 else errors.InvalidArgument
        text = body[:200].decode("utf-8", "replace").strip()
        return cls(f"HTTP {status} from {url}: {text}")
    return errors.from_dict(error)


def _clean(params: Params | None) -> dict[str, Any] | None:
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int):
            out[key] = value
        else:
            out[key] = list(value)
    return out
