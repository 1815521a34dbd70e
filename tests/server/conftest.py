"""Real ``modelreg serve`` processes for the tests in this folder.

``start_servers`` is a factory fixture: ``start_servers({"MODELREG_HOME": ...}, workers=(2,))``
launches one ``modelreg serve`` per entry of ``workers`` on free loopback ports, all at
once, waits until each answers 200 on ``/readyz`` and returns their base URLs. Every
server is stopped at teardown with SIGTERM, and the test fails unless it exited by itself
with status 0 (or of the SIGTERM it
handled), took all its workers with it and removed its metrics folder.

Each server leads its own session and process group, so that workers outliving their
parent can be found, and killed, by that group's id alone.

Helpers live here rather than in an importable module: test modules get them only as
fixtures, typed with builtin types.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

CONSOLE_SCRIPT = Path(sys.executable).with_name("modelreg")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

StartServers = Callable[..., list[str]]


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports nothing listens on right now (the kernel's picks for
    port 0, all bound at once so that none comes up twice)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


class PortTaken(Exception):
    """Someone bound the server's port between our pick and the server's bind."""


def clean_environ() -> dict[str, str]:
    """This process's environment without registry settings or a metrics folder."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MODELREG_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member exists that we may not signal
        return True
    return True


def _group_outlives(pgid: int, timeout: float) -> bool:
    """Whether a process of group ``pgid`` is still alive after ``timeout`` seconds.

    The group may outlive its leader by a moment: multiprocessing's resource tracker
    exits only once it reads end-of-file from the parent it served."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False


def _members(pgid: int) -> str:
    listing = subprocess.run(
        ["ps", "-eo", "pgid=,pid=,stat=,args="], capture_output=True, text=True, check=False
    ).stdout
    found = [
        line.split(None, 1)[1] for line in listing.splitlines() if line.split()[0] == str(pgid)
    ]
    return "; ".join(found) or "(gone by now)"


class Server:
    """One ``modelreg serve`` process (and its workers), started by :meth:`launch`."""

    def __init__(self, root: Path, env: Mapping[str, str], workers: int, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = root / f"serve-{self.port}.log"
        # The server's TMPDIR: where `modelreg serve` makes its workers' metrics folder.
        self.tmpdir = root / f"serve-{self.port}-tmp"
        self.tmpdir.mkdir(parents=True)
        self.env = clean_environ()
        self.env.update(MODELREG_FSYNC="false", TMPDIR=str(self.tmpdir))
        self.env.update(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def launch(self) -> None:
        """Start the process without waiting for it to listen."""
        command = [
            str(CONSOLE_SCRIPT),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
        ]
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        """What the server printed so far: startup line, uvicorn log, tracebacks."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/readyz`` until it answers 200; fail with the server's output otherwise."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.returncode = self.process.returncode
                if "address already in use" in self.output().lower():
                    raise PortTaken(self.url)
                pytest.fail(
                    f"modelreg serve exited with status {self.process.returncode} before "
                    f"it was ready:\n{self.output()}"
                )
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5.0)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            time.sleep(0.1)
        pytest.fail(
            f"modelreg serve at {self.url} not ready after {timeout:.0f} s ({last}):\n"
            f"{self.output()}"
        )

    def stop(self) -> list[str]:
        """SIGTERM, then SIGKILL to the whole group if needed; what went wrong, if anything."""
        if self.process is None or self.returncode is not None:
            return []
        pgid = self.process.pid  # the server leads its own process group
        problems: list[str] = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM")
        if _group_outlives(pgid, STOP_TIMEOUT):
            if not problems:
                problems.append(f"left processes running after it exited: {_members(pgid)}")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        self.returncode = self.process.returncode
        # Several workers: the parent exits 0. One worker: uvicorn shuts down gracefully,
        # then re-raises the signal it caught, so the process dies of SIGTERM.
        if not problems and self.returncode not in (0, -signal.SIGTERM):
            problems.append(f"exited with status {self.returncode}")
        leftovers = sorted(p.name for p in self.tmpdir.glob("modelreg-metrics-*"))
        if not problems and leftovers:
            problems.append(f"left its metrics folder behind: {leftovers}")
        return [f"modelreg serve at {self.url} {p}:\n{self.output()}" for p in problems]


class Servers:
    """Starts servers under ``root``; :meth:`stop_all` stops every one of them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Server] = []

    def start(self, env: Mapping[str, str], *, workers: Sequence[int] = (1,)) -> list[str]:
        """Launch one server per entry of ``workers`` (its worker count), all at once over
        the same ``env``, wait until every one is ready and return their URLs."""
        batch = [
            Server(self.root, env, count, port)
            for count, port in zip(workers, free_ports(len(workers)), strict=True)
        ]
        for server in batch:
            server.launch()
            self.started.append(server)
        urls = []
        for server in batch:
            for _attempt in range(3):
                try:
                    server.wait_ready()
                    break
                except PortTaken:  # rare: pick another port and try again
                    server = Server(self.root, env, server.workers, free_ports(1)[0])
                    server.launch()
                    self.started.append(server)
            else:
                pytest.fail(f"no free port for modelreg serve:\n{server.output()}")
            urls.append(server.url)
        return urls

    def stop(self, url: str) -> None:
        """Stop the servers at ``url`` now; fail if one did not stop cleanly."""
        problems = [p for server in self.started if server.url == url for p in server.stop()]
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)

    def stop_all(self) -> None:
        """Stop every server, then fail if any of them did not stop cleanly."""
        problems = [problem for server in self.started for problem in server.stop()]
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def start_servers(tmp_path: Path) -> Iterator[StartServers]:
    """Start servers that live until the end of the test."""
    servers = Servers(tmp_path / "servers")
    yield servers.start
    servers.stop_all()


@pytest.fixture
def start_stop_servers(tmp_path: Path) -> Iterator[tuple[StartServers, Callable[[str], None]]]:
    """``(start, stop)``: start servers as ``start_servers`` does, and stop one by its URL
    in the middle of a test (to restart over the same registry); the rest stop at the end."""
    pool = Servers(tmp_path / "servers")
    yield pool.start, pool.stop
    pool.stop_all()


@pytest.fixture(scope="module")
def start_module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServers]:
    """Start servers that the tests of one module share."""
    servers = Servers(tmp_path_factory.mktemp("servers"))
    yield servers.start
    servers.stop_all()


@pytest.fixture(autouse=True)
def _no_registry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK in this process reads only the settings a test passes explicitly."""
    for key in list(os.environ):
        if key.startswith("MODELREG_"):
            monkeypatch.delenv(key)
