"""Servers for the client/server benchmarks: MLflow's virtualenv, starting a server,
waiting until it answers and then until it is idle, reading its memory, stopping it.

Every server runs in a session of its own (``start_new_session``), so its whole process
tree (workers, job runners) is found by session id in /proc and stopped as one group.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venv-mlflow"
CLIENTS = HERE / "_clients.py"
TICKS = os.sysconf("SC_CLK_TCK")
# MLflow's telemetry off, as the issue asks; DO_NOT_TRACK for any library that honours it.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
# Idle: the whole process tree below this share of one core, this many windows in a row.
IDLE_CPU = 0.05
IDLE_WINDOW = 1.0
IDLE_WINDOWS = 3
IDLE_TIMEOUT = 120.0
# Before each server starts: the whole machine this quiet, waiting at most this long.
QUIET_CPU = 0.25
QUIET_TIMEOUT = 90.0
READY_TIMEOUT = 180.0


def mlflow_python(spec: str = "mlflow") -> Path:
    """The interpreter of MLflow's own virtualenv, ``bench/.venv-mlflow``, made on demand
    (``python -m venv`` and ``pip install SPEC``): MLflow's pins must not meet ours."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (python.exists() and _has_mlflow(python)):
        print(f"creating {MLFLOW_VENV.relative_to(HERE.parent)} with {spec}...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", spec],
            check=True,
        )
    return python


def _has_mlflow(python: Path) -> bool:
    probe = subprocess.run([str(python), "-c", "import mlflow"], capture_output=True)
    return probe.returncode == 0


