"""boto3 clients for S3-compatible servers, and the translation of their errors.

Endpoint, region and credentials come from the standard AWS configuration: environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_REGION``, ``AWS_PROFILE``…), shared
config and credentials files, instance roles. That is how MinIO, Ceph or a test server
are reached: set ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``).

Every call into botocore goes through :func:`translated`, so callers only ever see the
registry's own errors.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import urllib3.exceptions

from modelreg.errors import InvalidArgument, ModelregError, NotFound, StorageDenied, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# Transient failures (throttling, 5xx, connection resets, timeouts) are retried by
# botocore's "standard" mode with exponential backoff and jitter; AWS_RETRY_MODE and
# AWS_MAX_ATTEMPTS override both, as for any AWS tool.
DEFAULT_ATTEMPTS = 5
ADDRESSING_STYLES = ("auto", "path", "virtual")

_NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchUpload"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidClientTokenId",
}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
# Errors of reading a response body that a fresh ranged request can recover from.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.BotoCoreError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix/``); the prefix may be empty."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidArgument(f"invalid S3 URI {uri!r}: expected s3://bucket[/prefix]")
    if parts.query or parts.fragment:
        raise InvalidArgument(f"invalid S3 URI {uri!r}: no query or fragment allowed")
    bucket = parts.netloc
    if not 3 <= len(bucket) <= 63 or any(c not in _BUCKET_CHARS for c in bucket):
        raise InvalidArgument(f"invalid S3 bucket name {bucket!r} in {uri!r}")
    prefix = parts.path.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")


def make_client(
    *, addressing_style: str = "auto", pool: int = 16, read_timeout: float = 120.0
) -> S3Client:
    """An S3 client configured from the standard AWS settings."""
    if addressing_style not in ADDRESSING_STYLES:
        raise InvalidArgument(
            f"invalid S3 addressing style {addressing_style!r}: use auto, path or virtual"
        )
    retries: dict[str, Any] = {}
    if "AWS_RETRY_MODE" not in os.environ:
        retries["mode"] = "standard"
    if "AWS_MAX_ATTEMPTS" not in os.environ:
        retries["total_max_attempts"] = DEFAULT_ATTEMPTS
    options: dict[str, Any] = {
        # SigV4 everywhere: presigned URLs too, which botocore would otherwise sign with
        # the legacy scheme that newer regions and many S3-compatible servers refuse.
        "signature_version": "s3v4",
        "retries": retries,
        "max_pool_connections": pool,
        "connect_timeout": 10,
        "read_timeout": read_timeout,
        "s3": {"addressing_style": addressing_style},
        # Every byte is hashed with SHA-256 and checked against the digest anyway;
        # botocore's additional CRC32 would cost CPU for no extra guarantee.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    config = botocore.config.Config(**options)
    with translated("configure the S3 client", bucket=""):
        client: S3Client = boto3.session.Session().client("s3", config=config)
    return client


def endpoint_of(client: S3Client) -> str:
    """The endpoint a client talks to, for messages."""
    return str(client.meta.endpoint_url)


@contextlib.contextmanager
def translated(what: str, *, bucket: str, key: str | None = None) -> Iterator[None]:
    """Run botocore calls, turning their exceptions into the registry's errors.

    ``what`` completes "cannot ..." in messages, e.g. ``"read blob abc…"``.
    """
    try:
        yield
    except ModelregError:
        raise
    except botocore.exceptions.ClientError as exc:
        raise from_client_error(exc, what, bucket=bucket, key=key) from exc
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.PartialCredentialsError,
    ) as exc:
        raise StorageDenied(
            f"cannot {what}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            bucket=bucket,
        ) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise StorageError(
            f"cannot {what}: S3 endpoint unreachable ({exc})", bucket=bucket
        ) from exc
    except STREAM_ERRORS as exc:
        raise StorageError(f"cannot {what}: {type(exc).__name__}: {exc}", bucket=bucket) from exc


def from_client_error(
    exc: botocore.exceptions.ClientError, what: str, *, bucket: str, key: str | None
) -> ModelregError:
    """The registry error for an error response of S3."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or code
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    details: dict[str, Any] = {"bucket": bucket, "s3_code": code}
    if code == "NoSuchBucket":
        return StorageError(f"cannot {what}: bucket {bucket!r} does not exist", **details)
    if code in _NOT_FOUND or status == 404:
        return NotFound(f"cannot {what}: {where} does not exist", **details)
    if code in _DENIED or status in (401, 403):
        return StorageDenied(
            f"cannot {what}: S3 refused the registry's credentials for {where} ({code}: {message})",
            **details,
        )
    if code in _THROTTLED:
        return StorageError(
            f"cannot {what}: S3 is throttling requests to {where}, still after "
            f"{attempts + 1} attempts ({code})",
            **details,
        )
    return StorageError(f"cannot {what}: S3 answered {status} {code}: {message}", **details)
