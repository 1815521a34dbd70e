"""A real S3-protocol server on loopback for the tests: moto's standalone server.

It runs as a separate process (``python -m moto.server``), so the registry talks to it
over HTTP exactly as it would talk to AWS or MinIO. ``start`` returns once it answers.
An instance started with ``auth=True`` checks credentials and signatures, which moto
does not do by default; it then has one user, whose keys ``start`` returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import botocore.config
import httpx
import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

READY_TIMEOUT = 30.0
REGION = "us-east-1"
DEFAULT_KEYS = ("modelreg-test", "modelreg-test-secret")
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


class Unavailable(Exception):
    """moto is not installed or its server did not start."""


@dataclass
class S3Server:
    """A running server: its endpoint, keys that work, and the process."""

    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        """The standard AWS settings that point a client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # A developer's own AWS files must not change what the tests do.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point this process's AWS settings at the server, for one test."""
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            monkeypatch.delenv(key)
        for key, value in self.env().items():
            monkeypatch.setenv(key, value)

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name; returns the name."""
        bucket = f"modelreg-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> S3Client:
        """A plain boto3 client for this server (tests use it behind the registry's back)."""
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(signature_version="s3v4"),
        )
        return client

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(folder: Path, *, auth: bool = False) -> S3Server:
    """Start a moto server on a free loopback port; Unavailable if it cannot."""
    try:
        import moto.server  # noqa: F401  (only checks that moto[server] is installed)
    except ImportError as exc:
        raise Unavailable(f"moto[server] is not installed: {exc}") from exc
    folder.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        port = _free_port()
        log = folder / f"moto-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # With auth, the first three requests (creating the user) are let through.
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3" if auth else "inf"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        endpoint = f"http://127.0.0.1:{port}"
        if _wait_ready(process, endpoint):
            keys = _make_user(endpoint) if auth else DEFAULT_KEYS
            return S3Server(endpoint, keys[0], keys[1], process, log)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        if "address already in use" not in log.read_text(errors="replace").lower():
            raise Unavailable(f"moto server did not start:\n{log.read_text(errors='replace')}")
    raise Unavailable("no free port for the moto server")


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{endpoint}/moto-api/", timeout=2.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def _make_user(endpoint: str) -> tuple[str, str]:
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="registry")
    key = iam.create_access_key(UserName="registry")["AccessKey"]
    iam.put_user_policy(UserName="registry", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    return key["AccessKeyId"], key["SecretAccessKey"]