def package_versions(python: Path | str, packages: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``packages`` in the environment of ``python``."""
    code = (
        "import sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        print(name, version(name))\n"
        "    except PackageNotFoundError:\n        print(name, '-')\n"
    )
    out = subprocess.run(
        [str(python), "-c", code, *packages], check=True, capture_output=True, text=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server: its URL, process group and log file."""

    label: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float
    ready_seconds: float = 0.0
    idle_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def session(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """Every live process of the server's session: the server and all it started."""
        return [pid for pid, stat in _stats() if int(stat[3]) == self.session]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the processes alive in the session."""
        return sum(
            (int(stat[11]) + int(stat[12])) / TICKS
            for _pid, stat in _stats()
            if int(stat[3]) == self.session
        )

    def memory(self) -> Memory:
        """Peak and current resident memory of the session's processes."""
        peaks, now = [], []
        for pid in self.pids():
            status = _status(pid)
            peaks.append(status.get("VmHWM", 0))
            now.append(status.get("VmRSS", 0))
        return Memory(len(peaks), max(peaks, default=0), sum(peaks), sum(now))


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process tree, in KiB."""

    processes: int
    largest_peak_kib: int
    sum_of_peaks_kib: int
    current_kib: int


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds so far: the whole machine (busy and stolen), one server, and this
    process with its waited-for children (the clients)."""

    wall: float
    machine: float
    steal: float
    server: float
    ours: float


def snapshot(server: Server) -> Snapshot:
    """CPU counters now, to tell the benchmark's own work from other load afterwards."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return Snapshot(
        time.monotonic(),
        (user + nice + system + irq + softirq) / TICKS,
        steal / TICKS,
        server.cpu_seconds(),
        me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime,
    )


def other_load(before: Snapshot, after: Snapshot) -> tuple[float, float]:
    """Average cores used by other work on the machine between two snapshots (not the
    server, not this benchmark and its clients), and cores stolen by the hypervisor."""
    wall = after.wall - before.wall
    busy = after.machine - before.machine
    mine = (after.server - before.server) + (after.ours - before.ours)
    return max(0.0, busy - mine) / wall, (after.steal - before.steal) / wall


def wait_machine_quiet(limit: float = QUIET_TIMEOUT) -> float:
    """Wait until the machine as a whole is under ``QUIET_CPU`` of one core for
    ``IDLE_WINDOWS`` windows in a row (other work sharing it has paused), at most
    ``limit`` seconds; the seconds waited."""
    start = time.monotonic()
    quiet = 0
    while quiet < IDLE_WINDOWS and time.monotonic() - start < limit:
        before = _machine_busy()
        time.sleep(IDLE_WINDOW)
        quiet = quiet + 1 if (_machine_busy() - before) / IDLE_WINDOW < QUIET_CPU else 0
    return time.monotonic() - start


def _machine_busy() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / TICKS


def _stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, fields after the command name) of every process: fields[0] is the state,
    [1] the parent, [2] the process group, [3] the session, [11] utime, [12] stime."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            yield int(entry.name), text.rsplit(")", 1)[1].split()


def _status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmHWM, VmRSS…)."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0])
    return values


@contextlib.contextmanager
def running(
    label: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    port: int,
    ready_path: str,
    log: Path,
) -> Iterator[Server]:
    """Start ``argv`` in a session of its own, wait until GET ``ready_path`` answers 200
    and the process tree is idle; stop the whole session on the way out."""
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(label, url, process, log, time.monotonic())
    try:
        wait_ready(server, url + ready_path)
        wait_idle(server)
        yield server
    finally:
        stop(server)


def wait_ready(server: Server, url: str) -> None:
    """Poll ``url`` until it answers 200."""
    deadline = server.started + READY_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.label} exited early:\n{tail(server.log)}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=5) as response,
        ):
            if response.status == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.label} not ready after {READY_TIMEOUT:.0f} s")
        time.sleep(0.1)
    server.ready_seconds = time.monotonic() - server.started


def wait_idle(server: Server) -> None:
    """Wait until the server's processes together use under ``IDLE_CPU`` of one core for
    ``IDLE_WINDOWS`` windows in a row: MLflow keeps both cores busy for seconds after its
    first answer (workers and job runners still importing)."""
    start = time.monotonic()
    quiet = 0
    while quiet < IDLE_WINDOWS:
        before = server.cpu_seconds()
        time.sleep(IDLE_WINDOW)
        busy = (server.cpu_seconds() - before) / IDLE_WINDOW
        quiet = quiet + 1 if busy < IDLE_CPU else 0
        if time.monotonic() - start > IDLE_TIMEOUT:
            server.notes.append(f"still {100 * busy:.0f}% busy after {IDLE_TIMEOUT:.0f} s")
            break
    server.idle_seconds = time.monotonic() - start


def stop(server: Server) -> None:
    """SIGTERM the server's session, then SIGKILL whatever is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.session, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=15)
    deadline = time.monotonic() + 10
    while server.pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in server.pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=5)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def base_env() -> dict[str, str]:
    """This environment without modelreg's or MLflow's own settings, telemetry off."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MODELREG_", "MLFLOW_"))
    }
    env.update(QUIET)
    return env


def mlflow_server(
    python: Path, data: Path, port: int, workers: int | None
) -> contextlib.AbstractContextManager[Server]:
    """``mlflow server`` with a SQLite backend and a local artifact destination served
    through its proxy; ``workers`` None keeps its default."""
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{data / 'mlflow.db'}",
        "--artifacts-destination",
        str(data / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    label = "MLflow, default workers" if workers is None else f"MLflow, {workers} worker(s)"
    return running(
        label, argv, env=base_env(), port=port, ready_path="/health", log=data / "server.log"
    )


def modelreg_server(
    data: Path,
    port: int,
    workers: int | None = None,
    *,
    plain_uvicorn: bool = False,
    loop: str = "auto",
    fsync: bool = True,
) -> contextlib.AbstractContextManager[Server]:
    """``modelreg serve`` with a fresh MODELREG_HOME (SQLite and blobs inside);
    ``plain_uvicorn`` runs the same app under ``python -m uvicorn --loop LOOP`` instead;
    ``fsync`` False sets MODELREG_FSYNC=false (nothing flushed, as MLflow's server)."""
    data.mkdir(parents=True, exist_ok=True)
    env = base_env()
    env["MODELREG_HOME"] = str(data / "home")
    # Loopback only, as `modelreg serve` decides for itself; the app run straight under
    # uvicorn would otherwise take authentication to be on. MLflow's server checks none.
    env["MODELREG_AUTH"] = "off"
    if not fsync:
        env["MODELREG_FSYNC"] = "false"
    if plain_uvicorn:
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "modelreg.server.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers or 1),
            "--loop",
            loop,
        ]
        label = f"plain uvicorn --loop {loop}, {workers or 1} worker(s)"
    else:
        argv = [sys.executable, "-m", "modelreg.cli", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port)]
        if workers is not None:
            argv += ["--workers", str(workers)]
        label = "modelreg, default workers" if workers is None else f"modelreg, {workers} workers"
        if not fsync:
            label += ", fsync off"
    return running(label, argv, env=env, port=port, ready_path="/readyz", log=data / "server.log")
