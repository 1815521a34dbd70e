"""Running the server: uvicorn with Nagle's algorithm off on every connection.

uvicorn binds the listening socket itself when it runs several workers, and sockets
accepted from it do not get ``TCP_NODELAY`` (uvicorn issue #3149): each response on a
kept-alive connection then waits ~40 ms for the client's delayed ACK. The protocol class
below sets the option on every accepted connection, whatever path created the listener.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import tempfile

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from modelreg.server import socket_body, zerocopy

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Fast
except ImportError:  # httptools is optional in uvicorn; h11 always works
    _Fast = H11Protocol  # type: ignore[assignment,misc]

APP = "modelreg.server.app:create_app"
PROTOCOL = "modelreg.server.run:NoDelayProtocol"


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP transport (other sockets are left alone)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayProtocol(_Fast):
    """uvicorn's HTTP protocol, with TCP_NODELAY set as each connection opens, blob
    downloads sent with ``sendfile`` (``zerocopy``) and blob uploads read from the socket
    by the thread that stores them (``socket_body``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        # Decided once per connection, not per request: the kernel can move blob bytes
        # only on a plain TCP socket.
        self.socket_io = zerocopy.plain_tcp(transport)
        super().connection_made(transport)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # The request's cycle now exists and its application has not run yet. (Only
        # httptools calls this: over h11, blob bodies pass through the event loop.)
        cycle = getattr(self, "cycle", None)
        if self.socket_io and cycle is not None and getattr(cycle, "scope", None) is self.scope:
            zerocopy.offer(cycle, self.scope)
            socket_body.offer(cycle, self.scope)


def serve(*, host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    """Run the server in the foreground over the registry the environment configures.

    Workers are separate processes that each open the registry from the same environment;
    metrics are then collected across them through a shared folder.
    """
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = tempfile.mkdtemp(prefix="modelreg-metrics-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=PROTOCOL,
        log_level=log_level,
        access_log=access_log,
        # Longer than typical load balancer idle timeouts, so they close connections
        # first and never send a request on a connection the server is closing.
        timeout_keep_alive=75,
        server_header=False,
    )
