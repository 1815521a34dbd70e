"""Saved API tokens by server URL: the file ``modelreg login`` writes (``MODELREG_CREDENTIALS``).

The file is a JSON object ``{"https://registry.example": {"token": "…"}}``, readable by
its owner only. It is always replaced whole, through a temporary file renamed over it, so
a reader never sees half a file and a crash never leaves a broken one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidArgument

FILE_MODE = 0o600
DIR_MODE = 0o700


def server_key(url: str) -> str:
    """The key a server's URL is saved under: the URL without trailing slashes, so that
    ``http://host:8080/`` and ``http://host:8080`` share one entry."""
    return url.strip().rstrip("/")


def load_token(path: str | os.PathLike[str], url: str) -> str | None:
    """The token saved for ``url``, or None when there is none (or no file)."""
    entry = _read(Path(path)).get(server_key(url))
    if not isinstance(entry, dict):
        return None
    token = entry.get("token")
    return token if isinstance(token, str) and token else None


def save_token(path: str | os.PathLike[str], url: str, token: str) -> None:
    """Save ``token`` for ``url``, replacing any token saved for it before."""
    if not token:
        raise InvalidArgument("cannot save an empty token")
    file = Path(path)
    entries = _read(file)
    entries[server_key(url)] = {"token": token}
    _write(file, entries)


def forget_token(path: str | os.PathLike[str], url: str) -> bool:
    """Remove the token saved for ``url``; False when none was saved."""
    file = Path(path)
    entries = _read(file)
    if entries.pop(server_key(url), None) is None:
        return False
    _write(file, entries)
    return True


def _read(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidArgument(f"cannot read credentials file {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"credentials file {file} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"credentials file {file} is not valid JSON ({exc.msg} at line {exc.lineno}): "
            "fix or delete it"
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"credentials file {file} must hold a JSON object: fix or delete it")
    return data


def _write(file: Path, entries: dict[str, Any]) -> None:
    try:
        _replace(file, entries)
    except OSError as exc:
        raise InvalidArgument(f"cannot write credentials file {file}: {exc.strerror}") from None


def _replace(file: Path, entries: dict[str, Any]) -> None:
    file.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600, so the token is never readable by others,
    # not even for the moment before the rename.
    fd, temporary = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            json.dump(entries, sink, indent=2, sort_keys=True)
            sink.write("\n")
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
