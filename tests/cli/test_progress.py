"""Progress bars appear on a terminal, and stay out of pipes."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env["MODELREG_HOME"] = str(home)
    env["COLUMNS"] = "160"
    return env


def _run_with_terminal_stderr(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg.cli", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_register_and_pull_show_progress_on_a_terminal(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(12 * 1024 * 1024))
    env = _env(tmp_path / "home")
    code, out, err = _run_with_terminal_stderr(["register", "fraud", str(model)], env)
    assert code == 0, err
    assert "registered fraud/1" in out
    assert "uploading" in err
    assert "━" in err  # the bar
    assert "/s" in err  # the transfer speed column
    code, out, err = _run_with_terminal_stderr(["pull", "fraud/1", str(tmp_path / "out")], env)
    assert code == 0, err
    assert "pulling fraud/1" in err
    assert (tmp_path / "out" / "model.bin").read_bytes() == model.read_bytes()


def test_no_progress_when_stderr_is_a_pipe(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    result = subprocess.run(
        [sys.executable, "-m", "modelreg.cli", "register", "fraud", str(model)],
        capture_output=True,
        text=True,
        env=_env(tmp_path / "home"),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
