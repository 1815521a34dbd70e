"""Every setting, declared once as data with help text (environment prefix ``MODELREG_``).

``connect()`` arguments override the environment, which overrides the defaults.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidArgument

PREFIX = "MODELREG_"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name (without prefix), help text, default and type."""

    name: str
    help: str
    default: Callable[[Mapping[str, str]], str]
    cast: Callable[[str, str], Any]

    @property
    def env(self) -> str:
        return PREFIX + self.name


def _str(name: str, value: str) -> str:
    if not value:
        raise InvalidArgument(f"{PREFIX}{name} is set but empty")
    return value


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"{PREFIX}{name} must be true or false, not {value!r}")


def _seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgument(
            f"{PREFIX}{name} must be a number of seconds, not {value!r}"
        ) from None
    if number <= 0:
        raise InvalidArgument(f"{PREFIX}{name} must be positive, not {value!r}")
    return number


def _count(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidArgument(f"{PREFIX}{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise InvalidArgument(f"{PREFIX}{name} must be positive, not {value!r}")
    return number


def _optional(_name: str, value: str) -> str | None:
    return value or None


def _auth_mode(name: str, value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ("on", "off", "auto"):
        raise InvalidArgument(f"{PREFIX}{name} must be on, off or auto, not {value!r}")
    return lowered


def _default_home(_env: Mapping[str, str]) -> str:
    return str(Path("~/.modelreg").expanduser())


def _default_user(_env: Mapping[str, str]) -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "local"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "HOME",
        "Folder of the embedded registry (SQLite file and blobs) when nothing else is set.",
        _default_home,
        _str,
    ),
    Setting(
        "URI",
        "Metadata database: sqlite:///path/registry.db or postgresql+psycopg://user@host/db. "
        "Defaults to registry.db in MODELREG_HOME.",
        lambda env: "sqlite:///" + str(_home(env) / "registry.db"),
        _str,
    ),
    Setting(
        "ARTIFACTS",
        "Blob store: a local folder (or file:// URI), or s3://bucket/prefix for an "
        "S3-compatible bucket (endpoint, region and credentials from the standard AWS "
        "settings, e.g. AWS_ENDPOINT_URL). Defaults to blobs/ in MODELREG_HOME.",
        lambda env: str(_home(env) / "blobs"),
        _str,
    ),
    Setting(
        "USER",
        "Name recorded as the actor of every change in embedded mode. Defaults to the OS user.",
        _default_user,
        _str,
    ),
    Setting(
        "BUSY_TIMEOUT",
        "Seconds a SQLite writer waits for another process's write transaction to finish.",
        lambda _env: "60",
        _seconds,
    ),
    Setting(
        "FSYNC",
        "Flush blobs and the SQLite journal to disk before a registration commits "
        "(true/false). Turning it off trades crash safety for speed.",
        lambda _env: "true",
        _bool,
    ),
    Setting(
        "DIRECT_IO",
        "Read and write around the page cache (O_DIRECT) where the file system supports "
        "it: durable blobs a local blob store writes, blobs of 64 MiB and more a server "
        "sends that are not in the page cache, and files of 64 MiB and more a pull writes "
        "(true/false). Turn it off on a network file system, where each direct write waits "
        "for the file server, or where many clients pull the same blobs from a slow disk.",
        lambda _env: "true",
        _bool,
    ),
    Setting(
        "S3_ADDRESSING_STYLE",
        "How bucket names go into S3 requests: auto, path (http://host/bucket/key, what "
        "most self-hosted S3-compatible servers need) or virtual (http://bucket.host/key).",
        lambda _env: "auto",
        _str,
    ),
    Setting(
        "DIRECT_DOWNLOADS",
        "Server: hand clients short-lived presigned URLs so they download blobs straight "
        "from the bucket (S3 stores only; true/false).",
        lambda _env: "true",
        _bool,
    ),
    Setting(
        "DIRECT_UPLOADS",
        "Server: let clients upload blobs straight to the bucket through presigned URLs; "
        "the server still reads each upload back once to verify its SHA-256 before it "
        "becomes a blob (S3 stores only; true/false).",
        lambda _env: "true",
        _bool,
    ),
    Setting(
        "PRESIGN_EXPIRY",
        "Server: seconds a presigned upload or download URL stays valid.",
        lambda _env: "900",
        _seconds,
    ),
    Setting(
        "TOKEN",
        "API token the SDK and CLI send to a remote registry (http:// or https:// URI).",
        lambda _env: "",
        _optional,
    ),
    Setting(
        "CREDENTIALS",
        "File of saved tokens by server URL (written by `modelreg login`), used when no "
        "token is given. Defaults to credentials.json in MODELREG_HOME.",
        lambda env: str(_home(env) / "credentials.json"),
        _str,
    ),
    Setting(
        "AUTH",
        "Server authentication: on (every API request needs a token), off (anyone who can "
        "reach the server acts as the X-Modelreg-User they name, with every permission) or "
        "auto (on unless `modelreg serve` listens on a loopback address only).",
        lambda _env: "auto",
        _auth_mode,
    ),
    Setting(
        "WEBHOOK_DELIVERY",
        "Whether server processes deliver webhooks (true/false). Every worker and replica "
        "takes part; they share the work through the database.",
        lambda _env: "true",
        _bool,
    ),
    Setting(
        "WEBHOOK_RETRY_BASE",
        "Seconds before the first retry of a failed webhook delivery; each further retry "
        "waits twice as long (at most an hour).",
        lambda _env: "5",
        _seconds,
    ),
    Setting(
        "WEBHOOK_MAX_ATTEMPTS",
        "Attempts before a webhook delivery is given up and marked failed.",
        lambda _env: "12",
        _count,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _home(env: Mapping[str, str]) -> Path:
    return Path(setting_value("HOME", env)).expanduser()


def setting_value(name: str, env: Mapping[str, str] | None = None) -> str:
    """The raw string of a setting from ``env`` (default ``os.environ``) or its default."""
    env = os.environ if env is None else env
    setting = _BY_NAME[name]
    raw = env.get(setting.env)
    return raw if raw is not None else setting.default(env)


@dataclass(frozen=True, slots=True)
class Config:
    """Resolved settings for one registry connection."""

    home: Path
    uri: str
    artifacts: str
    user: str
    busy_timeout: float
    fsync: bool
    direct_io: bool
    s3_addressing_style: str
    direct_downloads: bool
    direct_uploads: bool
    presign_expiry: float
    token: str | None
    credentials: Path
    auth: str
    webhook_delivery: bool
    webhook_retry_base: float
    webhook_max_attempts: int

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read every setting; keyword overrides (lowercase names) win over the environment."""
        env = dict(os.environ if env is None else env)
        for key, value in overrides.items():
            if value is not None:
                env[PREFIX + key.upper()] = str(value)
        values = {s.name.lower(): s.cast(s.name, setting_value(s.name, env)) for s in SETTINGS}
        values["home"] = Path(values["home"]).expanduser()
        values["credentials"] = Path(values["credentials"]).expanduser()
        return cls(**values)
