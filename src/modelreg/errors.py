"""One error hierarchy for the whole registry.

Every class carries a stable ``code`` (part of the public contract: scripts match on it)
and the HTTP ``status`` a server answers with. Backend exceptions (sqlite3, psycopg,
OSError from the blob store) are translated into these at the store and artifact
boundaries and never reach a caller untranslated.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelregError(Exception):
    """Base class of every error the registry raises on purpose."""

    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The JSON error shape: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


class InvalidArgument(ModelregError):
    """A value the caller passed is malformed or out of range."""

    code = "INVALID_ARGUMENT"
    status = 400


class InvalidName(InvalidArgument):
    """A model name, alias, tag, metric or parameter key breaks the naming rules."""

    code = "INVALID_NAME"


class InvalidReference(InvalidArgument):
    """A reference such as ``fraud/7`` or ``fraud@production`` cannot be parsed."""

    code = "INVALID_REFERENCE"


class InvalidFilter(InvalidArgument):
    """A search filter or order-by clause has a syntax or field error."""

    code = "INVALID_FILTER"

    def __init__(self, message: str, position: int | None = None, **details: Any) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}", position=position, **details)
        self.position = position


class InvalidPath(InvalidArgument):
    """An artifact file path is absolute, escapes its root, or is otherwise unsafe."""

    code = "INVALID_PATH"


class DigestMismatch(InvalidArgument):
    """An uploaded body does not match the digest or length it was declared with."""

    code = "DIGEST_MISMATCH"


class MethodNotAllowed(InvalidArgument):
    """An HTTP method the endpoint does not support."""

    code = "METHOD_NOT_ALLOWED"
    status = 405


class Unauthenticated(ModelregError):
    """The caller did not prove who they are."""

    code = "UNAUTHENTICATED"
    status = 401


class PermissionDenied(ModelregError):
    """The caller is known but lacks the permission the operation needs."""

    code = "PERMISSION_DENIED"
    status = 403


class NotFound(ModelregError):
    """A model, version, alias, stage or blob does not exist."""

    code = "NOT_FOUND"
    status = 404


class AlreadyExists(ModelregError):
    """Creating something whose name is already taken."""

    code = "ALREADY_EXISTS"
    status = 409


class Conflict(ModelregError):
    """The operation contradicts the current state (e.g. deleting a model in production)."""

    code = "CONFLICT"
    status = 409


class PolicyViolation(ModelregError):
    """The lifecycle policy forbids the operation."""

    code = "POLICY_VIOLATION"
    status = 422


class InvalidTransition(PolicyViolation):
    """A stage move that the lifecycle does not allow."""

    code = "INVALID_TRANSITION"


class PayloadTooLarge(InvalidArgument):
    """A request body exceeds what the server accepts for that endpoint."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class IntegrityError(ModelregError):
    """Stored bytes do not match their recorded size or digest, or a blob is missing."""

    code = "INTEGRITY_ERROR"
    status = 500


class ManifestMismatch(IntegrityError):
    """A manifest names blobs the store does not hold, or holds with another size.

    Nothing was written. ``details["missing"]`` lists the absent digests: upload those and
    commit again. A client's mistake, not corruption, hence 409 rather than 500.
    """

    code = "MANIFEST_MISMATCH"
    status = 409


class StorageError(ModelregError):
    """The metadata database or the blob store failed or is unreachable."""

    code = "STORAGE_ERROR"
    status = 503


class StorageDenied(StorageError):
    """The blob store refuses the registry's own credentials (wrong keys, no access to the
    bucket). Not the caller's permission, and not transient: retrying will not help until
    the store's configuration is fixed."""

    code = "STORAGE_DENIED"


ALL_ERRORS: tuple[type[ModelregError], ...] = (
    ModelregError,
    InvalidArgument,
    InvalidName,
    InvalidReference,
    InvalidFilter,
    InvalidPath,
    PayloadTooLarge,
    DigestMismatch,
    MethodNotAllowed,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    Conflict,
    PolicyViolation,
    InvalidTransition,
    IntegrityError,
    ManifestMismatch,
    StorageError,
    StorageDenied,
)


def error_class_for(code: str) -> type[ModelregError]:
    """Map a stable code back to its class (the remote client uses this)."""
    for cls in ALL_ERRORS:
        if cls.code == code:
            return cls
    return ModelregError


def from_dict(data: dict[str, Any]) -> ModelregError:
    """Rebuild an error from its JSON shape (``to_dict``), as the same class."""
    cls = error_class_for(str(data.get("code", "")))
    details = data.get("details")
    details = dict(details) if isinstance(details, dict) else {}
    error = cls.__new__(cls)
    # The base initializer: subclass initializers (InvalidFilter) would re-format a
    # message that the server already formatted.
    ModelregError.__init__(error, str(data.get("message", "")), **details)
    if isinstance(error, InvalidFilter):
        error.position = details.get("position")
    return error
