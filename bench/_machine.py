"""The machine and software a benchmark ran on, for the header of its results."""

from __future__ import annotations

import os
import platform
import sqlite3
from datetime import datetime
from pathlib import Path

import modelreg

Facts = list[tuple[str, str]]


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (or what the platform module knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or "unknown"


def ram_gib() -> float:
    """Installed memory in GiB, from /proc/meminfo."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    raise RuntimeError("MemTotal missing from /proc/meminfo")


def describe(postgres: str | None = None) -> Facts:
    """Date, hardware and software versions, as label/value pairs."""
    return [
        ("Date", datetime.now().date().isoformat()),
        ("CPU", f"{cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", f"{ram_gib():.1f} GiB"),
        ("OS", platform.system()),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres or "not used"),
        ("modelreg", modelreg.__version__),
    ]


def file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (ext4, xfs, tmpfs…), from /proc/mounts."""
    target = path.resolve()
    found, depth = "unknown", -1
    for line in Path("/proc/mounts").read_text().splitlines():
        _device, mount, kind, *_ = line.split()
        mount_path = Path(mount)
        if (target == mount_path or mount_path in target.parents) and len(mount_path.parts) > depth:
            found, depth = kind, len(mount_path.parts)
    return found
